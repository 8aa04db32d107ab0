package imaging

import (
	"fmt"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// e builds entries for plan tests: "path:type" with optional attributes.
func ent(path string, t tree.Type, opts ...func(*tree.Entry)) *tree.Entry {
	e := &tree.Entry{Path: path, Type: t, Mode: 0o644, Mtime: 1000, Nlink: 1}
	if t == tree.TypeDir {
		e.Mode = 0o755
	}
	if t == tree.TypeSymlink {
		e.Target = "target"
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

func hashed(h uint64, size int64) func(*tree.Entry) {
	return func(e *tree.Entry) { e.SetHash(h); e.Size = size }
}
func mode(m uint32) func(*tree.Entry) { return func(e *tree.Entry) { e.Mode = m } }
func mtime(t int64) func(*tree.Entry) { return func(e *tree.Entry) { e.Mtime = t } }
func ino(i uint64, n uint32) func(*tree.Entry) {
	return func(e *tree.Entry) { e.Ino = i; e.Nlink = n }
}
func linkTo(p string) func(*tree.Entry) { return func(e *tree.Entry) { e.LinkTo = p } }
func target(t string) func(*tree.Entry) { return func(e *tree.Entry) { e.Target = t } }
func sizeOnly(n int64) func(*tree.Entry) {
	return func(e *tree.Entry) { e.Size = n }
}

func summarize(p *Plan) string {
	var b []string
	for _, a := range p.Actions {
		s := a.Op.String() + " " + a.Path
		if a.Replace {
			s += " (replace)"
		}
		if a.From != "" {
			s += " from " + a.From
		}
		b = append(b, s)
	}
	return strings.Join(b, "; ")
}

func TestMakePlan(t *testing.T) {
	root := ent(".", tree.TypeDir)
	tests := []struct {
		name string
		src  []*tree.Entry
		dst  []*tree.Entry
		opts PlanOptions
		want string
	}{
		{
			name: "identical trees: nothing",
			src:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 10))},
			dst:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 10))},
			want: "",
		},
		{
			name: "new file and dir",
			src:  []*tree.Entry{root, ent("d", tree.TypeDir), ent("d/f", tree.TypeRegular, hashed(1, 10))},
			dst:  []*tree.Entry{root},
			want: "mkdir d; fetch d/f; dirmeta d",
		},
		{
			name: "content change by hash, same size and mtime",
			src:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(2, 10))},
			dst:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 10))},
			want: "fetch a",
		},
		{
			name: "unknown source hash, same size: fetch to let the source decide",
			src:  []*tree.Entry{root, ent("a", tree.TypeRegular, sizeOnly(10))},
			dst:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 10))},
			want: "fetch a",
		},
		{
			name: "mode only",
			src:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 10), mode(0o4755))},
			dst:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 10))},
			want: "meta a",
		},
		{
			name: "mtime only",
			src:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 10), mtime(5))},
			dst:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 10))},
			want: "meta a",
		},
		{
			name: "delete, deepest first among deletes",
			src:  []*tree.Entry{root},
			dst:  []*tree.Entry{root, ent("d", tree.TypeDir), ent("d/f", tree.TypeRegular, hashed(1, 1))},
			want: "delete d; delete d/f",
		},
		{
			name: "no delete outside the scope",
			src:  []*tree.Entry{ent("x", tree.TypeRegular, hashed(1, 1))},
			dst:  []*tree.Entry{root, ent("x", tree.TypeRegular, hashed(1, 1)), ent("y", tree.TypeRegular, hashed(1, 1))},
			opts: PlanOptions{Scope: []tree.Scope{{Path: "x"}}},
			want: "",
		},
		{
			name: "NoDelete keeps extras",
			src:  []*tree.Entry{root},
			dst:  []*tree.Entry{root, ent("y", tree.TypeRegular, hashed(1, 1))},
			opts: PlanOptions{NoDelete: true},
			want: "",
		},
		{
			name: "file becomes dir",
			src:  []*tree.Entry{root, ent("a", tree.TypeDir)},
			dst:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 1))},
			want: "mkdir a (replace); dirmeta a",
		},
		{
			name: "dir becomes symlink: subtree deleted",
			src:  []*tree.Entry{root, ent("a", tree.TypeSymlink)},
			dst:  []*tree.Entry{root, ent("a", tree.TypeDir), ent("a/f", tree.TypeRegular, hashed(1, 1))},
			want: "symlink a (replace); delete a/f",
		},
		{
			name: "symlink target change",
			src:  []*tree.Entry{root, ent("l", tree.TypeSymlink, target("new"))},
			dst:  []*tree.Entry{root, ent("l", tree.TypeSymlink, target("old"))},
			want: "symlink l (replace)",
		},
		{
			name: "rename: content copied from the old name, old name deleted",
			src:  []*tree.Entry{root, ent("new", tree.TypeRegular, hashed(7, 100))},
			dst:  []*tree.Entry{root, ent("old", tree.TypeRegular, hashed(7, 100))},
			want: "copy new from old; delete old",
		},
		{
			name: "hard link group already in place",
			src:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 1), ino(1, 2)), ent("b", tree.TypeRegular, hashed(1, 1), ino(1, 2), linkTo("a"))},
			dst:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 1), ino(9, 2)), ent("b", tree.TypeRegular, hashed(1, 1), ino(9, 2), linkTo("a"))},
			want: "",
		},
		{
			name: "hard link group formed from two copies",
			src:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 1), ino(1, 2)), ent("b", tree.TypeRegular, hashed(1, 1), ino(1, 2), linkTo("a"))},
			dst:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 1), ino(8, 1)), ent("b", tree.TypeRegular, hashed(1, 1), ino(9, 1))},
			want: "link b (replace)",
		},
		{
			name: "hard link group split: the path not keeping the shared inode gets its own",
			src:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 1)), ent("b", tree.TypeRegular, hashed(1, 1))},
			dst:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 1), ino(9, 2)), ent("b", tree.TypeRegular, hashed(1, 1), ino(9, 2), linkTo("a"))},
			want: "copy b (replace) from a",
		},
		{
			name: "leader content changes: members relinked",
			src:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(2, 1), ino(1, 2)), ent("b", tree.TypeRegular, hashed(2, 1), ino(1, 2), linkTo("a"))},
			dst:  []*tree.Entry{root, ent("a", tree.TypeRegular, hashed(1, 1), ino(9, 2)), ent("b", tree.TypeRegular, hashed(1, 1), ino(9, 2), linkTo("a"))},
			want: "fetch a; link b (replace)",
		},
		{
			name: "source directory with a problem keeps the destination's subtree",
			src:  []*tree.Entry{root, ent("d", tree.TypeDir, func(e *tree.Entry) { e.Problem = "unreadable" })},
			dst:  []*tree.Entry{root, ent("d", tree.TypeDir), ent("d/f", tree.TypeRegular, hashed(1, 1))},
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize(MakePlan(tt.src, tt.dst, tt.opts))
			if got != tt.want {
				t.Errorf("plan:\n got  %s\n want %s", got, tt.want)
			}
		})
	}
}

