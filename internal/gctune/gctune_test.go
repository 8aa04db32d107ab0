package gctune

import (
	"os"
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
