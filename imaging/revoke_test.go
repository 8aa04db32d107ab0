package imaging_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/treetest"
)

// TestRevokeThroughExtraLinks: an image file with more links than its
// source's link group (here goldsync's own: the retention and generation
// copies of a second name deleted on the golden node) may not be given
// privileges in place, but taking them away must always work: a
// capability removed and set-id bits dropped on the golden node reach the
// image in the same pull, with no problem reported.
func TestRevokeThroughExtraLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP (loud): not root: security.capability and set-id files need root; CI runs as root")
	}
	src, dst := newDirs(t)
	bin := filepath.Join(src, "su")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// cap_net_raw, permitted+effective (VFS_CAP_REVISION_2).
	capV2 := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if err := unix.Setxattr(bin, "security.capability", capV2, 0); err != nil {
		t.Skipf("SKIP (loud): this filesystem takes no security.capability: %v", err)
	}
	if err := os.Chmod(bin, 0o4755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(bin, filepath.Join(src, "su2")); err != nil {
		t.Fatal(err)
	}
	syncDirs(t, src, dst, imaging.Options{})
	if err := os.Remove(filepath.Join(src, "su2")); err != nil {
		t.Fatal(err)
	}
	syncDirs(t, src, dst, imaging.Options{})
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dst, "su"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Nlink < 2 {
		t.Fatalf("setup: the image's su has %d links; the test needs goldsync's own extra links (retention, generations)", st.Nlink)
	}
	if err := unix.Removexattr(bin, "security.capability"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	res := syncDirs(t, src, dst, imaging.Options{})
	if len(res.Problems) > 0 {
		t.Errorf("revoking was refused: %v", res.Problems)
	}
	if _, err := unix.Getxattr(filepath.Join(dst, "su"), "security.capability", nil); err == nil {
		t.Errorf("the image's su still has its capability")
	}
	if fi, err := os.Stat(filepath.Join(dst, "su")); err != nil || fi.Mode().Perm() != 0o700 || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("the image's su: %v, %v; want -rwx------", fi.Mode(), err)
	}
	treetest.Equal(t, treetest.Scan(t, src), treetest.Scan(t, dst), exact)
}

// TestStaleSpoolNamesRemoved: a spool name a kill left in the state dir
// (on a filesystem without O_TMPFILE a spool has a name for one syscall)
// is removed by the next sync; the crash test found one after a complete
// run.
func TestStaleSpoolNamesRemoved(t *testing.T) {
	src, dst := newDirs(t)
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(filepath.Dir(dst), "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(state, ".spool-12345")
	if err := os.WriteFile(stale, []byte("left by a kill"), 0o600); err != nil {
		t.Fatal(err)
	}
	syncDirs(t, src, dst, imaging.Options{StateDir: state})
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("%s is still there after a complete sync", stale)
	}
	ents, _ := os.ReadDir(state)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".spool-") {
			t.Errorf("spool name %s in the state dir after a sync", e.Name())
		}
	}
}
