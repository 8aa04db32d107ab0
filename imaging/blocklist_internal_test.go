package imaging

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// testBlocks makes n blocks with sorted first paths that share
// directories, as a base's do.
func testBlocks(n int) []baseBlock {
	rng := rand.New(rand.NewPCG(3, 4))
	var paths []string
	for len(paths) < n {
		d := fmt.Sprintf("usr/lib/python3/dist-packages/module%04d/tests/data/sub%03d", rng.IntN(5000), rng.IntN(300))
		paths = append(paths, d+fmt.Sprintf("/fixture-file-%06d.json.gz", rng.IntN(1_000_000)))
		if rng.IntN(7) == 0 {
			paths = append(paths, d) // a directory's own path
		}
	}
	slices.SortFunc(paths, tree.Compare)
	paths = slices.Compact(paths)
	var bs []baseBlock
	off := manifestHeader
	for i, p := range paths {
		b := baseBlock{first: p, off: off, len: 1000 + rng.IntN(40000), n: 1 + rng.IntN(manifestBlock), sum: rng.Uint64()}
		if i == 0 {
			b.first = tree.Root
		}
		off += b.len
		bs = append(bs, b)
	}
	return bs
}

// The list gives back every block it was given, by index, in order from
// any block, and search finds the block a path belongs in as a binary
// search of the blocks would.
func TestBlockListRoundTrips(t *testing.T) {
	for _, n := range []int{0, 1, restartEvery - 1, restartEvery, restartEvery + 1, 1000} {
		bs := testBlocks(n)
		var l blockList
		for _, b := range bs {
			l.add(b)
		}
		if n%2 == 0 {
			l.trim()
		}
		if l.len() != len(bs) {
			t.Fatalf("n=%d: len %d", n, l.len())
		}
		for i, b := range bs {
			if got := l.get(i); got != b {
				t.Fatalf("n=%d: get(%d) = %+v, want %+v", n, i, got, b)
			}
		}
		for _, from := range []int{0, 1, restartEvery - 1, restartEvery, len(bs) / 2, len(bs) - 1, len(bs)} {
			var got []baseBlock
			for i, b := range l.all(from) {
				if i != from+len(got) {
					t.Fatalf("n=%d from %d: index %d after %d blocks", n, from, i, len(got))
				}
				got = append(got, b)
			}
			if from >= 0 && from <= len(bs) && !slices.Equal(got, bs[min(from, len(bs)):]) {
				t.Fatalf("n=%d: all(%d) gave %d blocks, not the list's %d from there", n, from, len(got), len(bs)-from)
			}
		}
		probe := []string{tree.Root, "a", "usr", "usr/share", "zzz", "usr/lib/python3/dist-packages/module2500"}
		for _, b := range bs {
			probe = append(probe, b.first, b.first+"/x", b.first+"~")
		}
		for _, p := range probe {
			want := sort.Search(len(bs), func(i int) bool { return tree.Compare(bs[i].first, p) > 0 }) - 1
			if got := l.search(p); got != want {
				t.Fatalf("n=%d: search(%q) = %d, want %d", n, p, got, want)
			}
		}
	}
}

// The list holds a block in well under half of what a slice of baseBlock
// did (~145 bytes a block with the ~95-byte paths of the 1M tree, issue
// #14).
func TestBlockListIsCompact(t *testing.T) {
	bs := testBlocks(20000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := new(blockList)
	for _, b := range bs {
		l.add(baseBlock{first: string([]byte(b.first)), off: b.off, len: b.len, n: b.n, sum: b.sum})
	}
	l.trim()
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / float64(len(bs))
	avg := 0
	for _, b := range bs {
		avg += len(b.first)
	}
	t.Logf("%d blocks, paths of %.0f bytes: %.1f bytes a block", len(bs), float64(avg)/float64(len(bs)), per)
	if per > 72 {
		t.Errorf("%.1f bytes a block, want at most 72", per)
	}
	runtime.KeepAlive(l)
}
