package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// node is one diskless node of a site.
type node struct {
	IP, Host, MAC string
}

// site is an image server on this machine: one golden node's image,
// its snapshots and TFTP tree, all written by goldsync, served by
// nfs-ganesha in a private namespace.
type site struct {
	t       *testing.T
	dir     string
	golden  string
	loc     string // the OS location: loc/root, loc/snapshot
	image   string
	snap    string
	tftp    string
	osName  string
	nodes   []node
	ns      *netns
	nfsConf string
	nfsStop func()
}

func (s *site) goldsync(args ...string) string {
	s.t.Helper()
	return run(s.t, filepath.Join(binDir, "goldsync"), args...)
}

// newSite builds the golden root of a flavour, pulls it, and runs the
// admin's commands: os add, node add, snapshot build, render ganesha.
func newSite(t *testing.T, flavour, osName string, nodes []node) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{t: t, dir: dir, golden: filepath.Join(dir, "golden"), osName: osName, nodes: nodes,
		loc: filepath.Join(dir, "diskless", osName), tftp: filepath.Join(dir, "tftpboot")}
	s.image = filepath.Join(s.loc, "root")
	s.snap = filepath.Join(s.loc, "snapshot")
	// The admin's directories: the image's base and the TFTP server's root.
	must(t, os.MkdirAll(s.loc, 0o755))
	must(t, os.MkdirAll(s.tftp, 0o755))
	start := time.Now()
	newGolden(t, flavour, s.golden)
	t.Logf("golden root ready in %s", time.Since(start).Round(time.Second))
	s.pull()
	// NFS server: 10.0.2.2 is how QEMU's user network shows the
	// namespace's loopback to the guests.
	out := s.goldsync("os", "add", osName, "--image", s.image, "--tftpboot", s.tftp, "--nfs-server", "10.0.2.2")
	t.Logf("goldsync os add:\n%s", out)
	var nf strings.Builder
	for _, n := range nodes {
		nf.WriteString(n.IP + " " + n.Host + " " + n.MAC + "\n")
	}
	nodesFile := filepath.Join(dir, "nodes")
	must(t, os.WriteFile(nodesFile, []byte(nf.String()), 0o644))
	// GOLDSYNC_E2E_APPEND adds kernel arguments, e.g. rd.debug to see
	// what an initramfs does.
	s.goldsync("node", "add", "--os", osName, "--tftpboot", s.tftp, "--nodes", nodesFile,
		"--append", strings.TrimSpace("console=ttyS0,115200 systemd.show_status=0 "+os.Getenv("GOLDSYNC_E2E_APPEND")))
	out = s.goldsync("snapshot", "build", "--image", s.image, "--snapshot-dir", s.snap, "--nodes", nodesFile)
	t.Logf("goldsync snapshot build:\n%s", out)
	s.nfsConf = filepath.Join(dir, "ganesha.conf")
	// One export per node's snapshot (--nodes), as a site runs it. QEMU's
	// user-mode network NATs every guest to the namespace's 127.0.0.1, so
	// ganesha cannot tell the test's nodes apart by address: their exports
	// also admit 127.0.0.1 (--snapshot-clients). render's own tests check
	// the per-node CLIENT blocks.
	conf := s.goldsync("render", "ganesha", "--image", s.image, "--snapshot-dir", s.snap, "--nodes", nodesFile, "--snapshot-clients", "127.0.0.1")
	must(t, os.WriteFile(s.nfsConf, []byte(conf), 0o644))
	s.ns = newNetns(t)
	s.nfsStop = s.ns.startNFS(t, dir, s.nfsConf)
	return s
}

// pull runs goldsync pull of the golden root into the image.
func (s *site) pull(extra ...string) time.Duration {
	s.t.Helper()
	start := time.Now()
	args := append([]string{"pull", "--no-progress", "--exclude", "/proc/*", "--exclude", "/sys/*"}, extra...)
	s.goldsync(append(args, s.golden, s.image)...)
	return time.Since(start)
}

// restartNFS restarts nfs-ganesha: NFSv3 clients do not notice, but
// ganesha's cache of open files is gone, so a file handle is good only if
// its inode still exists on the server.
func (s *site) restartNFS() {
	s.t.Helper()
	s.nfsStop()
	s.nfsStop = s.ns.startNFS(s.t, s.dir, s.nfsConf)
}

