package reliability

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/treetest"
)

// seed is the RNG seed of kill points: GOLDSYNC_SEED, default 1. Failures
// print it so a run can be repeated.
func seed(t *testing.T) uint64 {
	s, err := strconv.ParseUint(os.Getenv("GOLDSYNC_SEED"), 10, 64)
	if err != nil {
		s = 1
	}
	t.Logf("seed %d (set GOLDSYNC_SEED to repeat or vary)", s)
	return s
}

// crashFigures are the counts a crash run reports.
type crashFigures struct {
	tried, survived    int // kill points tried; those whose every check passed
	killed             int // runs the SIGKILL hit before they finished
	finishedFirst      int // runs that finished before the kill point
	midTransfer        int // kills that left some files new and some not yet
	byTime, byProgress int // how the kill point was chosen
	filesChecked       int // files compared against the old and new trees
	tempsLeft          int // temp names the kills left (all removed by the re-run)
	strayAgents        int // agents still alive 5 s after their pull was killed
}

func (f crashFigures) log(t *testing.T, name string) {
	t.Logf("figures: %s: kill points survived %d / tried %d; SIGKILL landed %d (mid-transfer, some files new and some not yet: %d), run finished before its kill point %d; points by progress %d, by time %d; files checked whole %d; stale temps left by kills %d, all removed by the re-runs; stray agents %d",
		name, f.survived, f.tried, f.killed, f.midTransfer, f.finishedFirst, f.byProgress, f.byTime, f.filesChecked, f.tempsLeft, f.strayAgents)
}

