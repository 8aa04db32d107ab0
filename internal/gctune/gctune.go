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
	"runtime"
	"runtime/debug"
	"sync"
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

// SmallRunLimit is the memory a small run may take before the collector
// runs at all (SmallRun): a replica's journal-driven update of a
// yum-size change allocates a few MB in all.
const SmallRunLimit = 64 << 20

// SmallRun sets the process up for a run that is expected to be small, as
// a replica's journal-driven update is (a few hundred entries and files):
// one P (GOMAXPROCS 1: no idle thread spinning up to take each goroutine
// the run wakes, which cost more CPU than the work itself, in futex and
// nanosleep calls) and no collection until the heap reaches
// SmallRunLimit (a collector with a target of Percent runs several times
// in a run that frees everything at exit). It returns the function that
// undoes it, for a run that turns out big: GOMAXPROCS back to what it was
// and the collector back to its target with no memory limit. That
// function may be called more than once, from any goroutine. What the
// environment sets (GOMAXPROCS; GOGC or GOMEMLIMIT) is left as it is.
func SmallRun() (restore func()) {
	procs := 0
	if _, ok := os.LookupEnv("GOMAXPROCS"); !ok {
		procs = runtime.GOMAXPROCS(1)
	}
	_, gogc := os.LookupEnv("GOGC")
	_, memlimit := os.LookupEnv("GOMEMLIMIT")
	gc := !gogc && !memlimit
	var percent int
	var limit int64
	if gc {
		limit = debug.SetMemoryLimit(SmallRunLimit)
		percent = debug.SetGCPercent(-1)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if gc {
				debug.SetGCPercent(percent)
				debug.SetMemoryLimit(limit)
			}
			if procs > 0 {
				runtime.GOMAXPROCS(procs)
			}
		})
	}
}
