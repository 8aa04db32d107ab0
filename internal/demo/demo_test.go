package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun: the demo makes the image, snapshots and boot files it shows,
// excludes what a root's pull leaves out, deletes what the package
// install removed, and shows both boot styles' pxelinux files.
func TestRun(t *testing.T) {
	var out strings.Builder
	dir := t.TempDir()
	if err := Run(context.Background(), dir, &out, nil); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	for _, p := range []string{
		"diskless/i386/RHEL5-AS/root/usr/bin/dstat",
		"diskless/i386/RHEL5-AS/snapshot/node003/etc/ssh/sshd_config",
		"tftpboot/linux-install/pxelinux.cfg/0A08E249",
		"tftpboot/linux-install/rhel5compute/vmlinuz",
	} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Errorf("no %s: %v", p, err)
		}
	}
	for _, p := range []string{"proc/cpuinfo", "sys/kernel/notes", "usr/share/doc/pkg007/README"} {
		if _, err := os.Lstat(filepath.Join(dir, "diskless/i386/RHEL5-AS/root", p)); err == nil {
			t.Errorf("the image holds %s, which the pull should have excluded or deleted", p)
		}
	}
	for _, w := range []string{"pull (after yum)", "(node001, boot style disklessrc)", "init=disklessrc", "SNAPSHOT=node001",
		"(node004, boot style nfsroot)", "root=/dev/nfs", "goldsync.snapshot="} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, out.String())
		}
	}
}

// TestRunIn checks that the demo's directory goes unless kept, and that a
// kept one is named.
func TestRunIn(t *testing.T) {
	for _, keep := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "demo")
		var out bytes.Buffer
		if err := RunIn(context.Background(), dir, keep, &out, nil); err != nil {
			t.Fatal(err)
		}
		_, err := os.Stat(dir)
		if kept := err == nil; kept != keep || strings.Contains(out.String(), "kept: "+dir) != keep {
			t.Errorf("keep %v: dir kept %v (%v), output %q", keep, kept, err, out.String())
		}
	}
}
