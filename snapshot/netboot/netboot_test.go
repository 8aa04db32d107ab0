package netboot

import (
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/netboot")

// goldenDir holds this package's golden files, beside the snapshot
// package's test data.
const goldenDir = "../testdata/netboot"

// checkGolden compares got with the golden file name, or rewrites it with
// -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join(goldenDir, filepath.FromSlash(name))
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from its golden file (-want +got):\n%s", name, diff)
	}
}

// rhel5 is the OS of the seed procedure: pxeos -a -i rhel5compute -p NFS
// -D 1 -s server -L /diskless/i386/RHEL5-AS.
var rhel5 = OS{
	Name:        "rhel5compute",
	Location:    "/diskless/i386/RHEL5-AS",
	ImageRoot:   "/diskless/i386/RHEL5-AS/root",
	SnapshotDir: "/diskless/i386/RHEL5-AS/snapshot",
	NFSServer:   "server",
	Kernel:      "2.6.18-128.el5",
	KernelFile:  "rhel5compute/vmlinuz",
	InitrdFile:  "rhel5compute/initrd.img",
	Style:       StyleDisklessrc,
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

var (
	node001 = snapshot.Node{IP: netip.MustParseAddr("10.8.136.1"), Host: "node001"}
	node003 = snapshot.Node{IP: netip.MustParseAddr("10.8.226.73"), Host: "node003", MAC: mustMAC("00:21:5E:40:64:5C")}
	// The seed's pxeboot -a -O rhel5compute -r 28753 -S node001 -e eth0
	// -N my_nis_domain -s console=ttyS0,115200n8r.
	opts001 = NodeOptions{RamdiskSize: 28753, Ethernet: "eth0", NISDomain: "my_nis_domain", Append: "console=ttyS0,115200n8r"}
	// node003's file in the seed: ramdisk 28760, no console.
	opts003 = NodeOptions{RamdiskSize: 28760, NISDomain: "my_nis_domain"}
)

// fakeTFTP makes a TFTP root holding o's kernel and initrd, as AddOS
// leaves it.
func fakeTFTP(t *testing.T, o OS) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{o.KernelFile, o.InitrdFile} {
		p := filepath.Join(dir, InstallDir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("boot image "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// configFiles lists the files under the node config directories of a TFTP
// root, relative to it.
func configFiles(t *testing.T, tftp string) []string {
	t.Helper()
	var files []string
	for _, d := range []string{PXELinuxDir, GrubDir, IPXEDir, GrubPrefixDir} {
		ents, err := os.ReadDir(filepath.Join(tftp, d))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			files = append(files, d+"/"+e.Name())
		}
	}
	return files
}

// The pxelinux config of node001 is the seed's, as the brief gives it.
func TestPXELinuxConfigSeed(t *testing.T) {
	const want = `default rhel5compute

label rhel5compute
    kernel rhel5compute/vmlinuz
    append initrd=rhel5compute/initrd.img root=/dev/ram0 init=disklessrc NFSROOT=server:/diskless/i386/RHEL5-AS ramdisk_size=28753 ETHERNET=eth0 SNAPSHOT=node001 NISDOMAIN=my_nis_domain console=ttyS0,115200n8r
`
	if diff := cmp.Diff(want, string(PXELinuxConfig(rhel5, node001, opts001))); diff != "" {
		t.Errorf("PXELinuxConfig (-want +got):\n%s", diff)
	}
}

func TestPXELinuxConfigOptions(t *testing.T) {
	tests := []struct {
		name string
		opts NodeOptions
		want string // the append line
	}{
		{
			name: "defaults",
			want: "initrd=rhel5compute/initrd.img root=/dev/ram0 init=disklessrc NFSROOT=server:/diskless/i386/RHEL5-AS ETHERNET=eth0 SNAPSHOT=node001",
		},
		{
			name: "interface, snapshot name, several extra args",
			opts: NodeOptions{Ethernet: "ib0", SnapshotName: "spare", Append: " console=tty0   console=ttyS1,9600n8 "},
			want: "initrd=rhel5compute/initrd.img root=/dev/ram0 init=disklessrc NFSROOT=server:/diskless/i386/RHEL5-AS ETHERNET=ib0 SNAPSHOT=spare console=tty0 console=ttyS1,9600n8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(PXELinuxConfig(rhel5, node001, tt.opts))
			_, line, ok := strings.Cut(got, "    append ")
			if !ok || line != tt.want+"\n" {
				t.Errorf("append line %q, want %q", line, tt.want+"\n")
			}
		})
	}
}

// TestWriteNodeConfigsGolden writes the seed's node001 and node003 and
// compares every file written with testdata/netboot/tftpboot.
func TestWriteNodeConfigsGolden(t *testing.T) {
	tftp := fakeTFTP(t, rhel5)
	if err := WriteNodeConfigs(tftp, rhel5, []snapshot.Node{node001}, opts001); err != nil {
		t.Fatal(err)
	}
	if err := WriteNodeConfigs(tftp, rhel5, []snapshot.Node{node003}, opts003); err != nil {
		t.Fatal(err)
	}
	got := configFiles(t, tftp)
	want := []string{
		"linux-install/pxelinux.cfg/0A088801",
		"linux-install/pxelinux.cfg/0A08E249",
		"grub/grub.cfg",
		"linux-install/grub/grub.cfg",
		"linux-install/grub/grub.cfg-0A088801",
		"linux-install/grub/grub.cfg-0A08E249",
		"linux-install/grub/grub.cfg-10.8.136.1",
		"linux-install/grub/grub.cfg-10.8.226.73",
		"linux-install/ipxe/10.8.136.1.ipxe",
		"linux-install/ipxe/10.8.226.73.ipxe",
		"linux-install/ipxe/boot.ipxe",
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("files written (-want +got):\n%s", diff)
	}
	for _, f := range got {
		data, err := os.ReadFile(filepath.Join(tftp, f))
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "tftpboot/"+f, data)
		fi, err := os.Stat(filepath.Join(tftp, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", f, fi.Mode())
		}
	}
}

func TestRenderGolden(t *testing.T) {
	nodes := []snapshot.Node{node001, node003}
	checkGolden(t, "dhcpd.conf", RenderDhcpd(nodes, DhcpdOptions{NextServer: "10.8.0.2"}))
	checkGolden(t, "exports", RenderExports(ExportsOptions{ImageRoot: rhel5.ImageRoot, SnapshotDir: rhel5.SnapshotDir}))
	checkGolden(t, "exports-per-node", RenderExports(ExportsOptions{ImageRoot: rhel5.ImageRoot, SnapshotDir: rhel5.SnapshotDir, Clients: "10.8.0.0/16", Nodes: nodes}))
}

func TestFSID(t *testing.T) {
	a, b := FSID("/diskless/i386/RHEL5-AS/root"), FSID("/diskless/i386/RHEL5-AS/snapshot")
	if a == b || a == 0 || b == 0 || a > 1<<31-1 || b > 1<<31-1 {
		t.Errorf("FSID = %d, %d: want distinct numbers from 1 to 2^31-1", a, b)
	}
	if FSID("/diskless/i386/RHEL5-AS/root") != a {
		t.Error("FSID is not stable")
	}
}

func TestRenderExports(t *testing.T) {
	fsid := func(p string) string { return fmt.Sprint(FSID(p)) }
	tests := []struct {
		name string
		opts ExportsOptions
		want string
	}{
		{
			name: "seed",
			opts: ExportsOptions{ImageRoot: "/diskless/i386/RHEL5-AS/root", SnapshotDir: "/diskless/i386/RHEL5-AS/snapshot"},
			want: "/diskless/i386/RHEL5-AS/root *(ro,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/diskless/i386/RHEL5-AS/root") + ")\n" +
				"/diskless/i386/RHEL5-AS/snapshot *(rw,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/diskless/i386/RHEL5-AS/snapshot") + ")\n",
		},
		{
			name: "several clients",
			opts: ExportsOptions{ImageRoot: "/d/root", SnapshotDir: "/d/snapshot", Clients: "10.8.0.0/16  node*.cluster"},
			want: "/d/root 10.8.0.0/16(ro,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/root") + ") node*.cluster(ro,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/root") + ")\n" +
				"/d/snapshot 10.8.0.0/16(rw,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/snapshot") + ") node*.cluster(rw,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/snapshot") + ")\n",
		},
		{
			name: "blank in a path is escaped",
			opts: ExportsOptions{ImageRoot: "/d/my root", SnapshotDir: "/d/snap"},
			want: "/d/my\\040root *(ro,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/my root") + ")\n/d/snap *(rw,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/snap") + ")\n",
		},
		{
			name: "per-node snapshots",
			opts: ExportsOptions{ImageRoot: "/d/root", SnapshotDir: "/d/snapshot", Nodes: []snapshot.Node{node001, node003}},
			want: "/d/root *(ro,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/root") + ")\n" +
				"/d/snapshot/node001 10.8.136.1(rw,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/snapshot/node001") + ")\n" +
				"/d/snapshot/node003 10.8.226.73(rw,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/snapshot/node003") + ")\n",
		},
		{
			name: "per-node snapshots, also to an admin host",
			opts: ExportsOptions{ImageRoot: "/d/root", SnapshotDir: "/d/snapshot", Nodes: []snapshot.Node{node001}, SnapshotClients: "127.0.0.1"},
			want: "/d/root *(ro,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/root") + ")\n" +
				"/d/snapshot/node001 10.8.136.1(rw,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/snapshot/node001") + ") 127.0.0.1(rw,sync,no_root_squash,no_subtree_check,fsid=" + fsid("/d/snapshot/node001") + ")\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(RenderExports(tt.opts))); diff != "" {
				t.Errorf("RenderExports (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderDhcpd(t *testing.T) {
	tests := []struct {
		name    string
		opts    DhcpdOptions
		want    []string
		wantNot []string
	}{
		{
			name: "per architecture, defaults",
			want: []string{
				"option arch code 93 = unsigned integer 16;\n",
				"# node001 (10.8.136.1) skipped: no MAC address in the nodes file.\n",
				"host node003 {\n\thardware ethernet 00:21:5E:40:64:5C;\n\tfixed-address 10.8.226.73;\n" +
					"\tif option arch = 00:07 or option arch = 00:09 {\n\t\tfilename \"linux-install/grub/shimx64.efi\";\n" +
					"\t} else {\n\t\tfilename \"linux-install/pxelinux.0\";\n\t}\n}\n",
				"# 1 of them have no next-server (none given: --next-server IP)",
			},
			wantNot: []string{"\tnext-server"},
		},
		{
			name:    "own file names",
			opts:    DhcpdOptions{BIOSFilename: "lpxelinux.0", EFIFilename: "linux-install/grub/grubx64.efi", NextServer: "10.8.0.2"},
			want:    []string{"\t\tfilename \"linux-install/grub/grubx64.efi\";\n\t} else {\n\t\tfilename \"lpxelinux.0\";\n\t}\n\tnext-server 10.8.0.2;\n}\n"},
			wantNot: []string{"no next-server"},
		},
		{
			name:    "one file for all",
			opts:    DhcpdOptions{BIOSFilename: "linux-install/ipxe/undionly.kpxe", EFIFilename: "linux-install/ipxe/undionly.kpxe"},
			want:    []string{"\tfixed-address 10.8.226.73;\n\tfilename \"linux-install/ipxe/undionly.kpxe\";\n}\n"},
			wantNot: []string{"option arch", "if "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(RenderDhcpd([]snapshot.Node{node001, node003}, tt.opts))
			for _, s := range tt.want {
				if !strings.Contains(got, s) {
					t.Errorf("RenderDhcpd output\n%s\nlacks\n%s", got, s)
				}
			}
			for _, s := range tt.wantNot {
				if strings.Contains(got, s) {
					t.Errorf("RenderDhcpd output\n%s\nhas %q", got, s)
				}
			}
		})
	}
}

