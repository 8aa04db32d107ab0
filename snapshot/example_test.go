package snapshot_test

import (
	"fmt"
	"strings"

	"github.com/goldsync/goldsync/snapshot"
)

func ExampleParseNodes() {
	const nodes = `# IP          hostname  [MAC]
10.8.136.1      node001
10.8.226.73     node003   00:21:5E:40:64:5C
`
	list, err := snapshot.ParseNodes("nodes", strings.NewReader(nodes))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range list {
		mac := "no MAC"
		if n.MAC != nil {
			mac = snapshot.FormatMAC(n.MAC)
		}
		fmt.Println(n.Source, n.Host, n.IP, snapshot.HexIP(n.IP), mac)
	}

	// Every problem is reported, each as file:line.
	_, err = snapshot.ParseNodes("nodes", strings.NewReader("fe80::1 node001\n10.8.136.2 node_2\n"))
	fmt.Println(err)
	// Output:
	// nodes:2 node001 10.8.136.1 0A088801 no MAC
	// nodes:3 node003 10.8.226.73 0A08E249 00:21:5E:40:64:5C
	// nodes:1: IPv6 address fe80::1: not supported, pxelinux names config files by IPv4 address
	// nodes:2: bad host name "node_2": character '_' not allowed (letters, digits, hyphens and dots only)
}

func ExampleMergeLists() {
	files, _ := snapshot.ParseFiles("files", strings.NewReader("/etc/ssh/\n/var/log/\n"))
	custom, _ := snapshot.ParseFiles("files.custom", strings.NewReader("/opt/app/data/\n/etc/ssh/\n"))
	items, notices := snapshot.MergeLists(files, custom)
	for _, it := range items {
		fmt.Println(it.Abs(), it.Kind, it.Source)
	}
	for _, n := range notices {
		fmt.Println("notice:", n)
	}
	// Output:
	// /etc/ssh/ files files:1
	// /opt/app/data/ files files.custom:1
	// /var/log/ files files:2
	// notice: files.custom:2: /etc/ssh/ already listed at files:1; ignored
}
