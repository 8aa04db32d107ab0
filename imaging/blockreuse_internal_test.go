package imaging

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/heaptest"
)

// reuseEntries is a hash cache's worth of entries over several blocks:
// directories, hashed files, symlinks and a few xattrs.
func reuseEntries() []*tree.Entry {
	es := []*tree.Entry{{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755}, {Path: "usr", Type: tree.TypeDir, Mode: 0o755}}
	for i := range 24 {
		d := fmt.Sprintf("usr/package-%03d", i)
		es = append(es, &tree.Entry{Path: d, Type: tree.TypeDir, Mode: 0o755, Ino: uint64(i + 1)})
		for j := range 100 {
			e := &tree.Entry{Path: fmt.Sprintf("%s/file-%04d", d, j), Type: tree.TypeRegular, Mode: 0o644, Size: int64(j), Mtime: int64(i*1000 + j), Ino: uint64(i*1000 + j + 100)}
			switch {
			case j%23 == 0:
				e.Type, e.Size, e.Target = tree.TypeSymlink, 0, fmt.Sprintf("../t-%d-%d", i, j)
			case j%17 == 0:
				e.Xattrs = []tree.Xattr{{Name: "user.n", Value: []byte(e.Path)}}
				fallthrough
			default:
				e.SetHash(uint64(i*1000+j) * 7919)
			}
			es = append(es, e)
		}
	}
	return es
}