// nodesFile returns a nodes file of n nodes from 10.8.136.1 on.
func nodesFile(n int) string {
	var b strings.Builder
	b.WriteString("# generated: 128 diskless nodes\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "10.8.136.%d node%03d\n", i, i)
	}
	return b.String()
}

// The seed's 128-node cluster: one pxelinux file per node.
func TestWriteNodeConfigs128(t *testing.T) {
	nodes, err := snapshot.ParseNodes("nodes", strings.NewReader(nodesFile(128)))
	if err != nil {
		t.Fatal(err)
	}
	tftp := fakeTFTP(t, rhel5)
	if err := WriteNodeConfigs(tftp, rhel5, nodes, NodeOptions{RamdiskSize: 28753, NISDomain: "my_nis_domain"}); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(tftp, PXELinuxDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "0A") { // ls pxelinux.cfg/ | grep 0A | wc -l
			names = append(names, e.Name())
		}
	}
	if len(names) != 128 || len(ents) != 128 {
		t.Fatalf("%d pxelinux files (%d named 0A...), want 128", len(ents), len(names))
	}
	if names[0] != "0A088801" || names[127] != "0A088880" {
		t.Errorf("pxelinux files run %s..%s, want 0A088801..0A088880", names[0], names[127])
	}
	last, err := os.ReadFile(filepath.Join(tftp, PXELinuxDir, "0A088880"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(last), " SNAPSHOT=node128 ") {
		t.Errorf("0A088880 is not node128's:\n%s", last)
	}
	if n := len(configFiles(t, tftp)); n != 4*128+3 { // and the shared grub.cfg (twice) and boot.ipxe
		t.Errorf("%d config files, want %d", n, 4*128+3)
	}
}

