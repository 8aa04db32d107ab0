package imaging

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/heaptest"
)

// TestFetchLookupsKeepFewBlocks is a full pull's fetches on the golden
// node: a scan with a hash cache records the tree, then every file is
// fetched in the plan's order, 4,096 at a time, as a receiver asks. Each
// fetch looks its file up in the scan's record, and the record's reader
// keeps decoded blocks of it: the live heap after each batch, above the
// one when the scan ended, must stay under a bound, and each block must be
// decoded about once (the lookups follow the record's order, so a small
// set of kept blocks costs no decoding). It is a memory bound, not a
// timing test.
//
// Measured with 50k files of long names: 4.89 MiB with the 32 blocks every
// manifest reader kept (each used for 256 lookups, then never again),
// 2.98 MiB with 4 (the rest: the hashes the fetches learned, up to 8,192
// held with their paths, and the workers' pooled buffers); the same
// ~50,200 entries decoded either way. 2.16–2.19 MiB with the blocks
// packed and small files read through 32 KiB buffers instead of each
// worker's 256 KiB one, 1.59–1.62 MiB with names and parents packed
// instead of whole paths (issue #14); the bound is 2.6 MiB.
func TestFetchLookupsKeepFewBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 50k files")
	}
	base := heaptest.ScratchDir(t, "goldsync-fetchmem-")
	root := filepath.Join(base, "root")
	const dirs, perDir = 200, 250
	// Long names, as deep trees have: a decoded entry is ~330 B.
	long := strings.Repeat("a-long-file-name-", 6)
	for d := range dirs {
		dir := filepath.Join(root, "usr", "share", fmt.Sprintf("package-%06d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for j := range perDir {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%05d.conf", long, j)), []byte{byte(j)}, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, err := OpenDirSource(root, DirSourceOptions{CacheFile: filepath.Join(base, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	if _, err := s.Scan(context.Background(), ScanRequest{}, func(*tree.Entry) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := 3 + dirs*(1+perDir); n != want {
		t.Fatalf("scanned %d entries, want %d", n, want)
	}

	const batch = 4096
	reqs := make([]*FetchRequest, 0, batch)
	es := make([]tree.Entry, batch)
	before := decodedEntries.Load()
	heap := heaptest.Start(time.Hour) // only the points below
	fetched := 0
	flush := func() {
		var aborted atomic.Int64
		err := s.Fetch(context.Background(), reqs, func(*FetchRequest) (ContentSink, error) { return countAborts{&aborted}, nil })
		if err != nil {
			t.Fatal(err)
		}
		if n := aborted.Load(); n > 0 {
			t.Fatalf("%d of %d fetches aborted", n, len(reqs))
		}
		fetched += len(reqs)
		reqs = reqs[:0]
		heap.Sample(fmt.Sprintf("fetched %d", fetched))
	}
	for d := range dirs {
		for j := range perDir {
			es[len(reqs)] = tree.Entry{Path: fmt.Sprintf("usr/share/package-%06d/%s-%05d.conf", d, long, j)}
			reqs = append(reqs, &FetchRequest{Entry: &es[len(reqs)]})
			if len(reqs) == batch {
				flush()
			}
		}
	}
	flush()
	grown, at := heap.Stop()
	decoded := decodedEntries.Load() - before
	t.Logf("%d files fetched: live heap peaked %.2f MiB above the scan's end (%s); %d entries decoded", fetched, float64(grown)/(1<<20), at, decoded)
	if max := uint64(26 << 20 / 10); grown > max {
		t.Errorf("the fetches' lookups held %.2f MiB (at %s), more than %.2f", float64(grown)/(1<<20), at, float64(max)/(1<<20))
	}
	if decoded > int64(n)*3/2 {
		t.Errorf("the fetches decoded %d entries of a %d-entry record: blocks decoded again and again", decoded, n)
	}
}

// countAborts drops a fetched file's content and counts the files it was
// told it would not get.
type countAborts struct{ n *atomic.Int64 }

func (c countAborts) Data(int64, []byte) error { return nil }
func (c countAborts) Reuse(int64, int64) error { return nil }
func (c countAborts) Finish(FetchResult) error { return nil }
func (c countAborts) Abort(error)              { c.n.Add(1) }
