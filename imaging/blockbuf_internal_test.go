package imaging

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestBlockReadsReuseBuffers: decoding a file base's blocks again and
// again (the walks' lookups, ~1.2 blocks decoded per 256 entries walked)
// reads each into a reused buffer, not a new one: a block's raw bytes were
// an eighth of the golden node's allocations in a no-change pull (issue
// #14). Work counts, not timings: a block read allocates nothing (a
// new buffer a read before), and the decoded entries keep nothing of
// the buffer.
func TestBlockReadsReuseBuffers(t *testing.T) {
	var es []*tree.Entry
	es = append(es, &tree.Entry{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755})
	for i := range 40 {
		d := fmt.Sprintf("usr/share/package-%03d", i)
		if i == 0 {
			es = append(es, &tree.Entry{Path: "usr", Type: tree.TypeDir, Mode: 0o755}, &tree.Entry{Path: "usr/share", Type: tree.TypeDir, Mode: 0o755})
		}
		es = append(es, &tree.Entry{Path: d, Type: tree.TypeDir, Mode: 0o755})
		for j := range 100 {
			e := &tree.Entry{Path: fmt.Sprintf("%s/a-rather-long-file-name-%04d.conf", d, j), Type: tree.TypeRegular, Mode: 0o644, Size: int64(j), Mtime: int64(i*1000 + j), Ino: uint64(i*1000 + j + 1)}
			e.SetHash(uint64(j) * 7919)
			es = append(es, e)
		}
	}
	bf, idx := testBase(t, es)
	// Every block decoded twice, in turn: what a decode keeps is a copy,
	// never the reused buffer (the second round would show it).
	for round := range 2 {
		n := 0
		for _, b := range idx.blocks.all(0) {
			got, err := decodeBlock(bf, b)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range got {
				if w := es[n]; e.Path != w.Path || e.Size != w.Size || e.Hash != w.Hash || e.Ino != w.Ino {
					t.Fatalf("round %d: entry %d decoded as %q (size %d), want %q (%d)", round, n, e.Path, e.Size, w.Path, w.Size)
				}
				n++
			}
		}
		if n != len(es) {
			t.Fatalf("round %d: decoded %d entries, want %d", round, n, len(es))
		}
	}
	b := idx.blocks.get(idx.blocks.len() / 2)
	allocs := testing.AllocsPerRun(100, func() {
		raw, bp, err := bf.readBlock(int64(b.off), int64(b.len))
		if err != nil || len(raw) != b.len {
			t.Fatalf("readBlock: %d bytes, %v", len(raw), err)
		}
		if bp != nil {
			putBlockBuf(bp)
		}
	})
	t.Logf("%d blocks; reading a %d-byte block: %.0f allocations", idx.blocks.len(), b.len, allocs)
	if allocs != 0 {
		t.Errorf("reading a block from a file allocated %.0f times, want 0 (a reused buffer)", allocs)
	}
}

// testBase writes es as a manifest base file in a temp dir and opens it,
// returning the file and its block index.
func testBase(t *testing.T, es []*tree.Entry) (baseFile, *baseIndex) {
	t.Helper()
	var buf bytes.Buffer
	if err := writeBase(&buf, func(yield func(*tree.Entry) bool) {
		for _, e := range es {
			if !yield(e) {
				return
			}
		}
	}, 1); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "base")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	bf, err := fileBase(f)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := readIndex(bf)
	if err != nil {
		t.Fatal(err)
	}
	return bf, idx
}
