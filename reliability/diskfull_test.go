package reliability

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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

// exitIO is the CLI's exit code for file I/O errors such as a full disk.
const exitIO = 11

// mountTmpfs mounts a tmpfs of size at dir (created) and unmounts it when
// the test ends.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; detaching lazily", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
}

func remountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s: %v: %s", dir, err, out)
	}
}

// tempsIn lists the engine temp names beneath dir.
func tempsIn(t *testing.T, dir string) []string {
	var out []string
	for _, p := range scanOrEmpty(t, dir).Paths() {
		if isTemp(p) {
			out = append(out, p)
		}
	}
	return out
}

// TestDiskFull pulls into an 8 MiB tmpfs: a pull whose new content does not
// fit fails with exit code 11 (and, through the library, an error wrapping
// ENOSPC), leaves the old image whole, and converges once the filesystem
// is made bigger. Two shapes: only a new big file does not fit (the image
// must stay exactly as it was), and many files change while the retention
// links keep the old contents alive (every file must be whole, old or new).
func TestDiskFull(t *testing.T) {
	needRoot(t, "mounts a tmpfs")
	runs := 0
	deadline := time.Now().Add(budget())
	for round := range pick(1, 12) {
		if time.Now().After(deadline) {
			break
		}
		diskFullRound(t, uint64(round), &runs)
	}
	libraryDiskFull(t, &runs)
	t.Logf("figures: disk full: %d runs into a full filesystem, each failed cleanly and converged after space was freed (see subtests)", runs)
}

// diskFullRound runs both shapes once with trees of the round's seed.
func diskFullRound(t *testing.T, round uint64, runs *int) {
	for _, tc := range []struct {
		name string
		grow func(t *testing.T, dir string, spec treeSpec) treetest.Manifest
		// onlyAdded: the new tree only adds a file, so the old image must
		// be left exactly as it was.
		onlyAdded bool
	}{
		{name: "a new file does not fit", onlyAdded: true, grow: func(t *testing.T, dir string, spec treeSpec) treetest.Manifest {
			makeTree(t, dir, spec)
			g := &gen{t: t, rng: randFor(spec.seed), root: dir, clock: 2_000_000}
			g.file("bulk/huge", 10<<20, 0o644)
			g.settle()
			return treetest.Scan(t, dir)
		}},
		{name: "changes and retention fill the disk", grow: func(t *testing.T, dir string, spec treeSpec) treetest.Manifest {
			makeNewTree(t, dir, spec)
			g := &gen{t: t, rng: randFor(spec.seed + 1), root: dir, clock: 2_000_000}
			for i := range 6 {
				g.file(fmt.Sprintf("bulk/big/extra%d", i), 1<<20, 0o644)
			}
			g.settle()
			return treetest.Scan(t, dir)
		}},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.name, round), func(t *testing.T) {
			base := t.TempDir()
			fsDir := filepath.Join(base, "fs")
			mountTmpfs(t, fsDir, "8m")
			spec := treeSpec{dirs: 6, files: 10, big: 3, seed: 21 + round}
			srcA, srcB := filepath.Join(base, "golden-a"), filepath.Join(base, "golden-b")
			mA := makeTree(t, srcA, spec)
			mB := tc.grow(t, srcB, spec)
			pl := newPull(base, srcA)
			pl.dest, pl.state = filepath.Join(fsDir, "image"), filepath.Join(fsDir, "state")
			pl.mustRun(t)

			pl.src = srcB
			code, stderr := pl.run(t)
			*runs++
			t.Logf("pull into a full disk: exit %d: %s", code, strings.TrimSpace(stderr))
			if code != exitIO {
				t.Errorf("exit code %d, want %d (I/O error)", code, exitIO)
			}
			if !strings.Contains(strings.ToLower(stderr), "no space left") {
				t.Errorf("stderr does not say the disk is full:\n%s", stderr)
			}
			if temps := tempsIn(t, pl.dest); len(temps) > 0 {
				t.Errorf("the failed pull left %d temp files on the full disk: %q", len(temps), temps)
			}
			got := treetest.Scan(t, pl.dest)
			if tc.onlyAdded {
				treetest.Equal(t, mA, got, treetest.DiffOptions{IgnoreDirMtime: true})
			}
			st := checkWhole(t, got, mA, mB)
			t.Logf("after the failure: %d files old, %d new, %d unchanged", st.Old, st.New, st.Same)

			remountTmpfs(t, fsDir, "64m")
			pl.mustRun(t)
			equal(t, mB, treetest.Scan(t, pl.dest))
			checkNoLitter(t, pl.dest, pl.state)
		})
	}
}

// libraryDiskFull: through the library, a full disk is an error wrapping
// ENOSPC, and the failed sync leaves no temp file.
func libraryDiskFull(t *testing.T, runs *int) {
	t.Run("library error wraps ENOSPC", func(t *testing.T) {
		base := t.TempDir()
		fsDir := filepath.Join(base, "fs")
		mountTmpfs(t, fsDir, "4m")
		src := filepath.Join(base, "golden")
		makeTree(t, src, treeSpec{dirs: 4, files: 10, big: 4, seed: 23})
		ctx := context.Background()
		source, err := remote.Open(ctx, src, remote.Options{InProcess: true, Serve: agent.InProcess, StateDir: filepath.Join(base, "agent-state")})
		if err != nil {
			t.Fatal(err)
		}
		defer source.Close()
		dest := filepath.Join(fsDir, "image")
		_, err = imaging.Sync(ctx, source, dest, imaging.Options{StateDir: filepath.Join(fsDir, "state")})
		*runs++
		t.Logf("library: %v", err)
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("Sync into a full disk: err = %v, want one wrapping ENOSPC", err)
		}
		if temps := tempsIn(t, dest); len(temps) > 0 {
			t.Errorf("the failed sync left %d temp files on the full disk: %q", len(temps), temps)
		}
	})
}
