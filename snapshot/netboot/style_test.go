package netboot

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/snapshot"
)

// debian12 is an nfsroot OS booted by initramfs-tools, the QEMU test's.
var debian12 = OS{
	Name:        "debian12",
	Location:    "/diskless/debian12",
	ImageRoot:   "/diskless/debian12/root",
	SnapshotDir: "/diskless/debian12/snapshot",
	NFSServer:   "10.0.2.2",
	Kernel:      "6.1.0-28-amd64",
	KernelFile:  "debian12/vmlinuz",
	InitrdFile:  "debian12/initrd.img",
	Style:       StyleNFSRoot,
	Initramfs:   InitramfsTools,
}

// rocky9 is an nfsroot OS booted by dracut.
var rocky9 = OS{
	Name:        "rocky9",
	Location:    "/diskless/rocky9",
	ImageRoot:   "/diskless/rocky9/root",
	SnapshotDir: "/diskless/rocky9/snapshot",
	NFSServer:   "10.0.2.2",
	Kernel:      "5.14.0-427.el9.x86_64",
	KernelFile:  "rocky9/vmlinuz",
	InitrdFile:  "rocky9/initrd.img",
	Style:       StyleNFSRoot,
	Initramfs:   Dracut,
}

var (
	// qemuNode is the QEMU test's node, without and with its MAC.
	qemuNode    = snapshot.Node{IP: netip.MustParseAddr("10.0.2.15"), Host: "node001"}
	qemuNodeMAC = snapshot.Node{IP: netip.MustParseAddr("10.0.2.15"), Host: "node001", MAC: mustMAC("52:54:00:12:34:56")}
)

