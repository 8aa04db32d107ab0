package demo

import (
	"bytes"
	"context"
	"io"
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

// TestRunIn checks that the demo's temp directory goes unless kept and
// says so, that a directory the caller names is kept, and that a
// non-empty one is refused and left as it was.
func TestRunIn(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	for _, keep := range []bool{false, true} {
		var out bytes.Buffer
		if err := RunIn(context.Background(), "", keep, &out, nil); err != nil {
			t.Fatal(err)
		}
		dir := strings.TrimPrefix(strings.SplitN(out.String(), "\n", 2)[0], "goldsync demo in ")
		_, err := os.Stat(dir)
		if kept := err == nil; kept != keep || strings.Contains(out.String(), "kept: "+dir) != keep ||
			strings.Contains(out.String(), "removed "+dir) == keep {
			t.Errorf("temp dir, keep %v: dir %s kept %v (%v), output %q", keep, dir, kept, err, out.String())
		}
	}
	dir := filepath.Join(t.TempDir(), "demo")
	var out bytes.Buffer
	if err := RunIn(context.Background(), dir, false, &out, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil || !strings.Contains(out.String(), "kept: "+dir) {
		t.Errorf("named dir without --keep: %v, output %q; want it kept", err, out.String())
	}
	mine := t.TempDir()
	precious := filepath.Join(mine, "precious")
	if err := os.WriteFile(precious, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RunIn(context.Background(), mine, false, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty dir: err %v, want refused", err)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("non-empty dir lost its file: %v", err)
	}
}
