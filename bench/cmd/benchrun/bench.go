package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/bench/internal/gen"
	"github.com/goldsync/goldsync/bench/internal/measure"
	"github.com/goldsync/goldsync/internal/sshtest"
)

// The scenarios, in the order they run.
var allScenarios = []string{"full", "nochange", "yum", "push", "push-shared", "blocks", "snapshot"}

func validScenario(s string) bool {
	for _, a := range allScenarios {
		if a == s {
			return true
		}
	}
	return false
}

// pushMode says how goldsync's side of a run syncs: a pull, or
// goldsync-agent's push logging in anew or over a shared ssh connection.
type pushMode int

const (
	noPush     pushMode = iota // a pull (rsync's, goldsync's)
	pushLogin                  // goldsync-agent push, its own ssh login (scenario "push")
	pushShared                 // goldsync-agent push --ssh-persist, over the master connection (scenario "push-shared")
)

// sharedPersist is push-shared's --ssh-persist, goldsync-agent watch
// --push-to's default.
const sharedPersist = "10m"

// pushModeOf is how goldsync's side of a scenario syncs.
func pushModeOf(scenario string) pushMode {
	switch scenario {
	case "push":
		return pushLogin
	case "push-shared":
		return pushShared
	}
	return noPush
}

// isPush reports whether goldsync's side of a scenario is a push (its
// rsync side being rsync's pull of the same change).
func isPush(scenario string) bool { return pushModeOf(scenario) != noPush }

// The tools compared.
const (
	toolRsync    = "rsync"
	toolGoldsync = "goldsync"
	toolCp       = "cp-loop" // the snapshot build's shell loop
	// toolTar is the copy floor of a full pull: one tar stream over the
	// same ssh into an empty dir, writing in place (no temp + rename, no
	// comparison). A baseline row of the full scenario only.
	toolTar = "tar-floor"
)

// excludes are the seed procedure's, given to both tools.
var excludes = []string{"/proc/*", "/sys/*"}

// Run is one measured run of one tool.
type Run struct {
	Tree     string  // tree name
	Entries  int     // entries in the source tree
	Scenario string  // full, nochange, ...
	Mode     string  // warm or cold
	Tool     string  // rsync, goldsync, cp-loop
	Pair     int     // 1-based pair number
	Wall     float64 // seconds
	CPULocal float64 // seconds, user+sys, the tool and its reaped children (ssh)
	CPURem   float64 // seconds, the remote rsync or agent
	RSSLocal int64   // bytes, largest single local process (ru_maxrss)
	RSSTree  int64   // bytes, sampled peak sum over the local process tree
	RSSRem   int64   // bytes, sampled peak sum over the remote process tree
	Wire     int64   // bytes on the wire, both directions, above ssh
	OK       bool
	Note     string
	Load1    float64 // 1-minute load average when the run started
	Started  string  // RFC 3339
}

type tree struct {
	name    string
	kind    string // synthetic, debian, sparse
	dir     string
	entries int
	stats   gen.Stats
}

type bench struct {
	c          *config
	srv        *sshtest.Server
	stopSSH    func()
	rsh        string
	remUsage   string // the remote side's usage file
	wrapper    string // the goldsync-agent wrapper script
	rsyncPath  string // rsync's --rsync-path
	agentDir   string // the agent's state dir
	recvWrap   string // the goldsync receive wrapper script (push)
	canDrop    bool
	pushOK     bool   // goldsync-agent push exists
	pushNote   string // how push is measured, or why it is not
	sharedOK   bool   // goldsync-agent push has --ssh-persist
	sharedNote string // how push-shared is measured, or why it is not
	verify     map[string]string
	treeNotes  map[string]string
	trashed    int // entries moved into the trash dir since it was last emptied
	trashSeq   int
}

// trashBudget is how many entries of old destinations the trash dir may
// hold before it is emptied (about 25 GiB of the synthetic trees).
const trashBudget = 2_500_000

// inodeQuiet is how long to wait after emptying the trash: ext4 without a
// journal (this VM's root) skips, and reads, every inode freed in the last
// 60 s when it allocates a new one, and a run started right after deleting
// a tree paid up to 60 % of its CPU there (bench/README, wt-floor).
const inodeQuiet = 61 * time.Second

