package netboot

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/goldsync/goldsync/snapshot"
)

// DefaultDHCPFilename is the boot file DHCP hands out: pxelinux.0 under
// InstallDir, as in RHEL's netboot setup.
const DefaultDHCPFilename = InstallDir + "/pxelinux.0"

// RenderDhcpd renders ISC dhcpd host declarations, one per node with a
// MAC, to include in a subnet or shared-network block of dhcpd.conf:
//
//	host node003 {
//		hardware ethernet 00:21:5E:40:64:5C;
//		fixed-address 10.8.226.73;
//		filename "linux-install/pxelinux.0";
//		next-server 10.8.0.2;
//	}
//
// A node without a MAC gets a comment saying it was skipped. nextServer is
// the TFTP server, left out when empty; filename defaults to
// DefaultDHCPFilename. Nodes are assumed valid (snapshot.CheckNodes).
func RenderDhcpd(nodes []snapshot.Node, nextServer string, filename string) []byte {
	if filename == "" {
		filename = DefaultDHCPFilename
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# dhcpd host declarations for %d diskless nodes, written by goldsync.\n", len(nodes))
	for _, n := range nodes {
		b.WriteByte('\n')
		if n.MAC == nil {
			fmt.Fprintf(&b, "# %s (%s) skipped: no MAC address in the nodes file.\n", n.Host, n.IP)
			continue
		}
		fmt.Fprintf(&b, "host %s {\n", n.Host)
		fmt.Fprintf(&b, "\thardware ethernet %s;\n", snapshot.FormatMAC(n.MAC))
		fmt.Fprintf(&b, "\tfixed-address %s;\n", n.IP)
		fmt.Fprintf(&b, "\tfilename %s;\n", dhcpdQuote(filename))
		if nextServer != "" {
			fmt.Fprintf(&b, "\tnext-server %s;\n", nextServer)
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}

// dhcpdQuote quotes a dhcpd.conf string.
func dhcpdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// RenderExports renders the two /etc/exports lines of a diskless image, as
// in the seed procedure: the image root read-only and the snapshot
// directory read-write, both without root squashing (clients run as root
// on them):
//
//	/diskless/i386/RHEL5-AS/root *(ro,sync,no_root_squash)
//	/diskless/i386/RHEL5-AS/snapshot *(rw,sync,no_root_squash)
//
// clients is a blank-separated list of exports(5) client specifications
// (hosts, networks, wildcards), each given the options; empty means "*".
func RenderExports(imageRoot, snapshotDir string, clients string) []byte {
	cs := strings.Fields(clients)
	if len(cs) == 0 {
		cs = []string{"*"}
	}
	var b bytes.Buffer
	for _, e := range []struct{ dir, opts string }{
		{imageRoot, "ro,sync,no_root_squash"},
		{snapshotDir, "rw,sync,no_root_squash"},
	} {
		b.WriteString(exportsPath(e.dir))
		for _, c := range cs {
			fmt.Fprintf(&b, " %s(%s)", c, e.opts)
		}
		b.WriteByte('\n')
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
