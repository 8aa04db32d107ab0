package treetest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// keepMtimes returns a function that puts back the mtimes the given paths
// have now, so that a change can be made to one attribute only.
func keepMtimes(t *testing.T, paths ...string) func() {
	t.Helper()
	ts := make([]unix.Timespec, len(paths))
	for i, p := range paths {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		ts[i] = st.Mtim
	}
	return func() {
		t.Helper()
		for i, p := range paths {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts[i], ts[i]}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDiffDetectsOneChange changes one attribute of a tricky tree per case
// and checks that Diff reports exactly the expected lines: one per path
// the change touches.
func TestDiffDetectsOneChange(t *testing.T) {
	root := os.Geteuid() == 0
	cases := []struct {
		name   string
		root   bool // needs root
		change func(t *testing.T, dir string)
		opts   DiffOptions
		want   []string // line prefixes, in Diff's order
		also   string   // text the single line must also contain
	}{
		{
			name:   "chmod",
			change: func(t *testing.T, dir string) { check(t, os.Chmod(filepath.Join(dir, PathSetuid), 0o755)) },
			want:   []string{"modes/setuid: mode 04755 != 0755"},
		},
		{
			name: "chown",
			root: true,
			change: func(t *testing.T, dir string) {
				check(t, os.Lchown(filepath.Join(dir, PathOwned), 0, TrickyGID))
				check(t, os.Chmod(filepath.Join(dir, PathOwned), 0o640))
			},
			want: []string{"owners/file: owner 4242:4343 != 0:4343"},
		},
		{
			name: "lchown a symlink",
			root: true,
			change: func(t *testing.T, dir string) {
				check(t, os.Lchown(filepath.Join(dir, PathDirLink), TrickyUID, -1))
			},
			want: []string{"symlinks/to-dir: owner 0:0 != 4242:0"},
		},
		{
			name: "touch a file",
			change: func(t *testing.T, dir string) {
				ts := unix.NsecToTimespec(1_700_000_000_000_000_007)
				check(t, unix.UtimesNano(filepath.Join(dir, "files/one"), []unix.Timespec{ts, ts}))
			},
			want: []string{"files/one: mtime 20"},
			also: "!= 2023-11-14T22:13:20.000000007Z",
		},
		{
			name: "touch a symlink",
			change: func(t *testing.T, dir string) {
				ts := unix.NsecToTimespec(1)
				check(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, PathDangling), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
			},
			want: []string{"symlinks/dangling: mtime "},
		},
		{
			name: "touch a dir",
			change: func(t *testing.T, dir string) {
				ts := unix.NsecToTimespec(1)
				check(t, unix.UtimesNano(filepath.Join(dir, PathEmptyDir), []unix.Timespec{ts, ts}))
			},
			want: []string{"dirs/empty: mtime "},
		},
		{
			name: "touch a dir, dir mtimes ignored",
			change: func(t *testing.T, dir string) {
				ts := unix.NsecToTimespec(1)
				check(t, unix.UtimesNano(filepath.Join(dir, PathEmptyDir), []unix.Timespec{ts, ts}))
				check(t, unix.UtimesNano(dir, []unix.Timespec{ts, ts}))
			},
			opts: DiffOptions{IgnoreDirMtime: true},
		},
		{
			name: "touch the root, root mtime ignored",
			change: func(t *testing.T, dir string) {
				ts := unix.NsecToTimespec(1)
				check(t, unix.UtimesNano(dir, []unix.Timespec{ts, ts}))
			},
			opts: DiffOptions{IgnoreRootMtime: true},
		},
		{
			name: "add a user xattr",
			change: func(t *testing.T, dir string) {
				check(t, unix.Lsetxattr(filepath.Join(dir, "files/one"), "user.new", []byte("v"), 0))
			},
			want: []string{"files/one: xattr user.new extra"},
		},
		{
			name: "change a binary xattr",
			change: func(t *testing.T, dir string) {
				check(t, unix.Lsetxattr(filepath.Join(dir, PathUserXattr), "user.foo", []byte("text"), 0))
			},
			want: []string{`xattr/user: xattr user.foo value 0x0001fffe7800 != "text"`},
		},
		{
			name: "remove an access ACL",
			change: func(t *testing.T, dir string) {
				check(t, unix.Lremovexattr(filepath.Join(dir, PathACLFile), "system.posix_acl_access"))
			},
			want: []string{"xattr/acl-file: xattr system.posix_acl_access missing"},
		},
		{
			name: "remove a capability",
			root: true,
			change: func(t *testing.T, dir string) {
				check(t, unix.Lremovexattr(filepath.Join(dir, PathCap), "security.capability"))
			},
			want: []string{"xattr/cap-net-raw: xattr security.capability missing"},
		},
		{
			name: "break a hard link",
			change: func(t *testing.T, dir string) {
				b := filepath.Join(dir, PathLinkOf2b)
				defer keepMtimes(t, b, filepath.Dir(b))()
				data, err := os.ReadFile(b)
				check(t, err)
				check(t, os.Remove(b))
				check(t, os.WriteFile(b, data, 0o644))
				check(t, os.Chmod(b, 0o644))
			},
			want: []string{
				"links/pair-a: hard-link group [links/pair-a links/pair-b] != [links/pair-a]",
				"links/pair-b: hard-link group [links/pair-a links/pair-b] != [links/pair-b]",
			},
		},
		{
			name: "truncate",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "files/f4096")
				defer keepMtimes(t, p)()
				check(t, os.Truncate(p, 100))
			},
			want: []string{"files/f4096: size 4096 != 100"},
		},
		{
			name: "same size, other content",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "files/f4095")
				defer keepMtimes(t, p)()
				f, err := os.OpenFile(p, os.O_WRONLY, 0)
				check(t, err)
				_, err = f.WriteAt([]byte{'!'}, 4000)
				check(t, err)
				check(t, f.Close())
			},
			want: []string{"files/f4095: content sha256 "},
		},
		{
			name: "replace a symlink's target",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, PathDirLink)
				defer keepMtimes(t, p, filepath.Dir(p))()
				check(t, os.Remove(p))
				check(t, os.Symlink("../dirs/a/b", p))
			},
			want: []string{"symlinks/to-dir: target ../dirs/a != ../dirs/a/b"},
		},
		{
			name: "change a device number",
			root: true,
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, PathCharDev)
				defer keepMtimes(t, p, filepath.Dir(p))()
				check(t, os.Remove(p))
				check(t, unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))))
				check(t, os.Chmod(p, 0o666))
			},
			want: []string{"special/null: rdev 1:3 != 1:5"},
		},
		{
			name: "change a type",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, PathFIFO)
				defer keepMtimes(t, p, filepath.Dir(p))()
				check(t, os.Remove(p))
				check(t, os.WriteFile(p, nil, 0o644))
			},
			want: []string{"special/fifo: type fifo != file"},
		},
		{
			name: "delete",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "files/one")
				defer keepMtimes(t, filepath.Dir(p))()
				check(t, os.Remove(p))
			},
			want: []string{"files/one: missing"},
		},
		{
			name: "add",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "files/new")
				defer keepMtimes(t, filepath.Dir(p))()
				check(t, os.WriteFile(p, nil, 0o644))
			},
			want: []string{"files/new: extra"},
		},
		{
			name: "add, ignored",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "files/new")
				defer keepMtimes(t, filepath.Dir(p))()
				check(t, os.WriteFile(p, nil, 0o644))
			},
			opts: DiffOptions{IgnorePaths: func(p string) bool { return p == "files/new" }},
		},
		{
			name: "fill a hole, sparseness checked",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, PathSparse)
				defer keepMtimes(t, p)()
				f, err := os.OpenFile(p, os.O_WRONLY, 0)
				check(t, err)
				_, err = f.WriteAt(make([]byte, 8<<20), 100<<20)
				check(t, err)
				check(t, f.Close())
			},
			opts: DiffOptions{CheckSparse: true},
			want: []string{"sparse/big: blocks "},
		},
		{
			name: "fill a hole, sparseness not checked",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, PathSparse)
				defer keepMtimes(t, p)()
				f, err := os.OpenFile(p, os.O_WRONLY, 0)
				check(t, err)
				_, err = f.WriteAt(make([]byte, 8<<20), 100<<20)
				check(t, err)
				check(t, f.Close())
			},
		},
		{
			name: "chmod a non-UTF-8 name",
			change: func(t *testing.T, dir string) {
				check(t, os.Chmod(filepath.Join(dir, PathLatin1), 0o600))
			},
			want: []string{`"names/caf\xe9": mode 0644 != 0600`},
		},
		{
			name: "chmod the long path",
			change: func(t *testing.T, dir string) {
				var long string
				for p := range Scan(t, dir) {
					if len(p) == LongPathLen {
						long = p
					}
				}
				// Beyond PATH_MAX from /: walk down with openat.
				fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
				check(t, err)
				parts := strings.Split(long, "/")
				for _, c := range parts[:len(parts)-1] {
					next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
					check(t, err)
					unix.Close(fd)
					fd = next
				}
				defer unix.Close(fd)
				check(t, unix.Fchmodat(fd, parts[len(parts)-1], 0o600, 0))
			},
			want: []string{"long/" + strings.Repeat("a", 55) + "..(3999 bytes).."},
			also: ": mode 0644 != 0600",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root && !root {
				t.Skip("SKIPPED: needs root: the change is to a root-only part of the tree")
			}
			dir := t.TempDir()
			want := MakeTricky(t, dir, TrickyOptions{})
			c.change(t, dir)
			got := Diff(want, Scan(t, dir), c.opts)
			if len(got) != len(c.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(got), len(c.want), strings.Join(got, "\n"))
			}
			for i := range c.want {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("line %d = %q, want prefix %q", i, got[i], c.want[i])
				}
			}
			if c.also != "" && !strings.Contains(got[0], c.also) {
				t.Errorf("line %q lacks %q", got[0], c.also)
			}
		})
	}
}

