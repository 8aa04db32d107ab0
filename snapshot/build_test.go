package snapshot

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/treetest"
)

func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}

// makeNodes returns n nodes, node001 at 10.8.0.1 and so on.
func makeNodes(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{IP: netip.AddrFrom4([4]byte{10, 8, byte((i + 1) >> 8), byte(i + 1)}), Host: fmt.Sprintf("node%03d", i+1)}
	}
	return nodes
}

func mustItems(t *testing.T, list string) []Item {
	t.Helper()
	items, err := ParseFiles("files", strings.NewReader(list))
	if err != nil {
		t.Fatal(err)
	}
	items, _ = MergeLists(items)
	return items
}

// writeTree creates files (path -> content; a trailing slash makes a
// directory) beneath dir with a fixed mtime.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Unix(1_600_000_000, 0)
		if err := os.Chtimes(full, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

// env is a small image and a snapshot dir in a temp dir.
type env struct {
	dir, image, snap string
	items            []Item
	nodes            []Node
}

const smallList = "/etc/ssh/\n/etc/resolv.conf\n/var/log/\n"

func newEnv(t *testing.T, nodes int) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{dir: dir, image: filepath.Join(dir, "root"), snap: filepath.Join(dir, "snapshot"), nodes: makeNodes(nodes)}
	writeTree(t, e.image, map[string]string{
		"etc/ssh/sshd_config":  "PermitRootLogin no\n",
		"etc/ssh/ssh_host_key": "golden key\n",
		"etc/resolv.conf":      "nameserver 10.0.0.1\n",
		"etc/passwd":           "root:x:0:0::/root:/bin/sh\n",
		"var/log/messages":     "golden log\n",
		"usr/bin/true":         "",
	})
	e.items = mustItems(t, smallList)
	return e
}

func (e *env) build(t *testing.T, edit ...func(*BuildOptions)) *BuildResult {
	t.Helper()
	opts := BuildOptions{ImageRoot: e.image, SnapshotDir: e.snap, Nodes: e.nodes, Items: e.items, Parallel: 4}
	for _, f := range edit {
		f(&opts)
	}
	res, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatalf("Build: %v (result %+v)", err, res)
	}
	return res
}

func (e *env) node(host, p string) string { return filepath.Join(e.snap, host, p) }

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBuildFidelity(t *testing.T) {
	needRoot(t, "owners, devices, trusted and security xattrs of the tricky tree")
	treetest.TrackFDs(t)
	dir := t.TempDir()
	image := filepath.Join(dir, "root")
	if err := os.Mkdir(image, 0o755); err != nil {
		t.Fatal(err)
	}
	want := treetest.MakeTricky(t, image, treetest.TrickyOptions{})
	var list []string
	ents, err := os.ReadDir(image)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		list = append(list, "/"+e.Name()+"/")
	}
	snap := filepath.Join(dir, "snapshot")
	nodes := makeNodes(2)
	opts := BuildOptions{ImageRoot: image, SnapshotDir: snap, Nodes: nodes, Items: mustItems(t, strings.Join(list, "\n"))}
	res, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatalf("Build: %v, problems %q", err, res.Problems)
	}
	// The tricky tree has no etc: the identity files and the boot list
	// are all the snapshots add.
	root := func(p string) bool {
		return p == "." || p == "etc" || IsIdentityPath(p) || p == ".goldsync" || p == BootListPath
	}
	for _, n := range nodes {
		got := treetest.Scan(t, filepath.Join(snap, n.Host))
		treetest.Equal(t, want, got, treetest.DiffOptions{IgnorePaths: root, CheckSparse: true})
	}
	if res.Totals.Created == 0 || res.Totals.Created != 2*res.ImageEntries {
		t.Errorf("created %d, want 2 × %d image entries", res.Totals.Created, res.ImageEntries)
	}

	// A rebuild with nothing changed copies nothing and leaves every
	// snapshot as it was.
	res, err = Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Totals != (Counts{}) || len(res.Conflicts) > 0 {
		t.Errorf("rebuild: totals %+v, conflicts %v, want nothing", res.Totals, res.Conflicts)
	}
	for _, n := range nodes {
		treetest.Equal(t, want, treetest.Scan(t, filepath.Join(snap, n.Host)), treetest.DiffOptions{IgnorePaths: root})
	}
}

