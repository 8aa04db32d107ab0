package imaging_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/treetest"
)

// TestMetadataChangeKeepsCapability: a file whose only change is its
// metadata (mode, owner, another xattr) keeps its file capability. The
// receiver chowns before it sets xattrs, and the kernel drops
// security.capability on every chown, so a capability the image already
// had must be set again (newcomer trial: a chmod, chown or setfattr on the
// golden node silently took ping's cap_net_raw away from the image, and
// no later pull put it back).
func TestMetadataChangeKeepsCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP (loud): not root: security.capability and chown need root; CI runs as root")
	}
	capV2 := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	changes := []struct {
		name   string
		change func(string) error
	}{
		{"chmod", func(p string) error { return os.Chmod(p, 0o750) }},
		{"chown", func(p string) error {
			if err := os.Chown(p, 0, 7); err != nil {
				return err
			}
			// the source's own chown dropped it too: a golden node's admin sets it again
			return unix.Setxattr(p, "security.capability", capV2, 0)
		}},
		{"another xattr", func(p string) error { return unix.Setxattr(p, "user.note", []byte("1"), 0) }},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			src, dst := newDirs(t)
			bin := filepath.Join(src, "ping")
			if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Setxattr(bin, "security.capability", capV2, 0); err != nil {
				t.Skipf("SKIP (loud): this filesystem takes no security.capability: %v", err)
			}
			syncDirs(t, src, dst, imaging.Options{})
			if err := c.change(bin); err != nil {
				t.Fatal(err)
			}
			res := syncDirs(t, src, dst, imaging.Options{})
			if res.Created+res.Updated != 0 || res.MetaOnly == 0 {
				t.Errorf("setup: want a metadata-only update, got %+v", res)
			}
			buf := make([]byte, 64)
			n, err := unix.Getxattr(filepath.Join(dst, "ping"), "security.capability", buf)
			if err != nil || !bytes.Equal(buf[:n], capV2) {
				t.Errorf("after a %s on the source the image's file capability is %x, %v; want %x", c.name, buf[:max(n, 0)], err, capV2)
			}
			treetest.Equal(t, treetest.Scan(t, src), treetest.Scan(t, dst), exact)
		})
	}
}
