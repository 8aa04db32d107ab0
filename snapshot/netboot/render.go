package netboot

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/goldsync/goldsync/snapshot"
)

// DefaultDHCPFilename is the boot file DHCP hands BIOS clients:
// pxelinux.0 under InstallDir, as in RHEL's netboot setup.
const DefaultDHCPFilename = InstallDir + "/pxelinux.0"

// DefaultEFIFilename is the boot file DHCP hands x86-64 UEFI clients: the
// signed shim, which loads grubx64.efi (network GRUB) beside it; see
// InstallLoaders.
const DefaultEFIFilename = GrubDir + "/shimx64.efi"

// DhcpdOptions are the settings of RenderDhcpd.
type DhcpdOptions struct {
	// NextServer is the TFTP server, next-server; empty leaves it out.
	NextServer string
	// NextServers, when set, give some hosts (by host name) their own
	// next-server instead of NextServer: the replica image server that
	// serves them.
	NextServers map[string]string
	// BIOSFilename is the boot file of BIOS (and other non-EFI) clients;
	// empty means DefaultDHCPFilename.
	BIOSFilename string
	// EFIFilename is the boot file of x86-64 UEFI clients (client
	// architecture 7 or 9); empty means DefaultEFIFilename.
	EFIFilename string
}

// ArchOptionDecl declares DHCP option 93, the client system architecture
// (RFC 4578), which a PXE client sends: 0 for BIOS, 7 and 9 for x86-64
// UEFI. ISC dhcpd needs the declaration before a host declaration can test
// it, at the top level of dhcpd.conf: "option definitions may not be
// scoped", so RenderDhcpd's output is included at the top level, not in a
// subnet block (host declarations are global anyway).
const ArchOptionDecl = "option arch code 93 = unsigned integer 16;"