func TestUnchangedQuickCheck(t *testing.T) {
	base := tree.Entry{Path: "f", Type: tree.TypeRegular, Dev: 1, Ino: 2, Size: 3, Mtime: 4, Ctime: 5}
	tests := []struct {
		name   string
		change func(*tree.Entry)
		want   bool
	}{
		{"same", func(*tree.Entry) {}, true},
		{"type", func(e *tree.Entry) { e.Type = tree.TypeSymlink }, false},
		{"dev", func(e *tree.Entry) { e.Dev++ }, false},
		{"ino", func(e *tree.Entry) { e.Ino++ }, false},
		{"size", func(e *tree.Entry) { e.Size++ }, false},
		{"mtime", func(e *tree.Entry) { e.Mtime++ }, false},
		{"ctime", func(e *tree.Entry) { e.Ctime++ }, false},
		{"mode is covered by ctime, not compared", func(e *tree.Entry) { e.Mode = 0o777 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := base
			tt.change(&now)
			prev := base
			if got := Unchanged(&prev, &now); got != tt.want {
				t.Errorf("Unchanged = %v, want %v", got, tt.want)
			}
		})
	}
	if Unchanged(nil, &base) {
		t.Error("Unchanged(nil, e) = true")
	}
	withProblem := base
	withProblem.Problem = "x"
	if Unchanged(&withProblem, &base) {
		t.Error("an entry recorded with a problem must be re-read")
	}
}

func TestItemize(t *testing.T) {
	root := ent(".", tree.TypeDir)
	src := []*tree.Entry{root,
		ent("dir", tree.TypeDir),
		ent("grow", tree.TypeRegular, hashed(2, 9), mtime(7)),
		ent("link", tree.TypeSymlink, target("b")),
		ent("new", tree.TypeRegular, hashed(1, 5)),
		ent("perm", tree.TypeRegular, hashed(3, 1), mode(0o600)),
	}
	dst := []*tree.Entry{root,
		ent("gone", tree.TypeRegular, hashed(4, 1)),
		ent("grow", tree.TypeRegular, hashed(1, 5)),
		ent("link", tree.TypeSymlink, target("a")),
		ent("perm", tree.TypeRegular, hashed(3, 1)),
	}
	var got []string
	for _, a := range MakePlan(src, dst, PlanOptions{}).Actions {
		if a.Op == OpDirMeta && a.Dst == nil {
			continue
		}
		got = append(got, Itemize(a).String())
	}
	want := []string{
		"cd+++++++++ dir/",
		"*deleting   gone",
		">fcst...... grow",
		"cLc........ link -> b",
		">f+++++++++ new",
		".f...p..... perm",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("itemized:\n got  %q\n want %q", got, want)
	}
}
