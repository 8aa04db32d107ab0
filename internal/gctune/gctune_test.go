package gctune

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
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
