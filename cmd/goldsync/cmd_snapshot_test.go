package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/testbin"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// goldsyncBin is the goldsync binary TestMain builds for the end-to-end
// tests.
var goldsyncBin string

func TestMain(m *testing.M) {
	testbin.Main(m, func(dir string) { goldsyncBin = filepath.Join(dir, "goldsync") }, testbin.Goldsync)
}

// run runs the goldsync binary and returns stdout, stderr and the exit
// code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(goldsyncBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("goldsync %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// mustRun runs goldsync and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) (string, string) {
	t.Helper()
	out, errs, code := run(t, args...)
	if code != 0 {
		t.Fatalf("goldsync %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out, errs
}

func put(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// site is the seed procedure's layout in a temp dir: an image with two
// kernels, a TFTP root and the nodes file of node001 and node003.
type site struct {
	dir, location, image, snap, tftp, nodes string
}

func newSite(t *testing.T) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{dir: dir, location: filepath.Join(dir, "diskless/i386/RHEL5-AS"), tftp: filepath.Join(dir, "tftpboot"), nodes: filepath.Join(dir, "nodes")}
	s.image = filepath.Join(s.location, "root")
	s.snap = filepath.Join(s.location, "snapshot")
	for p, c := range map[string]string{
		"boot/vmlinuz-2.6.18-8.el5":          "old kernel",
		"boot/initrd-2.6.18-8.el5.img":       "old initrd",
		"boot/vmlinuz-2.6.18-128.el5":        "kernel 128",
		"boot/initrd-2.6.18-128.el5.img":     "initrd 128",
		"etc/ssh/sshd_config":                "PermitRootLogin no\n",
		"etc/resolv.conf":                    "nameserver 10.8.0.1\n",
		"etc/sysconfig/network":              "NETWORKING=yes\n",
		"var/log/messages":                   "golden log\n",
		"var/lib/random-seed":                "seed",
		"root/.bashrc":                       "alias ll='ls -l'\n",
		"usr/bin/dstat":                      "not in the lists",
		"var/spool/cron/root":                "0 * * * * true\n",
		"etc/sysconfig/network-scripts/ifup": "#!/bin/sh\n",
	} {
		put(t, filepath.Join(s.image, p), c)
	}
	put(t, s.nodes, "# IP          hostname\n10.8.136.1    node001\n10.8.226.73   node003   00:21:5E:40:64:5C\n")
	if err := os.MkdirAll(s.tftp, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCLISeedProcedure drives the seed procedure end to end: pxeos -a,
// the pxeboot loop over the nodes file, a refresh, the dhcpd and exports
// snippets, then removals.
func TestCLISeedProcedure(t *testing.T) {
	s := newSite(t)

	// pxeos -a -i rhel5compute -p NFS -D 1 -s node002 -L /diskless/i386/RHEL5-AS
	out, _ := mustRun(t, "os", "add", "rhel5compute", "--image", s.image, "--tftpboot", s.tftp, "--nfs-server", "node002")
	if !strings.Contains(out, "Kernel not specified, using 2.6.18-128.el5\n") {
		t.Errorf("os add said %q, want the kernel it picked", out)
	}
	if got := get(t, filepath.Join(s.tftp, "linux-install/rhel5compute/vmlinuz")); got != "kernel 128" {
		t.Errorf("vmlinuz = %q", got)
	}
	out, _ = mustRun(t, "os", "list", "--tftpboot", s.tftp)
	for _, w := range []string{"Description: rhel5compute\n", "Location: " + s.location + "\n", "Snapshots: " + s.snap + "\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("os list lacks %q:\n%s", w, out)
		}
	}

	// The pxeboot loop, all nodes at once.
	out, errs := mustRun(t, "node", "add", "--os", "rhel5compute", "--tftpboot", s.tftp, "--nodes", s.nodes,
		"--ramdisk-size", "28753", "--ethernet", "eth0", "--nis-domain", "my_nis_domain", "--append", "console=ttyS0,115200n8r")
	if !strings.Contains(errs, "wrote the default files list to "+filepath.Join(s.snap, "files")) {
		t.Errorf("node add did not say it wrote the default files list:\n%s", errs)
	}
	if !strings.Contains(out, "built 2 snapshots") {
		t.Errorf("node add output:\n%s", out)
	}
	want001 := "default rhel5compute\n\nlabel rhel5compute\n    kernel rhel5compute/vmlinuz\n" +
		"    append initrd=rhel5compute/initrd.img root=/dev/ram0 init=disklessrc NFSROOT=node002:" + s.location +
		" ramdisk_size=28753 ETHERNET=eth0 SNAPSHOT=node001 NISDOMAIN=my_nis_domain console=ttyS0,115200n8r\n"
	if got := get(t, filepath.Join(s.tftp, "linux-install/pxelinux.cfg/0A088801")); got != want001 {
		t.Errorf("0A088801:\n%s\nwant:\n%s", got, want001)
	}
	if got := get(t, filepath.Join(s.tftp, "linux-install/pxelinux.cfg/0A08E249")); !strings.Contains(got, "SNAPSHOT=node003 ") {
		t.Errorf("0A08E249:\n%s", got)
	}
	for _, host := range []string{"node001", "node003"} {
		if got := get(t, filepath.Join(s.snap, host, "etc/ssh/sshd_config")); got != "PermitRootLogin no\n" {
			t.Errorf("%s: sshd_config = %q", host, got)
		}
		if _, err := os.Lstat(filepath.Join(s.snap, host, "usr")); err == nil {
			t.Errorf("%s: an unlisted path was copied", host)
		}
	}
	if !strings.HasPrefix(get(t, filepath.Join(s.snap, "files")), "# This file lists") {
		t.Errorf("default files list not written")
	}

	out, _ = mustRun(t, "node", "list", "--tftpboot", s.tftp)
	if want := "10.8.136.1      node001                                # os rhel5compute, linux-install/pxelinux.cfg/0A088801\n" +
		"10.8.226.73     node003              00:21:5e:40:64:5c # os rhel5compute, linux-install/pxelinux.cfg/0A08E249\n"; out != want {
		t.Errorf("node list:\n%s\nwant:\n%s", out, want)
	}

	// The golden node changes; node003 changed its resolv.conf meanwhile.
	put(t, filepath.Join(s.snap, "node003/etc/resolv.conf"), "nameserver 127.0.0.1\n")
	put(t, filepath.Join(s.image, "etc/resolv.conf"), "nameserver 10.8.0.2\n")
	put(t, filepath.Join(s.snap, "files.custom"), "/usr/bin/dstat\n")
	out, errs = mustRun(t, "snapshot", "build", "--json", "--image", s.image, "--snapshot-dir", s.snap, "--nodes", s.nodes)
	var rep struct {
		OK        bool
		Totals    snapshot.Counts
		Conflicts []snapshot.Conflict
		Nodes     []snapshot.NodeResult
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s\nstderr: %s", err, out, errs)
	}
	if !rep.OK || len(rep.Conflicts) != 1 || rep.Conflicts[0].Node != "node003" || rep.Conflicts[0].Path != "/etc/resolv.conf" {
		t.Errorf("refresh: ok %v, conflicts %+v", rep.OK, rep.Conflicts)
	}
	if rep.Nodes[0].Updated != 1 || rep.Totals.Created != 2*3 {
		t.Errorf("refresh counts: %+v, totals %+v; want node001 updated 1 and /usr/bin/dstat (and its parents) created on both", rep.Nodes, rep.Totals)
	}
	if got := get(t, filepath.Join(s.snap, "node003/etc/resolv.conf")); got != "nameserver 127.0.0.1\n" {
		t.Errorf("node003's edit lost: %q", got)
	}
	if got := get(t, filepath.Join(s.snap, "node001/etc/resolv.conf")); got != "nameserver 10.8.0.2\n" {
		t.Errorf("node001 did not follow the image: %q", got)
	}
	// Nothing changed: nothing copied; dry run itemizes nothing.
	out, _ = mustRun(t, "snapshot", "build", "-n", "-i", "--image", s.image, "--snapshot-dir", s.snap, "--nodes", s.nodes)
	if !strings.Contains(out, "created 0, updated 0") || strings.Contains(out, "+++") {
		t.Errorf("dry run after a build:\n%s", out)
	}

	out, _ = mustRun(t, "render", "dhcpd", "--nodes", s.nodes, "--next-server", "10.8.0.2")
	for _, w := range []string{"host node003 {\n\thardware ethernet 00:21:5E:40:64:5C;\n\tfixed-address 10.8.226.73;\n" +
		"\tif option arch = 00:07 or option arch = 00:09 {\n\t\tfilename \"linux-install/grub/shimx64.efi\";\n\t} else {\n" +
		"\t\tfilename \"linux-install/pxelinux.0\";\n\t}\n\tnext-server 10.8.0.2;\n}\n",
		"# node001 (10.8.136.1) skipped: no MAC address"} {
		if !strings.Contains(out, w) {
			t.Errorf("render dhcpd lacks %q:\n%s", w, out)
		}
	}
	out, _ = mustRun(t, "render", "exports", "--image", s.image, "--snapshot-dir", s.snap, "--clients", "10.8.0.0/16")
	if want := fmt.Sprintf("%s 10.8.0.0/16(ro,sync,no_root_squash,no_subtree_check,fsid=%d)\n%s 10.8.0.0/16(rw,sync,no_root_squash,no_subtree_check,fsid=%d)\n",
		s.image, netboot.FSID(s.image), s.snap, netboot.FSID(s.snap)); out != want {
		t.Errorf("render exports:\n%s\nwant:\n%s", out, want)
	}
	out, _ = mustRun(t, "render", "exports", "--image", s.image, "--snapshot-dir", s.snap, "--nodes", s.nodes)
	if want := fmt.Sprintf("%s/node003 10.8.226.73(rw,sync,no_root_squash,no_subtree_check,fsid=%d)\n", s.snap, netboot.FSID(s.snap+"/node003")); !strings.Contains(out, want) {
		t.Errorf("render exports --nodes:\n%s\nlacks:\n%s", out, want)
	}
	out, _ = mustRun(t, "render", "ganesha", "--image", s.image, "--snapshot-dir", s.snap, "--nodes", s.nodes, "--snapshot-clients", "127.0.0.1")
	for _, w := range []string{"Dir_Chunk = 0;", "Protocols = 3, 4;", "\tPath = \"" + s.snap + "/node003\";\n", "\t\tClients = 10.8.226.73, 127.0.0.1;\n\t\tAccess_Type = RW;\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("render ganesha lacks %q:\n%s", w, out)
		}
	}

	// node remove keeps the snapshot; --purge removes it.
	mustRun(t, "node", "remove", "--tftpboot", s.tftp, "node001")
	if _, err := os.Lstat(filepath.Join(s.tftp, "linux-install/pxelinux.cfg/0A088801")); err == nil {
		t.Errorf("node001's config not removed")
	}
	if _, err := os.Lstat(filepath.Join(s.snap, "node001/etc/resolv.conf")); err != nil {
		t.Errorf("node remove without --purge removed the snapshot: %v", err)
	}
	mustRun(t, "node", "remove", "--tftpboot", s.tftp, "--purge", "10.8.226.73")
	if _, err := os.Lstat(filepath.Join(s.snap, "node003")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("node remove --purge left the snapshot: %v", err)
	}
	if _, err := os.Lstat(snapshot.RecordPath(snapshot.DefaultStateDir(s.snap), "node003")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("node remove --purge left the record: %v", err)
	}
	if out, _ := mustRun(t, "node", "list", "--tftpboot", s.tftp, "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("node list after removals: %s", out)
	}
	mustRun(t, "os", "remove", "--tftpboot", s.tftp, "rhel5compute")
	if out, _ := mustRun(t, "os", "list", "--tftpboot", s.tftp, "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("os list after removal: %s", out)
	}
}

func TestCLIErrors(t *testing.T) {
	s := newSite(t)
	put(t, filepath.Join(s.dir, "bad-nodes"), "10.8.136.1 node001\n10.8.136.1 node_2\nfe80::1 node3\n")
	put(t, filepath.Join(s.dir, "bad-files"), "/etc/ssh/\netc/relative\n/var/../etc\n")
	build := []string{"snapshot", "build", "--image", s.image, "--snapshot-dir", s.snap, "--nodes", s.nodes}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{name: "nodes errors as file:line", args: []string{"snapshot", "build", "--image", s.image, "--snapshot-dir", s.snap, "--nodes", filepath.Join(s.dir, "bad-nodes")},
			code: exitcode.Usage, stderr: []string{"bad-nodes:2: bad host name \"node_2\"", "bad-nodes:3: IPv6 address fe80::1"}},
		{name: "list errors as file:line", args: append(build[:len(build):len(build)], "--files", filepath.Join(s.dir, "bad-files")),
			code: exitcode.Usage, stderr: []string{"bad-files:2: invalid path \"etc/relative\"", "bad-files:3:"}},
		{name: "missing image", args: []string{"snapshot", "build", "--image", filepath.Join(s.dir, "nope"), "--snapshot-dir", s.snap, "--nodes", s.nodes},
			code: exitcode.Select, stderr: []string{"no such file or directory"}},
		{name: "missing nodes file", args: []string{"snapshot", "build", "--image", s.image, "--snapshot-dir", s.snap, "--nodes", filepath.Join(s.dir, "nope")},
			code: exitcode.Select},
		{name: "unknown OS", args: []string{"node", "add", "--os", "nope", "--tftpboot", s.tftp, "10.8.136.1", "node001"}, code: exitcode.Select},
		{name: "both nodes forms", args: []string{"node", "add", "--os", "x", "--tftpboot", s.tftp, "--nodes", s.nodes, "10.8.136.1", "node001"}, code: exitcode.Usage},
		{name: "unknown node to remove", args: []string{"node", "remove", "--tftpboot", s.tftp, "node999"}, code: exitcode.Select, stderr: []string{"node node999: no pxelinux config"}},
		{name: "relative exports path", args: []string{"render", "exports", "--image", "root", "--snapshot-dir", s.snap}, code: exitcode.Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errs)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
		})
	}
	if _, err := os.Lstat(s.snap); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed command created the snapshot dir: %v", err)
	}
}

