package imaging

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/fsx"
)

// TestSinkCleanupTwiceClosesOnce: a failed Data cleans up and then Abort
// cleans up again; the second pass must not close descriptor numbers that
// were reused meanwhile (another file's temp file or directory).
func TestSinkCleanupTwiceClosesOnce(t *testing.T) {
	dir := t.TempDir()
	root, err := fsx.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	a := &applier{root: root}
	s := &fileSink{a: a, act: &Action{Path: "f"}}
	if err := s.open(); err != nil {
		t.Fatal(err)
	}
	s.cleanup()
	// Reuse the numbers just freed.
	other, err := os.Create(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherDir, err := root.OpenDir(".")
	if err != nil {
		t.Fatal(err)
	}
	defer otherDir.Close()
	s.cleanup()
	var st unix.Stat_t
	if err := unix.Fstat(int(other.Fd()), &st); err != nil {
		t.Errorf("another file's descriptor was closed by the second cleanup: %v", err)
	}
	if err := unix.Fstat(otherDir.FD, &st); err != nil {
		t.Errorf("another directory's descriptor was closed by the second cleanup: %v", err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Errorf("temp file left behind: %v", names)
	}
}