// TestDiff checks Diff's rules on hand-made manifests.
func TestDiff(t *testing.T) {
	file := Node{Type: TypeFile, Mode: 0o644, Size: 3, Hash: "aaa", Mtime: 10, Blocks: 8}
	with := func(n Node, f func(*Node)) Node { f(&n); return n }
	cases := []struct {
		name      string
		want, got Manifest
		opts      DiffOptions
		lines     []string
	}{
		{
			name: "equal",
			want: Manifest{"f": file}, got: Manifest{"f": file},
		},
		{
			name:  "type change hides every other attribute",
			want:  Manifest{"f": file},
			got:   Manifest{"f": {Type: TypeDir, Mode: 0o755, Mtime: 11}},
			lines: []string{"f: type file != dir"},
		},
		{
			name:  "owner",
			want:  Manifest{"f": file},
			got:   Manifest{"f": with(file, func(n *Node) { n.UID, n.GID = 1, 2 })},
			lines: []string{"f: owner 0:0 != 1:2"},
		},
		{
			name:  "several attributes, one line each, in a fixed order",
			want:  Manifest{"f": file},
			got:   Manifest{"f": with(file, func(n *Node) { n.Mode, n.Mtime, n.Hash = 0o600, 2_000_000_000, "bbb" })},
			lines: []string{"f: mode 0644 != 0600", "f: content sha256 aaa != bbb", "f: mtime 1970-01-01T00:00:00.000000010Z != 1970-01-01T00:00:02.000000000Z"},
		},
		{
			name: "xattrs by name",
			want: Manifest{"f": with(file, func(n *Node) {
				n.Xattrs = []Xattr{{"user.a", []byte("1")}, {"user.b", []byte("2")}, {"user.c", []byte{0xff}}}
			})},
			got: Manifest{"f": with(file, func(n *Node) {
				n.Xattrs = []Xattr{{"user.b", []byte("2")}, {"user.c", []byte{0xfe}}, {"user.d", nil}}
			})},
			lines: []string{"f: xattr user.a missing", "f: xattr user.c value 0xff != 0xfe", "f: xattr user.d extra"},
		},
		{
			name:  "missing and extra, sorted, quoted when not printable",
			want:  Manifest{"a": file, "c\n": file},
			got:   Manifest{"b": file},
			lines: []string{"a: missing", "b: extra", `"c\n": missing`},
		},
		{
			name:  "root mtime",
			want:  Manifest{".": {Type: TypeDir, Mtime: 1}},
			got:   Manifest{".": {Type: TypeDir, Mtime: 2}},
			lines: []string{".: mtime 1970-01-01T00:00:00.000000001Z != 1970-01-01T00:00:00.000000002Z"},
		},
		{
			name:  "root mtime ignored",
			want:  Manifest{".": {Type: TypeDir, Mtime: 1}, "d": {Type: TypeDir, Mtime: 1}},
			got:   Manifest{".": {Type: TypeDir, Mtime: 2}, "d": {Type: TypeDir, Mtime: 2}},
			opts:  DiffOptions{IgnoreRootMtime: true},
			lines: []string{"d: mtime 1970-01-01T00:00:00.000000001Z != 1970-01-01T00:00:00.000000002Z"},
		},
		{
			name: "ignored paths leave hard-link groups too",
			want: Manifest{
				"a": with(file, func(n *Node) { n.Links = []string{"a", "b", "c"} }),
				"b": with(file, func(n *Node) { n.Links = []string{"a", "b", "c"} }),
				"c": with(file, func(n *Node) { n.Links = []string{"a", "b", "c"} }),
			},
			got: Manifest{
				"a": with(file, func(n *Node) { n.Links = []string{"a", "b"} }),
				"b": with(file, func(n *Node) { n.Links = []string{"a", "b"} }),
				"c": file,
			},
			opts: DiffOptions{IgnorePaths: func(p string) bool { return p == "c" }},
		},
		{
			name: "a group of one is no group",
			want: Manifest{"a": with(file, func(n *Node) { n.Links = []string{"a", "b"} }), "b": file},
			got:  Manifest{"a": file, "b": file},
			opts: DiffOptions{IgnorePaths: func(p string) bool { return p == "b" }},
		},
		{
			name: "sparse: a little more allocation is slack",
			want: Manifest{"f": file},
			got:  Manifest{"f": with(file, func(n *Node) { n.Blocks = 8 + SparseSlack(8) })},
			opts: DiffOptions{CheckSparse: true},
		},
		{
			name:  "sparse: more than the slack",
			want:  Manifest{"f": file},
			got:   Manifest{"f": with(file, func(n *Node) { n.Blocks = 9 + SparseSlack(8) })},
			opts:  DiffOptions{CheckSparse: true},
			lines: []string{"f: blocks 266 > 8 + 257: holes not kept"},
		},
		{
			name: "sparse: less allocation is fine",
			want: Manifest{"f": with(file, func(n *Node) { n.Blocks = 1000 })},
			got:  Manifest{"f": file},
			opts: DiffOptions{CheckSparse: true},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Diff(c.want, c.got, c.opts)
			if !slices.Equal(got, c.lines) {
				t.Errorf("Diff =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.lines, "\n"))
			}
		})
	}
}

func TestEqualShowsAtMost50(t *testing.T) {
	want, got := Manifest{}, Manifest{}
	for i := range 60 {
		want[fmt.Sprintf("f%02d", i)] = Node{Type: TypeFile}
	}
	tb := &fakeTB{}
	tb.run(func() { Equal(tb, want, got, DiffOptions{}) })
	if len(tb.errors) != 1 {
		t.Fatalf("errors: %q", tb.errors)
	}
	msg := tb.errors[0]
	if n := strings.Count(msg, ": missing"); n != MaxShown {
		t.Errorf("%d differences shown, want %d:\n%s", n, MaxShown, msg)
	}
	if !strings.Contains(msg, "60 ways") || !strings.HasSuffix(msg, "... and 10 more") {
		t.Errorf("no count of the rest:\n%s", msg)
	}

	tb = &fakeTB{}
	tb.run(func() { Equal(tb, want, want, DiffOptions{}) })
	if len(tb.errors) != 0 {
		t.Errorf("equal manifests: %q", tb.errors)
	}
}