func TestCLIBuildLockedAndPartial(t *testing.T) {
	s := newSite(t)
	args := []string{"snapshot", "build", "--image", s.image, "--snapshot-dir", s.snap, "--nodes", s.nodes}
	unlock, err := imaging.Lock(snapshot.DefaultStateDir(s.snap))
	if err != nil {
		t.Fatal(err)
	}
	if _, errs, code := run(t, args...); code != exitcode.Locked {
		t.Errorf("locked: exit %d, want %d\n%s", code, exitcode.Locked, errs)
	}
	unlock()
	// node003's snapshot is a symlink: refused, node001 still built.
	outside := filepath.Join(s.dir, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.snap, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(s.snap, "node003")); err != nil {
		t.Fatal(err)
	}
	_, errs, code := run(t, args...)
	if code != exitcode.Partial || !strings.Contains(errs, "node003: snapshot of node003") {
		t.Errorf("symlinked snapshot: exit %d, want %d\n%s", code, exitcode.Partial, errs)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("wrote through a symlinked snapshot: %v", ents)
	}
	if _, err := os.Lstat(filepath.Join(s.snap, "node001/etc/ssh/sshd_config")); err != nil {
		t.Errorf("node001 not built: %v", err)
	}
}

func TestCLIListSymlinkRefused(t *testing.T) {
	s := newSite(t)
	if err := os.MkdirAll(s.snap, 0o755); err != nil {
		t.Fatal(err)
	}
	// A node planted files.custom -> /etc/shadow in the exported snapshot
	// directory.
	if err := os.Symlink("/etc/shadow", filepath.Join(s.snap, "files.custom")); err != nil {
		t.Fatal(err)
	}
	_, errs, code := run(t, "snapshot", "build", "--image", s.image, "--snapshot-dir", s.snap, "--nodes", s.nodes)
	if code == 0 || !strings.Contains(errs, "files.custom is a symlink: refused") {
		t.Errorf("exit %d, stderr:\n%s", code, errs)
	}
}