// TestCrashConvergence kills `goldsync pull` (SIGKILL) at seeded points of
// a full pull and of incremental pulls in both directions between two
// trees, checks after each kill that every file at its real name is whole
// (old or new content, new content with its new metadata), then re-runs the
// pull and checks it converges to an exact copy with no temp file left.
//
// Kill points are chosen mostly by progress (after the k-th change the
// destination sees, k drawn from a seeded RNG over the changes a whole run
// makes, counted with inotify), so they land mid-transfer however fast the
// machine is; one in five is a seeded delay over the run's whole duration,
// so the scan, plan and manifest-saving phases are hit too.
func TestCrashConvergence(t *testing.T) {
	needRoot(t, "the tree has owners, devices and trusted xattrs")
	base := t.TempDir()
	spec := treeSpec{tricky: true, dirs: pick(10, 24), files: pick(14, 24), big: pick(3, 6), seed: 7}
	srcA, srcB := filepath.Join(base, "golden-a"), filepath.Join(base, "golden-b")
	mA := makeTree(t, srcA, spec)
	mB := makeNewTree(t, srcB, spec)
	rng := rand.New(rand.NewPCG(seed(t), 99))
	points := pick(25, 1000) // per sub-test, each bounded by the budget

	t.Run("full", func(t *testing.T) {
		deadline := time.Now().Add(budget())
		pl := newPull(base, srcA)
		pl.dest, pl.state = filepath.Join(base, "full"), filepath.Join(base, "full.state")
		reset := func() {
			os.RemoveAll(pl.dest)
			os.RemoveAll(pl.state)
			if err := os.Mkdir(pl.dest, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		// Calibrate, with the agent's hash cache warm as in every later
		// run: how many changes and how long a whole run takes.
		reset()
		pl.mustRun(t)
		reset()
		changes, took := calibrate(t, pl)
		t.Logf("a full pull: %d changes seen, %v", changes, took)
		var f crashFigures
		for i := 0; i < points && time.Now().Before(deadline); i++ {
			reset()
			f.tried++
			if crashPoint(t, pl, treetest.Manifest{}, mA, changes, took, rng, &f) {
				f.survived++
			}
		}
		f.log(t, "full pull")
	})

	t.Run("incremental", func(t *testing.T) {
		deadline := time.Now().Add(budget())
		pl := newPull(base, srcA)
		pl.dest, pl.state = filepath.Join(base, "incr"), filepath.Join(base, "incr.state")
		pl.mustRun(t)
		pl.src = srcB
		pl.mustRun(t) // the agent hashes B for the first time
		// Calibrate each direction with warm hash caches.
		type dir struct {
			src      string
			old, new treetest.Manifest
			changes  int64
			took     time.Duration
		}
		dirs := [2]dir{{src: srcA, old: mB, new: mA}, {src: srcB, old: mA, new: mB}}
		for i := range dirs {
			pl.src = dirs[i].src
			dirs[i].changes, dirs[i].took = calibrate(t, pl)
			t.Logf("an incremental pull to %s: %d changes seen, %v", filepath.Base(pl.src), dirs[i].changes, dirs[i].took)
			if !equal(t, dirs[i].new, treetest.Scan(t, pl.dest)) {
				t.Fatal("the calibration run did not copy exactly")
			}
		}
		// Back and forth: old is what the image holds, new the other tree.
		var f crashFigures
		for i := 0; i < points && time.Now().Before(deadline); i++ {
			d := dirs[i%2]
			pl.src = d.src
			f.tried++
			if crashPoint(t, pl, d.old, d.new, d.changes, d.took, rng, &f) {
				f.survived++
			}
		}
		f.log(t, "incremental pull")
	})
}

// calibrate runs pl to its end, counting the changes the destination sees.
func calibrate(t *testing.T, pl pullCmd) (int64, time.Duration) {
	t.Helper()
	w := watchTree(t, pl.dest, 0, nil)
	start := time.Now()
	pl.mustRun(t)
	took := time.Since(start)
	time.Sleep(50 * time.Millisecond) // let the last events arrive
	return w.close(), took
}

// crashPoint runs one kill point: start pl, SIGKILL it at a seeded point,
// check the image is whole (old or new per path), re-run, check it is
// exactly new and litter-free. It reports whether every check passed.
func crashPoint(t *testing.T, pl pullCmd, old, new treetest.Manifest, changes int64, took time.Duration, rng *rand.Rand, f *crashFigures) bool {
	t.Helper()
	pr := pl.start(t)
	pid := pr.cmd.Process.Pid
	kill := func() { syscall.Kill(pid, syscall.SIGKILL) }
	var w *watcher
	if rng.IntN(5) == 0 {
		f.byTime++
		d := time.Duration(rng.Int64N(int64(took) + 1))
		go func() { sleepOrDone(d, pr.done); kill() }()
	} else {
		f.byProgress++
		// The count varies a little between runs (a full pull's new
		// directories are watched only once they appear): stay within
		// nine tenths of the calibrated run.
		k := 1 + rng.Int64N(max(changes*9/10, 1))
		w = watchTree(t, pl.dest, k, kill)
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
		t.Errorf("pull failed by itself (exit %d) before its kill point:\n%s", code, pr.stderr.String())
		return false
	}
	// The agent sees its stdin close and exits.
	if !waitGone(pl.agentState, 5*time.Second) {
		f.strayAgents++
	}
	got := scanOrEmpty(t, pl.dest)
	st := checkWhole(t, got, old, new)
	f.filesChecked += st.Old + st.New + st.Same
	f.tempsLeft += st.Temps
	if st.New > 0 && st.Pending > 0 {
		f.midTransfer++
	}
	ok := st.Bad == 0
	if code, stderr := pl.run(t); code != 0 {
		t.Errorf("re-run after the kill: exit %d\n%s", code, stderr)
		return false
	}
	ok = equal(t, new, treetest.Scan(t, pl.dest)) && ok
	ok = checkNoLitter(t, pl.dest, pl.state) && ok
	if !ok {
		t.Logf("kill point failed (see above): %d old, %d new, %d temps at the kill", st.Old, st.New, st.Temps)
	}
	return ok
}

// TestStaleTempsRemoved plants what killed runs leave behind (temp files
// and a temp directory with contents in the image, an interrupted manifest
// save in the state dir) and checks that the next run removes all of it
// and still copies exactly.
func TestStaleTempsRemoved(t *testing.T) {
	needRoot(t, "the tree has owners and devices")
	base := t.TempDir()
	src := filepath.Join(base, "golden")
	want := makeTree(t, src, treeSpec{dirs: 3, files: 5, seed: 3})
	pl := newPull(base, src)
	pl.mustRun(t)
	litter := []string{
		filepath.Join(pl.dest, imaging.TempPrefix+"0123456789abcdef"),
		filepath.Join(pl.dest, "bulk/d01", imaging.TempPrefix+"fedcba9876543210"),
	}
	for _, p := range litter {
		if err := os.WriteFile(p, []byte("half a file"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmpDir := filepath.Join(pl.dest, "bulk", imaging.TempPrefix+"00000000deadbeef")
	if err := os.MkdirAll(filepath.Join(tmpDir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmpDir, "sub", "f"), []byte("x"), 0o600)
	if err := os.WriteFile(filepath.Join(pl.state, ".manifest-123456"), []byte("half a manifest"), 0o600); err != nil {
		t.Fatal(err)
	}
	pl.mustRun(t)
	equal(t, want, treetest.Scan(t, pl.dest))
	checkNoLitter(t, pl.dest, pl.state)
}
