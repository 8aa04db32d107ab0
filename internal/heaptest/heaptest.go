// Package heaptest measures the live heap of the test's own process, for
// memory bounds in tests: the peak after a full collection, taken at the
// points a test names and by a sampler between them. A sampler can only
// raise the peak seen, never lower it, so a bound it checks is strict
// whatever the machine's load; it is never a timing test.
package heaptest

import (
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Live returns the bytes the heap holds after a full collection.
func Live() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Peak tracks the highest live heap seen above a baseline.
type Peak struct {
	mu       sync.Mutex
	baseline uint64
	peak     uint64
	at       string
	stop     chan struct{}
	done     chan struct{}
}

// Start takes the baseline and samples the live heap every interval until
// Stop.
func Start(every time.Duration) *Peak {
	p := &Peak{baseline: Live(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			p.Sample("sampled")
		}
	}()
	return p
}

// Sample takes the live heap now, naming where.
func (p *Peak) Sample(where string) {
	h := Live()
	p.mu.Lock()
	defer p.mu.Unlock()
	if h > p.peak {
		p.peak, p.at = h, where
	}
}

// Stop ends the sampler and returns the peak above the baseline and where
// it was taken.
func (p *Peak) Stop() (grown uint64, at string) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.peak > p.baseline {
		grown = p.peak - p.baseline
	}
	return grown, p.at
}

// ScratchDir is a directory for a test's trees on tmpfs (/dev/shm) when
// there is one, so the files cost no disk time, else t.TempDir.
func ScratchDir(t testing.TB, prefix string) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", prefix); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// Allocated returns the bytes and the allocations f made, counted as
// testing.AllocsPerRun counts them: after a full collection, on one P.
// The counters are the process's, and with every P running they follow
// the machine's cores, not the code: per-P caches (sync.Pool's shards,
// each P's cached spans) miss and refill more often with more Ps. CI's
// runner counted 1,886 B a block decoded where 2 cores count 363, and
// GOMAXPROCS=128 fails four such bounds here. Goroutines f starts still
// run, time-sliced on the one P.
func Allocated(f func()) (bytes, mallocs uint64) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, after.Mallocs - before.Mallocs
}
