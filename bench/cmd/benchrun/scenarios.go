package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goldsync/goldsync/bench/internal/gen"
	"github.com/goldsync/goldsync/bench/internal/measure"
)

// applies reports whether a scenario runs on a kind of tree: the sparse
// tree is there for its bytes on the wire (full pull only); a Debian root
// has no large file for the changed-blocks scenario; the snapshot build
// needs a real root's paths.
func applies(scenario, kind string) bool {
	switch kind {
	case "sparse":
		return scenario == "full"
	case "debian":
		return scenario != "blocks"
	}
	// The snapshot builder copies the paths of the default files list
	// (/etc/ssh, /var/lib/..., /var/log...), which only a real root has.
	return scenario != "snapshot"
}

// runAll runs every tree, scenario and mode, and returns the runs.
func (b *bench) runAll(ctx context.Context) ([]Run, error) {
	trees, err := b.trees(ctx)
	if err != nil {
		return nil, err
	}
	var runs []Run
	for _, t := range trees {
		b.sshFloor(ctx)
		for _, sc := range b.c.scenarios {
			if !applies(sc, t.kind) {
				continue
			}
			for _, mode := range b.c.modes {
				if mode == "cold" && !b.canDrop {
					continue
				}
				rs, err := b.scenario(ctx, t, sc, mode)
				runs = append(runs, rs...)
				if err != nil {
					return runs, fmt.Errorf("%s %s %s: %w", t.name, sc, mode, err)
				}
			}
			if sc == "full" {
				for _, tool := range b.keep(tools(b.c.noFloor)) {
					n, sample := b.verifyDest(ctx, t, tool)
					b.verify[t.name+"/"+tool] = fmt.Sprintf("%d differences", n)
					if n != 0 {
						b.verify[t.name+"/"+tool] += " (" + sample + ")"
					}
					b.logf("verify %s %s: %s", t.name, tool, b.verify[t.name+"/"+tool])
				}
			}
		}
		if err := gen.Revert(t.dir, b.journal(t)); err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// scenario runs the pairs of one scenario in one mode.
func (b *bench) scenario(ctx context.Context, t *tree, sc, mode string) ([]Run, error) {
	label := fmt.Sprintf("[%s %s %s]", t.name, sc, mode)
	pm := pushModeOf(sc)
	push := pm != noPush
	// toolPush is how a tool's runs sync: rsync always pulls.
	toolPush := func(tool string) pushMode {
		if tool == toolGoldsync {
			return pm
		}
		return noPush
	}
	na := func(note string) []Run {
		// rsync's side is then its pull of the same change, from "yum".
		return []Run{{Tree: t.name, Entries: t.entries, Scenario: sc, Mode: mode, Tool: toolGoldsync,
			Note: note, Load1: loadAvg(), Started: time.Now().UTC().Format(time.RFC3339)}}
	}
	switch {
	case pm == pushLogin && !b.pushOK:
		return na(b.pushNote), nil
	case pm == pushShared && !b.sharedOK:
		return na(b.sharedNote), nil
	case sc == "snapshot":
		return b.snapshot(ctx, t, mode)
	}
	jdir := b.journal(t)
	change := gen.ChangeYum
	if sc == "blocks" {
		change = gen.ChangeBlocks
	}
	if push {
		// The watcher keeps the change journal the push reads, as on a
		// golden node; it runs through the whole scenario.
		stop, err := b.startWatcher(ctx, t, sc)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	if pm == pushShared {
		// The pushes leave an ssh master connection up for
		// sharedPersist: stop it when the scenario ends.
		defer b.stopSSHMasters(b.sshSockets())
	}
	// upToDate brings the tool's destination up to the source, untimed.
	upToDate := func(tool string) error {
		// A scenario run without "full" before it finds no destination
		// dir yet: rsync does not make its parents.
		if err := os.MkdirAll(filepath.Dir(b.dest(t, tool)), 0o755); err != nil {
			return err
		}
		if r := b.runTool(ctx, t, tool, toolPush(tool)); !r.OK {
			return fmt.Errorf("%s: bringing the destination up to date: %s", tool, r.Note)
		}
		return nil
	}
	// before brings the tool's destination to the run's starting state.
	before := func(tool string) error {
		switch sc {
		case "full":
			return b.reset(t, tool)
		case "yum", "blocks", "push", "push-shared":
			if err := gen.Revert(t.dir, jdir); err != nil {
				return err
			}
			if err := upToDate(tool); err != nil {
				return err
			}
			if _, err := gen.Mutate(t.dir, jdir, change, b.c.seed); err != nil {
				return err
			}
			if push {
				time.Sleep(watchSettle) // let the watcher journal the change
			}
		}
		return nil
	}
	if sc == "nochange" {
		if err := gen.Revert(t.dir, jdir); err != nil {
			return nil, err
		}
		for _, tool := range b.keep([]string{toolRsync, toolGoldsync}) {
			if err := upToDate(tool); err != nil {
				return nil, err
			}
		}
	}
	tools := []string{toolRsync, toolGoldsync}
	if sc == "full" && !b.c.noFloor {
		tools = append(tools, toolTar)
	}
	tools = b.keep(tools)
	var runs []Run
	for pair := 1; pair <= b.c.pairs; pair++ {
		for _, tool := range tools {
			if err := ctx.Err(); err != nil {
				return runs, err
			}
			if err := before(tool); err != nil {
				return runs, err
			}
			if mode == "cold" {
				if err := dropCaches(); err != nil {
					return runs, fmt.Errorf("drop caches: %w", err)
				}
			}
			r := b.runTool(ctx, t, tool, toolPush(tool))
			r.Scenario, r.Mode, r.Pair = sc, mode, pair
			runs = append(runs, r)
			b.logf("%s pair %d/%d %-8s %7.2fs cpu %.1f+%.1fs rss %s/%s wire %s load %.1f %s", label, pair, b.c.pairs, tool,
				r.Wall, r.CPULocal, r.CPURem, mib(r.RSSTree), mib(r.RSSRem), mib(r.Wire), r.Load1, okNote(r))
		}
	}
	if sc != "full" && sc != "nochange" {
		if err := gen.Revert(t.dir, jdir); err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// keep drops from ts the tools the run leaves out (-no-rsync).
func (b *bench) keep(ts []string) []string {
	if !b.c.noRsync {
		return ts
	}
	return slices.DeleteFunc(slices.Clone(ts), func(t string) bool { return t == toolRsync })
}

// tools are the tools of the full scenario, whose destinations are checked.
func tools(noFloor bool) []string {
	if noFloor {
		return []string{toolRsync, toolGoldsync}
	}
	return []string{toolRsync, toolGoldsync, toolTar}
}

// watchSettle is how long the watcher gets to journal a change (its
// journal flushes within 100 ms, events are batched for up to 1 s).
const watchSettle = 1500 * time.Millisecond

// startWatcher runs goldsync-agent watch on the tree in the background and
// returns the function that stops it (SIGTERM, then its CPU is logged).
func (b *bench) startWatcher(ctx context.Context, t *tree, sc string) (func(), error) {
	cmd := exec.Command(filepath.Join(b.c.bin, "goldsync-agent"), "--root", t.dir, "--state-dir", b.agentDir, "watch", "--backend", b.c.watchBack)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	proc, err := measure.Start(cmd, measure.Options{})
	if err != nil {
		return nil, fmt.Errorf("start goldsync-agent watch: %w", err)
	}
	done := make(chan measure.Usage, 1)
	go func() {
		u, _ := proc.Wait()
		done <- u
	}()
	select {
	case u := <-done:
		return nil, fmt.Errorf("goldsync-agent watch exited (code %d): %s", u.ExitCode, lastLine(errb.String()))
	case <-time.After(watchSettle):
	}
	b.logf("watcher on %s running (pid %d)", t.name, proc.Pid())
	return func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case u := <-done:
			b.logf("watcher on %s stopped: cpu %.2fs, rss %s", t.name, u.CPU().Seconds(), mib(u.TreeRSS))
			b.c.notes = append(b.c.notes, fmt.Sprintf("goldsync-agent watch on %s during the %s scenario: %.2f s CPU, peak RSS %s (not in the push figures)",
				t.name, sc, u.CPU().Seconds(), mib(u.TreeRSS)))
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}, nil
}

// sshSocketDir is where goldsync-agent push --ssh-persist puts its
// master connection's control socket, ssh-%C (remote's
// ShareConnection): <state dir>/ssh, or, when that path is too long for a
// socket once ssh has expanded %C and added its temporary suffix, a
// private directory under the temp dir.
func (b *bench) sshSocketDir() string {
	const maxSocketPath = 107 // sun_path less its NUL
	dir := filepath.Join(b.agentDir, "ssh")
	if len(dir)+len("/ssh-")+40+17 > maxSocketPath {
		return filepath.Join(os.TempDir(), fmt.Sprintf("goldsync-ssh-%d", os.Geteuid()))
	}
	return dir
}

// sshSockets lists the control sockets in the socket directory, by inode.
func (b *bench) sshSockets() map[string]uint64 {
	names, _ := filepath.Glob(filepath.Join(b.sshSocketDir(), "ssh-*"))
	out := map[string]uint64{}
	for _, n := range names {
		if fi, err := os.Lstat(n); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				out[n] = st.Ino
			}
		}
	}
	return out
}

// sshMasterSocket is the control socket of this run's master connection:
// ssh-%C in the socket directory, %C (a hash of the local host name and
// the destination's host, port and user) expanded by `ssh -G` with the
// harness's options and destination, as the agent's ssh expands it.
func (b *bench) sshMasterSocket() string {
	ssh := b.srv.SSHArgs()
	args := append(ssh[1:len(ssh):len(ssh)], "-o", "ControlPath="+filepath.Join(b.sshSocketDir(), "ssh-%C"), "-G", b.srv.UserHost())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ssh[0], args...).Output()
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "controlpath "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// stopSSHMasters stops the ssh master connection the push-shared
// scenario's pushes left up (`ssh -O exit`), ignoring errors. The socket
// directory may hold other runs' masters (another benchrun with the same
// -work, an agent's watch --push-to): only this run's socket is stopped,
// or, when it cannot be named, the sockets that are not in before (the
// sockets at the start of the scenario) or are another inode now.
func (b *bench) stopSSHMasters(before map[string]uint64) {
	var socks []string
	now := b.sshSockets()
	if s := b.sshMasterSocket(); s != "" && now[s] != 0 {
		socks = []string{s}
	} else {
		for s, ino := range now {
			if before[s] != ino {
				socks = append(socks, s)
			}
		}
	}
	n := 0
	for _, s := range socks {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, b.srv.SSHArgs()[0], "-F", "none", "-o", "ControlPath="+s, "-O", "exit", "x").CombinedOutput()
		cancel()
		if err != nil {
			b.logf("ssh -O exit %s: %v: %s (ignored)", s, err, lastLine(string(out)))
			continue
		}
		n++
	}
	b.logf("stopped %d shared ssh connection(s)", n)
}

func okNote(r Run) string {
	if r.OK {
		return ""
	}
	return "FAILED: " + r.Note
}

func mib(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }

// snapshot runs the snapshot builder's benchmark (bench/snapshot/run.sh,
// owned by the snapshot engineer) once per pair on the image goldsync
// pulled: it times `goldsync snapshot build` of 128 nodes, a rebuild, and
// the cp -a --parents shell loop, warm (it reads the image first), and
// appends "date,root,fs,nodes,build_s,build_cpu,rebuild_s,rebuild_cpu,
// shell_s,shell_cpu" to a CSV file.
func (b *bench) snapshot(ctx context.Context, t *tree, mode string) ([]Run, error) {
	na := Run{Tree: t.name, Entries: t.entries, Scenario: "snapshot", Mode: mode, Tool: toolGoldsync,
		Load1: loadAvg(), Started: time.Now().UTC().Format(time.RFC3339)}
	st, err := os.Stat(b.c.snapshot)
	switch {
	case err != nil || st.Mode()&0o111 == 0:
		na.Note = "n/a: no snapshot benchmark script (" + b.c.snapshot + ")"
		return []Run{na}, nil
	case mode == "cold":
		return nil, nil // the snapshot script warms the image itself
	}
	image := b.dest(t, toolGoldsync)
	if _, err := os.Stat(image); err != nil {
		if r := b.runTool(ctx, t, toolGoldsync, noPush); !r.OK {
			return nil, fmt.Errorf("pull the image for the snapshot build: %s", r.Note)
		}
	}
	work := b.dest(t, "snapshot-work")
	csvFile := filepath.Join(work, "results.csv")
	var runs []Run
	for pair := 1; pair <= b.c.pairs; pair++ {
		os.RemoveAll(work)
		if err := os.MkdirAll(work, 0o755); err != nil {
			return nil, err
		}
		load := loadAvg()
		cmd := exec.CommandContext(ctx, b.c.snapshot, "-r", image, "-w", work, "-b", filepath.Join(b.c.bin, "goldsync"), "-o", csvFile, "128")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			na.Note = fmt.Sprintf("snapshot script failed: %v: %s", err, lastLine(errb.String()))
			return append(runs, na), nil
		}
		data, err := os.ReadFile(csvFile)
		if err != nil {
			return nil, err
		}
		f := strings.Split(lastLine(string(data)), ",")
		if len(f) != 10 {
			na.Note = "snapshot script wrote no result line"
			return append(runs, na), nil
		}
		num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		started := time.Now().UTC().Format(time.RFC3339)
		gs := Run{Tree: t.name, Entries: t.entries, Scenario: "snapshot", Mode: mode, Tool: toolGoldsync, Pair: pair,
			Wall: num(f[4]), CPULocal: num(f[5]), OK: true, Load1: load, Started: started,
			Note: fmt.Sprintf("rebuild %s s (cpu %s s)", f[6], f[7])}
		cp := Run{Tree: t.name, Entries: t.entries, Scenario: "snapshot", Mode: mode, Tool: toolCp, Pair: pair,
			Wall: num(f[8]), CPULocal: num(f[9]), OK: true, Load1: load, Started: started}
		runs = append(runs, cp, gs)
		b.logf("[%s snapshot %s] pair %d/%d goldsync %.2fs (rebuild %ss), cp loop %.2fs", t.name, mode, pair, b.c.pairs, gs.Wall, f[6], cp.Wall)
	}
	os.RemoveAll(work)
	return runs, nil
}

// sshFloor times `ssh HOST true` a few times and notes the median: the
// connection set-up every run pays, which no tool can beat.
func (b *bench) sshFloor(ctx context.Context) {
	var ws []float64
	for range 5 {
		cmd := b.srv.Command(ctx, "true")
		u, err := measure.Run(cmd, measure.Options{})
		if err != nil || u.ExitCode != 0 {
			return
		}
		ws = append(ws, u.Wall.Seconds())
	}
	m := median(ws)
	b.logf("ssh round trip (ssh HOST true): median %.3fs", m)
	b.c.notes = append(b.c.notes, fmt.Sprintf("`ssh HOST true` at %s: median of 5 %.3f s, load %.1f (a floor for every run)",
		time.Now().UTC().Format("15:04"), m, loadAvg()))
}
