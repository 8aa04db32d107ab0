package imaging_test

import (
	"os"
	"path/filepath"
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
