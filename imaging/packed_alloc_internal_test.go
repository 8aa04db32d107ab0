package imaging

import (
	"fmt"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestDecodePackedAllocs: decoding a hash-cache block for the walk's
// lookups makes no string per entry. Each entry's path was a new string,
// of which the block kept only the name (copied) and the parent: ~290k
// allocations and ~25 MB of the golden node's no-change pull of 225k
// entries (issue #14). The paths are now decoded into two reused buffers
// and a new parent is copied; what the blocks keep must survive the
// buffers' reuse, so every block is decoded before any is checked.
func TestDecodePackedAllocs(t *testing.T) {
	var es []*tree.Entry
	es = append(es, &tree.Entry{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755},
		&tree.Entry{Path: "etc", Type: tree.TypeDir, Mode: 0o755},
		&tree.Entry{Path: "etc/motd", Type: tree.TypeRegular, Mode: 0o644, Size: 3},
		&tree.Entry{Path: "usr", Type: tree.TypeDir, Mode: 0o755},
		&tree.Entry{Path: "usr/share", Type: tree.TypeDir, Mode: 0o755})
	for i := range 30 {
		d := fmt.Sprintf("usr/share/package-%03d", i)
		es = append(es, &tree.Entry{Path: d, Type: tree.TypeDir, Mode: 0o755})
		for j := range 90 {
			e := &tree.Entry{Path: fmt.Sprintf("%s/file-%04d.conf", d, j), Type: tree.TypeRegular, Mode: 0o644, Size: int64(j), Mtime: int64(i*1000 + j), Ino: uint64(i*1000 + j + 1)}
			if j%31 == 0 {
				e.Type, e.Size, e.Target = tree.TypeSymlink, 0, fmt.Sprintf("../target-%d", j)
			} else {
				e.SetHash(uint64(j) * 7919)
			}
			es = append(es, e)
		}
	}
	bf, idx := testBase(t, es)
	var pbs []*packedBlock
	for range 2 {
		for _, b := range idx.blocks.all(0) {
			pb, err := decodePacked(bf, b)
			if err != nil {
				t.Fatal(err)
			}
			pbs = append(pbs, pb)
		}
	}
	n := 0
	for _, pb := range pbs {
		for k := range pb.len() {
			w := es[n%len(es)]
			var e tree.Entry
			pb.entry(k, w.Path, &e)
			if !pb.is(k, w.Path) || e.Size != w.Size || e.Hash != w.Hash || e.Ino != w.Ino || e.Target != w.Target {
				dir := pb.dirs[pb.recs[k].dir]
				t.Fatalf("entry %d decoded as %q/%q (size %d, target %q), want %q (%d, %q)", n, dir, pb.name(k), e.Size, e.Target, w.Path, w.Size, w.Target)
			}
			if pb.compare(k, w.Path) != 0 {
				t.Fatalf("entry %d: compare with its own path %q is not 0", n, w.Path)
			}
			n++
		}
	}
	if n != 2*len(es) {
		t.Fatalf("decoded %d entries, want %d", n, 2*len(es))
	}
	b := idx.blocks.get(0)
	for _, c := range idx.blocks.all(0) {
		if c.n > b.n {
			b = c
		}
	}
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := decodePacked(bf, b); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%d blocks; decoding a block of %d entries: %.0f allocations", idx.blocks.len(), b.n, allocs)
	// The block itself, its records, names, parents (one a directory,
	// copied) and the symlinks' targets; a string an entry before.
	if allocs > float64(b.n)/4 {
		t.Errorf("decoding a block of %d entries made %.0f allocations, more than %d", b.n, allocs, b.n/4)
	}
}
