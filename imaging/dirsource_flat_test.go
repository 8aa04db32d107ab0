package imaging_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/heaptest"
)

// TestSourceMemoryFlat: the golden node's memory does not grow with the
// tree. A DirSource with a hash cache scans a 50k-entry tree and then the
// same tree grown to 200k entries, each time twice: cold (every file read
// and hashed, the cache written) and cached (the cache vouches for every
// file, as in a no-change pull), Close (the cache save) included. The
// live heap's peak above the baseline may grow by at most 32 bytes per
// added entry between the two sizes; when the source held its entries
// (main at 0c86dc7) it grew by 233 (cold) and 297 (cached).
//
// The live heap is taken after a full collection at 20 points evenly
// spaced through the scan (from the scan's callback: the walk goes on
// until its read-ahead window is full) and after Close, the same number of
// points at both sizes. (A sampler on a timer takes more samples of a
// longer scan, and the highest of more noisy samples is higher.) A memory
// bound, not a timing test.
func TestSourceMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 200k files")
	}
	base := heaptest.ScratchDir(t, "goldsync-srcflat-")
	root := filepath.Join(base, "root")
	const perDir = 250
	dirs := 0
	grow := func(entries int) int {
		for ; 3+dirs*(1+perDir) < entries; dirs++ {
			d := filepath.Join(root, "usr", "share", fmt.Sprintf("package-%06d", dirs))
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for j := range perDir {
				if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("file-%05d.conf", j)), []byte{byte(j)}, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		return 3 + dirs*(1+perDir)
	}
	cache := filepath.Join(base, "cache")
	// scan measures one scan and its Close; cold removes the cache first.
	scan := func(entries int, cold bool) uint64 {
		if cold {
			os.Remove(cache)
			os.Remove(imaging.LogPath(cache))
		}
		heap := heaptest.Start(time.Hour) // only the points below
		s, err := imaging.OpenDirSource(root, imaging.DirSourceOptions{CacheFile: cache})
		if err != nil {
			t.Fatal(err)
		}
		n, hashed := 0, 0
		_, err = s.Scan(context.Background(), imaging.ScanRequest{Hash: cold}, func(e *tree.Entry) error {
			if n++; n%(entries/20) == 0 {
				heap.Sample(fmt.Sprintf("entry %d", n))
			}
			if e.Type == tree.TypeRegular && e.Hashed() {
				hashed++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		heap.Sample("closed")
		grown, at := heap.Stop()
		if n != entries || hashed != dirs*perDir {
			t.Fatalf("scanned %d entries (%d hashed), want %d (%d)", n, hashed, entries, dirs*perDir)
		}
		t.Logf("%d entries, cold %v: live heap peaked %.1f MiB above the baseline (%s), %.0f B per entry",
			entries, cold, float64(grown)/(1<<20), at, float64(grown)/float64(entries))
		return grown
	}
	small := grow(50_000)
	coldSmall, warmSmall := scan(small, true), scan(small, false)
	large := grow(200_000)
	coldLarge, warmLarge := scan(large, true), scan(large, false)

	const maxGrowth = 32 // bytes per added entry
	for _, c := range []struct {
		name         string
		small, large uint64
	}{{"cold", coldSmall, coldLarge}, {"cached", warmSmall, warmLarge}} {
		growth := (float64(c.large) - float64(c.small)) / float64(large-small)
		t.Logf("%s scan: %.1f B more per added entry", c.name, growth)
		if growth > maxGrowth {
			t.Errorf("%s scan: the source's peak grew by %.0f B per added entry from %d to %d entries (%.1f to %.1f MiB), more than %d",
				c.name, growth, small, large, float64(c.small)/(1<<20), float64(c.large)/(1<<20), maxGrowth)
		}
	}
}
