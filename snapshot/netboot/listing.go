package netboot

import (
	"bytes"
	"fmt"
)

// FormatOSList lays out OS records as pxeos -l did: a block of
// "Field: value" lines per OS, blank lines between them.
func FormatOSList(list []OS) []byte {
	var b bytes.Buffer
	for i, o := range list {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Description: %s\nProtocol: NFS\nisDiskless: True\nLocation: %s\nNFS server: %s\nKernel: %s\nImage: %s\nSnapshots: %s\nBoot style: %s\n",
			o.Name, o.Location, o.NFSServer, o.Kernel, o.ImageRoot, o.SnapshotDir, o.Style)
		if o.Initramfs != "" {
			fmt.Fprintf(&b, "Initramfs: %s\nNFS options: %s\n", o.Initramfs, o.NFSOptions)
		}
	}
	return b.Bytes()
}

// FormatNodeList lays out node configs as a nodes file (IP HOSTNAME
// [MAC]) with the OS and config file as comments, one node a line.
func FormatNodeList(cfgs []NodeConfig) []byte {
	var b bytes.Buffer
	for _, c := range cfgs {
		fmt.Fprintf(&b, "%-15s %-20s %-17s # os %s, %s\n", c.IP, c.Snapshot, c.MAC, c.OS, c.File)
	}
	return b.Bytes()
}

// NodesBooting counts the node configs that boot the OS name.
func NodesBooting(cfgs []NodeConfig, name string) int {
	n := 0
	for _, c := range cfgs {
		if c.OS == name {
			n++
		}
	}
	return n
}