func TestWriteNodeConfigsRefuses(t *testing.T) {
	badOS := rhel5
	badOS.Name = "../etc"
	noKernel := rhel5
	noKernel.KernelFile = "other/vmlinuz"
	tests := []struct {
		name    string
		os      OS
		nodes   []snapshot.Node
		opts    NodeOptions
		wantErr []string
	}{
		{name: "bad OS name", os: badOS, nodes: []snapshot.Node{node001}, wantErr: []string{`bad OS name "../etc"`}},
		{name: "kernel not in the TFTP tree", os: noKernel, nodes: []snapshot.Node{node001}, wantErr: []string{"linux-install/other/vmlinuz missing or not a file (add the OS first)"}},
		{name: "shell in Append", os: rhel5, nodes: []snapshot.Node{node001}, opts: NodeOptions{Append: "console=tty0 $(reboot)"}, wantErr: []string{`bad kernel argument "$(reboot)"`}},
		{name: "quote in Append", os: rhel5, nodes: []snapshot.Node{node001}, opts: NodeOptions{Append: `x="a`}, wantErr: []string{"bad kernel argument"}},
		{name: "blank in interface", os: rhel5, nodes: []snapshot.Node{node001}, opts: NodeOptions{Ethernet: "eth0 x"}, wantErr: []string{`bad interface "eth0 x"`}},
		{name: "snapshot name with a slash", os: rhel5, nodes: []snapshot.Node{node001}, opts: NodeOptions{SnapshotName: "a/b"}, wantErr: []string{"must be a single directory name"}},
		{name: "snapshot name for two nodes", os: rhel5, nodes: []snapshot.Node{node001, node003}, opts: NodeOptions{SnapshotName: "x"}, wantErr: []string{"snapshot name x given for 2 nodes"}},
		{name: "negative ramdisk", os: rhel5, nodes: []snapshot.Node{node001}, opts: NodeOptions{RamdiskSize: -1}, wantErr: []string{"ramdisk size -1 is negative"}},
		{
			name:    "one bad node among good ones",
			os:      rhel5,
			nodes:   []snapshot.Node{node001, {IP: netip.MustParseAddr("fe80::1"), Host: "node002"}, node003},
			wantErr: []string{"node 2 (node002): IPv6 address fe80::1"},
		},
		{
			name:    "duplicate nodes",
			os:      rhel5,
			nodes:   []snapshot.Node{node001, {IP: node001.IP, Host: "node009"}},
			wantErr: []string{"IP address 10.8.136.1 already used"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tftp := fakeTFTP(t, rhel5)
			err := WriteNodeConfigs(tftp, tt.os, tt.nodes, tt.opts)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if files := configFiles(t, tftp); len(files) != 0 {
				t.Errorf("files written despite the error: %v", files)
			}
		})
	}
}