func TestCLIOSAddKernel(t *testing.T) {
	s := newSite(t)
	out, _ := mustRun(t, "os", "add", "old", "--image", s.image, "--tftpboot", s.tftp, "--nfs-server", "10.8.0.2", "--kernel", "2.6.18-8.el5", "--json")
	var o netboot.OS
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if o.Kernel != "2.6.18-8.el5" || o.Location != s.location || o.NFSServer != "10.8.0.2" {
		t.Errorf("os add --kernel: %+v", o)
	}
	if strings.Contains(out, "Kernel not specified") {
		t.Errorf("said it picked a kernel it was given")
	}
}

// TestCLINFSRoot adds a Debian-style image (mkinitramfs, no client piece
// yet, then with it) and a node, and checks the warning and the lines
// written.
func TestCLINFSRoot(t *testing.T) {
	s := newSite(t)
	put(t, filepath.Join(s.image, "boot/vmlinuz-6.1.0-28-amd64"), "kernel 6.1")
	put(t, filepath.Join(s.image, "boot/initrd.img-6.1.0-28-amd64"), "initrd 6.1")
	put(t, filepath.Join(s.image, "usr/sbin/mkinitramfs"), "#!/bin/sh\n")

	out, errs := mustRun(t, "os", "add", "deb", "--image", s.image, "--tftpboot", s.tftp, "--nfs-server", "10.0.2.2", "--no-loaders")
	if !strings.Contains(errs, "warning: ") || !strings.Contains(errs, "goldsync-agent boot install") {
		t.Errorf("os add without the client piece: stderr %q, want the warning", errs)
	}
	if !strings.Contains(out, "boot style nfsroot, initramfs-tools, NFS options tcp,v3,nolock,acregmin=10,acregmax=10,acdirmin=10,acdirmax=10") {
		t.Errorf("os add said %q", out)
	}
	if _, err := os.Lstat(filepath.Join(s.tftp, "linux-install/pxelinux.0")); err == nil {
		t.Error("loaders installed despite --no-loaders")
	}
	put(t, filepath.Join(s.image, "usr/share/initramfs-tools/scripts/nfs-bottom/goldsync"), "#!/bin/sh\n")
	_, errs = mustRun(t, "os", "add", "deb", "--image", s.image, "--tftpboot", s.tftp, "--nfs-server", "10.0.2.2", "--no-loaders")
	if strings.Contains(errs, "warning") {
		t.Errorf("warning with the client piece present: %q", errs)
	}

	mustRun(t, "node", "add", "--os", "deb", "--tftpboot", s.tftp, "--no-snapshot", "--append", "console=ttyS0", "10.0.2.15", "node001", "52:54:00:12:34:56")
	snap := s.snap
	want := "    append initrd=deb/initrd.img root=/dev/nfs boot=nfs nfsroot=10.0.2.2:" + s.image + ",tcp,v3,nolock,acregmin=10,acregmax=10,acdirmin=10,acdirmax=10 ip=dhcp ro goldsync.snapshot=10.0.2.2:" + snap + "/node001 console=ttyS0\n    ipappend 2\n"
	if got := get(t, filepath.Join(s.tftp, "linux-install/pxelinux.cfg/0A00020F")); !strings.HasSuffix(got, want) {
		t.Errorf("pxelinux config:\n%s\nwant it to end with:\n%s", got, want)
	}
	if got := get(t, filepath.Join(s.tftp, "linux-install/grub/grub.cfg-10.0.2.15")); !strings.Contains(got, " console=ttyS0 BOOTIF=01-52-54-00-12-34-56\n") {
		t.Errorf("GRUB config:\n%s", got)
	}
	out, _ = mustRun(t, "node", "list", "--tftpboot", s.tftp)
	if !strings.Contains(out, "10.0.2.15       node001") {
		t.Errorf("node list:\n%s", out)
	}

	// netboot install: whatever this server has, it says what it did.
	out, _ = mustRun(t, "netboot", "install", "--tftpboot", s.tftp)
	if !strings.Contains(out, "goldsync: boot loaders in ") {
		t.Errorf("netboot install said %q", out)
	}
}