// boot starts a node and waits until its command channel answers.
func (s *site) boot(n node, uefi bool) *vm {
	s.t.Helper()
	bootfile := "linux-install/pxelinux.0"
	if uefi {
		// render dhcpd hands UEFI clients shimx64.efi, which then loads
		// grubx64.efi; but shim needs the TFTP server to tell a file's size
		// (the tsize option) and QEMU's built-in TFTP server does not, so
		// shim reads 4 MiB and rejects GRUB ("Malformed binary after
		// Attribute Certificate Table"). With Secure Boot off, as in this
		// OVMF, GRUB boots directly (render dhcpd --efi-filename).
		bootfile = "linux-install/grub/grubx64.efi"
	}
	v := startVM(s.t, s.ns, s.dir, vmOptions{Name: n.Host, MAC: n.MAC, DHCPStart: n.IP, TFTP: s.tftp, Bootfile: bootfile, UEFI: uefi})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	d, err := v.waitUp(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("%s: up after %s (PXE, kernel, initramfs, NFS root, systemd to multi-user, TCG)", n.Host, d.Round(time.Second))
	return v
}

// checkNode checks what every booted node must show.
func (s *site) checkNode(v *vm, n node) {
	t := s.t
	t.Helper()
	if got := v.sh("systemctl is-system-running --wait || true"); got != "running" && got != "degraded" {
		t.Errorf("%s: systemctl is-system-running = %q", n.Host, got)
	}
	if got := v.sh("systemctl is-active multi-user.target"); got != "active" {
		t.Errorf("%s: multi-user.target is %q", n.Host, got)
	}
	if failed := v.sh("systemctl --failed --plain --no-legend | cat"); failed != "" {
		t.Logf("%s: failed units (not fatal):\n%s", n.Host, failed)
	}
	root := v.sh("findmnt -n -r -o FSTYPE,OPTIONS,SOURCE /")
	if !strings.HasPrefix(root, "nfs ") || !strings.Contains(root, "ro,") || !strings.Contains(root, s.image) {
		t.Errorf("%s: root is %q, want nfs, read-only, from %s", n.Host, root, s.image)
	}
	t.Logf("%s: / is %s", n.Host, root)
	t.Logf("%s: goldsync boot log:\n%s", n.Host, v.sh("cat /run/goldsync/boot.log"))
	if out, rc, _ := v.run(context.Background(), "test -e /run/goldsync/failed"); rc == 0 {
		t.Errorf("%s: /run/goldsync/failed exists: %s", n.Host, out)
	}
	if got := v.sh("hostname"); got != n.Host {
		t.Errorf("%s: hostname = %q", n.Host, got)
	}
	mid := v.sh("cat /etc/machine-id")
	want, err := os.ReadFile(filepath.Join(s.snap, n.Host, "etc/machine-id"))
	if err != nil || strings.TrimSpace(string(want)) != mid || len(mid) != 32 {
		t.Errorf("%s: machine-id %q, snapshot has %q (%v)", n.Host, mid, want, err)
	}
	golden, _ := os.ReadFile(filepath.Join(s.golden, "etc/machine-id"))
	if strings.TrimSpace(string(golden)) == mid {
		t.Errorf("%s: machine-id is the golden node's", n.Host)
	}
	// A listed path is writable and lands in the node's snapshot; a path
	// not listed is read-only.
	marker := "written by " + n.Host
	v.sh("echo '" + marker + "' > /var/log/e2e-marker && sync")
	if b, err := os.ReadFile(filepath.Join(s.snap, n.Host, "var/log/e2e-marker")); err != nil || strings.TrimSpace(string(b)) != marker {
		t.Errorf("%s: /var/log/e2e-marker not in snapshot/%s: %q %v", n.Host, n.Host, b, err)
	}
	out, rc, err := v.run(context.Background(), "touch /usr/e2e-not-listed")
	if err != nil || rc == 0 || !strings.Contains(out, "Read-only file system") {
		t.Errorf("%s: writing /usr (not listed): exit %d %q %v; want Read-only file system", n.Host, rc, out, err)
	}
	// The node's own ssh host key, not the golden node's.
	nodeKey := v.sh("cat /etc/ssh/ssh_host_ed25519_key.pub")
	goldKey, _ := os.ReadFile(filepath.Join(s.golden, "etc/ssh/ssh_host_ed25519_key.pub"))
	if strings.TrimSpace(string(goldKey)) == nodeKey {
		t.Errorf("%s: ssh host key is the golden node's", n.Host)
	}
}
