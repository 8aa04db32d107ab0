package snapshot_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goldsync/goldsync/snapshot"
)

func ExampleBuild() {
	dir, err := os.MkdirTemp("", "diskless")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	// A tiny image: what goldsync pull keeps in /diskless/i386/RHEL5-AS/root.
	image := filepath.Join(dir, "root")
	for p, content := range map[string]string{
		"etc/ssh/sshd_config": "PermitRootLogin no\n",
		"etc/resolv.conf":     "nameserver 10.8.0.1\n",
		"var/log/messages":    "",
	} {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(image, p)), 0o755)
		_ = os.WriteFile(filepath.Join(image, p), []byte(content), 0o644)
	}
	nodes, _ := snapshot.ParseNodes("nodes", strings.NewReader("10.8.136.1 node001\n10.8.226.73 node003\n"))
	files, _ := snapshot.ParseFiles("files", strings.NewReader("/etc/ssh/\n/etc/resolv.conf\n/var/log/\n/etc/ntp.conf\n"))
	items, _ := snapshot.MergeLists(files)
	opts := snapshot.BuildOptions{
		ImageRoot:   image,
		SnapshotDir: filepath.Join(dir, "snapshot"),
		Nodes:       nodes,
		Items:       items,
	}
	show := func(res *snapshot.BuildResult, err error) {
		if err != nil {
			fmt.Println(err)
		}
		for _, n := range res.Nodes {
			fmt.Printf("%s: created %d, updated %d, kept %d, conflicts %d\n", n.Node, n.Created, n.Updated, n.Kept, n.Conflicts)
		}
		for _, c := range res.Conflicts {
			fmt.Printf("conflict: %s %s\n", c.Node, c.Path)
		}
	}

	res, err := snapshot.Build(context.Background(), opts)
	fmt.Println(res.Notices)
	show(res, err)

	// node003 edits its resolv.conf; the image changes it and sshd_config.
	_ = os.WriteFile(filepath.Join(dir, "snapshot/node003/etc/resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644)
	_ = os.WriteFile(filepath.Join(image, "etc/resolv.conf"), []byte("nameserver 10.8.0.2\n"), 0o644)
	_ = os.WriteFile(filepath.Join(image, "etc/ssh/sshd_config"), []byte("PermitRootLogin yes\n"), 0o644)
	show(snapshot.Build(context.Background(), opts))

	// Nothing changed: nothing copied.
	show(snapshot.Build(context.Background(), opts))
	// Output:
	// [files:4: /etc/ntp.conf: not in the image; skipped]
	// node001: created 7, updated 0, kept 0, conflicts 0
	// node003: created 7, updated 0, kept 0, conflicts 0
	// node001: created 0, updated 2, kept 0, conflicts 0
	// node003: created 0, updated 1, kept 0, conflicts 1
	// conflict: node003 /etc/resolv.conf
	// node001: created 0, updated 0, kept 0, conflicts 0
	// node003: created 0, updated 0, kept 0, conflicts 1
	// conflict: node003 /etc/resolv.conf
}
