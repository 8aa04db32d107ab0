package imaging

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/heaptest"
)

// TestCopySources checks the on-disk copy sources against the map they
// replace: the same source for every hash (the first file in the list
// with it), none for a hash no file has, in memory for a few files and
// merged from spilled runs for more than copyRunLen.
func TestCopySources(t *testing.T) {
	for _, n := range []int{0, 10, 3*copyRunLen + 77} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var es []*tree.Entry
			for i := range n {
				e := &tree.Entry{Path: fmt.Sprintf("d%03d/f%07d", i%997, i), Type: tree.TypeRegular, Size: int64(1 + i%5)}
				// Every seventh file shares its hash with a file far
				// before it (another run); some files have no hash or
				// no content, and are no copy sources.
				h := uint64(i) * 0x9e3779b97f4a7c15
				if i%7 == 0 && i > 2*copyRunLen {
					h = uint64(i-2*copyRunLen) * 0x9e3779b97f4a7c15
				}
				switch i % 11 {
				case 3:
					e.Size = 0
					e.SetHash(h)
				case 5:
				default:
					e.SetHash(h)
				}
				es = append(es, e)
			}
			want := map[uint64]hashSrc{}
			for _, e := range es {
				addHash(want, e)
			}
			c, err := buildCopySources(t.TempDir(), slices.Values(es))
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			if spilled := c.recs != nil; spilled != (n > copyRunLen) {
				t.Errorf("spilled to runs: %v with %d files", spilled, n)
			}
			for _, e := range es {
				if got, w := c.lookup(e.Hash), want[e.Hash]; got != w {
					t.Fatalf("lookup(%x) = %+v, want %+v", e.Hash, got, w)
				}
			}
			for _, h := range []uint64{1, 0x9e3779b97f4a7c15 + 1, ^uint64(0)} {
				if got := c.lookup(h); got != want[h] {
					t.Errorf("lookup(%x) = %+v, want %+v", h, got, want[h])
				}
			}
		})
	}
}

// TestCopySourcesMemory bounds what the copy sources of a 200k-file
// destination hold on the heap: the sparse index, under a byte a file.
// The map they replace (hash to path and size) held ~100 B a file, for
// every run that created a file.
func TestCopySourcesMemory(t *testing.T) {
	const n = 200_000
	files := func(yield func(*tree.Entry) bool) {
		for i := range n {
			e := &tree.Entry{Path: fmt.Sprintf("usr/share/package-%06d/file-%05d.conf", i/100, i%100), Type: tree.TypeRegular, Size: 100}
			e.SetHash(uint64(i) * 0x9e3779b97f4a7c15)
			if !yield(e) {
				return
			}
		}
	}
	before := heaptest.Live()
	c, err := buildCopySources(t.TempDir(), files)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	held := float64(heaptest.Live()) - float64(before)
	t.Logf("%.0f B held, %.2f B a file", held, held/n)
	if held/n > 8 {
		t.Errorf("the copy sources of %d files hold %.1f B a file, more than 8", n, held/n)
	}
	last := uint64(n - 1)
	if got := c.lookup(last * 0x9e3779b97f4a7c15); got.size != 100 {
		t.Errorf("last file's copy source: %+v", got)
	}
	runtime.KeepAlive(c)
}
