package imaging

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// TestWalkCursorPerWorker: a walk merged against a hash cache asks each
// worker's one cursor about the children of every directory it reads
// (WalkOptions.previousDir), not a new cursor per directory: a cursor's
// state and closures were ~5 allocations a directory, 63k in a no-change
// pull of 225k entries (issue #14). Every path is still answered from the
// cache (nothing re-read) although a worker's paths go back and forth
// between directories, and a cursor holds no block between directories
// (a block no one holds is decoded into again). Work counts, not timings.
func TestWalkCursorPerWorker(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	const dirs = 300
	for i := range dirs {
		d := filepath.Join(root, fmt.Sprintf("pkg-%03d", i))
		if err := os.MkdirAll(filepath.Join(d, "doc"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"a.conf", "doc/README", "z.so"} {
			if err := os.WriteFile(filepath.Join(d, f), []byte(f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cache := filepath.Join(t.TempDir(), "cache")
	s, err := OpenDirSource(root, DirSourceOptions{CacheFile: cache})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scan(context.Background(), ScanRequest{Hash: true}, func(*tree.Entry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := openManifestReader(cache)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fr, err := fsx.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	walk := func() (allocs float64) {
		t.Helper()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		n, hashed := 0, 0
		res, err := WalkEach(context.Background(), fr, WalkOptions{previousDir: r.cursor, lend: true, Workers: 4}, func(e *tree.Entry) error {
			n++
			if e.Hashed() {
				hashed++
			}
			return nil
		})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 + dirs*5; n != want || hashed != dirs*3 || res.Reread != 0 {
			t.Fatalf("walked %d entries (%d hashed, %d re-read), want %d (%d hashed, none re-read)", n, hashed, res.Reread, want, dirs*3)
		}
		// The workers' cursors let go of their blocks after each
		// directory: only the reader's cache holds them now.
		for _, c := range r.cache {
			if c.pb != nil && c.pb.refs != 1 {
				t.Fatalf("block %d held by %d after the walk, want 1 (the cache)", c.i, c.pb.refs)
			}
		}
		return float64(after.Mallocs-before.Mallocs) / float64(1+dirs*2)
	}
	// The least of three: anything else running adds to a walk's count.
	least := math.Inf(1)
	for range 3 {
		least = min(least, walk())
	}
	t.Logf("%d directories: %.1f allocations a directory", 1+dirs*2, least)
	// 16.8-17.6 with a cursor a directory, 10.7-11.6 with one a worker.
	if least > 14 {
		t.Errorf("a warm walk made %.1f allocations a directory, more than 14", least)
	}
}