func TestRemoveNodeConfigs(t *testing.T) {
	tftp := fakeTFTP(t, rhel5)
	if err := WriteNodeConfigs(tftp, rhel5, []snapshot.Node{node001, node003}, opts003); err != nil {
		t.Fatal(err)
	}
	if err := RemoveNodeConfigs(tftp, []snapshot.Node{node001}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"grub/grub.cfg",
		"linux-install/grub/grub.cfg",
		"linux-install/grub/grub.cfg-0A08E249",
		"linux-install/grub/grub.cfg-10.8.226.73",
		"linux-install/ipxe/10.8.226.73.ipxe",
		"linux-install/ipxe/boot.ipxe",
		"linux-install/pxelinux.cfg/0A08E249",
	}
	got := configFiles(t, tftp)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files left (-want +got):\n%s", diff)
	}
	// Removing again, or a node never written, is fine.
	if err := RemoveNodeConfigs(tftp, []snapshot.Node{node001, {IP: netip.MustParseAddr("10.9.9.9")}}); err != nil {
		t.Errorf("second removal: %v", err)
	}
	if err := RemoveNodeConfigs(tftp, []snapshot.Node{{IP: netip.MustParseAddr("fe80::1"), Host: "x"}}); err == nil {
		t.Error("no error for an IPv6 node")
	}
	// A directory where a config should be is not removed.
	if err := os.Mkdir(filepath.Join(tftp, PXELinuxDir, "0A088801"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := RemoveNodeConfigs(tftp, []snapshot.Node{node001}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("error %v, want one saying it is a directory", err)
	}
}

func TestNodeConfigPaths(t *testing.T) {
	want := []string{"linux-install/pxelinux.cfg/0A08E249", "linux-install/grub/grub.cfg-0A08E249", "linux-install/grub/grub.cfg-10.8.226.73", "linux-install/ipxe/10.8.226.73.ipxe"}
	if diff := cmp.Diff(want, NodeConfigPaths(node003)); diff != "" {
		t.Errorf("NodeConfigPaths (-want +got):\n%s", diff)
	}
	if got := NodeConfigPaths(snapshot.Node{IP: netip.MustParseAddr("::1")}); got != nil {
		t.Errorf("paths for an IPv6 node: %v", got)
	}
}

// walkModes returns the mode of everything under dir.
func walkModes(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	modes := make(map[string]fs.FileMode)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		modes[filepath.ToSlash(rel)] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return modes
}
