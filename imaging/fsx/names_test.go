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