func TestBuildLocalEditSurvivesRebuild(t *testing.T) {
	e := newEnv(t, 2)
	e.build(t)
	writeFile(t, e.node("node001", "etc/ssh/sshd_config"), "PermitRootLogin yes\n")
	writeFile(t, e.node("node001", "var/log/node.log"), "node's own log\n")
	res := e.build(t)
	if got := readFile(t, e.node("node001", "etc/ssh/sshd_config")); got != "PermitRootLogin yes\n" {
		t.Errorf("node's edit lost: %q", got)
	}
	if got := readFile(t, e.node("node001", "var/log/node.log")); got != "node's own log\n" {
		t.Errorf("node's own file lost: %q", got)
	}
	if res.Nodes[0].Kept != 1 || res.Totals.Created+res.Totals.Updated != 0 || len(res.Conflicts) != 0 {
		t.Errorf("result %+v, conflicts %v: want node001 kept 1, nothing copied, no conflict", res.Nodes, res.Conflicts)
	}
}

func TestBuildUntouchedFileFollowsImage(t *testing.T) {
	e := newEnv(t, 2)
	e.build(t)
	writeFile(t, filepath.Join(e.image, "etc/resolv.conf"), "nameserver 10.0.0.2\n")
	if err := os.Chmod(filepath.Join(e.image, "etc/ssh/sshd_config"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := e.build(t)
	for _, n := range e.nodes {
		if got := readFile(t, e.node(n.Host, "etc/resolv.conf")); got != "nameserver 10.0.0.2\n" {
			t.Errorf("%s: resolv.conf = %q, want the image's new version", n.Host, got)
		}
		fi, err := os.Stat(e.node(n.Host, "etc/ssh/sshd_config"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: sshd_config mode %v (%v), want the image's new 0600", n.Host, fi.Mode(), err)
		}
	}
	if res.Totals.Updated != 4 || res.Totals.Created != 0 {
		t.Errorf("totals %+v, want 4 updated", res.Totals)
	}
}

func TestBuildConflictReported(t *testing.T) {
	e := newEnv(t, 2)
	e.build(t)
	writeFile(t, e.node("node002", "etc/ssh/ssh_host_key"), "node002's own key\n")
	writeFile(t, filepath.Join(e.image, "etc/ssh/ssh_host_key"), "new golden key\n")
	res := e.build(t)
	if got := readFile(t, e.node("node002", "etc/ssh/ssh_host_key")); got != "node002's own key\n" {
		t.Errorf("node002's key = %q, want its own", got)
	}
	if got := readFile(t, e.node("node001", "etc/ssh/ssh_host_key")); got != "new golden key\n" {
		t.Errorf("node001's key = %q, want the image's new one", got)
	}
	if len(res.Conflicts) != 1 {
		t.Fatalf("conflicts %+v, want one", res.Conflicts)
	}
	c := res.Conflicts[0]
	if c.Node != "node002" || c.Path != "/etc/ssh/ssh_host_key" || !strings.Contains(c.Why, "changed on the node") {
		t.Errorf("conflict %+v", c)
	}
	if res.Nodes[1].Conflicts != 1 || res.Totals.Conflicts != 1 {
		t.Errorf("conflict counts: %+v, totals %+v", res.Nodes[1], res.Totals)
	}
	// Reported again next time: the node's version still differs from
	// what goldsync copied, and from the image.
	if res := e.build(t); len(res.Conflicts) != 1 {
		t.Errorf("second rebuild: conflicts %v, want the same one", res.Conflicts)
	}
}

func TestBuild128NodesThenNothing(t *testing.T) {
	e := newEnv(t, 128)
	res := e.build(t, func(o *BuildOptions) { o.Parallel = 0 })
	ents, err := os.ReadDir(e.snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 128 {
		t.Fatalf("%d snapshot dirs, want 128", len(ents))
	}
	if res.Totals.Created != 128*res.ImageEntries || len(res.Nodes) != 128 {
		t.Errorf("created %d, want 128 × %d", res.Totals.Created, res.ImageEntries)
	}
	for _, n := range e.nodes {
		if got := readFile(t, e.node(n.Host, "etc/ssh/sshd_config")); got != "PermitRootLogin no\n" {
			t.Fatalf("%s: sshd_config = %q", n.Host, got)
		}
	}
	records := recordTimes(t, e.snap)
	res = e.build(t, func(o *BuildOptions) { o.Parallel = 0 })
	if res.Totals != (Counts{}) {
		t.Errorf("rebuild with nothing changed: totals %+v, want nothing", res.Totals)
	}
	if after := recordTimes(t, e.snap); !slices.Equal(records, after) {
		t.Errorf("records rewritten by a rebuild with nothing changed")
	}
}

// recordTimes returns the mtimes of the node records.
func recordTimes(t *testing.T, snap string) []int64 {
	t.Helper()
	dir := filepath.Join(DefaultStateDir(snap), "nodes")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fi.ModTime().UnixNano())
	}
	return out
}

func TestBuildMissingPathsSkipped(t *testing.T) {
	e := newEnv(t, 1)
	e.items = mustItems(t, smallList+"/var/lib/nothing/\n/etc/ntp.conf\n")
	res := e.build(t)
	if res.Totals.SkippedMissing != 2 || res.Nodes[0].SkippedMissing != 2 {
		t.Errorf("skipped %d (node %d), want 2", res.Totals.SkippedMissing, res.Nodes[0].SkippedMissing)
	}
	want := []string{"files:4: /var/lib/nothing/: not in the image; skipped", "files:5: /etc/ntp.conf: not in the image; skipped"}
	for _, w := range want {
		if !slices.Contains(res.Notices, w) {
			t.Errorf("notices %q lack %q", res.Notices, w)
		}
	}
	if _, err := os.Lstat(e.node("node001", "var/lib")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("parent of a missing path created: %v", err)
	}
	if got := readFile(t, e.node("node001", "etc/resolv.conf")); got != "nameserver 10.0.0.1\n" {
		t.Errorf("present paths not built: %q", got)
	}
}

func TestBuildKinds(t *testing.T) {
	e := newEnv(t, 1)
	writeTree(t, e.image, map[string]string{
		"var/lib/nfs/statd/sm/":    "",
		"var/lib/nfs/state":        "state\n",
		"var/log/audit/audit.log":  "audit\n",
		"var/run/utmp":             "utmp data\n",
		"var/spool/mail/root":      "mail\n",
		"var/spool/cron/crontabs/": "",
	})
	items, err := ParseRwtab("rwtab", strings.NewReader("dirs /var/lib/nfs\nempty /var/log/audit\nempty /var/run/utmp\nfiles /var/spool/mail\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.items, _ = MergeLists(e.items, items)
	e.build(t)
	for _, c := range []struct {
		path string
		want string // "dir", "missing" or the content
	}{
		{"var/lib/nfs/statd/sm", "dir"},
		{"var/lib/nfs/state", "missing"},
		{"var/log/audit", "dir"},
		{"var/log/audit/audit.log", "missing"},
		{"var/log/messages", "golden log\n"},
		{"var/run/utmp", ""},
		{"var/spool/mail/root", "mail\n"},
		{"var/spool/cron", "missing"},
	} {
		p := e.node("node001", c.path)
		fi, err := os.Lstat(p)
		switch {
		case c.want == "missing":
			if err == nil {
				t.Errorf("%s exists, want it left out", c.path)
			}
		case err != nil:
			t.Errorf("%s: %v", c.path, err)
		case c.want == "dir":
			if !fi.IsDir() {
				t.Errorf("%s is a %v, want a directory", c.path, fi.Mode())
			}
		default:
			if got := readFile(t, p); got != c.want {
				t.Errorf("%s = %q, want %q", c.path, got, c.want)
			}
		}
	}
	// The emptied file keeps the image's metadata.
	fi, err := os.Stat(e.node("node001", "var/run/utmp"))
	if err != nil || fi.ModTime().Unix() != 1_600_000_000 {
		t.Errorf("emptied file mtime %v (%v), want the image's", fi.ModTime(), err)
	}
	if res := e.build(t); res.Totals != (Counts{}) {
		t.Errorf("rebuild: totals %+v, want nothing", res.Totals)
	}
}

// canary returns a path in /etc that must never appear: if a build
// followed a symlink planted by a node it would write it.
func canary(t *testing.T) string {
	name := fmt.Sprintf("goldsync-canary-%d", time.Now().UnixNano())
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/etc", name)) })
	return name
}

func TestBuildNeverFollowsNodeSymlinks(t *testing.T) {
	e := newEnv(t, 3)
	name := canary(t)
	outside := filepath.Join(e.dir, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, e.image, map[string]string{"var/" + name + "/x": "from the image\n", "var/log/secure": "s\n"})
	e.items = mustItems(t, smallList+"/var/"+name+"/\n")
	e.build(t)

	// node001 replaces its var directory with a symlink to /etc, node002
	// with one to a directory outside the snapshot; the image changes
	// beneath var.
	for _, c := range []struct{ host, target string }{{"node001", "/etc"}, {"node002", outside}} {
		v := e.node(c.host, "var")
		if err := os.RemoveAll(v); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(c.target, v); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(e.image, "var", name, "x"), "changed in the image\n")
	writeFile(t, filepath.Join(e.image, "var/log/new"), "new\n")
	res := e.build(t)
	for _, host := range []string{"node001", "node002"} {
		i := slices.IndexFunc(res.Conflicts, func(c Conflict) bool { return c.Node == host && c.Path == "/var" })
		if i < 0 {
			t.Errorf("%s: no conflict reported for /var; conflicts %+v", host, res.Conflicts)
		}
	}
	if got := readFile(t, e.node("node003", "var/"+name+"/x")); got != "changed in the image\n" {
		t.Errorf("node003 did not follow the image: %q", got)
	}
	assertUntouched(t, name, outside)

	// The same symlinks swapped in after the plan was made: the engine's
	// openat2 root refuses to write through them.
	for _, host := range []string{"node001", "node002"} {
		v := e.node(host, "var")
		if err := os.Remove(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(e.node("node003", "var")); err != nil {
		t.Fatal(err)
	}
	testHookBeforeApply = func(host string) {
		target := map[string]string{"node001": "/etc", "node002": outside}[host]
		if target == "" {
			return
		}
		v := e.node(host, "var")
		if err := os.RemoveAll(v); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(target, v); err != nil {
			t.Error(err)
		}
	}
	defer func() { testHookBeforeApply = nil }()
	res, err := Build(context.Background(), BuildOptions{ImageRoot: e.image, SnapshotDir: e.snap, Nodes: e.nodes, Items: e.items})
	if !errors.Is(err, ErrBuild) || !errors.Is(err, imaging.ErrPartial) {
		t.Fatalf("Build through swapped symlinks: err %v, want ErrBuild", err)
	}
	if res.Nodes[0].Failed == 0 || res.Nodes[1].Failed == 0 || res.Nodes[2].Failed != 0 {
		t.Errorf("failed counts %+v, want failures on node001 and node002 only", res.Nodes)
	}
	assertUntouched(t, name, outside)
	if got := readFile(t, e.node("node003", "var/"+name+"/x")); got != "changed in the image\n" {
		t.Errorf("node003 not rebuilt: %q", got)
	}
}

func assertUntouched(t *testing.T, name, outside string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join("/etc", name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/etc/%s written through a node's symlink (%v)", name, err)
	}
	if _, err := os.Lstat("/etc/log/new"); err == nil {
		t.Errorf("/etc/log/new written through a node's symlink")
	}
	ents, err := os.ReadDir(outside)
	if err != nil || len(ents) != 0 {
		t.Errorf("outside dir holds %v (%v), want nothing", ents, err)
	}
}

func TestBuildRefusesSymlinkedSnapshotDir(t *testing.T) {
	e := newEnv(t, 2)
	outside := filepath.Join(e.dir, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.snap, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, e.node("node001", "")); err != nil {
		t.Fatal(err)
	}
	res, err := Build(context.Background(), BuildOptions{ImageRoot: e.image, SnapshotDir: e.snap, Nodes: e.nodes, Items: e.items})
	if !errors.Is(err, ErrBuild) {
		t.Fatalf("err %v, want ErrBuild", err)
	}
	if !strings.Contains(res.Nodes[0].Error, "not a directory (a symlink?); refused") {
		t.Errorf("node001 error %q", res.Nodes[0].Error)
	}
	if res.Nodes[1].Error != "" || res.Nodes[1].Created == 0 {
		t.Errorf("node002 not built: %+v", res.Nodes[1])
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("wrote through the symlinked snapshot dir: %v", ents)
	}
}

func TestBuildDryRunChangesNothing(t *testing.T) {
	e := newEnv(t, 2)
	var items []string
	res := e.build(t, func(o *BuildOptions) {
		o.DryRun = true
		o.Itemize = func(node string, c imaging.Change) { items = append(items, node+" "+c.String()) }
	})
	if _, err := os.Lstat(e.snap); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run created the snapshot dir: %v", err)
	}
	if _, err := os.Lstat(DefaultStateDir(e.snap)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run created the state dir: %v", err)
	}
	if res.Totals.Created != 2*res.ImageEntries || !slices.Contains(items, "node002 >f+++++++++ etc/ssh/sshd_config") {
		t.Errorf("dry run: totals %+v, itemized %q", res.Totals, items)
	}
}

func TestBuildRemovesOnlyItsOwnTemps(t *testing.T) {
	e := newEnv(t, 1)
	e.build(t)
	ours := e.node("node001", "var/log/"+imaging.TempPrefix+"0123456789abcdef")
	theirs := e.node("node001", "var/log/"+imaging.TempPrefix+"notours")
	writeFile(t, ours, "half written")
	writeFile(t, theirs, "the node's")
	e.build(t)
	if _, err := os.Lstat(ours); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file not removed: %v", err)
	}
	if _, err := os.Lstat(theirs); err != nil {
		t.Errorf("a file that is not an engine temp was removed: %v", err)
	}
}

func TestBuildOptionsChecked(t *testing.T) {
	e := newEnv(t, 1)
	for _, c := range []struct {
		name string
		edit func(*BuildOptions)
		want string
	}{
		{"no image", func(o *BuildOptions) { o.ImageRoot = "" }, "image root not set"},
		{"missing image", func(o *BuildOptions) { o.ImageRoot = filepath.Join(e.dir, "nope") }, "no such file"},
		{"bad node", func(o *BuildOptions) { o.Nodes = []Node{{Host: "node_1"}} }, "bad host name"},
		{"state in a node's snapshot", func(o *BuildOptions) { o.StateDir = filepath.Join(e.snap, "NODE001", "state") }, "inside the snapshot of node node001"},
		{"bad item", func(o *BuildOptions) { o.Items = []Item{{Path: "../etc", Kind: KindFiles, Source: "x:1"}} }, "x:1: bad item path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := BuildOptions{ImageRoot: e.image, SnapshotDir: e.snap, Nodes: e.nodes, Items: e.items}
			c.edit(&opts)
			_, err := Build(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want %q", err, c.want)
			}
		})
	}
}

func TestBuildLocked(t *testing.T) {
	e := newEnv(t, 1)
	unlock, err := imaging.Lock(DefaultStateDir(e.snap))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = Build(context.Background(), BuildOptions{ImageRoot: e.image, SnapshotDir: e.snap, Nodes: e.nodes, Items: e.items})
	if !errors.Is(err, imaging.ErrLocked) {
		t.Errorf("err %v, want ErrLocked", err)
	}
}

func TestRemoveSnapshot(t *testing.T) {
	e := newEnv(t, 2)
	e.build(t)
	outside := filepath.Join(e.dir, "outside")
	writeTree(t, outside, map[string]string{"keep": "keep\n"})
	if err := os.Symlink(outside, e.node("node001", "var/log/link")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveSnapshot(e.snap, "", "node001"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(e.node("node001", "")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("snapshot still there: %v", err)
	}
	if _, err := os.Lstat(RecordPath(DefaultStateDir(e.snap), "node001")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record still there: %v", err)
	}
	if got := readFile(t, filepath.Join(outside, "keep")); got != "keep\n" {
		t.Errorf("followed a symlink out of the snapshot")
	}
	if _, err := os.Lstat(e.node("node002", "etc/resolv.conf")); err != nil {
		t.Errorf("other node's snapshot touched: %v", err)
	}
	if err := RemoveSnapshot(e.snap, "", "../snapshot"); err == nil {
		t.Errorf("RemoveSnapshot accepted a path as host name")
	}
	var st unix.Stat_t
	if err := unix.Lstat(e.snap, &st); err != nil {
		t.Errorf("snapshot dir gone: %v", err)
	}
}

// A build cancelled while applying must not record as written what it did
// not write: the next build still brings the image's change.
func TestBuildCancelledThenResumed(t *testing.T) {
	e := newEnv(t, 1)
	e.build(t)
	writeFile(t, filepath.Join(e.image, "etc/resolv.conf"), "nameserver 10.0.0.9\n") // same size
	ctx, cancel := context.WithCancel(context.Background())
	testHookBeforeApply = func(string) { cancel() }
	defer func() { testHookBeforeApply = nil }()
	_, err := Build(ctx, BuildOptions{ImageRoot: e.image, SnapshotDir: e.snap, Nodes: e.nodes, Items: e.items})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	testHookBeforeApply = nil
	if got := readFile(t, e.node("node001", "etc/resolv.conf")); got != "nameserver 10.0.0.1\n" {
		t.Fatalf("cancelled before applying, yet resolv.conf = %q", got)
	}
	res := e.build(t)
	if got := readFile(t, e.node("node001", "etc/resolv.conf")); got != "nameserver 10.0.0.9\n" || res.Totals.Updated != 1 {
		t.Errorf("after the cancelled build: resolv.conf = %q, totals %+v; want the image's change applied", got, res.Totals)
	}
}

func TestCheckApart(t *testing.T) {
	d := t.TempDir()
	img := filepath.Join(d, "diskless/root")
	if err := os.MkdirAll(img, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(img, filepath.Join(d, "link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, image, snap string
		ok                bool
	}{
		{name: "beside", image: img, snap: filepath.Join(d, "diskless/snapshot"), ok: true},
		{name: "prefix but not inside", image: img, snap: img + "-snapshot", ok: true},
		{name: "same", image: img, snap: img + "/"},
		{name: "inside", image: img, snap: filepath.Join(img, "var/snap")},
		{name: "inside through a link", image: img, snap: filepath.Join(d, "link/var")},
		{name: "image inside snapshot dir", image: img, snap: filepath.Join(d, "diskless")},
	} {
		err := CheckApart(c.image, c.snap)
		if (err == nil) != c.ok {
			t.Errorf("%s: CheckApart(%s, %s) = %v", c.name, c.image, c.snap, err)
		}
	}
}