func newBench(ctx context.Context, c *config) (*bench, error) {
	b := &bench{c: c, verify: map[string]string{}, treeNotes: map[string]string{}}
	for _, d := range []string{"trees", "dst", "journal", "usage", "sshd", "trash"} {
		if err := os.MkdirAll(filepath.Join(c.work, d), 0o755); err != nil {
			return nil, err
		}
	}
	b.emptyTrash(true) // an interrupted run's leftovers
	srv, stop, err := sshtest.StartServer(filepath.Join(c.work, "sshd"), sshtest.Options{})
	if err != nil {
		return nil, fmt.Errorf("loopback sshd: %w", err)
	}
	b.srv, b.stopSSH = srv, stop
	b.rsh = srv.RshCommand()
	b.remUsage = filepath.Join(c.work, "usage", "remote.jsonl")
	b.agentDir = filepath.Join(c.work, "agent-state")
	ru := filepath.Join(c.bin, "rusage")
	b.rsyncPath = sshtest.ShellQuote(ru) + " -o " + sshtest.ShellQuote(b.remUsage) + " -tag rsync -- rsync"
	b.wrapper = filepath.Join(c.work, "agent-wrapper.sh")
	script := fmt.Sprintf("#!/bin/sh\n# Written by benchrun: measure the agent.\nexec %s -o %s -tag agent -- %s \"$@\" --state-dir %s\n",
		sshtest.ShellQuote(ru), sshtest.ShellQuote(b.remUsage), sshtest.ShellQuote(filepath.Join(c.bin, "goldsync-agent")), sshtest.ShellQuote(b.agentDir))
	if err := os.WriteFile(b.wrapper, []byte(script), 0o755); err != nil {
		return nil, err
	}
	// goldsync receive speaks the protocol on its stdio and counts no
	// bytes: the wrapper counts them.
	b.recvWrap = filepath.Join(c.work, "receive-wrapper.sh")
	script = fmt.Sprintf("#!/bin/sh\n# Written by benchrun: measure goldsync receive and count its bytes.\nexec %s -o %s -tag receive -count -- %s \"$@\"\n",
		sshtest.ShellQuote(ru), sshtest.ShellQuote(b.remUsage), sshtest.ShellQuote(filepath.Join(c.bin, "goldsync")))
	if err := os.WriteFile(b.recvWrap, []byte(script), 0o755); err != nil {
		return nil, err
	}
	if contains(c.modes, "cold") {
		if err := dropCaches(); err != nil {
			b.canDrop = false
			c.notes = append(c.notes, fmt.Sprintf("cold runs skipped: cannot drop the page cache (%v)", err))
		} else {
			b.canDrop = true
		}
	}
	out, _ := exec.CommandContext(ctx, filepath.Join(c.bin, "goldsync-agent"), "push", "--help").CombinedOutput()
	if bytes.Contains(out, []byte("--to")) && !bytes.Contains(out, []byte("unknown command")) {
		b.pushOK = true
		b.pushNote = "goldsync-agent push with goldsync-agent watch keeping the change journal; " +
			"golden-node and image-server columns swapped into place (push runs on the golden node)"
	} else {
		b.pushNote = "not available: goldsync-agent has no push command"
	}
	switch {
	case !b.pushOK:
		b.sharedNote = b.pushNote
	case bytes.Contains(out, []byte("--ssh-persist")):
		b.sharedOK = true
		b.sharedNote = "as push, every goldsync-agent push with --ssh-persist " + sharedPersist +
			" (as watch --push-to): the timed pushes run over the ssh master connection the untimed up-to-date push opened; " +
			"the master's CPU (the golden node's encryption) is in no column; rsync's side is its plain pull"
	default:
		b.sharedNote = "not available: goldsync-agent push has no --ssh-persist"
	}
	b.logf("sshd on 127.0.0.1:%d; rsh: %s", srv.Port, b.rsh)
	return b, nil
}

func (b *bench) close() {
	if b.stopSSH != nil {
		b.stopSSH()
	}
	b.emptyTrash(false)
}

// discard moves an old destination (or state dir) into the trash dir
// instead of deleting it, so that no run follows a mass delete: deleted
// inodes slow file creation on this VM's ext4 for a minute. The trash is
// emptied when it holds more than trashBudget entries (then the next run
// waits inodeQuiet) and when benchrun ends.
func (b *bench) discard(path string, entries int) error {
	if _, err := os.Lstat(path); os.IsNotExist(err) {
		return nil
	}
	if b.trashed+entries > trashBudget {
		b.emptyTrash(true)
	}
	b.trashSeq++
	to := filepath.Join(b.c.work, "trash", strconv.Itoa(b.trashSeq))
	if err := os.Rename(path, to); err != nil {
		return os.RemoveAll(path) // another filesystem: delete as before
	}
	b.trashed += entries
	return nil
}

