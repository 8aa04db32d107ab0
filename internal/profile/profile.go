// Package profile writes Go CPU and heap profiles of a goldsync process
// when the environment asks for them, so a slow run (including the agent
// started through ssh) can be looked at with `go tool pprof`:
//
//	GOLDSYNC_PROFILE=/tmp/prof goldsync pull ...
//
// writes /tmp/prof.<program>.<pid>.cpu, .heap (the heap at exit) and
// .peak (the live heap when it was largest: sampled every 250 ms, rewritten
// each time the live heap grows by a tenth). The variable reaches a remote agent only if ssh passes it (SendEnv/AcceptEnv)
// or a wrapper script sets it.
package profile

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"time"
)

// Env is the environment variable naming the profile path prefix.
const Env = "GOLDSYNC_PROFILE"

// Start begins CPU profiling when Env is set and returns the function that
// stops it and writes the heap profile (a no-op otherwise). Failures are
// reported on stderr: profiling is a developer's tool, never in the way.
//
// When Env is not set, Start turns the runtime's sampling of allocations
// off (runtime.MemProfileRate 0; it should be called first thing in main),
// unless GODEBUG sets memprofilerate: nothing would read the samples, and
// their buckets (one per sampled call stack, never freed) were ~1.4 MB
// of the golden node's ~12 MiB in a 225k no-change pull.
func Start() func() {
	prefix := os.Getenv(Env)
	if prefix == "" {
		if !strings.Contains(os.Getenv("GODEBUG"), "memprofilerate") {
			runtime.MemProfileRate = 0
		}
		return func() {}
	}
	base := fmt.Sprintf("%s.%s.%d", prefix, filepath.Base(os.Args[0]), os.Getpid())
	cpu, err := os.Create(base + ".cpu")
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		cpu.Close()
		return func() {}
	}
	stopPeak := watchPeak(base + ".peak")
	return func() {
		stopPeak()
		pprof.StopCPUProfile()
		cpu.Close()
		runtime.GC()
		if f, err := os.Create(base + ".heap"); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
}

// watchPeak samples the live heap and writes an in-use heap profile to path
// whenever it has grown by a tenth since the last one, until the returned
// function is called.
func watchPeak(path string) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var written uint64
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindUint64 {
				return
			}
			live := sample[0].Value.Uint64()
			if live < written+written/10 || live < 4<<20 {
				continue
			}
			if f, err := os.Create(path); err == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
				written = live
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
