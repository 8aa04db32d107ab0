package imaging

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/heaptest"
)

// TestManifestFinderMatchesLoad: the block-by-block lookups a full
// destination walk uses answer what LoadManifest's entries hold, through
// scoped updates left in the log, and count the same entries; a path never
// recorded finds nothing. (Its memory is its index, the folded log and
// finderBlocks decoded blocks, whatever the manifest's size.)
func TestManifestFinderMatchesLoad(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	path := filepath.Join(t.TempDir(), "manifest")
	model := genTree(r, 20000, "base") // ~80 blocks: more than the finder keeps
	if err := (&Manifest{Entries: model}).Save(path); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		m, err := LoadManifest(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := openManifestFinder(path, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer f.close()
		if f.total != len(m.Entries) {
			t.Errorf("%s: finder counts %d entries, LoadManifest %d", what, f.total, len(m.Entries))
		}
		// Every path in order (as a sorted walk asks), then some at
		// random (as a parallel walk's workers do).
		for k := range len(m.Entries) + 2000 {
			if k >= len(m.Entries) {
				k = r.IntN(len(m.Entries))
			}
			w := m.Entries[k]
			got := f.find(w.Path)
			if got == nil {
				t.Fatalf("%s: %q not found", what, w.Path)
			}
			if got.Path != w.Path || got.Ino != w.Ino || got.Ctime != w.Ctime || got.Hash != w.Hash || got.Size != w.Size {
				t.Fatalf("%s: %q: finder gives %+v, LoadManifest %+v", what, w.Path, got, w)
			}
		}
		// And the block-by-block stream recordGeneration reads.
		k := 0
		if err := eachManifestEntry(path, func(e *tree.Entry) error {
			if k >= len(m.Entries) {
				return fmt.Errorf("extra entry %q", e.Path)
			}
			w := m.Entries[k]
			if e.Path != w.Path || e.LinkTo != w.LinkTo || e.Ino != w.Ino || e.Hash != w.Hash || e.Size != w.Size {
				return fmt.Errorf("entry %d: stream gives %+v, LoadManifest %+v", k, e, w)
			}
			k++
			return nil
		}); err != nil || k != len(m.Entries) {
			t.Fatalf("%s: stream: %v after %d of %d entries", what, err, k, len(m.Entries))
		}
		for _, p := range []string{"no/such/path", "zzzz", "0"} {
			if got := f.find(p); got != nil {
				t.Fatalf("%s: %q was never recorded but is found: %+v", what, p, got)
			}
		}
	}
	check("base")
	for i := range 6 {
		sc := randomScopes(r, model)
		repl := rewriteCovered(r, model, sc, i)
		if err := UpdateManifest(path, sc, repl); err != nil {
			t.Fatal(err)
		}
		m, err := LoadManifest(path)
		if err != nil {
			t.Fatal(err)
		}
		model = m.Entries
		check(fmt.Sprintf("update %d", i))
	}
	if recs, _ := readLog(LogPath(path), mustGen(t, path)); len(recs) == 0 {
		t.Fatal("the updates left no log to replay")
	}
}

func mustGen(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := openManifestFinder(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	return f.idx.gen
}

// TestManifestCursorMatchesFind: the per-directory cursors a walk uses
// (WalkOptions.previousDir) answer every child asked in Compare order,
// present or not, as the full lookups do, through scoped updates left in
// the log, on the image server's finder and the golden node's reader;
// and most of a directory's lookups need no index search.
func TestManifestCursorMatchesFind(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	path := filepath.Join(t.TempDir(), "manifest")
	model := genTree(r, 20000, "base")
	if err := (&Manifest{Entries: model}).Save(path); err != nil {
		t.Fatal(err)
	}
	// Every name genTree can make, in byte order: what a directory
	// listing asks, present or not.
	var names []string
	for i := range 50 {
		names = append(names, fmt.Sprintf("n%d", i), fmt.Sprintf("n%d.x", i))
	}
	slices.Sort(names)
	check := func(what string, withLog bool) {
		t.Helper()
		m, err := LoadManifest(path)
		if err != nil {
			t.Fatal(err)
		}
		byPath := map[string]*tree.Entry{}
		var dirs []string
		for _, e := range m.Entries {
			byPath[e.Path] = e
			if e.Type == tree.TypeDir {
				dirs = append(dirs, e.Path)
			}
		}
		f, err := openManifestFinder(path, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer f.close()
		mr, err := openManifestReader(path)
		if err != nil {
			t.Fatal(err)
		}
		defer mr.Close()
		asked, located := 0, 0
		for _, d := range dirs {
			cf := f.cursor()
			cr, _ := mr.cursor()
			counted := packedCursor(func(p string) (*packedBlock, int, bool) {
				located++
				return f.locate(p)
			}, nil, nil)
			for _, n := range names {
				p := tree.Join(d, n)
				want := byPath[p]
				for side, got := range map[string]*tree.Entry{"finder": cf(p), "reader": cr(p)} {
					switch {
					case want == nil && got != nil:
						t.Fatalf("%s: %s cursor finds %q, never recorded: %+v", what, side, p, got)
					case want != nil && got == nil:
						t.Fatalf("%s: %s cursor misses %q", what, side, p)
					case want != nil && (got.Path != want.Path || got.Ino != want.Ino || got.Ctime != want.Ctime || got.Hash != want.Hash):
						t.Fatalf("%s: %s cursor gives %+v for %q, LoadManifest %+v", what, side, got, p, want)
					}
				}
				if !withLog {
					asked++
					if got := counted(p); (got == nil) != (want == nil) || (got != nil && got.Path != p) {
						t.Fatalf("%s: counted cursor gives %+v for %q", what, got, p)
					}
				}
			}
		}
		if !withLog {
			// Each directory's first lookup, and one after each subtree
			// or block boundary, search the index: far fewer than asked.
			t.Logf("%s: %d lookups, %d index searches, %d directories", what, asked, located, len(dirs))
			if located*4 > asked {
				t.Errorf("%s: %d of %d cursor lookups searched the index", what, located, asked)
			}
		}
	}
	check("base", false)
	for i := range 4 {
		sc := randomScopes(r, model)
		repl := rewriteCovered(r, model, sc, i)
		if err := UpdateManifest(path, sc, repl); err != nil {
			t.Fatal(err)
		}
		m, err := LoadManifest(path)
		if err != nil {
			t.Fatal(err)
		}
		model = m.Entries
		check(fmt.Sprintf("after update %d", i+1), true)
	}
}

// TestManifestFinderAllocs: a full destination walk's lookups (a cursor a
// directory, every path asked) decode the manifest's blocks packed: no
// entry and no path string an entry. Decoded into entries, the blocks
// were ~80 MB of the image server's allocations in a no-change pull of
// 225k entries, about 1.1 allocations and 290 B an entry looked up
// (issue #14). Work counts, not timings.
func TestManifestFinderAllocs(t *testing.T) {
	m := &Manifest{Entries: []*tree.Entry{{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755}}}
	var dirs []string
	for i := range 40 {
		d := fmt.Sprintf("usr/share/package-%03d", i)
		if i == 0 {
			m.Entries = append(m.Entries, &tree.Entry{Path: "usr", Type: tree.TypeDir, Mode: 0o755}, &tree.Entry{Path: "usr/share", Type: tree.TypeDir, Mode: 0o755})
		}
		m.Entries = append(m.Entries, &tree.Entry{Path: d, Type: tree.TypeDir, Mode: 0o755})
		dirs = append(dirs, d)
		for j := range 100 {
			e := &tree.Entry{Path: fmt.Sprintf("%s/component-%03d.so", d, j), Type: tree.TypeRegular, Mode: 0o644, Size: int64(j), Mtime: int64(j), Ino: uint64(i*1000 + j + 1)}
			e.SetHash(uint64(j) * 7919)
			m.Entries = append(m.Entries, e)
		}
	}
	path := filepath.Join(t.TempDir(), "manifest")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	f, err := openManifestFinder(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	paths := make([][]string, len(dirs))
	for i, d := range dirs {
		for j := range 100 {
			paths[i] = append(paths[i], fmt.Sprintf("%s/component-%03d.so", d, j))
		}
	}
	n := 0
	allocated, mallocs := heaptest.Allocated(func() {
		for i := range dirs {
			c := f.cursor()
			for _, p := range paths[i] {
				if e := c(p); e == nil || e.Path != p {
					t.Fatalf("cursor: %q not found", p)
				}
				n++
			}
		}
	})
	allocs := float64(mallocs) / float64(n)
	bytes := float64(allocated) / float64(n)
	t.Logf("%d lookups: %.2f allocations, %.0f B a lookup", n, allocs, bytes)
	if allocs > 0.3 || bytes > 150 {
		t.Errorf("a finder's cursor lookups made %.2f allocations and %.0f B a lookup, more than 0.3 and 150 B", allocs, bytes)
	}
}