// reuseReader writes es as a base and opens a reader of it keeping keep
// blocks.
func reuseReader(t *testing.T, es []*tree.Entry, keep int) *manifestReader {
	t.Helper()
	path := filepath.Join(t.TempDir(), "base")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeBase(f, func(yield func(*tree.Entry) bool) {
		for _, e := range es {
			if !yield(e) {
				return
			}
		}
	}, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := openManifestReader(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	r.keep = keep
	return r
}

func sameRecorded(got, want *tree.Entry) bool {
	return got != nil && got.Path == want.Path && got.Type == want.Type && got.Size == want.Size && got.Mtime == want.Mtime &&
		got.Ino == want.Ino && got.Hash == want.Hash && got.Flags == want.Flags && got.Target == want.Target && tree.XattrsEqual(got.Xattrs, want.Xattrs)
}

// TestReaderReusesBlocks: a manifestReader decodes a block into the
// arrays and names' buffer of one evicted before, once no lookup holds
// that one: a block's records were a new 20 KiB each time and its names a
// new string, the largest part of the golden node's allocations in a
// no-change pull (~270k entries decoded for 225k walked; issue #14). A block a lookup still holds is
// never decoded into, however many are evicted meanwhile. Work counts.
func TestReaderReusesBlocks(t *testing.T) {
	es := reuseEntries()
	r := reuseReader(t, es, 2)
	if r.bi.blocks.len() < 8 {
		t.Fatalf("%d blocks, want several", r.bi.blocks.len())
	}

	// A block held (as a cursor holds its block between lookups, on
	// another goroutine) while every other block is decoded and evicted.
	held := es[3]
	pb, j, ok := r.locate(held.Path)
	if !ok {
		t.Fatalf("%q not found", held.Path)
	}
	for _, e := range es[256:] {
		if got := r.lookup(e.Path); !sameRecorded(got, e) {
			t.Fatalf("lookup %q: %+v, want %+v", e.Path, got, e)
		}
	}
	var e tree.Entry
	if pb.entry(j, held.Path, &e); !pb.is(j, held.Path) || !sameRecorded(&e, held) {
		t.Fatalf("the held block's entry %d is now %q/%q %+v, want %+v", j, pb.dirs[pb.recs[j].dir], pb.name(j), e, *held)
	}
	r.release(pb)

	// A cursor holds its block between lookups, and lets go of it after
	// each directory (the walk calls done): then only the cache holds it.
	look, done := r.cursor()
	if got := look(held.Path); !sameRecorded(got, held) {
		t.Fatalf("cursor: %q gives %+v", held.Path, got)
	}
	refs := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.cache {
			if c.i == 0 {
				return c.pb.refs
			}
		}
		return -1
	}
	if n := refs(); n != 2 {
		t.Fatalf("block 0 held by %d after a cursor's lookup, want 2 (the cache, the cursor)", n)
	}
	done()
	if n := refs(); n != 1 {
		t.Fatalf("block 0 held by %d after the cursor's done, want 1 (the cache)", n)
	}

	// Every block decoded in turn, twice over: with two kept, each is
	// decoded into an evicted one's arrays.
	perBlock, blocks := sweepAllocs(t, r, es)
	t.Logf("%.0f blocks decoded, %.0f B allocated a block (least of 5 sweeps)", blocks, perBlock)
	// ~16.5 KiB a block with new arrays each, 4.9 with the records
	// reused, 1.2 with the names' bytes too: what is left is the parents
	// and the rare fields.
	if perBlock > 3<<10 && !raceEnabled {
		t.Errorf("%.0f B allocated a block decoded, more than 3 KiB", perBlock)
	}
}

// TestReaderBlocksShared: cursors on several goroutines, each holding its
// block between lookups while the others' lookups evict blocks and decode
// into spare ones, answer every path as recorded (and under -race, no
// block is written while one is read).
func TestReaderBlocksShared(t *testing.T) {
	es := reuseEntries()
	r := reuseReader(t, es, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			look, done := r.cursor()
			for k := range 3 * len(es) {
				// Each goroutine its own stride through the entries: a
				// directory's children in order, then another's.
				e := es[(k*(g+1)*37)%len(es)]
				if k%5 != 0 {
					e = es[k%len(es)]
				}
				if e.Path == tree.Root {
					continue
				}
				if got := look(e.Path); !sameRecorded(got, e) {
					errs <- fmt.Errorf("goroutine %d: %q gives %+v, want %+v", g, e.Path, got, e)
					return
				}
				if k%50 == 0 {
					done() // a directory read
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestReaderReusesParents: a block decoded into an evicted one's arrays
// keeps its entries' parents in that block's own buffer too: on a tree of
// small directories (the synthetic tree's ~17 entries a directory) a new
// string a parent was ~2 MB of the golden node's ~37 MB allocated in a
// no-change pull of 225k entries (issue #14). Lookups still find every
// entry, by path, in blocks whose parents were decoded over another's.
func TestReaderReusesParents(t *testing.T) {
	es := []*tree.Entry{{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755}}
	for i := range 600 {
		d := fmt.Sprintf("srv/app-%03d/lib/module-%03d", i/40, i)
		if i%40 == 0 {
			es = append(es, &tree.Entry{Path: "srv", Type: tree.TypeDir}, &tree.Entry{Path: fmt.Sprintf("srv/app-%03d", i/40), Type: tree.TypeDir},
				&tree.Entry{Path: fmt.Sprintf("srv/app-%03d/lib", i/40), Type: tree.TypeDir})
		}
		es = append(es, &tree.Entry{Path: d, Type: tree.TypeDir, Ino: uint64(i + 1)})
		for j := range 3 {
			es = append(es, &tree.Entry{Path: fmt.Sprintf("%s/f%d", d, j), Type: tree.TypeRegular, Size: int64(j), Ino: uint64(10000 + 3*i + j)})
		}
	}
	sortEntries(es)
	es = slices.CompactFunc(es, func(a, b *tree.Entry) bool { return a.Path == b.Path })
	r := reuseReader(t, es, 2)
	perBlock, blocks := sweepAllocs(t, r, es)
	t.Logf("%d blocks, %.0f decoded, %.0f B allocated a block (least of 5 sweeps)", r.bi.blocks.len(), blocks, perBlock)
	// ~3 KiB a block with a string a parent (~100 parents a block); ~360 B
	// without.
	if perBlock > 1024 && !raceEnabled {
		t.Errorf("%.0f B allocated a block decoded, more than 1 KiB", perBlock)
	}
}

// sweepAllocs looks every entry of es up in r once, then five times
// more, counting on one P what each of those sweeps allocates; it returns
// the least, a block decoded, and the blocks that sweep decoded. The
// counters are the process's: what the runtime allocates in a sweep is
// counted too, hence the least of five. It fails when a sweep decodes
// fewer blocks than r has (a block kept across the whole sweep).
func sweepAllocs(t *testing.T, r *manifestReader, es []*tree.Entry) (perBlock, blocks float64) {
	t.Helper()
	sweep := func() { lookupAll(t, r, es) }
	sweep()
	perBlock = math.Inf(1)
	for range 5 {
		d0 := decodedEntries.Load()
		allocated, _ := heaptest.Allocated(sweep)
		b := float64(decodedEntries.Load()-d0) * float64(r.bi.blocks.len()) / float64(len(es))
		if b < float64(r.bi.blocks.len()) {
			t.Fatalf("%.0f blocks decoded, want at least %d", b, r.bi.blocks.len())
		}
		if pb := float64(allocated) / b; pb < perBlock {
			perBlock, blocks = pb, b
		}
	}
	return perBlock, blocks
}

// lookupAll looks every entry of es up in r, in order, and fails on one
// not found as recorded.
func lookupAll(t *testing.T, r *manifestReader, es []*tree.Entry) {
	t.Helper()
	var got tree.Entry
	for _, e := range es {
		if !r.lookupInto(e.Path, &got) || !sameRecorded(&got, e) {
			t.Fatalf("lookup %q: %+v, want %+v", e.Path, got, e)
		}
	}
}
