package reliability

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goldsync/goldsync/internal/treetest"
)

// startRollback starts `goldsync rollback DEST GEN` in its own process
// group.
func startRollback(t *testing.T, dest, state string, gen int) *proc {
	t.Helper()
	cmd := exec.Command(goldsync, "rollback", "--state-dir", state, dest, strconv.Itoa(gen))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr := &proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &pr.stdout, &pr.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start goldsync rollback: %v", err)
	}
	go func() {
		pr.err = cmd.Wait()
		close(pr.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-pr.done
	})
	return pr
}

// TestRollbackCrashConvergence pulls two trees (generations 1 and 2, both
// pinned), removes the golden trees, then rolls the image back and forth
// between them, SIGKILLing each rollback at a seeded point (after the k-th
// change the image sees, or after a seeded delay), checking that every
// file at its real name is whole (old or new), re-running the rollback and
// checking it converges exactly with no litter. That rollbacks keep working
// back and forth also shows that what a killed rollback replaced is kept.
func TestRollbackCrashConvergence(t *testing.T) {
	needRoot(t, "the tree has owners, devices and trusted xattrs")
	base := t.TempDir()
	spec := treeSpec{tricky: true, dirs: pick(10, 24), files: pick(14, 24), big: pick(3, 6), seed: 11}
	srcA, srcB := filepath.Join(base, "golden-a"), filepath.Join(base, "golden-b")
	mA := makeTree(t, srcA, spec)
	mB := makeNewTree(t, srcB, spec)
	pl := newPull(base, srcA)
	pl.mustRun(t)
	pl.src = srcB
	pl.mustRun(t)
	for _, p := range []string{srcA, srcB} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(goldsync, "pin", "--state-dir", pl.state, pl.dest, "1", "2").CombinedOutput(); err != nil {
		t.Fatalf("pin: %v\n%s", err, out)
	}
	run := func(gen int) (int, string) {
		pr := startRollback(t, pl.dest, pl.state, gen)
		code := pr.wait(t)
		return code, pr.stderr.String()
	}
	type target struct {
		gen      int
		old, new treetest.Manifest
		changes  int64
		took     time.Duration
	}
	targets := [2]target{{gen: 1, old: mB, new: mA}, {gen: 2, old: mA, new: mB}}
	for i := range targets {
		w := watchTree(t, pl.dest, 0, nil)
		start := time.Now()
		if code, stderr := run(targets[i].gen); code != 0 {
			t.Fatalf("rollback to %d: exit %d\n%s", targets[i].gen, code, stderr)
		}
		targets[i].took = time.Since(start)
		time.Sleep(50 * time.Millisecond)
		targets[i].changes = w.close()
		if !equal(t, targets[i].new, treetest.Scan(t, pl.dest)) {
			t.Fatalf("the calibration rollback to %d was not exact", targets[i].gen)
		}
		t.Logf("a rollback to %d: %d changes seen, %v", targets[i].gen, targets[i].changes, targets[i].took)
	}

	rng := rand.New(rand.NewPCG(seed(t), 15))
	deadline := time.Now().Add(budget())
	var f crashFigures
	for i := 0; i < pick(20, 500) && time.Now().Before(deadline); i++ {
		tg := targets[i%2]
		f.tried++
		pr := startRollback(t, pl.dest, pl.state, tg.gen)
		pid := pr.cmd.Process.Pid
		kill := func() { syscall.Kill(pid, syscall.SIGKILL) }
		var w *watcher
		if rng.IntN(5) == 0 {
			f.byTime++
			d := time.Duration(rng.Int64N(int64(tg.took) + 1))
			go func() { sleepOrDone(d, pr.done); kill() }()
		} else {
			f.byProgress++
			w = watchTree(t, pl.dest, 1+rng.Int64N(max(tg.changes*9/10, 1)), kill)
		}
		code := pr.wait(t)
		if w != nil {
			w.close()
		}
		if code == 0 {
			f.finishedFirst++
		} else if ws, ok := pr.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			f.killed++
		} else {
			t.Fatalf("rollback to %d failed by itself (exit %d) before its kill point:\n%s", tg.gen, code, pr.stderr.String())
		}
		st := checkWhole(t, treetest.Scan(t, pl.dest), tg.old, tg.new)
		f.filesChecked += st.Old + st.New + st.Same
		f.tempsLeft += st.Temps
		if st.New > 0 && st.Pending > 0 {
			f.midTransfer++
		}
		ok := st.Bad == 0
		if code, stderr := run(tg.gen); code != 0 {
			t.Fatalf("re-run of the rollback to %d after the kill: exit %d\n%s", tg.gen, code, stderr[:min(len(stderr), 3000)])
		}
		ok = equal(t, tg.new, treetest.Scan(t, pl.dest)) && ok
		ok = checkNoLitter(t, pl.dest, pl.state) && ok
		if ok {
			f.survived++
		}
	}
	f.log(t, "rollback")
	out, err := exec.Command(goldsync, "generations", "--state-dir", pl.state, pl.dest).CombinedOutput()
	if err != nil {
		t.Fatalf("generations: %v\n%s", err, out)
	}
	t.Logf("generations after the kills:\n%s", strings.TrimSpace(string(out)))
}

