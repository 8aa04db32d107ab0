package imaging

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestScanRecordSyncedOffTheScan: a full scan's record of the tree (the
// next hash cache) is not fsynced as the scan ends, where the receiver
// waits for the list's end before its first fetch (1-4 ms on a quiet
// disk, 0.5 s measured on a busy one), but at Close, and only when it
// becomes the cache as it is; a full pull's fetches learn every hash and
// the cache is rewritten (and synced) instead. Either way the cache holds
// the scan.
func TestScanRecordSyncedOffTheScan(t *testing.T) {
	synced := 0
	orig := syncRecord
	syncRecord = func(p string) error { synced++; return orig(p) }
	t.Cleanup(func() { syncRecord = orig })

	src := t.TempDir()
	smallFiles(t, src, 20)
	cache := filepath.Join(t.TempDir(), "cache")
	scan := func(fetch bool, entries int) {
		t.Helper()
		s, err := OpenDirSource(src, DirSourceOptions{CacheFile: cache})
		if err != nil {
			t.Fatal(err)
		}
		var reqs []*FetchRequest
		if _, err := s.Scan(context.Background(), ScanRequest{}, func(e *tree.Entry) error {
			if e.Type == tree.TypeRegular {
				c := *e
				reqs = append(reqs, &FetchRequest{Entry: &c})
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if synced != 0 {
			t.Fatalf("the scan's record was fsynced %d times before the scan returned", synced)
		}
		if fetch {
			if err := s.Fetch(context.Background(), reqs, func(*FetchRequest) (ContentSink, error) { return &discardSink{}, nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		m, err := LoadManifest(cache)
		if err != nil {
			t.Fatal(err)
		}
		hashed := 0
		for _, e := range m.Entries {
			if e.Type == tree.TypeRegular && e.Hashed() {
				hashed++
			}
		}
		if len(m.Entries) != entries || hashed != 20 {
			t.Fatalf("the cache holds %d entries (%d files hashed), want %d (20)", len(m.Entries), hashed, entries)
		}
	}
	scan(true, 22) // a full pull: the record is rewritten with the hashes
	if synced != 0 {
		t.Fatalf("a rewritten record was fsynced %d times, want 0", synced)
	}
	// A new file, not fetched: nothing learned, and the record (the old
	// files' hashes from the cache) becomes the cache, synced first.
	if err := os.WriteFile(filepath.Join(src, "new"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	scan(false, 23)
	if synced != 1 {
		t.Fatalf("a record that became the cache was fsynced %d times, want 1", synced)
	}
}