// TestKernelArgs checks the kernel line of every style and boot loader.
func TestKernelArgs(t *testing.T) {
	tests := []struct {
		name   string
		os     OS
		node   snapshot.Node
		opts   NodeOptions
		loader string
		want   string
	}{
		{
			name: "disklessrc, seed", os: rhel5, node: node001, opts: opts001, loader: loaderGrub,
			want: "root=/dev/ram0 init=disklessrc NFSROOT=server:/diskless/i386/RHEL5-AS ramdisk_size=28753 ETHERNET=eth0 SNAPSHOT=node001 NISDOMAIN=my_nis_domain console=ttyS0,115200n8r",
		},
		{
			name: "disklessrc record without a style", os: func() OS { o := rhel5; o.Style = ""; return o }(), node: node003, loader: loaderIPXE,
			want: "root=/dev/ram0 init=disklessrc NFSROOT=server:/diskless/i386/RHEL5-AS ETHERNET=eth0 SNAPSHOT=node003",
		},
		{
			name: "initramfs-tools, pxelinux", os: debian12, node: qemuNodeMAC, loader: loaderPXELinux,
			want: "root=/dev/nfs boot=nfs nfsroot=10.0.2.2:/diskless/debian12/root,tcp,v3,nolock,acregmin=10,acregmax=10,acdirmin=10,acdirmax=10 ip=dhcp ro goldsync.snapshot=10.0.2.2:/diskless/debian12/snapshot/node001",
		},
		{
			name: "initramfs-tools, GRUB with a MAC", os: debian12, node: qemuNodeMAC, loader: loaderGrub,
			want: "root=/dev/nfs boot=nfs nfsroot=10.0.2.2:/diskless/debian12/root,tcp,v3,nolock,acregmin=10,acregmax=10,acdirmin=10,acdirmax=10 ip=dhcp ro goldsync.snapshot=10.0.2.2:/diskless/debian12/snapshot/node001 BOOTIF=01-52-54-00-12-34-56",
		},
		{
			name: "initramfs-tools, GRUB without a MAC", os: debian12, node: qemuNode, loader: loaderGrub,
			want: "root=/dev/nfs boot=nfs nfsroot=10.0.2.2:/diskless/debian12/root,tcp,v3,nolock,acregmin=10,acregmax=10,acdirmin=10,acdirmax=10 ip=dhcp ro goldsync.snapshot=10.0.2.2:/diskless/debian12/snapshot/node001",
		},
		{
			name: "initramfs-tools, iPXE without a MAC", os: debian12, node: qemuNode, loader: loaderIPXE,
			want: "root=/dev/nfs boot=nfs nfsroot=10.0.2.2:/diskless/debian12/root,tcp,v3,nolock,acregmin=10,acregmax=10,acdirmin=10,acdirmax=10 ip=dhcp ro goldsync.snapshot=10.0.2.2:/diskless/debian12/snapshot/node001 BOOTIF=01-${netX/mac:hexhyp}",
		},
		{
			name: "initramfs-tools ignores disklessrc options, keeps Append and the snapshot name",
			os:   debian12, node: qemuNode, loader: loaderPXELinux,
			opts: NodeOptions{RamdiskSize: 1, Ethernet: "eth0", NISDomain: "nis", SnapshotName: "spare", Append: "console=ttyS0 quiet"},
			want: "root=/dev/nfs boot=nfs nfsroot=10.0.2.2:/diskless/debian12/root,tcp,v3,nolock,acregmin=10,acregmax=10,acdirmin=10,acdirmax=10 ip=dhcp ro goldsync.snapshot=10.0.2.2:/diskless/debian12/snapshot/spare console=ttyS0 quiet",
		},
		{
			name: "initramfs-tools, own NFS options",
			os:   func() OS { o := debian12; o.NFSOptions = "tcp,v3,nolock,acregmax=3"; return o }(), node: qemuNode, loader: loaderPXELinux,
			want: "root=/dev/nfs boot=nfs nfsroot=10.0.2.2:/diskless/debian12/root,tcp,v3,nolock,acregmax=3 ip=dhcp ro goldsync.snapshot=10.0.2.2:/diskless/debian12/snapshot/node001",
		},
		{
			name: "dracut, pxelinux", os: rocky9, node: qemuNodeMAC, loader: loaderPXELinux, opts: NodeOptions{Append: "console=ttyS0"},
			want: "root=nfs:10.0.2.2:/diskless/rocky9/root:vers=3,tcp,nolock,actimeo=10 rd.neednet=1 ip=dhcp ro goldsync.snapshot=10.0.2.2:/diskless/rocky9/snapshot/node001 console=ttyS0",
		},
		{
			name: "dracut, iPXE with a MAC", os: rocky9, node: qemuNodeMAC, loader: loaderIPXE,
			want: "root=nfs:10.0.2.2:/diskless/rocky9/root:vers=3,tcp,nolock,actimeo=10 rd.neednet=1 ip=dhcp ro goldsync.snapshot=10.0.2.2:/diskless/rocky9/snapshot/node001 BOOTIF=01-52-54-00-12-34-56",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(kernelArgs(tt.os, tt.node, tt.opts, tt.loader), " ")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("kernel args (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoaderLines checks where each loader puts the kernel line and the
// interface: ipappend 2 for pxelinux, BOOTIF= for GRUB and iPXE, never
// ETHERNET= in the nfsroot style.
func TestLoaderLines(t *testing.T) {
	pxe := string(PXELinuxConfig(debian12, qemuNodeMAC, NodeOptions{Ethernet: "eth0"}))
	if !strings.HasSuffix(pxe, "\n    ipappend 2\n") {
		t.Errorf("nfsroot pxelinux config lacks ipappend 2:\n%s", pxe)
	}
	if strings.Contains(string(PXELinuxConfig(rhel5, node001, opts001)), "ipappend") {
		t.Error("disklessrc pxelinux config got ipappend")
	}
	for _, cfg := range []string{pxe, string(GrubConfig(debian12, qemuNode, NodeOptions{Ethernet: "eth0"})), string(IPXEScript(rocky9, qemuNode, NodeOptions{}))} {
		if strings.Contains(cfg, "ETHERNET=") || strings.Contains(cfg, "eth0") {
			t.Errorf("nfsroot config names an interface:\n%s", cfg)
		}
	}
}

// TestWriteNodeConfigsNFSRootGolden writes the QEMU test's node for each
// nfsroot generator and compares every file with the golden files under
// testdata/netboot/<OS>/tftpboot.
func TestWriteNodeConfigsNFSRootGolden(t *testing.T) {
	for _, o := range []OS{debian12, rocky9} {
		t.Run(o.Name, func(t *testing.T) {
			tftp := fakeTFTP(t, o)
			if err := WriteNodeConfigs(tftp, o, []snapshot.Node{qemuNodeMAC}, NodeOptions{Append: "console=ttyS0"}); err != nil {
				t.Fatal(err)
			}
			got := configFiles(t, tftp)
			slices.Sort(got)
			want := []string{
				"grub/grub.cfg",
				"linux-install/grub/grub.cfg",
				"linux-install/grub/grub.cfg-0A00020F",
				"linux-install/grub/grub.cfg-10.0.2.15",
				"linux-install/ipxe/10.0.2.15.ipxe",
				"linux-install/ipxe/boot.ipxe",
				"linux-install/pxelinux.cfg/0A00020F",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("files written (-want +got):\n%s", diff)
			}
			for _, f := range got {
				data, err := os.ReadFile(filepath.Join(tftp, f))
				if err != nil {
					t.Fatal(err)
				}
				checkGolden(t, o.Name+"/tftpboot/"+f, data)
			}
			cfgs, err := ListNodeConfigs(tftp)
			if err != nil {
				t.Fatal(err)
			}
			wantCfg := []NodeConfig{{IP: qemuNode.IP, Snapshot: "node001", OS: o.Name, File: "linux-install/pxelinux.cfg/0A00020F", MAC: qemuNodeMAC.MAC.String()}}
			if diff := cmp.Diff(wantCfg, cfgs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("ListNodeConfigs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOSValidateStyle(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(o *OS)
		wantErr string
	}{
		{name: "initramfs-tools", edit: func(o *OS) {}},
		{name: "dracut", edit: func(o *OS) { o.Initramfs = Dracut }},
		{name: "own klibc options", edit: func(o *OS) { o.NFSOptions = "vers=3,tcp,nolock,acregmax=3,ro" }},
		{name: "dracut takes actimeo", edit: func(o *OS) { o.Initramfs, o.NFSOptions = Dracut, "vers=3,tcp,nolock,actimeo=3" }},
		{name: "klibc has no actimeo", edit: func(o *OS) { o.NFSOptions = "tcp,v3,nolock,actimeo=10" }, wantErr: `NFS option "actimeo=10": klibc's nfsmount`},
		{name: "an option klibc does not know", edit: func(o *OS) { o.NFSOptions = "tcp,noatime" }, wantErr: `NFS option "noatime"`},
		{name: "disklessrc", edit: func(o *OS) { o.Style, o.Initramfs = StyleDisklessrc, "" }},
		{name: "no style is disklessrc", edit: func(o *OS) { o.Style, o.Initramfs = "", "" }},
		{name: "unknown style", edit: func(o *OS) { o.Style = "nfs" }, wantErr: `boot style "nfs": want nfsroot or disklessrc`},
		{name: "nfsroot without a generator", edit: func(o *OS) { o.Initramfs = "" }, wantErr: "initramfs \"\": want initramfs-tools or dracut"},
		{name: "disklessrc with a generator", edit: func(o *OS) { o.Style = StyleDisklessrc }, wantErr: "only nfsroot uses one"},
		{name: "options with a blank", edit: func(o *OS) { o.NFSOptions = "tcp, v3" }, wantErr: "only letters, digits"},
		{name: "klibc option without its value's =", edit: func(o *OS) { o.NFSOptions = "tcp,acregmin" }, wantErr: `NFS option "acregmin"`},
		{name: "options with a colon", edit: func(o *OS) { o.NFSOptions = "vers=3:x" }, wantErr: "only letters, digits"},
		{name: "options with an empty option", edit: func(o *OS) { o.NFSOptions = "tcp,,v3" }, wantErr: "empty option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := debian12
			tt.edit(&o)
			err := o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// An OS record written before boot styles loads as disklessrc.
func TestLoadOSWithoutStyle(t *testing.T) {
	tftp := t.TempDir()
	dir := filepath.Join(tftp, filepath.FromSlash(StoreDir))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const old = `{
	"name": "rhel5compute",
	"location": "/diskless/i386/RHEL5-AS",
	"image_root": "/diskless/i386/RHEL5-AS/root",
	"snapshot_dir": "/diskless/i386/RHEL5-AS/snapshot",
	"nfs_server": "server",
	"kernel": "2.6.18-128.el5",
	"kernel_file": "rhel5compute/vmlinuz",
	"initrd_file": "rhel5compute/initrd.img"
}
`
	if err := os.WriteFile(filepath.Join(dir, "rhel5compute.json"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOS(tftp, "rhel5compute")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rhel5, got); diff != "" {
		t.Errorf("LoadOS (-want +got):\n%s", diff)
	}
}

// TestAddOSStyle checks the detection of the boot style, the defaults and
// the warning about a missing client piece.
func TestAddOSStyle(t *testing.T) {
	debBoot := map[string]string{"boot/vmlinuz-6.1.0-28-amd64": "k", "boot/initrd.img-6.1.0-28-amd64": "i"}
	tests := []struct {
		name      string
		files     map[string]string
		links     map[string]string
		opts      AddOSOptions
		want      [3]string // style, initramfs, NFS options
		wantWarn  string
		wantNoWar bool
		wantErr   string
	}{
		{
			name:  "Debian with the client piece",
			files: with(debBoot, map[string]string{"usr/sbin/mkinitramfs": "#!/bin/sh", "etc/initramfs-tools/scripts/nfs-bottom/goldsync": "#!/bin/sh"}),
			want:  [3]string{StyleNFSRoot, InitramfsTools, DefaultInitramfsToolsNFSOptions}, wantNoWar: true,
		},
		{
			name:  "Debian, merged /usr, client piece from the package",
			files: with(debBoot, map[string]string{"usr/sbin/mkinitramfs": "#!/bin/sh", "usr/share/initramfs-tools/scripts/nfs-bottom/goldsync": "#!/bin/sh"}),
			links: map[string]string{"sbin": "usr/sbin"},
			want:  [3]string{StyleNFSRoot, InitramfsTools, DefaultInitramfsToolsNFSOptions}, wantNoWar: true,
		},
		{
			name:     "Debian without the client piece warns",
			files:    with(debBoot, map[string]string{"sbin/mkinitramfs": "#!/bin/sh"}),
			want:     [3]string{StyleNFSRoot, InitramfsTools, DefaultInitramfsToolsNFSOptions},
			wantWarn: "install it on the golden node with `goldsync-agent boot install`, then pull again and re-run os add",
		},
		{
			name:  "dracut with the module",
			files: with(debBoot, map[string]string{"usr/bin/dracut": "x", "usr/lib/dracut/modules.d/95goldsync/module-setup.sh": "x"}),
			want:  [3]string{StyleNFSRoot, Dracut, DefaultDracutNFSOptions}, wantNoWar: true,
		},
		{
			name:     "dracut in sbin, no module",
			files:    with(debBoot, map[string]string{"usr/sbin/dracut": "x"}),
			want:     [3]string{StyleNFSRoot, Dracut, DefaultDracutNFSOptions},
			wantWarn: "usr/lib/dracut/modules.d/95goldsync/module-setup.sh",
		},
		{
			name:  "RHEL 5 mkinitrd",
			files: with(rhelBoot, map[string]string{"sbin/mkinitrd": "x"}),
			want:  [3]string{StyleDisklessrc, "", ""}, wantNoWar: true,
		},
		{
			name:  "style forced over detection",
			files: with(debBoot, map[string]string{"usr/sbin/mkinitramfs": "x"}),
			opts:  AddOSOptions{Style: StyleDisklessrc},
			want:  [3]string{StyleDisklessrc, "", ""}, wantNoWar: true,
		},
		{
			name:  "generator given implies nfsroot, own options",
			files: debBoot,
			opts:  AddOSOptions{Initramfs: Dracut, NFSOptions: "vers=3,tcp,nolock,actimeo=3"},
			want:  [3]string{StyleNFSRoot, Dracut, "vers=3,tcp,nolock,actimeo=3"}, wantWarn: "no goldsync client piece",
		},
		{
			name:    "nfsroot forced, no generator found",
			files:   debBoot,
			opts:    AddOSOptions{Style: StyleNFSRoot},
			wantErr: "no initramfs generator (mkinitramfs or dracut) in the image: give --initramfs",
		},
		{
			name:    "NFS options for disklessrc",
			files:   rhelBoot,
			opts:    AddOSOptions{NFSOptions: "tcp"},
			wantErr: "NFS options are for boot style nfsroot",
		},
		{
			name:    "generator with disklessrc",
			files:   rhelBoot,
			opts:    AddOSOptions{Style: StyleDisklessrc, Initramfs: Dracut},
			wantErr: "only nfsroot uses one",
		},
		{
			name:    "bad style",
			files:   rhelBoot,
			opts:    AddOSOptions{Style: "nfs"},
			wantErr: `boot style "nfs"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := image(t, tt.files, tt.links)
			opts := tt.opts
			opts.TFTPBoot, opts.Name, opts.ImageRoot, opts.NFSServer = t.TempDir(), "x", img, "10.0.2.2"
			o, warnings, err := AddOS(context.Background(), opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("AddOS = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := [3]string{o.Style, o.Initramfs, o.NFSOptions}; got != tt.want {
				t.Errorf("style, initramfs, options = %q, want %q", got, tt.want)
			}
			if tt.wantNoWar && len(warnings) != 0 {
				t.Errorf("warnings %q, want none", warnings)
			}
			if tt.wantWarn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tt.wantWarn)) {
				t.Errorf("warnings %q, want one containing %q", warnings, tt.wantWarn)
			}
			stored, err := LoadOS(opts.TFTPBoot, "x")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(o, stored); diff != "" {
				t.Errorf("stored OS (-want +got):\n%s", diff)
			}
		})
	}
}

// The TFTP root's grub/grub.cfg, where Debian's signed network GRUB reads,
// is goldsync's only when absent or written by goldsync: another tool's is
// left alone.
func TestWriteNodeConfigsGrubPrefix(t *testing.T) {
	tftp := fakeTFTP(t, debian12)
	p := filepath.Join(tftp, GrubPrefixDir, GrubSharedName)
	if err := WriteNodeConfigs(tftp, debian12, []snapshot.Node{qemuNode}, NodeOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != GrubSharedConfig {
		t.Errorf("grub/grub.cfg = %q, want the shared config", got)
	}
	const menu = "menuentry 'Debian installer' {\n}\n"
	if err := os.WriteFile(p, []byte(menu), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteNodeConfigs(tftp, debian12, []snapshot.Node{qemuNode}, NodeOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != menu {
		t.Errorf("another tool's grub/grub.cfg replaced: %q", got)
	}
}

// TestGrubConfigsParse runs grub-script-check (grub-common) on every GRUB
// config goldsync writes.
func TestGrubConfigsParse(t *testing.T) {
	bin, err := exec.LookPath("grub-script-check")
	if err != nil {
		t.Skip("grub-script-check not installed")
	}
	dir := t.TempDir()
	cfgs := map[string][]byte{
		"shared":          []byte(GrubSharedConfig),
		"disklessrc":      GrubConfig(rhel5, node003, opts003),
		"initramfs-tools": GrubConfig(debian12, qemuNodeMAC, NodeOptions{Append: "console=ttyS0"}),
		"dracut":          GrubConfig(rocky9, qemuNode, NodeOptions{}),
	}
	for name, data := range cfgs {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, p).CombinedOutput(); err != nil {
			t.Errorf("grub-script-check %s: %v\n%s\n%s", name, err, out, data)
		}
	}
}

func TestAddOSStaleInitrd(t *testing.T) {
	d := t.TempDir()
	img := filepath.Join(d, "img")
	tftp := filepath.Join(d, "tftp")
	for _, p := range []string{"boot/vmlinuz-6.1.0-1-amd64", "boot/initrd.img-6.1.0-1-amd64", "usr/sbin/mkinitramfs", "etc/initramfs-tools/scripts/nfs-bottom/goldsync"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(img, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(img, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(tftp, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(img, "boot/initrd.img-6.1.0-1-amd64"), old, old); err != nil {
		t.Fatal(err)
	}
	add := func() []string {
		_, warnings, err := AddOS(context.Background(), AddOSOptions{Name: "deb12", ImageRoot: img, NFSServer: "10.0.2.2", TFTPBoot: tftp})
		if err != nil {
			t.Fatal(err)
		}
		return warnings
	}
	if w := add(); len(w) != 1 || !strings.Contains(w[0], "older than goldsync's client piece") {
		t.Errorf("initrd older than the piece: warnings %q", w)
	}
	now := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(img, "boot/initrd.img-6.1.0-1-amd64"), now, now); err != nil {
		t.Fatal(err)
	}
	if w := add(); len(w) != 0 {
		t.Errorf("initrd newer than the piece: warnings %q", w)
	}
}
