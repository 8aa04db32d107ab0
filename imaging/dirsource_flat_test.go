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
// same tree grown to 200k entries, each time three times: cold (every file
// read and hashed, the cache written), fetched (a full pull's source: the
// scan hashes nothing, then every file is fetched, 2048 at a time, and the
// hashes the fetches learn are saved at Close) and cached (the cache
// vouches for every file, as in a no-change pull), Close (the cache save)
// included. The live heap's peak above the baseline may grow by at most 32
// bytes per added entry between the two sizes; when the source held its
// entries (main at 0c86dc7) it grew by 233 (cold) and 297 (cached), and
// when it held the fetches' hashes until Close (main at aa23ead) by 65
// (fetched).
//
// The live heap is taken after a full collection at 20 points evenly
// spaced through the scan (from the scan's callback: the walk goes on
// until its read-ahead window is full), at 20 through the fetches, and
// after Close, the same number of points at both sizes. (A sampler on a
// timer takes more samples of a longer scan, and the highest of more noisy
// samples is higher.) A memory bound, not a timing test.
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
	// fetchAll fetches every file of the tree, a batch at a time, with
	// requests made from the layout (the test holds no list of them).
	fetchAll := func(s *imaging.DirSource, heap *heaptest.Peak) {
		const batch = 2048
		files := dirs * perDir
		reqs := make([]*imaging.FetchRequest, 0, batch)
		es := make([]tree.Entry, batch)
		done, next := 0, 1
		flush := func() {
			err := s.Fetch(context.Background(), reqs, func(*imaging.FetchRequest) (imaging.ContentSink, error) { return discard{}, nil })
			if err != nil {
				t.Fatal(err)
			}
			done += len(reqs)
			reqs = reqs[:0]
			for ; next <= 20 && done >= next*files/20; next++ {
				heap.Sample(fmt.Sprintf("fetched %d", done))
			}
		}
		for d := range dirs {
			for j := range perDir {
				es[len(reqs)] = tree.Entry{Path: fmt.Sprintf("usr/share/package-%06d/file-%05d.conf", d, j)}
				reqs = append(reqs, &imaging.FetchRequest{Entry: &es[len(reqs)]})
				if len(reqs) == batch {
					flush()
				}
			}
		}
		flush()
	}
	// scan measures one scan (and its fetches) and its Close; cold and
	// fetched remove the cache first.
	scan := func(entries int, mode string) uint64 {
		cold, fetched := mode == "cold", mode == "fetched"
		if cold || fetched {
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
		if fetched {
			fetchAll(s, heap)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		heap.Sample("closed")
		grown, at := heap.Stop()
		wantHashed := dirs * perDir
		if fetched {
			wantHashed = 0 // the fetches hash them
		}
		if n != entries || hashed != wantHashed {
			t.Fatalf("%s scan: %d entries (%d hashed), want %d (%d)", mode, n, hashed, entries, wantHashed)
		}
		t.Logf("%d entries, %s: live heap peaked %.1f MiB above the baseline (%s), %.0f B per entry",
			entries, mode, float64(grown)/(1<<20), at, float64(grown)/float64(entries))
		return grown
	}
	// The cached scans come after the fetched ones: they find every
	// file's hash only if the fetches' hashes were saved.
	small := grow(50_000)
	coldSmall, fetchedSmall, warmSmall := scan(small, "cold"), scan(small, "fetched"), scan(small, "cached")
	large := grow(200_000)
	coldLarge, fetchedLarge, warmLarge := scan(large, "cold"), scan(large, "fetched"), scan(large, "cached")

	const maxGrowth = 32 // bytes per added entry
	for _, c := range []struct {
		name         string
		small, large uint64
	}{{"cold", coldSmall, coldLarge}, {"fetched", fetchedSmall, fetchedLarge}, {"cached", warmSmall, warmLarge}} {
		growth := (float64(c.large) - float64(c.small)) / float64(large-small)
		t.Logf("%s scan: %.1f B more per added entry", c.name, growth)
		if growth > maxGrowth {
			t.Errorf("%s scan: the source's peak grew by %.0f B per added entry from %d to %d entries (%.1f to %.1f MiB), more than %d",
				c.name, growth, small, large, float64(c.small)/(1<<20), float64(c.large)/(1<<20), maxGrowth)
		}
	}
}
