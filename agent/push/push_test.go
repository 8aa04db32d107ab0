package push_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/agent/push"
	"github.com/goldsync/goldsync/agent/watch"
	"github.com/goldsync/goldsync/internal/sshtest"
	"github.com/goldsync/goldsync/internal/testbin"
	"github.com/goldsync/goldsync/internal/treetest"
)

var bin string

func TestMain(m *testing.M) {
	testbin.Main(m, func(dir string) { bin = dir }, testbin.Goldsync, testbin.Agent)
}

type rig struct {
	t        *testing.T
	srv      *sshtest.Server
	golden   string
	image    string
	state    string // agent state dir
	watcher  *exec.Cmd
	watchLog *bytes.Buffer
	persist  time.Duration // push.Options.Persist
	pushLog  bytes.Buffer  // the pushes' agent-side log (why a scan was full)
}

func newRig(t *testing.T) *rig {
	base := t.TempDir()
	r := &rig{t: t, srv: sshtest.Start(t, sshtest.Options{}), golden: filepath.Join(base, "golden"),
		image: filepath.Join(base, "image"), state: filepath.Join(base, "agent-state")}
	os.MkdirAll(r.golden, 0o755)
	return r
}

// startWatcher runs goldsync-agent watch and waits until its journal is
// being fed (a barrier passes).
func (r *rig) startWatcher() {
	r.t.Helper()
	r.watchLog = &bytes.Buffer{}
	cmd := exec.Command(filepath.Join(bin, "goldsync-agent"), "watch", "--root", r.golden, "--state-dir", r.state, "-v")
	cmd.Stderr = r.watchLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.watcher = cmd
	r.t.Cleanup(r.stopWatcher)
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := watch.OpenJournal(agent.JournalDir(r.state, r.golden), watch.JournalOptions{})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = j.Barrier(ctx)
			cancel()
			j.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("watcher not ready: %v\n%s", err, r.watchLog)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *rig) stopWatcher() {
	if r.watcher != nil && r.watcher.Process != nil {
		syscall.Kill(-r.watcher.Process.Pid, syscall.SIGKILL)
		r.watcher.Wait()
		r.watcher = nil
	}
}

var scannedRE = regexp.MustCompile(`(\d+) entries scanned`)

