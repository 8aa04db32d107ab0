// Package gctune sets the garbage collector's target for goldsync's
// programs. Both sides of a pull hold a small live heap (a window of the
// tree, a few decoded blocks, buffers) and allocate briskly around it; at
// Go's default GOGC=100 the heap grows to twice the live heap before a
// collection, and that headroom was the largest part of each side's peak
// RSS after the binary itself (bench/README.md, "Both sides at 1M,
// round 3"). Collections are cheap here (the marking of a heap of a few
// MB: ~1% of the agent's CPU at GOGC=100), so a lower target costs little.
// The image server (goldsync) allocates more around its live heap: it
// keeps a floor under the headroom (ApplyHeadroom).
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
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

// Headroom is the least the image server's heap (goldsync's) may grow
// between collections. Its live heap in a no-change pull of 225k entries is
// 5-7 MB (the walk's window, the wire's, the manifest's blocks), around
// which it allocates ~190 MB: at Percent alone that was 90-98 collections
// and ~9 % of its CPU (bench/README.md, "The image server's no-change
// CPU"); with this floor 28-32 collections and 3-4 MiB more peak RSS. A
// floor in bytes, not a higher percent, keeps the peak of a larger tree's
// run (a larger live heap) where Percent puts it: above 2×Headroom of live
// heap it changes nothing.
const Headroom = 8 << 20

// AgentHeadroom is the least the golden node's heap (goldsync-agent's) may
// grow between collections until a receiver first fetches files: the
// agent then goes back to Percent (Apply). In a no-change pull of 225k
// entries its live heap is ~2-3 MB, around which it allocates ~37 MB (the
// walk's paths half of it): at Percent 42-48 collections, each ~6 ms of
// its CPU with the marking's write barriers and assists (a scan of the
// tree in one process: 1.38 s at Percent, 1.28 s with this floor, 1.19 s
// at GOGC=100). With this floor 27-35 collections and ~0.3 MiB more peak
// RSS; a floor of 2 MiB gave 16-20 collections but peaks of up to 13.3 MiB,
// above the 12.5 MiB the golden node has. A full pull's fetches keep
// Percent, as before (bench/README.md, "The golden node's no-change CPU,
// round 5").
const AgentHeadroom = 3 << 19

// maxPercent bounds the percent ApplyHeadroom sets over a tiny live heap.
const maxPercent = 300

// ApplyHeadroom is Apply with a floor under the collector's headroom: after
// each collection the target is set so that the heap may grow by the
// larger of Percent of the live heap and floor bytes (the runtime's
// /gc/heap/live:bytes; at most maxPercent). While the collector is off (a
// SmallRun) it is left off. Nothing is done when GOGC is set in the
// environment, and floor <= 0 is Apply. The returned function stops the
// tuning (the percent stays as it is, and no collection ending meanwhile
// changes it once stop has returned).
func ApplyHeadroom(floor int64) (stop func()) {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return func() {}
	}
	debug.SetGCPercent(Percent)
	if floor <= 0 {
		return func() {}
	}
	t := &tuner{floor: floor}
	t.arm()
	return func() {
		t.mu.Lock()
		t.stopped.Store(true)
		t.mu.Unlock()
	}
}

// tuner sets the collector's percent after each collection: a cleanup on a
// sentinel object, renewed each time, runs once the collection that found
// the object unreachable is over.
type tuner struct {
	floor   int64
	stopped atomic.Bool
	// mu is held through a cycle and by stop: once stop returns, no
	// cycle sets the percent any more (a program may then set its own).
	mu sync.Mutex
}

// sentinel holds a pointer: an object without one, this small, could share
// a block of the tiny allocator and be freed late.
type sentinel struct {
	_ *int
	_ [8]byte
}

func (t *tuner) arm() {
	runtime.AddCleanup(&sentinel{}, (*tuner).cycle, t)
}

// cycle runs after a collection: it tunes and arms for the next, unless
// stopped.
func (t *tuner) cycle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Load() {
		return
	}
	t.tune()
	t.arm()
}

// tune sets the percent for the live heap the last collection marked.
func (t *tuner) tune() {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return
	}
	live, cur := s[0].Value.Uint64(), s[1].Value.Uint64()
	if cur == 0 || cur > maxPercent {
		return // off (a SmallRun: -1 reads as a huge number), or set higher by someone else
	}
	if p := headroomPercent(live, t.floor); p != int(cur) {
		debug.SetGCPercent(p)
	}
}

// headroomPercent is the percent that lets a live heap of live bytes grow
// by the larger of Percent of it and floor bytes, at most maxPercent, and
// at most what keeps the runtime's heap minimum (4 MiB × percent/100,
// below which it never sets its goal) within live+floor: over a tiny live
// heap a high percent raised that minimum to 12 MiB, and the golden node
// then grew its heap to 11 MB before its second collection whenever the
// first found less than 1 MB live (peaks of 16-17 MiB against 11-12 in a
// 225k no-change pull, issue #14).
func headroomPercent(live uint64, floor int64) int {
	var p uint64 = maxPercent
	if live > 0 {
		p = (uint64(floor)*100 + live - 1) / live
	}
	if m := (live + uint64(floor)) * 100 / heapMinimum; p > m {
		p = m
	}
	return int(max(Percent, min(p, maxPercent)))
}

// heapMinimum is the runtime's smallest heap goal at GOGC=100
// (runtime/mgcpacer.go, defaultHeapMinimum); it scales with the percent.
const heapMinimum = 4 << 20