// emptyTrash deletes the trash dir's contents; with wait, it then waits
// for the disk to settle and for the deleted inodes to age past
// inodeQuiet.
func (b *bench) emptyTrash(wait bool) {
	dir := filepath.Join(b.c.work, "trash")
	ds, _ := os.ReadDir(dir)
	for _, d := range ds {
		os.RemoveAll(filepath.Join(dir, d.Name()))
	}
	b.trashed = 0
	if wait && len(ds) > 0 {
		start := time.Now()
		settleDisk(dir)
		time.Sleep(inodeQuiet - time.Since(start))
		b.logf("emptied the trash (%d old destinations); waited %.0fs for the deleted inodes to age", len(ds), time.Since(start).Seconds())
	}
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s benchrun: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// dropCaches empties the page cache, dentries and inodes (as root).
func dropCaches() error {
	if err := exec.Command("sync").Run(); err != nil {
		return err
	}
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200)
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// trees prepares (or finds cached) the trees to run.
func (b *bench) trees(ctx context.Context) ([]*tree, error) {
	var out []*tree
	if b.c.trees["synthetic"] {
		for _, n := range b.c.sizes {
			t, err := b.prepare(ctx, "synthetic", gen.Spec{Kind: gen.KindSynthetic, Files: n, Seed: b.c.seed})
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
	}
	if b.c.trees["debian"] {
		t, err := b.prepare(ctx, "debian", gen.Spec{Seed: b.c.seed})
		switch {
		case errors.Is(err, gen.ErrNoDebian):
			b.c.notes = append(b.c.notes, fmt.Sprintf("no Debian root (%v): synthetic trees only", err))
			b.logf("no Debian root, falling back to synthetic trees only: %v", err)
		case err != nil:
			return nil, err
		default:
			out = append(out, t)
		}
	}
	if b.c.trees["sparse"] {
		t, err := b.prepare(ctx, "sparse", gen.Spec{Kind: gen.KindSparse, Seed: b.c.seed})
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

type treeMark struct {
	Version string
	Stats   gen.Stats
}

func (b *bench) prepare(ctx context.Context, kind string, spec gen.Spec) (*tree, error) {
	name := spec.Name()
	if kind == "debian" {
		name = fmt.Sprintf("debian-s%d", spec.Seed)
	}
	t := &tree{name: name, kind: kind, dir: filepath.Join(b.c.work, "trees", name)}
	markFile := t.dir + ".ok"
	jdir := b.journal(t)
	if gen.Mutated(jdir) {
		if err := gen.Revert(t.dir, jdir); err != nil {
			return nil, fmt.Errorf("revert the change left in %s: %w", t.dir, err)
		}
	}
	var m treeMark
	if data, err := os.ReadFile(markFile); err == nil && json.Unmarshal(data, &m) == nil && m.Version == gen.Version {
		t.stats = m.Stats
		t.entries = m.Stats.Entries()
		b.logf("tree %s: cached, %d entries", name, t.entries)
		return t, nil
	}
	os.Remove(markFile)
	if err := os.RemoveAll(t.dir); err != nil {
		return nil, err
	}
	b.logf("tree %s: generating", name)
	start := time.Now()
	var st gen.Stats
	var err error
	if kind == "debian" {
		st, err = gen.Debian(ctx, b.c.work, t.dir, spec.Seed, func(s string) { b.logf("%s", s) })
	} else {
		st, err = gen.Tree(ctx, t.dir, spec)
	}
	if err != nil {
		os.RemoveAll(t.dir)
		return nil, err
	}
	data, _ := json.Marshal(treeMark{Version: gen.Version, Stats: st})
	if err := os.WriteFile(markFile, data, 0o644); err != nil {
		return nil, err
	}
	t.stats, t.entries = st, st.Entries()
	b.logf("tree %s: %d entries, %.0f MiB logical, %.0f MiB data, in %v", name, t.entries,
		float64(st.Bytes)/(1<<20), float64(st.DataBytes)/(1<<20), time.Since(start).Round(time.Second))
	return t, nil
}

func (b *bench) journal(t *tree) string { return filepath.Join(b.c.work, "journal", t.name) }

func (b *bench) dest(t *tree, tool string) string {
	return filepath.Join(b.c.work, "dst", t.name, tool)
}

// reset empties a tool's destination and all its state for the tree.
func (b *bench) reset(t *tree, tool string) error {
	d := b.dest(t, tool)
	if err := b.discard(d, t.entries); err != nil {
		return err
	}
	if tool == toolGoldsync {
		if err := b.discard(filepath.Join(filepath.Dir(d), "."+filepath.Base(d)+".goldsync"), 0); err != nil {
			return err
		}
		os.Remove(agent.CacheFile(b.agentDir, t.dir))
		os.Remove(agent.CacheFile(b.agentDir, t.dir) + ".lock")
	}
	if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
		return err
	}
	if w := settleDisk(filepath.Dir(d)); w > time.Second {
		b.logf("reset %s %s: waited %.1fs for the disk to settle (discards of the deleted tree)", t.name, tool, w.Seconds())
	}
	return nil
}

// command builds the command line of one run: rsync's pull, goldsync's
// pull, or (pm not noPush) goldsync-agent's push of the tree to goldsync's
// destination, over a shared ssh connection with pushShared.
func (b *bench) command(ctx context.Context, t *tree, tool string, pm pushMode) *exec.Cmd {
	src := b.srv.Target(t.dir)
	dst := b.dest(t, tool)
	var args []string
	if pm != noPush {
		args = []string{filepath.Join(b.c.bin, "goldsync-agent"), "--root", t.dir, "--state-dir", b.agentDir,
			"push", "-e", b.rsh}
		if pm == pushShared {
			args = append(args, "--ssh-persist", sharedPersist)
		}
		args = append(args, "--to", b.srv.Target(dst), "--receiver-path", b.recvWrap)
		for _, e := range excludes {
			args = append(args, "--receive-arg=--exclude="+e)
		}
		return exec.CommandContext(ctx, args[0], args[1:]...)
	}
	switch tool {
	case toolTar:
		// ssh golden 'tar -C SRC ... -cf - .' | tar -C DEST ... -xpf -,
		// the remote tar under rusage -count (its CPU, memory and bytes).
		rtar := sshtest.ShellQuote(filepath.Join(b.c.bin, "rusage")) + " -o " + sshtest.ShellQuote(b.remUsage) +
			" -tag tar -count -- tar -C " + sshtest.ShellQuote(t.dir) + " --xattrs --acls --numeric-owner --sparse"
		for _, e := range excludes {
			rtar += " " + sshtest.ShellQuote("--exclude=."+e)
		}
		rtar += " -cf - ."
		remote := commandLine(b.srv.Command(ctx, rtar))
		script := "mkdir -p " + sshtest.ShellQuote(dst) + " && " + remote + " | tar -C " + sshtest.ShellQuote(dst) +
			" --xattrs --xattrs-include='*' --acls --numeric-owner -xpf -"
		args = []string{"bash", "-c", "set -o pipefail; " + script}
	case toolRsync:
		args = []string{"rsync", "-aHAXS", "--numeric-ids", "--delete", "--stats", "-e", b.rsh, "--rsync-path", b.rsyncPath}
		for _, e := range excludes {
			args = append(args, "--exclude="+e)
		}
		args = append(args, src+"/", dst+"/")
	case toolGoldsync:
		args = []string{filepath.Join(b.c.bin, "goldsync"), "pull", "-e", b.rsh, "--json", "--agent-path", b.wrapper}
		if b.c.streams > 1 {
			args = append(args, "--streams", strconv.Itoa(b.c.streams))
		}
		for _, e := range excludes {
			args = append(args, "--exclude="+e)
		}
		args = append(args, src, dst)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	return cmd
}

// commandLine renders a command for the README.
func commandLine(cmd *exec.Cmd) string {
	q := make([]string, len(cmd.Args))
	for i, a := range cmd.Args {
		q[i] = sshtest.ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// runTool runs one tool once and measures it.
func (b *bench) runTool(ctx context.Context, t *tree, tool string, pm pushMode) Run {
	ctx, cancel := context.WithTimeout(ctx, b.c.timeout)
	defer cancel()
	r := Run{Tree: t.name, Entries: t.entries, Tool: tool, Load1: loadAvg(), Started: time.Now().UTC().Format(time.RFC3339)}
	os.Remove(b.remUsage)
	cmd := b.command(ctx, t, tool, pm)
	if b.c.verbose {
		b.logf("run: %s", commandLine(cmd))
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	u, err := measure.Run(cmd, measure.Options{SkipTree: []string{"ssh"}})
	r.Wall = u.Wall.Seconds()
	r.CPULocal = u.CPU().Seconds()
	r.RSSLocal, r.RSSTree = u.MaxRSS, u.TreeRSS
	switch {
	case err != nil:
		r.Note = err.Error()
	case u.ExitCode != 0:
		r.Note = fmt.Sprintf("exit %d: %s", u.ExitCode, lastLine(stderr.String()))
	default:
		r.OK = true
	}
	switch {
	case pm != noPush, tool == toolTar:
	case tool == toolRsync:
		sent, recv, perr := rsyncWire(stdout.Bytes())
		if perr != nil && r.OK {
			r.OK, r.Note = false, perr.Error()
		}
		r.Wire = sent + recv
	case tool == toolGoldsync:
		var s struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
			In    int64  `json:"wire_bytes_in"`
			Out   int64  `json:"wire_bytes_out"`
		}
		if jerr := json.Unmarshal(stdout.Bytes(), &s); jerr != nil {
			if r.OK {
				r.OK, r.Note = false, "no --json summary: "+jerr.Error()
			}
		} else {
			r.Wire = s.In + s.Out
			if !s.OK && r.OK {
				r.OK, r.Note = false, s.Error
			}
		}
	}
	cpu, rss, wire, n := b.remoteUsage()
	r.CPURem, r.RSSRem = cpu, rss
	if n == 0 && r.OK {
		r.Note = "remote usage not recorded"
	}
	if tool == toolTar {
		r.Wire = wire
	}
	if pm != noPush {
		// The push runs on the golden node and the receiver on the image
		// server: swap so the columns mean the same machine as for pulls.
		r.Wire = wire
		r.CPULocal, r.CPURem = r.CPURem, r.CPULocal
		r.RSSTree, r.RSSRem = r.RSSRem, r.RSSTree
		r.RSSLocal = r.RSSTree
	}
	if !r.OK {
		b.logf("%s on %s failed: %s\nstderr: %s", tool, t.name, r.Note, tail(stderr.String(), 2000))
	}
	return r
}

// remoteUsage sums the remote side's usage lines (one per remote process
// the wrapper ran: several with --streams). The wrapper writes after its
// child exits, normally before ssh returns; wait a little for it.
func (b *bench) remoteUsage() (cpu float64, rss, wire int64, n int) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		data, err := os.ReadFile(b.remUsage)
		if err == nil && len(data) > 0 || time.Now().After(deadline) {
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				var u struct {
					measure.Usage
					In  int64 `json:"stdin_bytes"`
					Out int64 `json:"stdout_bytes"`
				}
				if json.Unmarshal(sc.Bytes(), &u) == nil {
					cpu += u.CPU().Seconds()
					rss += u.TreeRSS
					wire += u.In + u.Out
					n++
				}
			}
			return cpu, rss, wire, n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var rsyncTotal = regexp.MustCompile(`(?m)^Total bytes (sent|received): ([0-9,.]+)`)

// rsyncWire reads "Total bytes sent/received" from rsync --stats.
func rsyncWire(out []byte) (sent, recv int64, err error) {
	found := 0
	for _, m := range rsyncTotal.FindAllSubmatch(out, -1) {
		v, perr := strconv.ParseInt(strings.NewReplacer(",", "", ".", "").Replace(string(m[2])), 10, 64)
		if perr != nil {
			continue
		}
		if string(m[1]) == "sent" {
			sent = v
		} else {
			recv = v
		}
		found++
	}
	if found < 2 {
		return 0, 0, errors.New("no Total bytes lines in rsync --stats output")
	}
	return sent, recv, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// verifyDest compares a destination with the source using rsync's own
// dry-run itemization (sizes, times, modes, owners, links, devices, ACLs,
// xattrs) and returns how many entries differ.
func (b *bench) verifyDest(ctx context.Context, t *tree, tool string) (int, string) {
	args := []string{"-naHAXS", "--numeric-ids", "--delete", "-i"}
	for _, e := range excludes {
		args = append(args, "--exclude="+e)
	}
	args = append(args, t.dir+"/", b.dest(t, tool)+"/")
	out, err := exec.CommandContext(ctx, "rsync", args...).CombinedOutput()
	if err != nil {
		return -1, fmt.Sprintf("rsync -n failed: %v: %s", err, tail(string(out), 300))
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	sample := strings.Join(lines[:min(len(lines), 5)], "; ")
	return len(lines), sample
}
