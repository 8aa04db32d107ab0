package cluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// TestBootSkeleton: the skeleton of a generation's entries holds what
// netboot.AddOS reads (boot/, the generator and client piece, through a
// symlinked sbin) and nothing else, and AddOS finds the kernel in it.
func TestBootSkeleton(t *testing.T) {
	e := func(p string, typ tree.Type, target string) *tree.Entry {
		return &tree.Entry{Path: p, Type: typ, Target: target, Mtime: 1e18}
	}
	entries := []*tree.Entry{
		e(tree.Root, tree.TypeDir, ""),
		e("boot", tree.TypeDir, ""),
		e("boot/initrd.img-6.1.0-9-amd64", tree.TypeRegular, ""),
		e("boot/vmlinuz", tree.TypeSymlink, "vmlinuz-6.1.0-9-amd64"),
		e("boot/vmlinuz-6.1.0-9-amd64", tree.TypeRegular, ""),
		e("etc", tree.TypeDir, ""),
		e("etc/passwd", tree.TypeRegular, ""),
		e("sbin", tree.TypeSymlink, "usr/sbin"),
		e("usr", tree.TypeDir, ""),
		e("usr/sbin", tree.TypeDir, ""),
		e("usr/sbin/mkinitramfs", tree.TypeRegular, ""),
		e("usr/sbin/sshd", tree.TypeRegular, ""),
		e("usr/share", tree.TypeDir, ""),
		e("usr/share/initramfs-tools", tree.TypeDir, ""),
		e("usr/share/initramfs-tools/scripts", tree.TypeDir, ""),
		e("usr/share/initramfs-tools/scripts/nfs-bottom", tree.TypeDir, ""),
		e("usr/share/initramfs-tools/scripts/nfs-bottom/goldsync", tree.TypeRegular, ""),
	}
	dir := t.TempDir()
	if err := bootSkeleton(dir, entries); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/passwd", "usr/sbin/sshd"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s is in the skeleton: %v", p, err)
		}
	}
	o, warnings, err := netboot.AddOS(context.Background(), netboot.AddOSOptions{Name: "debian12", ImageRoot: dir,
		NFSServer: "10.8.0.2", DryRun: true})
	if err != nil || o.Kernel != "6.1.0-9-amd64" || o.Initramfs != netboot.InitramfsTools || len(warnings) != 0 {
		t.Errorf("AddOS on the skeleton: %+v, %v, %v; want kernel 6.1.0-9-amd64, initramfs-tools, no warning", o, warnings, err)
	}
}
