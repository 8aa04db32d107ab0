package snapshot

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
)

// file returns a hashed regular-file entry; edit the copy to vary one
// attribute.
func file(p string) *tree.Entry {
	e := &tree.Entry{Path: p, Type: tree.TypeRegular, Mode: 0o644, Size: 5, Mtime: 1_000_000_000, Dev: 1, Ino: 10, Nlink: 1, Ctime: 5}
	e.SetHash(0xabc)
	return e
}

func dir(p string) *tree.Entry {
	return &tree.Entry{Path: p, Type: tree.TypeDir, Mode: 0o755, Mtime: 2_000_000_000, Dev: 1, Ino: 20, Nlink: 2, Ctime: 5}
}

func symlink(p, target string) *tree.Entry {
	return &tree.Entry{Path: p, Type: tree.TypeSymlink, Mode: 0o777, Target: target, Mtime: 3_000_000_000, Dev: 1, Ino: 30, Nlink: 1, Ctime: 5}
}

func with(e *tree.Entry, edit func(*tree.Entry)) *tree.Entry {
	c := e.Clone()
	edit(c)
	return c
}

func TestSame(t *testing.T) {
	f, d := file("f"), dir("d")
	unhashed := with(f, func(e *tree.Entry) { e.Flags = 0 })
	tests := []struct {
		name string
		a, b *tree.Entry
		want bool
	}{
		{name: "nil nil", want: true},
		{name: "nil entry", b: f},
		{name: "identical", a: f, b: f.Clone(), want: true},
		{name: "other inode, dev and ctime", a: f, b: with(f, func(e *tree.Entry) { e.Ino, e.Dev, e.Ctime, e.Nlink = 99, 9, 9, 3 }), want: true},
		{name: "hard-link leader differs", a: f, b: with(f, func(e *tree.Entry) { e.LinkTo = "a" }), want: true},
		{name: "content", a: f, b: with(f, func(e *tree.Entry) { e.SetHash(0xdef) })},
		{name: "size", a: f, b: with(f, func(e *tree.Entry) { e.Size = 6 })},
		{name: "hash unknown", a: f, b: unhashed},
		{name: "both hashes unknown", a: unhashed, b: unhashed.Clone()},
		{name: "mode", a: f, b: with(f, func(e *tree.Entry) { e.Mode = 0o600 })},
		{name: "uid", a: f, b: with(f, func(e *tree.Entry) { e.UID = 1 })},
		{name: "gid", a: f, b: with(f, func(e *tree.Entry) { e.GID = 1 })},
		{name: "file mtime", a: f, b: with(f, func(e *tree.Entry) { e.Mtime++ })},
		{name: "xattr", a: f, b: with(f, func(e *tree.Entry) { e.Xattrs = []tree.Xattr{{Name: "user.a", Value: []byte("1")}} })},
		{name: "type", a: f, b: with(f, func(e *tree.Entry) { e.Type = tree.TypeFIFO; e.Size = 0; e.Flags = 0 })},
		{name: "dir mtime ignored", a: d, b: with(d, func(e *tree.Entry) { e.Mtime++ }), want: true},
		{name: "dir mode", a: d, b: with(d, func(e *tree.Entry) { e.Mode = 0o700 })},
		{name: "symlink target", a: symlink("l", "a"), b: symlink("l", "b")},
		{name: "symlink mode ignored", a: symlink("l", "a"), b: with(symlink("l", "a"), func(e *tree.Entry) { e.Mode = 0o755 }), want: true},
		{name: "device number", a: &tree.Entry{Type: tree.TypeCharDev, Rdev: 1}, b: &tree.Entry{Type: tree.TypeCharDev, Rdev: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Same(tt.a, tt.b); got != tt.want {
				t.Errorf("Same = %v, want %v", got, tt.want)
			}
			if got := Same(tt.b, tt.a); got != tt.want {
				t.Errorf("Same (swapped) = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDecide changes one attribute of one of the three entries per case.
func TestDecide(t *testing.T) {
	base := file("f")
	content := func(e *tree.Entry) { e.SetHash(0xdef) }
	tests := []struct {
		name             string
		want, node, base *tree.Entry
		decision         Decision
		why              string
	}{
		{name: "nothing anywhere", decision: InSync},
		{name: "node only", node: base, decision: InSync},
		{name: "record only", base: base, decision: InSync},
		{name: "image removed it", node: base, base: base, decision: Gone, why: "removed from the image"},
		{name: "image removed it, node changed it", node: with(base, content), base: base, decision: Gone, why: "removed from the image"},
		{name: "absent on node, no record", want: base, decision: CopyNew},
		{name: "absent on node, recorded", want: base, base: base, decision: CopyNew},
		{name: "absent on node, image changed", want: with(base, content), base: base, decision: CopyNew},
		{name: "all three equal", want: base, node: base, base: base, decision: InSync},
		{name: "node equals image, no record", want: base, node: base, decision: Adopt},
		{name: "node and image changed alike", want: with(base, content), node: with(base, content), base: base, decision: Adopt},
		{name: "image content changed", want: with(base, content), node: base, base: base, decision: FollowImage},
		{name: "image mode changed", want: with(base, func(e *tree.Entry) { e.Mode = 0o600 }), node: base, base: base, decision: FollowImage},
		{name: "image owner changed", want: with(base, func(e *tree.Entry) { e.UID = 7 }), node: base, base: base, decision: FollowImage},
		{name: "image group changed", want: with(base, func(e *tree.Entry) { e.GID = 7 }), node: base, base: base, decision: FollowImage},
		{name: "image mtime changed", want: with(base, func(e *tree.Entry) { e.Mtime++ }), node: base, base: base, decision: FollowImage},
		{name: "image xattr changed", want: with(base, func(e *tree.Entry) { e.Xattrs = []tree.Xattr{{Name: "user.x"}} }), node: base, base: base, decision: FollowImage},
		{name: "image made it a symlink", want: symlink("f", "t"), node: base, base: base, decision: FollowImage},
		{name: "image made a symlink a directory", want: dir("f"), node: symlink("f", "t"), base: symlink("f", "t"), decision: FollowImage},
		{name: "node content changed", want: base, node: with(base, content), base: base, decision: KeepNode},
		{name: "node mode changed", want: base, node: with(base, func(e *tree.Entry) { e.Mode = 0o600 }), base: base, decision: KeepNode},
		{name: "node owner changed", want: base, node: with(base, func(e *tree.Entry) { e.UID = 7 }), base: base, decision: KeepNode},
		{name: "node mtime changed", want: base, node: with(base, func(e *tree.Entry) { e.Mtime++ }), base: base, decision: KeepNode},
		{name: "node xattr changed", want: base, node: with(base, func(e *tree.Entry) { e.Xattrs = []tree.Xattr{{Name: "user.x"}} }), base: base, decision: KeepNode},
		{name: "node hash unknown", want: base, node: with(base, func(e *tree.Entry) { e.Flags = 0 }), base: base, decision: KeepNode},
		{name: "node made it a symlink", want: base, node: symlink("f", "t"), base: base, decision: KeepNode},
		{name: "node and image changed content", want: with(base, content), node: with(base, func(e *tree.Entry) { e.SetHash(0x123) }), base: base,
			decision: Conflicted, why: "changed on the node (content) and in the image (content)"},
		{name: "node mode, image content", want: with(base, content), node: with(base, func(e *tree.Entry) { e.Mode = 0o600 }), base: base,
			decision: Conflicted, why: "changed on the node (mode) and in the image (content)"},
		{name: "differs, no record", want: with(base, content), node: base,
			decision: Conflicted, why: "goldsync has no record of copying it"},
		{name: "image replaced an unchanged directory", want: file("d"), node: dir("d"), base: dir("d"),
			decision: Conflicted, why: "the image replaced this directory with a file"},
		{name: "node directory mtime changed", want: dir("d"), node: with(dir("d"), func(e *tree.Entry) { e.Mtime++ }), base: dir("d"), decision: InSync},
		{name: "image directory mode changed", want: with(dir("d"), func(e *tree.Entry) { e.Mode = 0o700 }), node: dir("d"), base: dir("d"), decision: FollowImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, why := Decide(tt.want, tt.node, tt.base)
			if d != tt.decision {
				t.Errorf("Decide = %v (%s), want %v", d, why, tt.decision)
			}
			if !strings.Contains(why, tt.why) || (tt.why == "" && why != "") {
				t.Errorf("why = %q, want it to contain %q", why, tt.why)
			}
		})
	}
}

// step is an action as the tests compare it.
type step struct {
	Op      string
	Path    string
	Replace bool
	LinkTo  string
}

func steps(p *imaging.Plan) []step {
	var out []step
	for _, a := range p.Actions {
		s := step{Op: a.Op.String(), Path: a.Path, Replace: a.Replace}
		if a.Src != nil {
			s.LinkTo = a.Src.LinkTo
		}
		out = append(out, s)
	}
	return out
}

func TestThreeWay(t *testing.T) {
	changed := func(e *tree.Entry) *tree.Entry { return with(e, func(e *tree.Entry) { e.SetHash(0xdef) }) }
	tests := []struct {
		name             string
		want, node, base []*tree.Entry
		steps            []step
		conflicts        []string // "path: why fragment"
		gone             []string
		created, updated int
		kept             int
	}{
		{
			name:    "first build creates everything, directories first and their metadata last, deepest first",
			want:    []*tree.Entry{dir("etc"), dir("etc/ssh"), file("etc/ssh/a"), symlink("etc/ssh/l", "a")},
			steps:   []step{{"mkdir", "etc", false, ""}, {"mkdir", "etc/ssh", false, ""}, {"fetch", "etc/ssh/a", false, ""}, {"symlink", "etc/ssh/l", false, ""}, {"dirmeta", "etc/ssh", false, ""}, {"dirmeta", "etc", false, ""}},
			created: 4,
		},
		{
			name: "nothing changed plans nothing",
			want: []*tree.Entry{dir("etc"), file("etc/a")}, node: []*tree.Entry{dir("etc"), file("etc/a")}, base: []*tree.Entry{dir("etc"), file("etc/a")},
		},
		{
			name: "node-only files are never looked at, never deleted",
			want: []*tree.Entry{dir("var")}, node: []*tree.Entry{dir("var"), file("var/own")}, base: []*tree.Entry{dir("var")},
		},
		{
			name: "an untouched file follows the image, replaced whole",
			want: []*tree.Entry{changed(file("a"))}, node: []*tree.Entry{file("a")}, base: []*tree.Entry{file("a")},
			steps:   []step{{"fetch", "a", true, ""}},
			updated: 1,
		},
		{
			name: "a metadata-only image change is applied in place",
			want: []*tree.Entry{with(file("a"), func(e *tree.Entry) { e.Mode = 0o600 })}, node: []*tree.Entry{file("a")}, base: []*tree.Entry{file("a")},
			steps:   []step{{"meta", "a", false, ""}},
			updated: 1,
		},
		{
			name: "an image directory change sets its metadata",
			want: []*tree.Entry{with(dir("d"), func(e *tree.Entry) { e.UID = 3 })}, node: []*tree.Entry{dir("d")}, base: []*tree.Entry{dir("d")},
			steps:   []step{{"dirmeta", "d", false, ""}},
			updated: 1,
		},
		{
			name: "a node edit is kept",
			want: []*tree.Entry{file("a")}, node: []*tree.Entry{changed(file("a"))}, base: []*tree.Entry{file("a")},
			kept: 1,
		},
		{
			name: "a node edit and an image edit are a conflict",
			want: []*tree.Entry{changed(file("a"))}, node: []*tree.Entry{with(file("a"), func(e *tree.Entry) { e.Size = 9 })}, base: []*tree.Entry{file("a")},
			conflicts: []string{"a: changed on the node (content) and in the image (content)"},
		},
		{
			name: "a file the node deleted is copied again",
			want: []*tree.Entry{dir("d"), file("d/a")}, node: []*tree.Entry{dir("d")}, base: []*tree.Entry{dir("d"), file("d/a")},
			steps:   []step{{"fetch", "d/a", false, ""}},
			created: 1,
		},
		{
			name: "a path the image dropped is reported once and forgotten",
			want: []*tree.Entry{dir("d")}, node: []*tree.Entry{dir("d"), file("d/a")}, base: []*tree.Entry{dir("d"), file("d/a")},
			gone: []string{"d/a: removed from the image"},
		},
		{
			name: "what an unreadable image directory holds is not taken for removed",
			want: []*tree.Entry{with(dir("d"), func(e *tree.Entry) { e.Problem = "permission denied" })},
			node: []*tree.Entry{dir("d"), file("d/a")}, base: []*tree.Entry{dir("d"), file("d/a")},
		},
		{
			name: "an unchanged symlink replaced by a directory in the image",
			want: []*tree.Entry{dir("d"), file("d/a")}, node: []*tree.Entry{symlink("d", "/etc")}, base: []*tree.Entry{symlink("d", "/etc")},
			steps:   []step{{"mkdir", "d", true, ""}, {"fetch", "d/a", false, ""}, {"dirmeta", "d", false, ""}},
			updated: 1, created: 1,
		},
		{
			name: "nothing is planned beneath a symlink the node put where the image has a directory",
			want: []*tree.Entry{dir("var"), dir("var/log"), file("var/log/m")}, node: []*tree.Entry{symlink("var", "/etc")}, base: []*tree.Entry{dir("var"), dir("var/log"), file("var/log/m")},
			conflicts: []string{"var: the node has a symlink where the image has a directory; 2 image paths"},
			kept:      1,
		},
		{
			name: "a planted symlink with no record is a conflict, and blocks",
			want: []*tree.Entry{dir("var"), file("var/x")}, node: []*tree.Entry{symlink("var", "/etc")},
			conflicts: []string{"var: the node's symlink differs from the image's dir"},
		},
		{
			name:    "hard links are made between written paths",
			want:    []*tree.Entry{file("a"), link("b", "a")},
			steps:   []step{{"fetch", "a", false, ""}, {"link", "b", false, "a"}},
			created: 2,
		},
		{
			name: "a member whose leader the node changed gets its own copy",
			want: []*tree.Entry{file("a"), link("b", "a")}, node: []*tree.Entry{changed(file("a"))}, base: []*tree.Entry{file("a")},
			steps:   []step{{"fetch", "b", false, ""}},
			created: 1, kept: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ThreeWay(tt.want, tt.node, tt.base)
			if diff := cmp.Diff(tt.steps, steps(r.Plan)); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			var conflicts, gone []string
			for _, c := range r.Conflicts {
				conflicts = append(conflicts, c.Path+": "+c.Why)
			}
			for _, c := range r.Gone {
				gone = append(gone, c.Path+": "+c.Why)
			}
			checkPrefixes(t, "conflicts", tt.conflicts, conflicts)
			checkPrefixes(t, "gone", tt.gone, gone)
			got := fmt.Sprint(r.Created, r.Updated, r.Kept)
			if want := fmt.Sprint(tt.created, tt.updated, tt.kept); got != want {
				t.Errorf("created updated kept = %s, want %s", got, want)
			}
			for _, a := range r.Plan.Actions {
				if a.Op == imaging.OpDelete {
					t.Errorf("plan deletes %s", a.Path)
				}
			}
		})
	}
}

func checkPrefixes(t *testing.T, what string, want, got []string) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s = %q, want %q", what, got, want)
		return
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("%s[%d] = %q, want it to start with %q", what, i, got[i], want[i])
		}
	}
}

// TestThreeWayRecord checks the record a refresh leaves: unchanged
// entries are reused (so an unchanged record is not rewritten), a kept
// node edit keeps the old base, an image drop forgets the path.
func TestThreeWayRecord(t *testing.T) {
	a, b, c, d := file("a"), file("b"), file("c"), file("d")
	nodeA := a.Clone()
	nodeB := with(b, func(e *tree.Entry) { e.SetHash(1) })
	r := ThreeWay(
		[]*tree.Entry{a, b, with(c, func(e *tree.Entry) { e.SetHash(2) })},
		[]*tree.Entry{nodeA, nodeB, c.Clone(), d.Clone()},
		[]*tree.Entry{a, b, c, d},
	)
	if r.Base["a"] != a {
		t.Errorf("in-sync path: record entry not reused")
	}
	if r.Base["b"] != b {
		t.Errorf("kept node edit: record = %+v, want the old base", r.Base["b"])
	}
	if r.Writes["c"] == nil {
		t.Errorf("updated path not in Writes")
	}
	if _, ok := r.Base["d"]; ok {
		t.Errorf("path dropped by the image still recorded")
	}
	moved := with(a, func(e *tree.Entry) { e.Ino = 77 })
	r = ThreeWay([]*tree.Entry{a}, []*tree.Entry{moved}, []*tree.Entry{a})
	if r.Base["a"] != moved {
		t.Errorf("in-sync path with a new inode: record not refreshed")
	}
}

func TestScopes(t *testing.T) {
	items := []Item{
		{Path: "etc/ssh", Kind: KindFiles},
		{Path: "etc/sysconfig/network", Kind: KindFiles},
		{Path: "var/log", Kind: KindFiles},
		{Path: "var/log/audit", Kind: KindEmpty},
		{Path: "var/lib/nfs", Kind: KindDirs},
		{Path: "tmp", Kind: KindEmpty},
	}
	want := []tree.Scope{
		{Path: "etc"}, {Path: "etc/ssh", Tree: true}, {Path: "etc/sysconfig"}, {Path: "etc/sysconfig/network", Tree: true},
		{Path: "tmp"}, {Path: "var"}, {Path: "var/lib"}, {Path: "var/lib/nfs", Tree: true}, {Path: "var/log", Tree: true},
	}
	if diff := cmp.Diff(want, Scopes(items)); diff != "" {
		t.Errorf("Scopes (-want +got):\n%s", diff)
	}
}

func TestWant(t *testing.T) {
	image := []*tree.Entry{
		dir("etc"), dir("etc/ssh"), file("etc/ssh/key"), link("etc/ssh/key2", "etc/ssh/key"),
		dir("var"), dir("var/lib"), dir("var/lib/nfs"), dir("var/lib/nfs/sm"), file("var/lib/nfs/state"),
		dir("var/log"), file("var/log/messages"), dir("var/log/audit"), file("var/log/audit/audit.log"),
		file("var/tmp"), symlink("run", "/run"),
	}
	items := []Item{
		{Path: "etc/ssh", Dir: true, Kind: KindFiles, Source: "files:1"},
		{Path: "var/lib/nfs", Dir: true, Kind: KindDirs, Source: "rwtab:1"},
		{Path: "var/log", Dir: true, Kind: KindFiles, Source: "files:2"},
		{Path: "var/log/audit", Dir: true, Kind: KindEmpty, Source: "rwtab:2"},
		{Path: "var/log/messages", Kind: KindEmpty, Source: "rwtab:3"},
		{Path: "var/tmp", Dir: true, Kind: KindDirs, Source: "rwtab:4"},
		{Path: "run", Dir: true, Kind: KindFiles, Source: "files:3"},
		{Path: "home", Dir: true, Kind: KindFiles, Source: "files:4"},
	}
	got, notices, skipped := Want(items, image)
	var paths []string
	for _, e := range got {
		s := e.Path
		if e.LinkTo != "" {
			s += "=>" + e.LinkTo
		}
		if e.Type == tree.TypeRegular {
			s += fmt.Sprintf(" %d", e.Size)
		}
		paths = append(paths, s)
	}
	wantPaths := []string{
		"etc", "etc/ssh", "etc/ssh/key 5", "etc/ssh/key2=>etc/ssh/key 5",
		"run",
		"var", "var/lib", "var/lib/nfs", "var/lib/nfs/sm",
		"var/log", "var/log/audit", "var/log/messages 0",
	}
	if diff := cmp.Diff(wantPaths, paths); diff != "" {
		t.Errorf("Want paths (-want +got):\n%s", diff)
	}
	wantNotices := []string{
		"files:4: /home/: not in the image; skipped",
		"files:3: /run/: listed as a directory but is a symlink in the image; copied as a symlink",
		"rwtab:4: /var/tmp/: listed as dirs but is a file in the image; skipped",
	}
	if diff := cmp.Diff(wantNotices, notices); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	if skipped != 2 {
		t.Errorf("skipped = %d, want 2", skipped)
	}
	for _, e := range got {
		if e.Path == "var/log/messages" && (!e.Hashed() || e.Hash != emptyHash) {
			t.Errorf("emptied file has hash %x (hashed %v), want the empty hash", e.Hash, e.Hashed())
		}
	}
	if image[10].Size != 5 {
		t.Errorf("Want modified the image entries")
	}
}

func link(p, leader string) *tree.Entry {
	return with(file(p), func(e *tree.Entry) { e.LinkTo = leader })
}
