package fsx

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestListXattrsAt: a child's xattrs are listed through listxattrat and
// getxattrat on the directory's descriptor, with no /proc/self/fd path
// (the kernel has them since 6.13), and read the same as through the
// path-based calls: long lists and values (ERANGE, asked again), a
// symlink's own xattrs, never its target's.
func TestListXattrsAt(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(f, "user.probe", []byte("1"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	// A list longer than ListXattrs' first 1 KiB buffer, and a value
	// longer than its first 256 bytes.
	for i := range 9 {
		if err := unix.Setxattr(f, fmt.Sprintf("user.%0120d", i), []byte{byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Setxattr(f, "user.long", []byte(strings.Repeat("v", 300)), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(dir, "d"), "user.dir", []byte("d"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	// A symlink's own xattr needs a trusted name (root); without it the
	// symlink must still list none of its target's.
	symOwn := unix.Lsetxattr(filepath.Join(dir, "l"), "trusted.link", []byte("l"), 0) == nil
	_, d := openTestDir(t, dir)

	list := func() map[string][]Xattr {
		t.Helper()
		out := map[string][]Xattr{}
		for _, name := range []string{"f", "d", "l"} {
			xs, err := d.ListXattrs(name)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out[name] = xs
		}
		return out
	}
	before := procXattrCalls.Load()
	at := list()
	viaProc := procXattrCalls.Load() - before
	if len(at["f"]) != 11 || len(at["d"]) != 1 {
		t.Fatalf("listed %d xattrs of f (want 11), %d of d (want 1)", len(at["f"]), len(at["d"]))
	}
	if got := at["l"]; symOwn && (len(got) != 1 || got[0].Name != "trusted.link") || !symOwn && len(got) != 0 {
		t.Fatalf("the symlink lists %v (its own: %v): followed?", got, symOwn)
	}
	noXattrAt.Store(true)
	t.Cleanup(func() { noXattrAt.Store(false) })
	before = procXattrCalls.Load()
	proc := list()
	if procXattrCalls.Load() == before {
		t.Fatal("the path-based calls were not used with noXattrAt set")
	}
	if !reflect.DeepEqual(at, proc) {
		t.Fatalf("listxattrat and the /proc path disagree:\n%v\n%v", at, proc)
	}
	// Last: a kernel without the calls (or a filter refusing them) passes
	// the test above through the fallback.
	var buf [64]byte
	if _, err := listxattrAt(d.FD, "f", buf[:]); err == unix.ENOSYS || err == unix.EPERM {
		t.Skipf("listxattrat unavailable (%v): only the fallback was checked", err)
	}
	if viaProc != 0 {
		t.Fatalf("%d xattr calls went through /proc/self/fd where listxattrat and getxattrat are available", viaProc)
	}
}
