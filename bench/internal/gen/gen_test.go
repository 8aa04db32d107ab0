package gen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the generator sets owners, makes devices and sets security.capability")
	}
}

// listing records every attribute the generator sets, per path, from an
// independent walk (lstat, llistxattr, readlink, content hash).
func listing(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d nlink=%d mtime=%d", st.Mode, st.Uid, st.Gid, st.Nlink, st.Mtim.Nano())
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" size=%d sha=%s", st.Size, hex.EncodeToString(h.Sum(nil))[:16])
		case unix.S_IFLNK:
			tgt, err := os.Readlink(path)
			if err != nil {
				return err
			}
			desc += " ->" + tgt
		case unix.S_IFCHR, unix.S_IFBLK:
			desc += fmt.Sprintf(" rdev=%d", st.Rdev)
		}
		buf := make([]byte, 64<<10)
		n, err := unix.Llistxattr(path, buf)
		if err != nil {
			return err
		}
		names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
		sort.Strings(names)
		for _, name := range names {
			if name == "" {
				continue
			}
			v := make([]byte, 64<<10)
			m, err := unix.Lgetxattr(path, name, v)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %s=%x", name, v[:m])
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTreeDeterministic(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	tmp := t.TempDir()
	spec := Spec{Files: 300, Seed: 7}
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	sa, err := Tree(ctx, a, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Tree(ctx, b, spec); err != nil {
		t.Fatal(err)
	}
	la, lb := listing(t, a), listing(t, b)
	if diff := cmp.Diff(la, lb); diff != "" {
		t.Errorf("same spec, different trees (-a +b):\n%s", diff)
	}
	if got := len(la); got != sa.Entries() {
		t.Errorf("Stats.Entries() = %d, the tree holds %d", sa.Entries(), got)
	}
	counted, err := Count(a)
	if err != nil {
		t.Fatal(err)
	}
	// DataBytes counts allocated blocks, which the filesystem may round
	// up (ext4 sometimes allocates a block more): compare it within a
	// margin, everything else exactly.
	written, allocated := sa.DataBytes, counted.DataBytes
	sa.DataBytes, counted.DataBytes = 0, 0
	if diff := cmp.Diff(sa, counted); diff != "" {
		t.Errorf("Count disagrees with Tree's stats (-tree +count):\n%s", diff)
	}
	if d := allocated - written; d < -64<<10 || d > 64<<10 {
		t.Errorf("Count found %d data bytes allocated, Tree wrote %d", allocated, written)
	}

	other := filepath.Join(tmp, "c")
	if _, err := Tree(ctx, other, Spec{Files: 300, Seed: 8}); err != nil {
		t.Fatal(err)
	}
	if cmp.Equal(la, listing(t, other)) {
		t.Error("seeds 7 and 8 gave the same tree")
	}
}

func TestTreeHasTrickyParts(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	st, err := Tree(context.Background(), dir, Spec{Files: 2000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	l := listing(t, dir)
	count := func(sub string) int {
		n := 0
		for _, d := range l {
			if strings.Contains(d, sub) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		name, sub string
		min       int
	}{
		{name: "user xattrs", sub: "user.bench.origin=", min: 10},
		{name: "capabilities", sub: "security.capability=", min: 1},
		{name: "ACLs", sub: "system.posix_acl_access=", min: 1},
		{name: "hard links", sub: "nlink=2", min: 20},
		{name: "symlinks", sub: " ->", min: 50},
		{name: "devices", sub: "rdev=", min: 5},
	} {
		if got := count(c.sub); got < c.min {
			t.Errorf("%s: %d entries, want at least %d", c.name, got, c.min)
		}
	}
	if st.DataBytes >= st.Bytes {
		t.Errorf("data %d bytes, logical %d: the sparse file has no holes", st.DataBytes, st.Bytes)
	}
	var sp unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "var/lib/sparse.img"), &sp); err != nil {
		t.Fatal(err)
	}
	if sp.Blocks*512 >= sp.Size/4 {
		t.Errorf("sparse.img: %d bytes allocated of %d", sp.Blocks*512, sp.Size)
	}
}

func TestMutateRevert(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name                   string
		change                 Change
		created, modified, del int
	}{
		{name: "yum", change: ChangeYum, created: 65, modified: 5, del: 3},
		{name: "blocks", change: ChangeBlocks, created: 0, modified: 1, del: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			root, jdir := filepath.Join(tmp, "root"), filepath.Join(tmp, "journal")
			if _, err := Tree(context.Background(), root, Spec{Files: 400, Seed: 3}); err != nil {
				t.Fatal(err)
			}
			before := listing(t, root)
			sum, err := Mutate(root, jdir, tc.change, 42)
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.New) != tc.created || len(sum.Modified) != tc.modified || len(sum.Deleted) != tc.del {
				t.Errorf("new %d, modified %d, deleted %d; want %d, %d, %d",
					len(sum.New), len(sum.Modified), len(sum.Deleted), tc.created, tc.modified, tc.del)
			}
			after := listing(t, root)
			for _, p := range sum.Modified {
				if before[p] == after[p] {
					t.Errorf("%s not changed", p)
				}
			}
			for _, p := range sum.Deleted {
				if _, ok := after[p]; ok {
					t.Errorf("%s not deleted", p)
				}
			}
			if _, err := Mutate(root, jdir, tc.change, 42); err == nil {
				t.Error("a second Mutate over an unreverted change succeeded")
			}
			if err := Revert(root, jdir); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, listing(t, root)); diff != "" {
				t.Errorf("Revert did not restore the tree (-before +reverted):\n%s", diff)
			}
			if Mutated(jdir) {
				t.Error("journal left after Revert")
			}
			// The same seed picks the same paths again.
			again, err := Mutate(root, jdir, tc.change, 42)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sum.Modified, again.Modified); diff != "" {
				t.Errorf("same seed, other files (-first +second):\n%s", diff)
			}
		})
	}
}
