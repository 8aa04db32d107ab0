package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The README's first command: the whole job on the embedded sample.
func TestDemoRunsTheWholeJob(t *testing.T) {
	var out bytes.Buffer
	stdout = &out
	defer func() { stdout = os.Stdout }()
	dir := t.TempDir()
	if err := runDemo(context.Background(), &globalFlags{}, dir, true); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, p := range []string{
		"diskless/i386/RHEL5-AS/root/usr/bin/dstat",
		"diskless/i386/RHEL5-AS/snapshot/node003/etc/ssh/sshd_config",
		"tftpboot/linux-install/pxelinux.cfg/0A08E249",
		"tftpboot/linux-install/rhel5compute/vmlinuz",
	} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Errorf("demo did not produce %s: %v", p, err)
		}
	}
	for _, p := range []string{"proc/cpuinfo", "sys/kernel/notes", "usr/share/doc/pkg007/README"} {
		if _, err := os.Lstat(filepath.Join(dir, "diskless/i386/RHEL5-AS/root", p)); err == nil {
			t.Errorf("image holds %s, which the pull should have excluded or deleted", p)
		}
	}
	if !strings.Contains(out.String(), "SNAPSHOT=node001") {
		t.Errorf("summary lacks node001's pxelinux file:\n%s", out.String())
	}
	// Both boot styles are shown: the seed's disklessrc and nfsroot.
	for _, w := range []string{"(node001, boot style disklessrc)", "init=disklessrc", "(node004, boot style nfsroot)", "root=/dev/nfs", "goldsync.snapshot=", "ipappend 2"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, out.String())
		}
	}
	// -q: only errors.
	out.Reset()
	if err := runDemo(context.Background(), &globalFlags{quiet: true}, "", false); err != nil || out.Len() != 0 {
		t.Errorf("demo -q: %v, printed:\n%s", err, out.String())
	}
}