// TestLiveReadersDuringRollback runs readers hashing every file of the image
// in a loop while rollbacks go back and forth between two generations:
// every read must be the whole file of one generation or the other.
func TestLiveReadersDuringRollback(t *testing.T) {
	needRoot(t, "the tree has owners")
	base := t.TempDir()
	spec := treeSpec{dirs: pick(8, 20), files: pick(12, 20), big: pick(3, 6), seed: 11}
	srcA, srcB := filepath.Join(base, "golden-a"), filepath.Join(base, "golden-b")
	makeTree(t, srcA, spec)
	makeNewTree(t, srcB, spec)
	hA, hB := fileHashes(t, srcA), fileHashes(t, srcB)
	pl := newPull(base, srcA)
	pl.mustRun(t)
	pl.src = srcB
	pl.mustRun(t)
	os.RemoveAll(srcA)
	os.RemoveAll(srcB)
	rounds := pick(4, 40)
	deadline := time.Now().Add(budget())
	var c readCounts
	done := 0
	for r := 0; r < rounds && time.Now().Before(deadline); r++ {
		gen, old, new := 1, hB, hA
		if r%2 == 1 {
			gen, old, new = 2, hA, hB
		}
		stop := make(chan struct{})
		wg := liveReaders(t, pl.dest, old, new, 4, &c, stop)
		time.Sleep(20 * time.Millisecond)
		pr := startRollback(t, pl.dest, pl.state, gen)
		if code := pr.wait(t); code != 0 {
			t.Fatalf("rollback to %d: exit %d\n%s", gen, code, pr.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()
		done++
	}
	if c.new.Load() == 0 || c.old.Load() == 0 {
		t.Errorf("readers checked %d reads, %d old and %d new: the test saw nothing", c.checked.Load(), c.old.Load(), c.new.Load())
	}
	t.Logf("figures: live readers: %d rollbacks under 4 readers; reads checked %d (old content %d, new content %d), absent or not a file %d, torn or foreign %d",
		done, c.checked.Load(), c.old.Load(), c.new.Load(), c.absent.Load(), c.bad.Load())
}

// TestRollbackDiskFull rolls forward to a generation whose big file must be
// written again while the filesystem lacks the space: the rollback is
// refused up front (exit 25, the image untouched); forced, it fails with
// ENOSPC (exit 11), no temp file left, every file whole; with space it
// converges.
func TestRollbackDiskFull(t *testing.T) {
	needRoot(t, "mounts a tmpfs")
	base := t.TempDir()
	fsDir := filepath.Join(base, "fs")
	mountTmpfs(t, fsDir, "64m")
	spec := treeSpec{dirs: 6, files: 10, big: 3, seed: 21}
	srcA, srcB := filepath.Join(base, "golden-a"), filepath.Join(base, "golden-b")
	mA := makeTree(t, srcA, spec)
	makeTree(t, srcB, spec)
	g := &gen{t: t, rng: randFor(spec.seed), root: srcB, clock: 2_000_000}
	g.file("bulk/huge", 10<<20, 0o644)
	g.settle()
	mB := treetest.Scan(t, srcB)
	pl := newPull(base, srcA)
	pl.dest, pl.state = filepath.Join(fsDir, "image"), filepath.Join(fsDir, "state")
	pl.mustRun(t)
	pl.src = srcB
	pl.mustRun(t)
	run := func(args ...string) (int, string) {
		cmd := exec.Command(goldsync, append([]string{"rollback", "--state-dir", pl.state}, args...)...)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := run(pl.dest, "1"); code != 0 {
		t.Fatalf("rollback to 1: exit %d\n%s", code, out)
	}
	equal(t, mA, treetest.Scan(t, pl.dest))
	// The 10 MiB file's old inode stays allocated (kept for generation
	// 2): leave less than that free.
	var st syscall.Statfs_t
	if err := syscall.Statfs(fsDir, &st); err != nil {
		t.Fatal(err)
	}
	used := (int64(st.Blocks) - int64(st.Bfree)) * st.Bsize
	remountTmpfs(t, fsDir, strconv.FormatInt((used+(4<<20))/1024, 10)+"k")

	code, out := run(pl.dest, "2")
	t.Logf("rollback without the space: exit %d: %s", code, strings.TrimSpace(out))
	if code != 25 || !strings.Contains(out, "free") {
		t.Errorf("exit %d, want 25 (refused by the guard) naming the free space", code)
	}
	treetest.Equal(t, mA, treetest.Scan(t, pl.dest), treetest.DiffOptions{})

	code, out = run("--force", pl.dest, "2")
	t.Logf("forced rollback without the space: exit %d: %s", code, strings.TrimSpace(out))
	if code != exitIO || !strings.Contains(strings.ToLower(out), "no space left") {
		t.Errorf("exit %d, want %d with the disk full said", code, exitIO)
	}
	if temps := tempsIn(t, pl.dest); len(temps) > 0 {
		t.Errorf("the failed rollback left temp files: %q", temps)
	}
	checkWhole(t, treetest.Scan(t, pl.dest), mA, mB)

	remountTmpfs(t, fsDir, "64m")
	if code, out := run(pl.dest, "2"); code != 0 {
		t.Fatalf("rollback with space: exit %d\n%s", code, out)
	}
	equal(t, mB, treetest.Scan(t, pl.dest))
	checkNoLitter(t, pl.dest, pl.state)
}
