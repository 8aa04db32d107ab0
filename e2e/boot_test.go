package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	node1 = node{IP: "10.0.2.15", Host: "node001", MAC: "52:54:00:00:00:01"}
	node2 = node{IP: "10.0.2.16", Host: "node002", MAC: "52:54:00:00:00:02"}
	node3 = node{IP: "10.0.2.17", Host: "node003", MAC: "52:54:00:00:00:03"}
)

// TestBootInitramfsTools is the seed procedure on a modern Debian: a golden
// root with initramfs-tools and goldsync's boot piece, pulled by goldsync,
// PXE-booted by two nodes (BIOS) and one UEFI node from goldsync's files
// only; reboot persistence, per-node snapshots, and a live update while a
// node runs.
func TestBootInitramfsTools(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newSite(t, "initramfs-tools", "deb12", []node{node1, node2, node3})

	// node001 and node002 boot at once (one core each).
	var v1, v2 *vm
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); v2 = s.boot(node2, false) }()
	v1 = s.boot(node1, false)
	wg.Wait()
	if v2 == nil {
		t.FailNow()
	}
	s.checkNode(v1, node1)
	s.checkNode(v2, node2)
	if got := v2.sh("cat /var/log/e2e-marker"); got != "written by node002" {
		t.Errorf("node002 sees %q in its /var/log/e2e-marker, want its own", got)
	}
	v2.stop()

	t.Run("reboot keeps the node's writes", func(t *testing.T) {
		v1.sh("echo before-reboot > /root/e2e-persist && sync")
		bootID := v1.sh("cat /proc/sys/kernel/random/boot_id")
		v1.markBoot()
		v1.run(context.Background(), "systemctl reboot")
		time.Sleep(5 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
		defer cancel()
		for {
			if _, err := v1.waitUp(ctx); err != nil {
				t.Fatal(err)
			}
			if id := v1.sh("cat /proc/sys/kernel/random/boot_id"); id != bootID {
				break
			}
			time.Sleep(3 * time.Second)
		}
		if got := v1.sh("cat /root/e2e-persist"); got != "before-reboot" {
			t.Errorf("after reboot /root/e2e-persist = %q", got)
		}
		if got := v1.sh("cat /var/log/e2e-marker"); got != "written by node001" {
			t.Errorf("after reboot /var/log/e2e-marker = %q", got)
		}
	})

	t.Run("live update", func(t *testing.T) { liveUpdate(t, s, v1) })

	t.Run("UEFI", func(t *testing.T) {
		v1.stop()
		v3 := s.boot(node3, true)
		s.checkNode(v3, node3)
		if got := v3.sh("test -d /sys/firmware/efi && echo uefi"); got != "uefi" {
			t.Errorf("node003 did not boot through UEFI: %q", got)
		}
	})
}

