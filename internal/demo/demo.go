// Package demo is goldsync's whole job on an embedded sample (goldsync
// demo): a small golden root is generated, pulled into an image through
// the agent protocol, changed the way a package install changes it and
// pulled again; the seed's nodes get snapshots, an OS and boot configs in
// two boot styles. It sits above the libraries it shows, unlike the other
// internal packages, and writes its summary to the writer it is given.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/internal/units"
	"github.com/goldsync/goldsync/remote"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// Nodes is the seed HOWTO's node list (its text lost the addresses; the
// pxelinux file names it shows keep them).
const Nodes = `# IP          hostname  [MAC]
10.8.136.1    node001   00:21:5e:40:64:01
10.8.136.2    node002   00:21:5e:40:64:02
10.8.226.73   node003   00:21:5e:40:64:5c
10.8.136.4    node004   00:21:5e:40:63:c8
`

// RunIn runs the demo (Run) in a new temp dir, removed afterwards unless
// keep, or in dir: a directory the caller names must be new or empty and
// is always kept (the demo never removes what it did not make). The
// directory's fate is said last in w.
func RunIn(ctx context.Context, dir string, keep bool, w io.Writer, log *slog.Logger) error {
	if dir != "" {
		if err := newOrEmpty(dir); err != nil {
			return err
		}
		keep = true
	} else {
		d, err := os.MkdirTemp("", "goldsync-demo-")
		if err != nil {
			return err
		}
		dir = d
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	if err := Run(ctx, dir, w, log); err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(w, "\nkept: %s\n", dir)
	} else {
		fmt.Fprintf(w, "\nremoved %s (--keep keeps it)\n", dir)
	}
	return nil
}

// newOrEmpty checks that dir does not exist or is an empty directory.
func newOrEmpty(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("demo dir: %w", err)
	case len(ents) > 0:
		return fmt.Errorf("demo dir %s is not empty: name a new or empty directory", dir)
	}
	return nil
}

