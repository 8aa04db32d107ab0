package gctune

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestApply(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	debug.SetGCPercent(100)
	Apply()
	if got := debug.SetGCPercent(100); got != Percent {
		t.Errorf("without GOGC: GC percent %d, want %d", got, Percent)
	}

	// GOGC set: the runtime applied it at start; Apply leaves it.
	t.Setenv("GOGC", "100")
	debug.SetGCPercent(77)
	Apply()
	if got := debug.SetGCPercent(100); got != 77 {
		t.Errorf("with GOGC set: GC percent %d, want it left at 77", got)
	}
}

// TestSmallRun: a small run has one P, the collector off and the memory
// limit at SmallRunLimit; restore puts back what was there (twice is
// harmless); what the environment sets is left alone.
func TestSmallRun(t *testing.T) {
	for _, k := range []string{"GOMAXPROCS", "GOGC", "GOMEMLIMIT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	procs := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(procs)
	defer debug.SetGCPercent(debug.SetGCPercent(Percent))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))

	restore := SmallRun()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("small run: GOMAXPROCS %d, want 1", got)
	}
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("small run: GC percent %d, want -1 (off)", got)
	}
	if got := debug.SetMemoryLimit(-1); got != SmallRunLimit {
		t.Errorf("small run: memory limit %d, want %d", got, SmallRunLimit)
	}
	restore()
	restore()
	if got := runtime.GOMAXPROCS(0); got != 4 {
		t.Errorf("restored: GOMAXPROCS %d, want 4", got)
	}
	if got := debug.SetGCPercent(-1); got != Percent {
		t.Errorf("restored: GC percent %d, want %d", got, Percent)
	}
	debug.SetGCPercent(Percent)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("restored: memory limit %d, want none", got)
	}

	// Set by the environment: left alone.
	t.Setenv("GOMAXPROCS", "4")
	t.Setenv("GOGC", "50")
	restore = SmallRun()
	if got := runtime.GOMAXPROCS(0); got != 4 {
		t.Errorf("GOMAXPROCS set: small run has %d, want 4", got)
	}
	if got := debug.SetGCPercent(Percent); got != Percent {
		t.Errorf("GOGC set: small run has GC percent %d, want %d", got, Percent)
	}
	restore()
}

func TestHeadroomPercent(t *testing.T) {
	for _, c := range []struct {
		live  uint64
		floor int64
		want  int
	}{
		{0, 8 << 20, 200},             // the heap minimum at 200 % is the floor
		{1 << 20, 8 << 20, 225},       // 800 %, bounded by the heap minimum (9 MiB)
		{512 << 10, 3 << 19, Percent}, // the agent's floor over a tiny heap: not a 12 MiB minimum
		{4 << 20, 8 << 20, 200},       // the floor
		{6 << 20, 8 << 20, 134},       // 133.3 rounded up: at least the floor
		{12 << 20, 8 << 20, 67},
		{16<<20 - 1, 8 << 20, Percent + 1},
		{16 << 20, 8 << 20, Percent}, // the floor is Percent's headroom
		{1 << 40, 8 << 20, Percent},  // a large heap: Percent
		{8 << 20, 1, Percent},        // a tiny floor: Percent
		{3 << 20, 1 << 40, maxPercent},
	} {
		if got := headroomPercent(c.live, c.floor); got != c.want {
			t.Errorf("headroomPercent(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

// unsetGC clears GOGC and GOMEMLIMIT for the test and puts the collector's
// settings back after it.
func unsetGC(t *testing.T) {
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	p := debug.SetGCPercent(100)
	l := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(p)
		debug.SetMemoryLimit(l)
	})
}

var sink []byte

// churn allocates n bytes in 1 KiB pieces (small: the allocator's time
// slows the loop, as real work would, and less is allocated while a
// collection marks), none kept, with live (a few
// MB) held meanwhile, and returns how many collections ran and the largest
// heap seen (live and dead objects, sampled every MiB allocated).
func churn(n int, live [][]byte) (gcs uint64, peak uint64) {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	for i := 0; i < n; i += 1 << 10 {
		sink = make([]byte, 1<<10)
		if i%(1<<20) == 0 {
			metrics.Read(s)
			peak = max(peak, s[1].Value.Uint64())
		}
	}
	metrics.Read(s)
	runtime.KeepAlive(live)
	return s[0].Value.Uint64() - before, peak
}

// TestApplyHeadroomCollections: a program with a small live heap that
// allocates briskly around it (the image server in a no-change pull)
// collects about once per floor's worth of allocation, not once per half
// its live heap as at Percent. (Its heap is not bounded here: what this
// loop allocates while a collection marks is marked live, by tens of MB
// on a loaded machine, with or without the floor; headroomPercent's bound
// is TestHeadroomPercent's.)
func TestApplyHeadroomCollections(t *testing.T) {
	unsetGC(t)
	live := make([][]byte, 48) // 3 MiB
	for k := range live {
		live[k] = make([]byte, 64<<10)
	}
	const total = 256 << 20
	stop := ApplyHeadroom(8 << 20)
	defer stop()
	churn(16<<20, live) // the tuner follows the collections
	gcs, peak := churn(total, live)
	// At Percent: 85-118 (a collection per 2-3 MiB: what is allocated while
	// marking counts as live); with the floor 30-35.
	if gcs > 56 {
		t.Errorf("%d collections for %d MiB allocated around a 3 MiB live heap, want at most 56 (one per ~4.5 MiB)", gcs, total>>20)
	}
	t.Logf("%d collections, largest heap %.1f MiB", gcs, float64(peak)/(1<<20))
}

// TestApplyHeadroomLeaves: GOGC in the environment, a SmallRun's collector
// off and a stopped tuner are left as they are; otherwise a collection's
// end sets the percent for the live heap.
func TestApplyHeadroomLeaves(t *testing.T) {
	unsetGC(t)
	percent := func() int {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	t.Setenv("GOGC", "100")
	debug.SetGCPercent(77)
	ApplyHeadroom(8 << 20)()
	if got := percent(); got != 77 {
		t.Errorf("with GOGC set: GC percent %d, want it left at 77", got)
	}
	os.Unsetenv("GOGC")

	tu := &tuner{floor: 1 << 40} // maxPercent whatever the live heap
	restore := SmallRun()
	tu.tune()
	if got := percent(); got != -1 {
		t.Errorf("in a small run: GC percent %d, want -1 (off)", got)
	}
	restore()
	tu.stopped.Store(true)
	tu.cycle()
	if got := percent(); got != 77 {
		t.Errorf("stopped: GC percent %d, want it left at 77", got)
	}
	tu.stopped.Store(false)
	tu.cycle()
	tu.stopped.Store(true) // (the cleanup armed by cycle does nothing)
	if got := percent(); got != maxPercent {
		t.Errorf("tuned: GC percent %d, want %d", got, maxPercent)
	}
}
