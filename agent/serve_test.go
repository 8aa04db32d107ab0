package agent_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/remote"
)

// TestServeOnFetch: ServeOptions.OnFetch is called once a Serve (a
// stream) when a pull fetches files, however many fetches it answers, and
// not at all in a pull that fetches nothing (no change): the agent's
// program keeps a floor under its collector's headroom until then
// (gctune.AgentHeadroom).
func TestServeOnFetch(t *testing.T) {
	base := t.TempDir()
	src, dst := filepath.Join(base, "golden"), filepath.Join(base, "image")
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c", "d/c", "d/e", "d/f", "d/g", "d/h"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte("content of "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var calls atomic.Int32
	serve := func(ctx context.Context, conn io.ReadWriteCloser, stateDir string, log *slog.Logger) {
		agent.Serve(ctx, conn, agent.ServeOptions{StateDir: stateDir, Logger: log, OnFetch: func() { calls.Add(1) }})
		conn.Close()
	}
	pull := func() {
		t.Helper()
		s, err := remote.Open(context.Background(), src, remote.Options{InProcess: true, Serve: serve, Streams: 1, StateDir: filepath.Join(base, "agent")})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if res, err := imaging.Sync(context.Background(), s, dst, imaging.Options{StateDir: dst + ".state"}); err != nil {
			t.Fatalf("sync: %v (%v)", err, res)
		}
	}
	pull()
	if got, err := os.ReadFile(filepath.Join(dst, "d", "e")); err != nil || string(got) != "content of d/e" {
		t.Fatalf("the pull copied %q, %v", got, err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("a pull of 8 files called OnFetch %d times, want 1", n)
	}
	calls.Store(0)
	pull()
	if n := calls.Load(); n != 0 {
		t.Fatalf("a no-change pull called OnFetch %d times, want 0", n)
	}
}