// Run runs the demo in dir (which it fills: the golden root, the image,
// its snapshots and the TFTP tree) and writes its summary to w; log (nil:
// silent) gets the libraries' messages.
func Run(ctx context.Context, dir string, w io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	golden := filepath.Join(dir, "node004-root")
	location := filepath.Join(dir, "diskless", "i386", "RHEL5-AS")
	image := filepath.Join(location, "root")
	snapDir := filepath.Join(location, "snapshot")
	tftp := filepath.Join(dir, "tftpboot")
	for _, d := range []string{golden, location, snapDir, tftp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "goldsync demo in %s\n", dir)

	// 1. A golden root.
	n, err := makeRoot(golden)
	if err != nil {
		return fmt.Errorf("generate golden root: %w", err)
	}
	fmt.Fprintf(w, "  golden root       %d entries (files, links, dirs) generated in %s\n", n, golden)

	// 2. Pull through the agent protocol.
	pull := func(label string) (*imaging.Result, error) {
		src, err := remote.Open(ctx, golden, remote.Options{Logger: log, StateDir: filepath.Join(dir, "agent-state"), Serve: agent.InProcess})
		if err != nil {
			return nil, err
		}
		defer src.Close()
		res, err := imaging.Sync(ctx, src, image, imaging.Options{Excludes: exclude.RootDefaults, Logger: log})
		if err != nil {
			return res, err
		}
		fmt.Fprintf(w, "  %-17s %d entries, %d created, %d updated, %d deleted, %s received, %.2fs\n", label,
			res.Entries, res.Created, res.Updated, res.Deleted, units.Bytes(res.BytesReceived), res.Duration.Seconds())
		return res, nil
	}
	if _, err := pull("pull (full)"); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if _, err := pull("pull (no change)"); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if err := yumInstallDstat(golden); err != nil {
		return err
	}
	if _, err := pull("pull (after yum)"); err != nil {
		return fmt.Errorf("pull: %w", err)
	}

	// 3. Snapshots for the seed's nodes.
	nodes, err := snapshot.ParseNodes("nodes", strings.NewReader(Nodes))
	if err != nil {
		return err
	}
	if _, err := snapshot.WriteDefaultFiles(snapDir); err != nil {
		return err
	}
	items, err := readLists(snapDir)
	if err != nil {
		return err
	}
	br, err := snapshot.Build(ctx, snapshot.BuildOptions{ImageRoot: image, SnapshotDir: snapDir, Nodes: nodes, Items: items, Logger: log})
	if err != nil {
		return fmt.Errorf("snapshot build: %w", err)
	}
	fmt.Fprintf(w, "  snapshots         %d nodes from %d listed paths: %d entries created, %.2fs\n",
		len(br.Nodes), len(items), br.Totals.Created, br.Duration.Seconds())

	// 4. os add, node add.
	o, _, err := netboot.AddOS(ctx, netboot.AddOSOptions{TFTPBoot: tftp, Name: "rhel5compute", Location: location, NFSServer: "10.8.136.254"})
	if err != nil {
		return fmt.Errorf("os add: %w", err)
	}
	fmt.Fprintf(w, "  os add            rhel5compute: kernel %s (newest), vmlinuz and initrd.img in %s\n", o.Kernel,
		filepath.Join(tftp, netboot.InstallDir, o.Name))
	nopts := netboot.NodeOptions{RamdiskSize: 28753, Ethernet: "eth0", NISDomain: "my_nis_domain", Append: "console=ttyS0,115200n8r"}
	// The seed's RHEL 5 nodes boot disklessrc; node004 boots the same
	// image the modern way, nfsroot: the kernel mounts the image read-only
	// over NFS and goldsync's initramfs piece mounts its snapshot.
	modern := nodes[len(nodes)-1:]
	if err := netboot.WriteNodeConfigs(tftp, o, nodes[:len(nodes)-1], nopts); err != nil {
		return fmt.Errorf("node add: %w", err)
	}
	o2, _, err := netboot.AddOS(ctx, netboot.AddOSOptions{TFTPBoot: tftp, Name: "modern", Location: location, NFSServer: "10.8.136.254",
		Style: netboot.StyleNFSRoot, Initramfs: netboot.InitramfsTools})
	if err != nil {
		return fmt.Errorf("os add: %w", err)
	}
	fmt.Fprintf(w, "  os add            modern: the same image, boot style %s (%s)\n", netboot.StyleNFSRoot, netboot.InitramfsTools)
	if err := netboot.WriteNodeConfigs(tftp, o2, modern, netboot.NodeOptions{Append: "console=ttyS0,115200n8r"}); err != nil {
		return fmt.Errorf("node add: %w", err)
	}
	pxe := filepath.Join(tftp, netboot.InstallDir, "pxelinux.cfg")
	names, _ := os.ReadDir(pxe)
	var hex []string
	for _, e := range names {
		hex = append(hex, e.Name())
	}
	fmt.Fprintf(w, "  node add          %d pxelinux.cfg files: %s\n", len(hex), strings.Join(hex, " "))
	node1, err := os.ReadFile(filepath.Join(pxe, "0A088801"))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\npxelinux.cfg/0A088801 (node001, boot style disklessrc):\n%s", node1)
	node4, err := os.ReadFile(filepath.Join(pxe, "0A088804"))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\npxelinux.cfg/0A088804 (node004, boot style nfsroot):\n%s", node4)
	return nil
}

