package treetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeTB records what a helper reports instead of failing the real test.
// Methods it does not override panic (the embedded TB is nil).
type fakeTB struct {
	testing.TB
	errors   []string
	skipped  string
	cleanups []func()
}

type stopped struct{}

func (f *fakeTB) Helper()                  {}
func (f *fakeTB) Context() context.Context { return context.Background() }
func (f *fakeTB) Cleanup(fn func())        { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(format string, a ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, a...))
}
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.Errorf(format, a...)
	panic(stopped{})
}
func (f *fakeTB) Skipf(format string, a ...any) {
	f.skipped = fmt.Sprintf(format, a...)
	panic(stopped{})
}

// run calls fn as a test body: Fatalf and Skipf end it.
func (f *fakeTB) run(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stopped); !ok {
				panic(r)
			}
		}
	}()
	fn()
}

// finish runs the cleanups, last registered first.
func (f *fakeTB) finish() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.run(f.cleanups[i])
	}
}

// TestTrackFDs runs TrackFDs against a fake test that leaks a file, and
// one that closes it. It must not run in parallel with other tests.
func TestTrackFDs(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		close bool
		leaks bool
	}{
		{name: "closed", close: true},
		{name: "leaked", leaks: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := &fakeTB{}
			var f *os.File
			tb.run(func() {
				TrackFDs(tb)
				var err error
				if f, err = os.Create(filepath.Join(dir, c.name)); err != nil {
					t.Fatal(err)
				}
				if c.close {
					f.Close()
				}
			})
			tb.finish()
			f.Close()
			if got := len(tb.errors) > 0; got != c.leaks {
				t.Fatalf("reported a leak: %v, want %v: %q", got, c.leaks, tb.errors)
			}
			if c.leaks && !strings.Contains(tb.errors[0], filepath.Join(dir, c.name)) {
				t.Errorf("report does not name the leaked file:\n%s", tb.errors[0])
			}
		})
	}
}

func TestRsyncCopySkipsWithoutRsync(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	tb := &fakeTB{}
	tb.run(func() { RsyncCopy(tb, t.TempDir(), t.TempDir()) })
	if !strings.Contains(tb.skipped, "rsync is not installed") || len(tb.errors) != 0 {
		t.Errorf("skipped %q, errors %q", tb.skipped, tb.errors)
	}
}

// TestContentHash checks that the hash depends on size and bytes only, not
// on where the file's holes are.
func TestContentHash(t *testing.T) {
	dir := t.TempDir()
	type extent struct {
		off  int64
		data []byte
	}
	mk := func(name string, size int64, extents ...extent) string {
		t.Helper()
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		for _, e := range extents {
			if _, err := f.WriteAt(e.data, e.off); err != nil {
				t.Fatal(err)
			}
		}
		h, err := contentHash(int(f.Fd()), size, make([]byte, 64<<10))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	data := random("content hash", 10000)
	zeros := make([]byte, 1<<20)
	cases := []struct {
		name string
		a, b string
		same bool
	}{
		{"hole or written zeros", mk("hole", 4<<20), mk("zeros", 4<<20, extent{0, zeros}, extent{3 << 20, zeros}), true},
		{"data in a hole or in zeros", mk("d-hole", 4<<20, extent{1<<20 + 7, data}),
			mk("d-zeros", 4<<20, extent{0, zeros}, extent{1 << 20, zeros}, extent{1<<20 + 7, data}), true},
		{"same data, other offset", mk("off1", 4<<20, extent{4096, data}), mk("off2", 4<<20, extent{8192, data}), false},
		{"same data, other size", mk("size1", 1<<20, extent{0, data}), mk("size2", 1<<20+1, extent{0, data}), false},
		{"empty and all hole", mk("empty", 0), mk("holeonly", 1), false},
		{"one byte differs", mk("b1", 64<<10, extent{5000, []byte{1}}), mk("b2", 64<<10, extent{5000, []byte{2}}), false},
		{"trailing data after a buffer's worth", mk("t1", 200<<10, extent{200<<10 - 1, []byte{1}}),
			mk("t2", 200<<10, extent{0, zeros[:200<<10-1]}, extent{200<<10 - 1, []byte{1}}), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if (c.a == c.b) != c.same {
				t.Errorf("same hash: %v, want %v", c.a == c.b, c.same)
			}
		})
	}
}

// TestRsyncWithoutHAXS checks that the comparison has teeth: the seed's
// plain rsync -a (here -aHAXS with H, A, X and S turned back off) loses
// hard links, ACLs and xattrs of the tricky tree, and Diff reports exactly
// those.
func TestRsyncWithoutHAXS(t *testing.T) {
	needRoot(t, "the tricky tree has devices, foreign owners and security xattrs")
	src, dst := t.TempDir(), t.TempDir()
	want := MakeTricky(t, src, TrickyOptions{NoSparse: true})
	RsyncCopy(t, src, dst, "--no-H", "--no-A", "--no-X", "--no-S")
	d := Diff(want, Scan(t, dst), DiffOptions{})
	lost := map[string]bool{}
	for _, line := range d {
		switch {
		case strings.Contains(line, ": hard-link group "):
			lost["hard links"] = true
		case strings.Contains(line, ": xattr system.posix_acl_"):
			lost["ACLs"] = true
		case strings.Contains(line, ": xattr "):
			lost["xattrs"] = true
		case strings.HasPrefix(line, PathACLDir+"/"):
			// Without -A, what the default ACL would have made of the
			// children's modes differs too.
		default:
			t.Errorf("unexpected difference: %s", line)
		}
	}
	for _, what := range []string{"hard links", "ACLs", "xattrs"} {
		if !lost[what] {
			t.Errorf("rsync -a kept %s, or Diff missed their loss:\n%s", what, strings.Join(d, "\n"))
		}
	}
	if capLost := PathCap + ": xattr security.capability missing"; !slices.Contains(d, capLost) {
		t.Errorf("no %q in:\n%s", capLost, strings.Join(d, "\n"))
	}
}
