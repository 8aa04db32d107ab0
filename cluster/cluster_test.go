package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
)

// TestRunLockNamesHolder checks the run lock's own message: a second taker
// in any process is refused with the PID and start of the first.
func TestRunLockNamesHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state") // made 0700 by the lock
	unlock, err := TakeRunLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = TakeRunLock(dir)
	if !errors.Is(err, imaging.ErrLocked) {
		t.Fatalf("second TakeRunLock: %v, want ErrLocked", err)
	}
	for _, want := range []string{filepath.Join(dir, RunLockName), fmt.Sprintf("pid %d", os.Getpid()), "started "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	unlock()
	unlock2, err := TakeRunLock(dir)
	if err != nil {
		t.Fatalf("TakeRunLock after release: %v", err)
	}
	unlock2()
}

func TestCompareTrees(t *testing.T) {
	base := func() []*tree.Entry {
		file := func(p string, h uint64) *tree.Entry {
			e := &tree.Entry{Path: p, Type: tree.TypeRegular, Mode: 0o644, Size: 5, Mtime: 1e18}
			e.SetHash(h)
			return e
		}
		return []*tree.Entry{
			{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755, Mtime: 1e18},
			file("a", 1),
			{Path: "d", Type: tree.TypeDir, Mode: 0o755, Mtime: 1e18},
			file("d/b", 2),
			{Path: "dev", Type: tree.TypeCharDev, Mode: 0o666, Rdev: 0x103, Mtime: 1e18},
			{Path: "h", Type: tree.TypeRegular, Mode: 0o644, Size: 5, Mtime: 1e18, LinkTo: "a"},
			{Path: "l", Type: tree.TypeSymlink, Mode: 0o777, Target: "a", Mtime: 1e18},
		}
	}
	at := func(es []*tree.Entry, p string) *tree.Entry {
		for _, e := range es {
			if e.Path == p {
				return e
			}
		}
		t.Fatalf("no %s", p)
		return nil
	}
	tests := []struct {
		name   string
		change func(got []*tree.Entry) []*tree.Entry
		want   []string // "kind path: detail"
	}{
		{name: "same", change: func(g []*tree.Entry) []*tree.Entry { return g }},
		{name: "local identity ignored", change: func(g []*tree.Entry) []*tree.Entry {
			e := at(g, "a")
			e.Dev, e.Ino, e.Ctime, e.Nlink = 9, 9, 9, 2
			return g
		}},
		{name: "content hash", change: func(g []*tree.Entry) []*tree.Entry { at(g, "a").SetHash(7); return g },
			want: []string{"content a: content hash differs"}},
		{name: "unhashed same size", change: func(g []*tree.Entry) []*tree.Entry { at(g, "a").Flags = 0; return g }},
		{name: "size", change: func(g []*tree.Entry) []*tree.Entry { at(g, "d/b").Size = 6; return g },
			want: []string{"content d/b: size 5 -> 6"}},
		{name: "symlink target", change: func(g []*tree.Entry) []*tree.Entry { at(g, "l").Target = "d/b"; return g },
			want: []string{`content l: target "a" -> "d/b"`}},
		{name: "symlink mode ignored", change: func(g []*tree.Entry) []*tree.Entry { at(g, "l").Mode = 0o755; return g }},
		{name: "device number", change: func(g []*tree.Entry) []*tree.Entry { at(g, "dev").Rdev = 0x105; return g },
			want: []string{"content dev: device 0x103 -> 0x105"}},
		{name: "type", change: func(g []*tree.Entry) []*tree.Entry {
			e := at(g, "d/b")
			*e = tree.Entry{Path: "d/b", Type: tree.TypeDir, Mode: 0o755, Mtime: 1e18}
			return g
		}, want: []string{"content d/b: type file -> dir"}},
		{name: "mode and owner", change: func(g []*tree.Entry) []*tree.Entry {
			e := at(g, "a")
			e.Mode, e.UID = 0o600, 42
			return g
		}, want: []string{"metadata a: mode 0644 -> 0600, owner 0:0 -> 42:0"}},
		{name: "content and mtime: one drift", change: func(g []*tree.Entry) []*tree.Entry {
			e := at(g, "a")
			e.SetHash(7)
			e.Mtime++
			return g
		}, want: []string{"content a: content hash differs, mtime 2001-09-09T01:46:40Z -> 2001-09-09T01:46:40.000000001Z"}},
		{name: "mtime", change: func(g []*tree.Entry) []*tree.Entry { at(g, "d").Mtime++; return g },
			want: []string{"metadata d: mtime 2001-09-09T01:46:40Z -> 2001-09-09T01:46:40.000000001Z"}},
		{name: "acl and xattr", change: func(g []*tree.Entry) []*tree.Entry {
			at(g, "a").Xattrs = []tree.Xattr{{Name: "system.posix_acl_access", Value: []byte{2}}, {Name: "user.x", Value: []byte{1}}}
			return g
		}, want: []string{"metadata a: ACLs differ, xattrs differ"}},
		{name: "hard link broken", change: func(g []*tree.Entry) []*tree.Entry {
			e := at(g, "h")
			e.LinkTo = ""
			e.SetHash(1)
			return g
		}, want: []string{`metadata h: hard link "a" -> ""`}},
		{name: "missing and extra", change: func(g []*tree.Entry) []*tree.Entry {
			out := []*tree.Entry{}
			for _, e := range g {
				if e.Path != "d/b" {
					out = append(out, e)
				}
			}
			return append(out, &tree.Entry{Path: "z", Type: tree.TypeFIFO, Mode: 0o644})
		}, want: []string{"missing d/b: file", "extra z: fifo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, d := range CompareTrees(base(), tt.change(base())) {
				got = append(got, d.Kind+" "+d.Path+": "+d.Detail)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CompareTrees (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeMetrics(t *testing.T) {
	a := "# HELP goldsync_x X.\n# TYPE goldsync_x gauge\ngoldsync_x{image=\"a\"} 1\n# HELP goldsync_y Y.\n# TYPE goldsync_y gauge\ngoldsync_y{image=\"a\"} 2\n"
	b := "# HELP goldsync_x X.\n# TYPE goldsync_x gauge\ngoldsync_x{image=\"b\"} 3\n"
	want := "# HELP goldsync_x X.\n# TYPE goldsync_x gauge\ngoldsync_x{image=\"a\"} 1\ngoldsync_x{image=\"b\"} 3\n" +
		"# HELP goldsync_y Y.\n# TYPE goldsync_y gauge\ngoldsync_y{image=\"a\"} 2\n"
	if got := string(mergeMetrics([][]byte{[]byte(a), []byte(b)})); got != want {
		t.Errorf("mergeMetrics:\n%s\nwant:\n%s", got, want)
	}
}