// TestCLIRenderFromConfig renders exports, ganesha and dhcpd from the
// cluster config alone.
func TestCLIRenderFromConfig(t *testing.T) {
	c := newCluster(t, false)
	out, _ := mustRun(t, "--config", c.config, "render", "exports")
	want := fmt.Sprintf("%s *(ro,sync,no_root_squash,no_subtree_check,fsid=%d)\n", c.root, netboot.FSID(c.root)) +
		fmt.Sprintf("%s/node001 10.8.136.1(rw,sync,no_root_squash,no_subtree_check,fsid=%d)\n", c.snapDir, netboot.FSID(c.snapDir+"/node001")) +
		fmt.Sprintf("%s/node002 10.8.136.2(rw,sync,no_root_squash,no_subtree_check,fsid=%d)\n", c.snapDir, netboot.FSID(c.snapDir+"/node002"))
	if out != want {
		t.Errorf("render exports from the config:\n%s\nwant:\n%s", out, want)
	}
	out, _ = mustRun(t, "--config", c.config, "render", "ganesha", "--first-export-id", "7")
	for _, w := range []string{"Export_Id = 7;\n\tPath = \"" + c.root + "\";", "Export_Id = 9;\n\tPath = \"" + c.snapDir + "/node002\";"} {
		if !strings.Contains(out, w) {
			t.Errorf("render ganesha from the config lacks %q:\n%s", w, out)
		}
	}
	out, _ = mustRun(t, "--config", c.config, "render", "dhcpd")
	if !strings.Contains(out, "host node002 {\n\thardware ethernet 00:21:5E:40:64:5C;") {
		t.Errorf("render dhcpd from the config:\n%s", out)
	}
	// The node (the one with a MAC) boots from the config's nfs_server;
	// --next-server is every node's.
	if !strings.Contains(out, "next-server 10.8.0.2;") {
		t.Errorf("render dhcpd from the config: no next-server 10.8.0.2 (the config's nfs_server):\n%s", out)
	}
	out, _ = mustRun(t, "--config", c.config, "render", "dhcpd", "--next-server", "10.9.9.9")
	if !strings.Contains(out, "next-server 10.9.9.9;") || strings.Contains(out, "next-server 10.8.0.2;") {
		t.Errorf("render dhcpd --next-server 10.9.9.9: want it for the node:\n%s", out)
	}
	// The netboot commands read the config's tftpboot without --tftpboot.
	if err := os.MkdirAll(filepath.Join(c.tftpboot, "linux-install", "pxelinux.cfg"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"node", "list"}, {"os", "list"}} {
		if out, errs, code := run(t, append([]string{"--config", c.config}, args...)...); code != 0 {
			t.Errorf("goldsync --config %s %s: exit %d (the config's tftpboot is %s)\n%s%s", c.config, strings.Join(args, " "), code, c.tftpboot, out, errs)
		}
	}
	if _, errs, code := run(t, "--config", filepath.Join(t.TempDir(), "none.toml"), "node", "list"); code != exitcode.Usage || !strings.Contains(errs, "--tftpboot") {
		t.Errorf("node list with a missing --config: exit %d, want %d and a hint at --tftpboot: %s", code, exitcode.Usage, errs)
	}
	// Half the flags is an error, not a silent fallback.
	if _, errs, code := run(t, "--config", c.config, "render", "exports", "--image", c.root); code == 0 || !strings.Contains(errs, "--snapshot-dir") {
		t.Errorf("render exports --image alone: exit %d, %s", code, errs)
	}
}
