// Package profile writes Go CPU and heap profiles of a goldsync process
// when the environment asks for them, so a slow run (including the agent
// started through ssh) can be looked at with `go tool pprof`:
//
//	GOLDSYNC_PROFILE=/tmp/prof goldsync pull ...
//
// writes /tmp/prof.<program>.<pid>.cpu and .heap (the heap at exit). The
// variable reaches a remote agent only if ssh passes it (SendEnv/AcceptEnv)
// or a wrapper script sets it.
package profile

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
)

// Env is the environment variable naming the profile path prefix.
const Env = "GOLDSYNC_PROFILE"

// Start begins CPU profiling when Env is set and returns the function that
// stops it and writes the heap profile (a no-op otherwise). Failures are
// reported on stderr: profiling is a developer's tool, never in the way.
func Start() func() {
	prefix := os.Getenv(Env)
	if prefix == "" {
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
	return func() {
		pprof.StopCPUProfile()
		cpu.Close()
		runtime.GC()
		if f, err := os.Create(base + ".heap"); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
}
