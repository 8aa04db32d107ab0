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
	"github.com/goldsync/goldsync/internal/heaptest"
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

// TestScanLeavesLittleHeld: when a full scan ends, the hash cache's
// decoded blocks are let go and the scan's record is not opened until a
// fetch looks a file up in it: a no-change pull fetches nothing, and the
// record's index, read while the walk's blocks were still held, made the
// golden node's peak RSS (issue #14). A lookup then finds the file as
// scanned.
func TestScanLeavesLittleHeld(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	for i := range 40 {
		d := filepath.Join(root, fmt.Sprintf("pkg-%03d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for j := range 20 {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f-%02d", j)), []byte{byte(j)}, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	opts := DirSourceOptions{CacheFile: filepath.Join(t.TempDir(), "cache")}
	for pass := range 2 {
		s, err := OpenDirSource(root, opts)
		if err != nil {
			t.Fatal(err)
		}
		var file *tree.Entry
		if _, err := s.Scan(context.Background(), ScanRequest{Hash: true}, func(e *tree.Entry) error {
			if e.Type == tree.TypeRegular && file == nil {
				c := *e
				file = &c
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		opened, recorded := s.recorded != nil, s.recordDone
		kept := 0
		if s.prev != nil {
			kept = len(s.prev.cache)
		}
		s.mu.Unlock()
		if opened || !recorded || kept != 0 {
			t.Fatalf("pass %d: after the scan, record opened %v, complete %v, %d cache blocks kept; want not opened, complete, none", pass, opened, recorded, kept)
		}
		if pass == 1 && s.prev == nil {
			t.Fatal("second pass: no hash cache read")
		}
		got, err := s.lookup(file)
		if err != nil || got.Ino != file.Ino || got.Hash != file.Hash || !got.Hashed() {
			t.Fatalf("pass %d: lookup %q: %+v, %v; want %+v", pass, file.Path, got, err, file)
		}
		if s.recorded == nil {
			t.Fatalf("pass %d: the lookup did not open the record", pass)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWalkReusesLists: a walk's workers list each directory's names into
// their own reused storage (fsx.NameBuf) and its children into lists the
// emitter is done with, instead of three new allocations a directory (the
// names' bytes, the names, the children): ~11 MB of a no-change walk of
// 225k entries (issue #14). Bytes allocated an entry, least of three walks.
func TestWalkReusesLists(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	const dirs, perDir = 40, 100
	for i := range dirs {
		d := filepath.Join(root, fmt.Sprintf("package-%03d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for j := range perDir {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("component-%04d.so", j)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	fr, err := fsx.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	least := math.Inf(1)
	for range 3 {
		n := 0
		var err error
		allocated, _ := heaptest.Allocated(func() {
			_, err = WalkEach(context.Background(), fr, WalkOptions{lend: true, Workers: 2, ReadAhead: 256}, func(*tree.Entry) error { n++; return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 + dirs*(1+perDir); n != want {
			t.Fatalf("walked %d entries, want %d", n, want)
		}
		least = min(least, float64(allocated)/float64(n))
	}
	t.Logf("%.0f B allocated an entry", least)
	// 139-141 B with new lists each, 123-125 with the names' storage
	// reused, 103-105 with the children's lists, 91 with both (the path,
	// 40 B here, and the lent entries' pool are the rest).
	if least > 98 && !raceEnabled {
		t.Errorf("a walk allocated %.0f B an entry, more than 98", least)
	}
}

// TestWalkWorkersCapped: a walk's default workers stop at maxIOWorkers
// however many Ps the machine has: each holds its buffers, and with 4 a P
// a 64-core machine would have run 256 (a cold scan peaked at 31–48 MiB
// there against ~3 MiB on 2 cores).
func TestWalkWorkersCapped(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(64))
	root := t.TempDir()
	for i := range 300 {
		if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("d%03d/sub", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fr, err := fsx.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	w0 := walkWorkers.Load()
	n := 0
	if _, err := WalkEach(context.Background(), fr, WalkOptions{}, func(*tree.Entry) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	got := walkWorkers.Load() - w0
	t.Logf("%d entries walked by %d workers at GOMAXPROCS 64", n, got)
	if got > maxIOWorkers {
		t.Errorf("%d workers walked, want at most %d", got, maxIOWorkers)
	}
	if got < 2 {
		t.Errorf("%d workers walked 300 directories, want several", got)
	}
}
