package imaging

import (
	"fmt"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestEntrySpoolAddAllocs: spooling an entry allocates nothing once the
// spool's buffer has grown (the record's length was written from a local
// array that escaped: one allocation a record, two spools of every entry
// of a pull; issue #14), and what is spooled reads back the same.
func TestEntrySpoolAddAllocs(t *testing.T) {
	sp, err := newSpool(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	s := &entrySpool{spool: sp}
	es := make([]*tree.Entry, 4096)
	for i := range es {
		es[i] = &tree.Entry{Path: fmt.Sprintf("d%03d/f%05d", i/64, i), Type: tree.TypeRegular, Mode: 0o644,
			Size: int64(i), Mtime: int64(i) << 20, Dev: 5, Ino: uint64(1000 + i), Nlink: 1, Ctime: int64(i) << 21}
		es[i].SetHash(uint64(i) * 0x9e3779b97f4a7c15)
	}
	k := 0
	allocs := testing.AllocsPerRun(len(es)-1, func() {
		if err := s.add(es[k]); err != nil {
			t.Fatal(err)
		}
		k++
	})
	if allocs > 0.01 {
		t.Errorf("%.2f allocations an entry spooled, want 0", allocs)
	}
	var rerr error
	n := 0
	for e := range s.entries(&rerr) {
		if n >= k || e.Path != es[n].Path || e.Ino != es[n].Ino || e.Hash != es[n].Hash || e.Ctime != es[n].Ctime {
			t.Fatalf("entry %d read back as %+v", n, e)
		}
		n++
	}
	if rerr != nil || n != k || s.Len() != k {
		t.Fatalf("%d entries read back of %d (spool says %d), err %v", n, k, s.Len(), rerr)
	}
}
