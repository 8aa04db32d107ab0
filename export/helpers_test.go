package export

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be its own confined child, as the
// goldsync binary is through a hidden subcommand.
func TestMain(m *testing.M) {
	if IsChild() {
		ChildMain(context.Background())
	}
	if os.Getenv(serveHelperEnv) != "" {
		serveHelperMain()
	}
	os.Exit(m.Run())
}

// needRsync skips the test, loudly, without stock rsync.
func needRsync(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skipf("SKIPPED: stock rsync is not installed (scripts/ci-deps.sh installs it): %v", err)
	}
}

// serve starts a Server for images on a random loopback port and returns
// the server and its "127.0.0.1:PORT". hook, if not nil, changes the
// server before it serves (test hooks). The server stops at cleanup.
func serve(t *testing.T, images []Image, hook func(*Server)) (*Server, string) {
	t.Helper()
	return serveOpts(t, Options{Images: images}, hook)
}

// serveOpts is serve with options (IdleTimeout and Logger are set here).
func serveOpts(t *testing.T, opts Options, hook func(*Server)) (*Server, string) {
	t.Helper()
	needRsync(t)
	opts.IdleTimeout, opts.Logger = time.Minute, testLogger(t)
	s, err := New(opts)
	if errors.Is(err, ErrNoLandlock) {
		t.Skipf("SKIPPED: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// serveRootOnly is a serve hook for the tests of fidelity, which pull
// images as a replica image server does: everything.
func serveRootOnly(s *Server) { s.opts.ServeRootOnly = true }

// rsyncRun runs stock rsync with args and returns its combined output and
// exit status.
func rsyncRun(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rsync", args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("rsync %s: %v\n%s", strings.Join(args, " "), err, out)
	return "", -1
}

// mkImage makes an empty image directory named name in a fresh temp dir
// and returns its path.
func mkImage(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testLogger logs through t when -v is given.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
