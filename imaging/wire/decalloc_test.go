package wire

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestDecodeLentEntries: a decoder lent entries decodes into the ones
// given back and returns one message, so an entry costs only its path
// (three allocations an entry without: the entry, the message and the
// path; issue #14); what it decodes is what was sent, also when the entry
// it decodes into held another entry's fields before.
func TestDecodeLentEntries(t *testing.T) {
	const n = 2000
	var sent []*tree.Entry
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for i := range n {
		e := &tree.Entry{Path: fmt.Sprintf("d%02d/f%05d", i/100, i), Type: tree.TypeRegular, Mode: 0o644, Size: int64(i + 1), Mtime: int64(i) << 30}
		if i%7 == 0 {
			e.Type, e.Size, e.Target = tree.TypeSymlink, 0, "t"
		}
		if i%11 == 0 {
			e.Xattrs = []tree.Xattr{{Name: "user.k", Value: []byte{byte(i)}}}
		}
		if i%2 == 0 && e.Type == tree.TypeRegular {
			e.SetHash(uint64(i))
		}
		if err := enc.Encode(&Entry{Entry: e}); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, e)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, lend := range []bool{false, true} {
		dec := NewDecoder(bytes.NewReader(buf.Bytes()))
		var pool tree.EntryPool
		if lend {
			dec.LendEntries(&pool)
		}
		k := 0
		next := func() {
			m, err := dec.Next()
			if err != nil {
				t.Fatal(err)
			}
			e := m.(*Entry).Entry
			w := sent[k]
			if e.Path != w.Path || e.Type != w.Type || e.Size != w.Size || e.Mtime != w.Mtime || e.Target != w.Target ||
				e.Flags != w.Flags || e.Hash != w.Hash || !tree.XattrsEqual(e.Xattrs, w.Xattrs) {
				t.Fatalf("lend %v: entry %d decoded as %+v, sent %+v", lend, k, e, w)
			}
			k++
			pool.Put(e) // given back (without a pool set, only dropped)
		}
		next()
		allocs := testing.AllocsPerRun(n-2, next)
		// One path string, and the xattrs of one entry in 11.
		want := 1.3
		if !lend {
			want = 3
		}
		if (lend && allocs > want) || (!lend && allocs < want) {
			t.Errorf("lend %v: %.2f allocations an entry", lend, allocs)
		}
		t.Logf("lend %v: %.2f allocations an entry", lend, allocs)
	}
}
