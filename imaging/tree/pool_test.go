package tree

import "testing"

// TestEntryPool: what is put is got back, nothing when empty, at most
// entryPoolMax kept, and moving entries through it allocates nothing once
// its list has grown.
func TestEntryPool(t *testing.T) {
	var p EntryPool
	if p.Get() != nil {
		t.Fatal("an empty pool gave an entry")
	}
	es := make([]*Entry, entryPoolMax+10)
	for i := range es {
		es[i] = &Entry{Size: int64(i)}
		p.Put(es[i])
	}
	n := 0
	for e := p.Get(); e != nil; e = p.Get() {
		if e != es[entryPoolMax-1-n] {
			t.Fatalf("entry %d out is %d", n, e.Size)
		}
		n++
	}
	if n != entryPoolMax {
		t.Errorf("%d entries kept of %d put, want %d", n, len(es), entryPoolMax)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, e := range es[:64] {
			p.Put(e)
		}
		for range 64 {
			if p.Get() == nil {
				t.Fatal("pool empty")
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations for 64 entries through the pool, want 0", allocs)
	}
}
