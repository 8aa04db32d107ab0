package profile

import (
	"path/filepath"
	"runtime"
	"testing"
)

// TestStartSampling: without GOLDSYNC_PROFILE, Start turns the sampling
// of allocations off (its buckets are memory nothing reads), unless
// GODEBUG asks for a rate; with it, sampling stays on for the .heap and
// .peak profiles.
func TestStartSampling(t *testing.T) {
	defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
	for _, c := range []struct {
		env, godebug string
		off          bool
	}{
		{"", "", true},
		{"", "memprofilerate=4096", false},
		{filepath.Join(t.TempDir(), "p"), "", false},
	} {
		runtime.MemProfileRate = 512 * 1024
		t.Setenv(Env, c.env)
		t.Setenv("GODEBUG", c.godebug)
		stop := Start()
		if got := runtime.MemProfileRate == 0; got != c.off {
			t.Errorf("%s=%q GODEBUG=%q: MemProfileRate %d", Env, c.env, c.godebug, runtime.MemProfileRate)
		}
		stop()
	}
}
