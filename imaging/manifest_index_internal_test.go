package imaging

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/goldsync/goldsync/internal/heaptest"
)

// TestBaseWriterIndexStreams: a manifest's index is written in pieces as
// it is encoded, so finishing a base allocates about a piece, not the
// index (held whole it was ~1.3 MB at a million entries, plus as much of
// garbage as its buffer doubled); and the base it writes decodes to what
// was added. The pieces are made small here, so that an index of a test's
// size spans many; the least of five passes, the counters being the
// process's.
func TestBaseWriterIndexStreams(t *testing.T) {
	defer func(n int) { indexPiece = n }(indexPiece)
	indexPiece = 1 << 10
	r := rand.New(rand.NewPCG(21, 22))
	es := genTree(r, 60000, "idx")
	build := func(w io.Writer) *baseWriter {
		bw, err := newBaseWriter(w, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if err := bw.add(e); err != nil {
				t.Fatal(err)
			}
		}
		return bw
	}
	var buf bytes.Buffer
	bw := build(&buf)
	before := buf.Len()
	if err := bw.finish(); err != nil {
		t.Fatal(err)
	}
	index := buf.Len() - before
	m, err := DecodeManifest(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != len(es) {
		t.Fatalf("decoded %d entries, want %d", len(m.Entries), len(es))
	}
	bound := uint64(4 * indexPiece)
	if uint64(index) < 4*bound {
		t.Fatalf("the index is %d B, too small to tell (want over %d)", index, 4*bound)
	}
	least := uint64(1 << 62)
	for range 5 {
		bw := build(io.Discard)
		got, _ := heaptest.Allocated(func() {
			if err := bw.finish(); err != nil {
				t.Error(err)
			}
		})
		least = min(least, got)
	}
	t.Logf("index %d B in %d blocks; finish allocated %d B", index, bw.blocks.len(), least)
	if least > bound {
		t.Errorf("finish allocated %d B for an index of %d B, want at most %d (written as it is encoded)", least, index, bound)
	}
}
