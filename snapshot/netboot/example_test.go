package netboot_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

func ExampleWriteNodeConfigs() {
	tftpboot, err := os.MkdirTemp("", "tftpboot")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(tftpboot)

	// What netboot.AddOS records for pxeos -a -i rhel5compute -s server
	// -L /diskless/i386/RHEL5-AS; here the kernel and initrd are fakes.
	rhel5 := netboot.OS{
		Name:        "rhel5compute",
		Location:    "/diskless/i386/RHEL5-AS",
		ImageRoot:   "/diskless/i386/RHEL5-AS/root",
		SnapshotDir: "/diskless/i386/RHEL5-AS/snapshot",
		NFSServer:   "server",
		Kernel:      "2.6.18-128.el5",
		KernelFile:  "rhel5compute/vmlinuz",
		InitrdFile:  "rhel5compute/initrd.img",
	}
	osDir := filepath.Join(tftpboot, "linux-install", "rhel5compute")
	_ = os.MkdirAll(osDir, 0o755)
	_ = os.WriteFile(filepath.Join(osDir, "vmlinuz"), []byte("kernel"), 0o644)
	_ = os.WriteFile(filepath.Join(osDir, "initrd.img"), []byte("initrd"), 0o644)

	nodes, err := snapshot.ParseNodes("nodes", strings.NewReader("10.8.136.1 node001\n10.8.226.73 node003\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// pxeboot -a -O rhel5compute -r 28753 -e eth0 -N my_nis_domain
	// -s console=ttyS0,115200n8r, for every node.
	opts := netboot.NodeOptions{
		RamdiskSize: 28753,
		Ethernet:    "eth0",
		NISDomain:   "my_nis_domain",
		Append:      "console=ttyS0,115200n8r",
	}
	if err := netboot.WriteNodeConfigs(tftpboot, rhel5, nodes, opts); err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range nodes {
		fmt.Println(n.Host, netboot.NodeConfigPaths(n))
	}
	cfg, _ := os.ReadFile(filepath.Join(tftpboot, "linux-install", "pxelinux.cfg", "0A088801"))
	fmt.Print(string(cfg))
	// Output:
	// node001 [linux-install/pxelinux.cfg/0A088801 linux-install/grub/grub.cfg-0A088801 linux-install/grub/grub.cfg-10.8.136.1 linux-install/ipxe/10.8.136.1.ipxe]
	// node003 [linux-install/pxelinux.cfg/0A08E249 linux-install/grub/grub.cfg-0A08E249 linux-install/grub/grub.cfg-10.8.226.73 linux-install/ipxe/10.8.226.73.ipxe]
	// default rhel5compute
	//
	// label rhel5compute
	//     kernel rhel5compute/vmlinuz
	//     append initrd=rhel5compute/initrd.img root=/dev/ram0 init=disklessrc NFSROOT=server:/diskless/i386/RHEL5-AS ramdisk_size=28753 ETHERNET=eth0 SNAPSHOT=node001 NISDOMAIN=my_nis_domain console=ttyS0,115200n8r
}

// The kernel command lines of node001 (10.0.2.15) for each boot style, as
// its pxelinux config has them (GRUB and iPXE add BOOTIF=; pxelinux adds it
// itself with ipappend 2).
func ExampleKernelArgs() {
	node, err := snapshot.ParseNodes("nodes", strings.NewReader("10.0.2.15 node001\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	base := netboot.OS{
		Name: "debian12", Location: "/diskless/debian12", ImageRoot: "/diskless/debian12/root",
		SnapshotDir: "/diskless/debian12/snapshot", NFSServer: "10.0.2.2",
	}
	for _, style := range []struct{ style, initramfs string }{
		{netboot.StyleNFSRoot, netboot.InitramfsTools},
		{netboot.StyleNFSRoot, netboot.Dracut},
		{netboot.StyleDisklessrc, ""},
	} {
		o := base
		o.Style, o.Initramfs = style.style, style.initramfs
		fmt.Println(strings.Join(netboot.KernelArgs(o, node[0], netboot.NodeOptions{}), " "))
	}
	// Output:
	// root=/dev/nfs boot=nfs nfsroot=10.0.2.2:/diskless/debian12/root,tcp,v3,nolock,acregmin=10,acregmax=10,acdirmin=10,acdirmax=10 ip=dhcp ro goldsync.snapshot=10.0.2.2:/diskless/debian12/snapshot/node001
	// root=nfs:10.0.2.2:/diskless/debian12/root:vers=3,tcp,nolock,actimeo=10 rd.neednet=1 ip=dhcp ro goldsync.snapshot=10.0.2.2:/diskless/debian12/snapshot/node001
	// root=/dev/ram0 init=disklessrc NFSROOT=10.0.2.2:/diskless/debian12 ETHERNET=eth0 SNAPSHOT=node001
}