// push pushes and returns how many entries the receiver scanned. With a
// watcher running, it first waits (up to a minute) for the watcher to
// record what the test changed: the push's own wait is agent.BarrierTimeout
// (5 s), after which it falls back to a full compare, as it should; on a
// loaded machine (load 15-20) that made a narrowing test see a full scan.
func (r *rig) push() int {
	r.t.Helper()
	if r.watcher != nil {
		j, err := watch.OpenJournal(agent.JournalDir(r.state, r.golden), watch.JournalOptions{})
		if err != nil {
			r.t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = j.Barrier(ctx)
		cancel()
		j.Close()
		if err != nil {
			r.t.Fatalf("watcher not caught up after a minute: %v\n%s", err, r.watchLog)
		}
	}
	res, err := push.Push(context.Background(), push.Options{
		Root: r.golden, StateDir: r.state, To: r.srv.Target(r.image),
		Rsh: strings.Join(r.srv.SSHArgs(), " "), ReceiverPath: filepath.Join(bin, "goldsync"),
		ReceiveArgs: []string{"--state-dir", r.image + ".state"}, Persist: r.persist,
		Logger: slog.New(slog.NewTextHandler(&r.pushLog, nil)),
	})
	if err != nil {
		r.t.Fatalf("push: %v", err)
	}
	m := scannedRE.FindStringSubmatch(res.Stderr)
	if m == nil {
		r.t.Fatalf("receiver summary missing: %q", res.Stderr)
	}
	n, _ := strconv.Atoi(m[1])
	r.t.Logf("push: %s (%.3fs)", strings.TrimSpace(res.Stderr), res.Duration.Seconds())
	return n
}

func (r *rig) exact() {
	r.t.Helper()
	treetest.Equal(r.t, treetest.Scan(r.t, r.golden), treetest.Scan(r.t, r.image), treetest.DiffOptions{CheckSparse: true})
}

func write(t *testing.T, p, content string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// yumLike changes the tree the way an rpm transaction does.
func yumLike(t *testing.T, root string, round int) {
	t.Helper()
	j := func(p string) string { return filepath.Join(root, p) }
	for i := range 60 {
		p := j(fmt.Sprintf("usr/share/pkg%d/f%02d", round, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		tmp := p + ";tmp"
		write(t, tmp, strings.Repeat("new", 100+i))
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		write(t, j(fmt.Sprintf("etc/conf%d", i)), fmt.Sprintf("modified in round %d", round))
	}
	for i := range 3 {
		os.Remove(j(fmt.Sprintf("var/old/f%d-%d", round, i)))
	}
	// a directory renamed in from outside the root
	out := filepath.Join(filepath.Dir(root), fmt.Sprintf("staging%d", round))
	write(t, filepath.Join(out, "sub", "x"), "renamed in")
	if err := os.Rename(out, j(fmt.Sprintf("opt/app%d", round))); err != nil {
		t.Fatal(err)
	}
	// type flips
	os.Remove(j("flip/a"))
	if round%2 == 0 {
		write(t, j("flip/a/inner"), "now a dir")
	} else {
		os.RemoveAll(j("flip/a"))
		os.Symlink("elsewhere", j("flip/a"))
	}
	// an empty dir deleted and a full one renamed into its place
	os.Remove(j("swap/empty"))
	write(t, j("swap/full/y"), "full dir")
	os.Rename(j("swap/full"), j("swap/empty"))
	os.MkdirAll(j("swap/full"), 0o755)
	os.Mkdir(j("swap/empty2"), 0o755)
}

func seed(t *testing.T, root string) {
	for i := range 400 {
		write(t, filepath.Join(root, fmt.Sprintf("usr/lib/d%02d/f%03d", i%20, i)), strings.Repeat("x", i*10))
	}
	for i := range 5 {
		write(t, filepath.Join(root, fmt.Sprintf("etc/conf%d", i)), "original")
	}
	for r := range 4 {
		for i := range 3 {
			write(t, filepath.Join(root, fmt.Sprintf("var/old/f%d-%d", r, i)), "old")
		}
	}
	write(t, filepath.Join(root, "flip/a"), "a file")
	os.MkdirAll(filepath.Join(root, "opt"), 0o755)
	os.MkdirAll(filepath.Join(root, "swap/empty"), 0o755)
	os.MkdirAll(filepath.Join(root, "swap/full"), 0o755)
}

func TestPushYumLikeChangesExactly(t *testing.T) {
	r := newRig(t)
	seed(t, r.golden)
	r.startWatcher()
	full := r.push()
	r.exact()
	for round := 1; round <= 3; round++ {
		yumLike(t, r.golden, round)
		n := r.push()
		r.exact()
		if n >= full/2 {
			t.Errorf("round %d: receiver scanned %d entries of %d: the journal did not narrow the push\npush log:\n%s\nwatcher log:\n%s", round, n, full, &r.pushLog, r.watchLog)
		}
	}
}

func TestPushAfterOverflowRescansFully(t *testing.T) {
	r := newRig(t)
	seed(t, r.golden)
	r.startWatcher()
	full := r.push()
	yumLike(t, r.golden, 1)
	j, err := watch.OpenJournal(agent.JournalDir(r.state, r.golden), watch.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.MarkFullRescan("test: simulated queue overflow"); err != nil {
		t.Fatal(err)
	}
	j.Close()
	if n := r.push(); n < full {
		t.Errorf("after an overflow the push scanned %d entries, want a full scan (>= %d)", n, full)
	}
	r.exact()
}

func TestPushAfterWatcherKilledConverges(t *testing.T) {
	r := newRig(t)
	seed(t, r.golden)
	r.startWatcher()
	r.push()
	yumLike(t, r.golden, 1)
	r.stopWatcher() // killed mid-change: events may be lost
	yumLike(t, r.golden, 2)
	r.startWatcher()
	r.push()
	r.exact()
	yumLike(t, r.golden, 3)
	r.push()
	r.exact()
}

func TestPushWithoutWatcherIsAFullCompare(t *testing.T) {
	r := newRig(t)
	seed(t, r.golden)
	first := r.push()
	yumLike(t, r.golden, 1)
	if n := r.push(); n < first {
		t.Errorf("without a watcher the push scanned %d entries, want all (>= %d)", n, first)
	}
	r.exact()
}

// TestPushSharedConnectionLogsInOnce: with Persist, pushes after the first
// run as new sessions over the first one's ssh connection (no new login),
// and still apply exactly.
func TestPushSharedConnectionLogsInOnce(t *testing.T) {
	testStart := time.Now()
	r := newRig(t)
	r.persist = time.Minute
	seed(t, r.golden)
	r.startWatcher()
	before := strings.Count(r.srv.Log(), "Accepted publickey") // the harness's own check
	r.push()
	r.exact()
	for round := 1; round <= 2; round++ {
		yumLike(t, r.golden, round)
		r.push()
		r.exact()
	}
	if n := strings.Count(r.srv.Log(), "Accepted publickey") - before; n != 1 {
		t.Errorf("3 pushes with a shared connection logged in %d times, want 1\n%s", n, r.srv.Log())
	}
	socks, _ := filepath.Glob(filepath.Join(r.state, "ssh", "ssh-*"))
	if len(socks) == 0 {
		// The state dir's path may be too long for a socket: then the
		// socket is in the private temp dir.
		socks, _ = filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("goldsync-ssh-%d", os.Geteuid()), "ssh-*"))
	}
	if len(socks) == 0 {
		t.Errorf("no ssh control socket in the state dir or the temp dir")
	}
	stopMasters(t, r.state, testStart)
}

// stopMasters stops the ssh master connections a test's pushes left (their
// sockets in the state dir, or in the private temp dir when its path is too
// long), rather than leave them up for their persist time. Only sockets
// made since start are touched.
func stopMasters(t *testing.T, stateDir string, start time.Time) {
	socks, _ := filepath.Glob(filepath.Join(stateDir, "ssh", "ssh-*"))
	more, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("goldsync-ssh-%d", os.Geteuid()), "ssh-*"))
	for _, s := range append(socks, more...) {
		if st, err := os.Lstat(s); err == nil && !st.ModTime().Before(start.Add(-time.Second)) {
			exec.Command("ssh", "-F", "none", "-o", "ControlPath="+s, "-O", "exit", "x").Run()
		}
	}
}

// TestWatchPushToFollowsChanges: goldsync-agent watch --push-to pushes
// each change once it settles, over one ssh connection (its default
// --ssh-persist), and the image ends up exact after every round.
func TestWatchPushToFollowsChanges(t *testing.T) {
	testStart := time.Now()
	r := newRig(t)
	seed(t, r.golden)
	r.push()
	before := strings.Count(r.srv.Log(), "Accepted publickey")
	r.watchLog = &bytes.Buffer{}
	cmd := exec.Command(filepath.Join(bin, "goldsync-agent"), "watch", "--root", r.golden, "--state-dir", r.state, "-v",
		"--push-to", r.srv.Target(r.image), "-e", strings.Join(r.srv.SSHArgs(), " "),
		"--receiver-path", filepath.Join(bin, "goldsync"), "--receive-arg=--state-dir="+r.image+".state",
		"--quiet-period", "300ms")
	cmd.Stderr = r.watchLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.watcher = cmd
	t.Cleanup(r.stopWatcher)
	waitExact := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			// The receiver may be writing while we look: a scan that
			// trips over a vanishing temp file is retried.
			img, err := treetest.TryScan(r.image)
			var d []string
			if err == nil {
				if d = treetest.Diff(treetest.Scan(t, r.golden), img, treetest.DiffOptions{}); len(d) == 0 {
					return
				}
			} else {
				d = []string{err.Error()}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: image still differs after 60 s: %v\nwatch log:\n%s", what, d[:min(len(d), 10)], r.watchLog)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for round := 1; round <= 3; round++ {
		yumLike(t, r.golden, round)
		start := time.Now()
		waitExact(fmt.Sprintf("round %d", round))
		t.Logf("round %d: image exact %.2fs after the change (quiet period 0.3 s)", round, time.Since(start).Seconds())
	}
	r.stopWatcher()
	stopMasters(t, r.state, testStart)
	waitReceivers(t, r.image)
	r.exact()
	if n := strings.Count(r.srv.Log(), "Accepted publickey") - before; n != 1 {
		t.Errorf("watch --push-to logged in %d times for its pushes, want 1 (a shared connection)", n)
	}
}

// waitReceivers waits (up to 20 s) until no goldsync receive of image runs:
// a push the killed watcher had started ends when its receiver sees the
// stream close, and must not race the removal of the test's directories.
func waitReceivers(t *testing.T, image string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		busy := false
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, err := os.ReadFile(p)
			if err == nil && bytes.Contains(b, []byte("receive")) && bytes.Contains(b, []byte(image)) {
				busy = true
				break
			}
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("a goldsync receive of %s still runs 20 s after the watcher stopped", image)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPushChecksRootFirst: a root that is not there is an error before
// the remote shell runs (newcomer trial: the agent connected first).
func TestPushChecksRootFirst(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "rsh-ran")
	rshScript := filepath.Join(dir, "rsh")
	if err := os.WriteFile(rshScript, []byte("#!/bin/sh\ntouch "+mark+"\nexit 255\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := push.Push(context.Background(), push.Options{Root: filepath.Join(dir, "nonexistent"), StateDir: filepath.Join(dir, "state"),
		To: "server:/image", Rsh: rshScript})
	if err == nil || !strings.Contains(err.Error(), "push root") {
		t.Fatalf("Push with a missing root: %v, want a push root error", err)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("the remote shell ran before the root was checked")
	}
}