// liveUpdate changes the golden node while node v runs: a package is
// installed and a running binary replaced; goldsync pulls. The node sees
// the new files without a reboot, and the binary it runs keeps working
// (retention) even after the NFS server restarts; with retention off, as a
// control, the same gets ESTALE.
func liveUpdate(t *testing.T, s *site, v *vm) {
	ctx := context.Background()
	// A long-running binary from the image, and a loop reading a file.
	v.sh("(setsid /usr/local/bin/e2e-hold 100000 >/dev/null 2>&1 &); (setsid sh -c 'while :; do cat /usr/share/e2e/probe >> /root/e2e-probe.log 2>&1; sleep 0.2; done' >/dev/null 2>&1 &); sleep 1")
	pid1 := v.sh("pgrep -x e2e-hold")

	// The golden node changes: a package installed, the binary replaced,
	// the file rewritten.
	run(t, "chroot", s.golden, "dpkg", "-i", "/root/hello.deb")
	replace(t, filepath.Join(s.golden, "usr/local/bin/e2e-hold"), "v2")
	must(t, os.WriteFile(filepath.Join(s.golden, "usr/share/e2e/probe.new"), []byte("version 2\n"), 0o644))
	must(t, os.Rename(filepath.Join(s.golden, "usr/share/e2e/probe.new"), filepath.Join(s.golden, "usr/share/e2e/probe")))
	pullTook := s.pull()
	pulled := time.Now()
	var seen time.Duration
	for {
		out, rc, err := v.run(ctx, "test -x /usr/bin/hello && hello && grep -q 'version 2' /usr/share/e2e/probe")
		if err == nil && rc == 0 && strings.Contains(out, "Hello, world!") {
			seen = time.Since(pulled)
			break
		}
		if time.Since(pulled) > 3*time.Minute {
			t.Fatalf("the node did not see the new package 3 min after the pull: %q %v", out, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("LIVE UPDATE: the pull took %s; the running node saw the new package and file %.1f s after it ended (attribute cache timeout 10 s)", pullTook.Round(10*time.Millisecond), seen.Seconds())
	if log := v.sh("cat /root/e2e-probe.log | sort | uniq -c"); strings.Contains(log, "No such file") || strings.Contains(log, "Stale") {
		t.Errorf("the reader loop saw a missing or stale file during the update:\n%s", log)
	} else {
		t.Logf("reader loop during the update:\n%s", log)
	}

	// Restart the NFS server so it holds no open file: the running binary's
	// old inode is alive only through goldsync's retention link.
	s.restartNFS()
	time.Sleep(12 * time.Second) // past the attribute cache
	check := func(pid string) (string, int) {
		out, rc, err := v.run(ctx, fmt.Sprintf("echo 3 > /proc/sys/vm/drop_caches; cat /proc/%s/exe > /dev/null && kill -0 %s && echo alive", pid, pid))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out), rc
	}
	if out, rc := check(pid1); rc != 0 || out != "alive" {
		t.Errorf("with retention, the running binary replaced by the pull: exit %d %q (want it alive and readable)", rc, out)
	} else {
		t.Logf("with retention: the binary running since before the pull is alive and readable after an NFS server restart")
	}

	// Control: retention off.
	v.sh("(setsid /usr/local/bin/e2e-hold 100001 >/dev/null 2>&1 &); sleep 1")
	pid2 := v.sh("pgrep -n -x e2e-hold")
	replace(t, filepath.Join(s.golden, "usr/local/bin/e2e-hold"), "v3")
	s.pull("--retention", "-1s")
	s.restartNFS()
	time.Sleep(12 * time.Second)
	out, rc := check(pid2)
	if rc == 0 || !strings.Contains(out, "Stale file handle") {
		t.Errorf("control, retention off: the replaced running binary gave exit %d %q, want Stale file handle", rc, out)
	} else {
		t.Logf("control, retention off: %s", out)
	}
}

// replace gives the file at p new content (a copy of itself plus a
// marker) through a new inode, as a package manager does.
func replace(t *testing.T, p, marker string) {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	tmp := p + ".e2e-new"
	must(t, os.WriteFile(tmp, append(b, []byte(marker)...), 0o755))
	must(t, os.Chmod(tmp, 0o755))
	must(t, os.Rename(tmp, p))
}

// TestBootDracut boots a node whose initramfs dracut built, with
// goldsync's dracut module, from a replica image server: a cluster config
// with one replica, r1, which serves the node; goldsync sync pushes the
// image to r1 over ssh and r1 builds the node's snapshot and boot files.
// The node's root and snapshot are the replica's (its /proc/mounts), and
// a change of the golden node reaches the running node through the
// replica while the primary's NFS server is stopped.
func TestBootDracut(t *testing.T) {
	requireE2E(t)
	// Beside the initramfs-tools test: its golden root builds while the
	// other's nodes boot.
	t.Parallel()
	rs := newReplicaSite(t, "dracut", "deb12dracut", node1)
	rs.checkRouting(node1)
	// The node boots from the replica's TFTP tree (render dhcpd's
	// next-server) and is checked against the replica's image and
	// snapshot.
	v := rs.replica.boot(node1, false)
	rs.replica.checkNode(v, node1)
	rs.checkFromReplica(v, node1)
	rs.liveUpdateFromReplica(v)
}

// TestDisklessrcLine: the seed's RHEL 5 boot line is still written when
// asked for.
func TestDisklessrcLine(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	image := filepath.Join(dir, "RHEL5-AS/root")
	must(t, os.MkdirAll(filepath.Join(image, "boot"), 0o755))
	must(t, os.WriteFile(filepath.Join(image, "boot/vmlinuz-2.6.18-128.el5"), []byte("kernel"), 0o644))
	must(t, os.WriteFile(filepath.Join(image, "boot/initrd-2.6.18-128.el5.img"), []byte("initrd"), 0o644))
	tftp := filepath.Join(dir, "tftpboot")
	must(t, os.MkdirAll(tftp, 0o755))
	g := filepath.Join(binDir, "goldsync")
	run(t, g, "os", "add", "rhel5compute", "--image", image, "--tftpboot", tftp, "--nfs-server", "10.8.136.254", "--boot-style", "disklessrc", "--no-loaders")
	run(t, g, "node", "add", "--os", "rhel5compute", "--tftpboot", tftp, "--ramdisk-size", "28753", "--nis-domain", "my_nis_domain", "10.8.136.1", "node001")
	b, err := os.ReadFile(filepath.Join(tftp, "linux-install/pxelinux.cfg/0A088801"))
	must(t, err)
	want := "append initrd=rhel5compute/initrd.img root=/dev/ram0 init=disklessrc NFSROOT=10.8.136.254:" + filepath.Join(dir, "RHEL5-AS") + " ramdisk_size=28753 ETHERNET=eth0 SNAPSHOT=node001 NISDOMAIN=my_nis_domain"
	if !strings.Contains(string(b), want) {
		t.Errorf("pxelinux.cfg/0A088801:\n%s\nwant a line\n%s", b, want)
	}
}

var _ = exec.Command