// readLists reads the snapshot dir's files and files.custom.
func readLists(snapDir string) ([]snapshot.Item, error) {
	var lists [][]snapshot.Item
	for _, name := range []string{snapshot.DefaultFilesName, snapshot.CustomFilesName} {
		p := filepath.Join(snapDir, name)
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		items, err := snapshot.ParseFiles(p, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		lists = append(lists, items)
	}
	items, _ := snapshot.MergeLists(lists...)
	return items, nil
}

// makeRoot writes a small but realistic golden root.
func makeRoot(root string) (int, error) {
	rng := rand.New(rand.NewPCG(4, 2))
	n := 0
	file := func(p string, size int, mode os.FileMode) error {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		b := make([]byte, size)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return err
		}
		n++
		return os.Chmod(full, mode)
	}
	steps := []error{
		file("etc/hostname", 8, 0o644),
		file("etc/passwd", 900, 0o644),
		file("etc/shadow", 700, 0o000),
		file("etc/adjtime", 40, 0o644),
		file("etc/ssh/sshd_config", 3000, 0o600),
		file("etc/ssh/ssh_host_rsa_key", 1700, 0o600),
		file("etc/sysconfig/network-scripts/ifcfg-eth0", 200, 0o644),
		file("usr/bin/passwd", 30000, 0o4755),
		file("usr/bin/ping", 60000, 0o755),
		file("usr/lib64/libc.so.6", 200000, 0o755),
		file("var/log/messages", 5000, 0o600),
		file("var/lib/rpm/Packages", 2<<20, 0o644),
		file("root/.bashrc", 176, 0o644),
		file("boot/vmlinuz-2.6.18-128.el5", 40000, 0o644),
		file("boot/initrd-2.6.18-128.el5.img", 30000, 0o600),
		file("boot/vmlinuz-2.6.18-164.el5", 41000, 0o644),
		file("boot/initrd-2.6.18-164.el5.img", 31000, 0o600),
		file("proc/cpuinfo", 100, 0o444),
		file("sys/kernel/notes", 100, 0o444),
	}
	for i := range 200 {
		steps = append(steps, file(fmt.Sprintf("usr/share/doc/pkg%03d/README", i), 500+rng.IntN(4000), 0o644))
	}
	for _, err := range steps {
		if err != nil {
			return n, err
		}
	}
	for _, l := range []struct{ old, new string }{{"usr/bin/passwd", "usr/sbin/passwd-link"}} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(l.new)), 0o755)
		if err := os.Link(filepath.Join(root, l.old), filepath.Join(root, l.new)); err != nil {
			return n, err
		}
		n++
	}
	for _, s := range []struct{ target, name string }{{"usr/lib64", "lib64"}, {"../run", "var/run"}, {"/usr/share/zoneinfo/UTC", "etc/localtime"}} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(s.name)), 0o755)
		if err := os.Symlink(s.target, filepath.Join(root, s.name)); err != nil {
			return n, err
		}
		n++
	}
	for _, d := range []string{"tmp", "run", "home", "var/spool", "var/lock"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return n, err
		}
		n++
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return n, err
	}
	// Every entry below root, the directories MkdirAll made included: what
	// the pull's entry count compares with.
	n = 0
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err == nil && p != root {
			n++
		}
		return err
	})
	return n, err
}

// yumInstallDstat changes the golden root the way a package install does:
// new files (written to a temp name and renamed, as rpm does), a rewritten
// database page, a deleted file.
func yumInstallDstat(root string) error {
	for i, p := range []string{"usr/bin/dstat", "usr/share/dstat/dstat.py", "usr/share/man/man1/dstat.1.gz"} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		tmp := full + ";5f1a2b3c"
		if err := os.WriteFile(tmp, bytes.Repeat([]byte{byte('x' + i)}, 10000*(i+1)), 0o755); err != nil {
			return err
		}
		if err := os.Rename(tmp, full); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(filepath.Join(root, "var/lib/rpm/Packages"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	f.WriteAt(bytes.Repeat([]byte("dstat-0.7.2"), 100), 1<<20)
	f.Close()
	os.Chtimes(filepath.Join(root, "var/lib/rpm/Packages"), time.Now(), time.Now())
	return os.Remove(filepath.Join(root, "usr/share/doc/pkg007/README"))
}
