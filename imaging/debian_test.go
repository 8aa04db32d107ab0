package imaging_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/treetest"
)

// debianRoot returns a debootstrap'd Debian root, built once into
// GOLDSYNC_DEBIAN_ROOT (default /var/tmp/goldsync-test-debian) and reused,
// or "" when it cannot be had (not root, no debootstrap, no mirror).
func debianRoot(t *testing.T) (string, string) {
	dir := os.Getenv("GOLDSYNC_DEBIAN_ROOT")
	if dir == "" {
		dir = "/var/tmp/goldsync-test-debian"
	}
	done := dir + ".complete"
	if _, err := os.Stat(done); err == nil {
		return dir, "cached debootstrap root " + dir
	}
	if os.Geteuid() != 0 {
		return "", "not root: debootstrap needs root"
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", "debootstrap not installed (make test installs it)"
	}
	os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "bookworm", dir, "http://deb.debian.org/debian").CombinedOutput()
	if err != nil {
		tail := out
		if len(tail) > 500 {
			tail = tail[len(tail)-500:]
		}
		os.RemoveAll(dir)
		return "", "debootstrap failed (mirror unreachable?): " + err.Error() + ": " + string(tail)
	}
	os.WriteFile(done, nil, 0o644)
	return dir, "debootstrap root built in " + time.Since(start).Round(time.Second).String()
}

// The realistic case: a whole Debian root, synced by us and by rsync
// -aHAXS --numeric-ids, compared exhaustively with the source and with each
// other. Without a Debian root the synthetic tricky tree stands in, and
// the test says so.
func TestSyncRealRootMatchesSourceAndRsync(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the whole-root fidelity test")
	}
	src, how := debianRoot(t)
	if src == "" {
		t.Logf("REAL ROOT NOT AVAILABLE (%s): using the synthetic tricky tree instead", how)
		src = filepath.Join(t.TempDir(), "golden")
		os.Mkdir(src, 0o755)
		treetest.MakeTricky(t, src, treetest.TrickyOptions{})
	} else {
		t.Logf("source: %s", how)
	}
	base := t.TempDir()
	dst := filepath.Join(base, "image")
	res := syncDirs(t, src, dst, imagingOptions())
	t.Logf("synced %d entries, %d files written", res.Entries, res.Files)
	want := treetest.Scan(t, src)
	got := treetest.Scan(t, dst)
	treetest.Equal(t, want, got, treetest.DiffOptions{CheckSparse: true})
	ref := filepath.Join(base, "rsync")
	treetest.RsyncCopy(t, src, ref)
	treetest.Equal(t, treetest.Scan(t, ref), got, treetest.DiffOptions{})
	// And a second run has nothing to do.
	res = syncDirs(t, src, dst, imagingOptions())
	if n := res.Plan.Len(); n != 0 {
		t.Errorf("second run over the real root planned %d actions", n)
	}
}

func imagingOptions() imaging.Options { return imaging.Options{} }
