package reliability

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/treetest"
	"github.com/goldsync/goldsync/remote"
)

// exitLocked is the CLI's exit code when another sync holds the lock.
const exitLocked = 16

// TestConcurrentPulls starts a pull, freezes it (SIGSTOP) once it is
// writing the image, and starts a second pull of the same image: the second
// is refused by the lock (exit 16) and changes nothing; the first, resumed,
// completes and the image is exact. The library says the same with
// imaging.ErrLocked.
func TestConcurrentPulls(t *testing.T) {
	needRoot(t, "the tree has owners")
	base := t.TempDir()
	src := filepath.Join(base, "golden")
	want := makeTree(t, src, treeSpec{dirs: 6, files: 10, big: 2, seed: 41})
	pl := newPull(base, src)
	rounds := pick(2, 20)
	refused := 0
	deadline := time.Now().Add(budget())
	for r := 0; r < rounds && time.Now().Before(deadline); r++ {
		os.RemoveAll(pl.dest)
		os.RemoveAll(pl.state)
		if err := os.Mkdir(pl.dest, 0o755); err != nil {
			t.Fatal(err)
		}
		first := pl.start(t)
		pid := first.cmd.Process.Pid
		frozen := make(chan struct{})
		w := watchTree(t, pl.dest, int64(1+(r*5)%40), func() { // well before the end
			syscall.Kill(pid, syscall.SIGSTOP)
			close(frozen)
		})
		select {
		case <-frozen:
		case <-first.done:
			// Finished between the change and the signal: try again.
			w.close()
			if first.wait(t) != 0 {
				t.Fatalf("the first pull failed: %s", first.stderr.String())
			}
			t.Logf("round %d: the first pull finished before it could be frozen", r)
			continue
		case <-time.After(pullTimeout):
			t.Fatal("the first pull made no change within the timeout")
		}
		w.close()
		if !stopped(pid) {
			// It exited between the change and the signal: try again.
			syscall.Kill(pid, syscall.SIGCONT)
			if first.wait(t) != 0 {
				t.Fatalf("the first pull failed: %s", first.stderr.String())
			}
			t.Logf("round %d: the first pull finished before it could be frozen", r)
			continue
		}
		before := treetest.Scan(t, pl.dest)
		code, stderr := pl.run(t)
		if code != exitLocked {
			t.Errorf("second pull: exit %d, want %d; stderr:\n%s", code, exitLocked, stderr)
		} else {
			refused++
		}
		if !strings.Contains(stderr, "another sync") {
			t.Errorf("second pull: stderr does not say another sync holds the image:\n%s", stderr)
		}
		if d := treetest.Diff(before, treetest.Scan(t, pl.dest), treetest.DiffOptions{}); len(d) > 0 {
			t.Errorf("the refused pull changed the image:\n%s", strings.Join(d, "\n"))
		}
		syscall.Kill(pid, syscall.SIGCONT)
		if code := first.wait(t); code != 0 {
			t.Fatalf("first pull: exit %d\n%s", code, first.stderr.String())
		}
		equal(t, want, treetest.Scan(t, pl.dest))
		checkNoLitter(t, pl.dest, pl.state)
	}

	if refused == 0 {
		t.Fatal("no second pull ran while the first held the lock")
	}

	// The library: a held lock refuses Sync before it touches anything.
	unlock, err := imaging.Lock(pl.state)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	source, err := remote.Open(ctx, src, remote.Options{InProcess: true, Serve: agent.InProcess, StateDir: filepath.Join(base, "agent-lib")})
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	dest2 := filepath.Join(base, "image2")
	_, err = imaging.Sync(ctx, source, dest2, imaging.Options{StateDir: pl.state})
	if !errors.Is(err, imaging.ErrLocked) {
		t.Errorf("Sync with the lock held: err = %v, want ErrLocked", err)
	} else {
		refused++
	}
	if ents, _ := os.ReadDir(dest2); len(ents) > 0 {
		t.Errorf("the refused Sync wrote %d entries into the image", len(ents))
	}
	unlock()
	t.Logf("figures: concurrency: %d second pulls refused by the lock (%d CLI, exit 16; 1 library, ErrLocked); every first pull completed exactly", refused, refused-1)
}

// stopped waits (bounded) until pid is in the stopped state and reports
// whether it got there; false means it exited first.
func stopped(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		i := strings.LastIndexByte(string(b), ')')
		if f := strings.Fields(string(b[i+1:])); len(f) > 0 {
			switch f[0] {
			case "T":
				return true
			case "Z", "X":
				return false
			}
		}
		time.Sleep(time.Millisecond)
	}
	return false
}