// RenderDhcpd renders ISC dhcpd host declarations, one per node with a
// MAC, to include at the top level of dhcpd.conf (see ArchOptionDecl). Each
// host hands out a boot file by client architecture (option 93, declared
// at the top as ArchOptionDecl): the EFI loader to x86-64 UEFI clients
// (architectures 7 and 9), pxelinux to the others:
//
//	option arch code 93 = unsigned integer 16;
//
//	host node003 {
//		hardware ethernet 00:21:5E:40:64:5C;
//		fixed-address 10.8.226.73;
//		if option arch = 00:07 or option arch = 00:09 {
//			filename "linux-install/grub/shimx64.efi";
//		} else {
//			filename "linux-install/pxelinux.0";
//		}
//		next-server 10.8.0.2;
//	}
//
// When both file names are the same, the host gets that one filename
// line. A node without a MAC gets a comment saying it was skipped; a
// header comment counts the hosts left without a next-server. Nodes
// are assumed valid (snapshot.CheckNodes).
func RenderDhcpd(nodes []snapshot.Node, opts DhcpdOptions) []byte {
	bios, efi := opts.BIOSFilename, opts.EFIFilename
	if bios == "" {
		bios = DefaultDHCPFilename
	}
	if efi == "" {
		efi = DefaultEFIFilename
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# dhcpd host declarations for %d diskless nodes, written by goldsync.\n", len(nodes))
	if missing := noNextServer(nodes, opts); missing > 0 {
		fmt.Fprintf(&b, "# %d of them have no next-server (none given: --next-server IP): their PXE ROMs ask the DHCP server itself for the boot file.\n", missing)
	}
	if bios != efi {
		b.WriteString("# The client architecture (RFC 4578) picks the boot file: 00:07 and 00:09 are x86-64 UEFI.\n")
		b.WriteString(ArchOptionDecl + "\n")
	}
	for _, n := range nodes {
		b.WriteByte('\n')
		if n.MAC == nil {
			fmt.Fprintf(&b, "# %s (%s) skipped: no MAC address in the nodes file.\n", n.Host, n.IP)
			continue
		}
		fmt.Fprintf(&b, "host %s {\n", n.Host)
		fmt.Fprintf(&b, "\thardware ethernet %s;\n", snapshot.FormatMAC(n.MAC))
		fmt.Fprintf(&b, "\tfixed-address %s;\n", n.IP)
		if bios == efi {
			fmt.Fprintf(&b, "\tfilename %s;\n", dhcpdQuote(bios))
		} else {
			b.WriteString("\tif option arch = 00:07 or option arch = 00:09 {\n")
			fmt.Fprintf(&b, "\t\tfilename %s;\n", dhcpdQuote(efi))
			b.WriteString("\t} else {\n")
			fmt.Fprintf(&b, "\t\tfilename %s;\n", dhcpdQuote(bios))
			b.WriteString("\t}\n")
		}
		next := opts.NextServer
		if s, ok := opts.NextServers[n.Host]; ok {
			next = s
		}
		if next != "" {
			fmt.Fprintf(&b, "\tnext-server %s;\n", next)
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}

// noNextServer counts the nodes with a MAC that RenderDhcpd gives no
// next-server.
func noNextServer(nodes []snapshot.Node, opts DhcpdOptions) int {
	n := 0
	for _, nd := range nodes {
		if nd.MAC == nil || opts.NextServer != "" {
			continue
		}
		if opts.NextServers[nd.Host] == "" {
			n++
		}
	}
	return n
}

// dhcpdQuote quotes a dhcpd.conf string.
func dhcpdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// ExportsOptions are the settings of RenderExports and RenderGanesha.
type ExportsOptions struct {
	// ImageRoot is the image root, exported read-only.
	ImageRoot string
	// SnapshotDir holds the nodes' snapshots, exported read-write.
	SnapshotDir string
	// Clients is a blank-separated list of client specifications (hosts,
	// networks such as 10.8.0.0/16, wildcards) the image, and the whole
	// snapshot directory when Nodes is empty, are exported to; empty
	// means every client.
	Clients string
	// Nodes, when set, replace the export of the whole snapshot directory
	// by one export per node, SnapshotDir/<host>, read-write to that
	// node's address only: a node cannot read or write another's
	// snapshot.
	Nodes []snapshot.Node
	// SnapshotClients are blank-separated client specifications also given
	// read-write access to every node's own snapshot export (with Nodes):
	// an admin or backup host, or the address a NAT shows the nodes as
	// (QEMU's user network: 127.0.0.1).
	SnapshotClients string
}

// FSID returns the fsid= of an export: a number derived from the path
// (CRC-32, 1 to 2^31-1), so it is the same every time the exports are
// rendered and distinct between exports in practice. The kernel nfsd puts
// it in file handles instead of the device number, so handles held by
// running clients survive a reboot of the server or a changed device
// number; ganesha's Export_Id plays the same part.
func FSID(path string) uint32 {
	id := crc32.ChecksumIEEE([]byte(path)) & 0x7fffffff
	if id == 0 {
		id = 1 // fsid=0 is the NFSv4 pseudo-root
	}
	return id
}

// RenderExports renders the /etc/exports lines of a diskless image, as in
// the seed procedure: the image root read-only and the snapshot directory
// read-write, both without root squashing (clients run as root on them),
// with a stable fsid= (FSID) and no_subtree_check (subtree checks cost a
// lookup per request and break handles of renamed files):
//
//	/diskless/i386/RHEL5-AS/root *(ro,sync,no_root_squash,no_subtree_check,fsid=N)
//	/diskless/i386/RHEL5-AS/snapshot *(rw,sync,no_root_squash,no_subtree_check,fsid=M)
//
// Each client of opts.Clients is given the options; none means "*". With
// opts.Nodes, each node's snapshot is exported read-write to the node's
// address alone instead of the whole snapshot directory:
//
//	/diskless/i386/RHEL5-AS/snapshot/node001 10.8.136.1(rw,sync,no_root_squash,no_subtree_check,fsid=K)
//
// The kernel nfsd has no directory cache of its own, so a pull's renames
// are visible to clients as soon as their attribute cache expires.
func RenderExports(opts ExportsOptions) []byte {
	cs := strings.Fields(opts.Clients)
	if len(cs) == 0 {
		cs = []string{"*"}
	}
	var b bytes.Buffer
	line := func(dir, access string, clients []string) {
		b.WriteString(exportsPath(dir))
		for _, c := range clients {
			fmt.Fprintf(&b, " %s(%s,sync,no_root_squash,no_subtree_check,fsid=%d)", c, access, FSID(dir))
		}
		b.WriteByte('\n')
	}
	line(opts.ImageRoot, "ro", cs)
	if len(opts.Nodes) == 0 {
		line(opts.SnapshotDir, "rw", cs)
		return b.Bytes()
	}
	for _, n := range opts.Nodes {
		line(opts.SnapshotDir+"/"+n.Host, "rw", append([]string{n.IP.Unmap().String()}, strings.Fields(opts.SnapshotClients)...))
	}
	return b.Bytes()
}

// exportsPath escapes the bytes exports(5) would misread as octal \ooo.
func exportsPath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || c == '\\' || c == '"' || c == '#' {
			fmt.Fprintf(&b, `\%03o`, c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
