package fsx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNamesAndLstat: Names lists what os.ReadDir lists (a directory of
// 2,000 names, several getdents64 calls, names of 1 to 255 bytes) in one
// allocation a call, and Lstat stats any of them without allocating;
// a name with a NUL is refused, a name past NAME_MAX is the kernel's to
// refuse (issue #14: a walk lists and stats every name of its tree).
func TestNamesAndLstat(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 2000 {
		n := fmt.Sprintf("f%d", i)
		switch i % 7 {
		case 1:
			n += strings.Repeat("x", 60)
		case 2:
			n = strings.Repeat("y", 250) + fmt.Sprintf("%05d", i)[:5]
		}
		want = append(want, n)
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	want = append(want, "sub")
	slices.Sort(want)
	_, d := openTestDir(t, dir)
	got, err := d.Names()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Names: %d names, want %d (first difference near %q)", len(got), len(want), firstDiff(got, want))
	}
	for _, n := range []string{want[0], want[len(want)/2], "sub"} {
		var st unix.Stat_t
		if err := d.Lstat(n, &st); err != nil {
			t.Fatalf("Lstat %q: %v", n, err)
		}
		var want unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, n), &want); err != nil {
			t.Fatal(err)
		}
		if st.Ino != want.Ino || st.Mode != want.Mode {
			t.Errorf("Lstat %q: inode %d mode %o, unix.Lstat %d %o", n, st.Ino, st.Mode, want.Ino, want.Mode)
		}
	}
	var st unix.Stat_t
	long := strings.Repeat("y", 250) + "00002"
	if allocs := testing.AllocsPerRun(100, func() { d.Lstat(long, &st) }); allocs != 0 {
		t.Errorf("Lstat of a 255-byte name: %.0f allocations, want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(20, func() { d.Names() }); allocs > 20 {
		t.Errorf("Names of %d names: %.0f allocations, want a few a getdents64 call (not one a name)", len(want), allocs)
	}
	if err := d.Lstat("f1\x00/etc/passwd", &st); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Lstat of a name with a NUL: %v, want EINVAL", err)
	}
	if err := d.Lstat(strings.Repeat("z", 300), &st); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Errorf("Lstat of a 300-byte name: %v, want ENAMETOOLONG", err)
	}
	if err := d.Lstat("missing", &st); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Lstat of a missing name: %v, want ENOENT", err)
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i]
		}
	}
	return ""
}

// TestNamesInto: NamesInto lists what Names does into storage it reuses:
// no allocation once the storage has grown, and the names of the last
// call are as listed (issue #14). A huge directory's storage is not kept.
func TestNamesInto(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	want := make([][]string, len(dirs))
	for k, dir := range dirs {
		for i := range 300 + 700*k {
			n := fmt.Sprintf("%d-entry-%04d", k, i)
			want[k] = append(want[k], n)
			if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var nb NameBuf
	for range 2 {
		for k, dir := range dirs {
			_, d := openTestDir(t, dir)
			got, err := d.NamesInto(&nb)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, want[k]) {
				t.Fatalf("NamesInto: %d names, want %d (first difference near %q)", len(got), len(want[k]), firstDiff(got, want[k]))
			}
			if allocs := testing.AllocsPerRun(20, func() { d.NamesInto(&nb) }); allocs != 0 {
				t.Errorf("NamesInto of %d names: %.0f allocations, want 0", len(want[k]), allocs)
			}
		}
	}
	huge := t.TempDir()
	var names []string
	for i := range maxNameBuf / 16 {
		n := fmt.Sprintf("a-rather-long-file-name-%06d", i)
		names = append(names, n)
		if err := os.WriteFile(filepath.Join(huge, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, d := openTestDir(t, huge)
	got, err := d.NamesInto(&nb)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(got); !slices.Equal(got, names) {
		t.Fatalf("NamesInto of a huge directory: %d names, want %d", len(got), len(names))
	}
	if cap(nb.blob) > maxNameBuf || cap(nb.names) > maxNameBuf/16 {
		t.Errorf("after a huge directory the NameBuf keeps %d bytes and %d names, more than %d and %d", cap(nb.blob), cap(nb.names), maxNameBuf, maxNameBuf/16)
	}
}

// TestNamesSeekOnlyWhenRead: a directory opened by OpenDir or Sub is
// listed without a seek the first time (its descriptor is new, at offset
// 0: a walk saved an lseek a directory), and from the start, with a seek,
// every time after; the root's Dir, a dup sharing the root's offset, and
// a Dir read through its FD are always sought back first.
func TestNamesSeekOnlyWhenRead(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 300 {
		n := fmt.Sprintf("a-longer-name-%04d", i)
		want = append(want, n)
		if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n, "x"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	list := func(d *Dir, seeks int64) {
		t.Helper()
		s0 := dirSeeks.Load()
		got, err := d.Names()
		if err != nil {
			t.Fatal(err)
		}
		if s := dirSeeks.Load() - s0; s != seeks {
			t.Errorf("%s: %d seeks listing it, want %d", d.Path, s, seeks)
		}
		slices.Sort(got)
		w := want
		if d.Path != "." {
			w = []string{"x"}
		}
		if !slices.Equal(got, w) {
			t.Errorf("%s: %d names, want %d", d.Path, len(got), len(w))
		}
	}
	root, err := r.OpenDir(".")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	list(root, 1)
	list(root, 1)
	// Read through FD (the names left unread), then listed: from the start.
	r2, err := r.OpenDir(".")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := unix.Getdents(r2.FD, make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	list(r2, 1)
	sub, err := r.OpenDir(want[7])
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	list(sub, 0)
	list(sub, 1)
	sub2, err := root.Sub(want[9])
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	list(sub2, 0)
	list(sub2, 1)
}
