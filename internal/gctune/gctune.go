// Package gctune sets the garbage collector's target for goldsync's
// programs. Both sides of a pull hold a small live heap (a window of the
// tree, a few decoded blocks, buffers) and allocate briskly around it; at
// Go's default GOGC=100 the heap grows to twice the live heap before a
// collection, and that headroom was the largest part of each side's peak
// RSS after the binary itself (bench/README.md, "Both sides at 1M,
// round 3"). Collections are cheap here (the marking of a heap of a few
// MB: ~1% of the agent's CPU at GOGC=100), so a lower target costs little.
package gctune

import (
	"os"
	"runtime/debug"
)

// Percent is the GOGC the programs run with when the environment does not
// set GOGC: the heap may grow by half its live size between collections.
const Percent = 50

// Apply sets the collector's target to Percent unless GOGC is set in the
// environment (which the runtime has applied already). Programs call it
// first thing in main.
func Apply() {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return
	}
	debug.SetGCPercent(Percent)
}
