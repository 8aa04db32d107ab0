package imaging

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// TestRunListsRetentionOnce: a run lists its retention dir once (the purge
// when it opens it), and the generations' harvest works from that listing
// and the run's own names: the dir holds every file replaced during the
// grace period (24 h by default, thousands of links on a replica updated
// every few minutes), and listing it twice was a cost per run that grew
// with that history. Before, the harvest listed it again (2 listings a run).
// The replaced content is still kept for the generations.
func TestRunListsRetentionOnce(t *testing.T) {
	base := t.TempDir()
	src, dst := filepath.Join(base, "golden"), filepath.Join(base, "image")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for f := range 50 {
		writeFile(t, filepath.Join(src, fmt.Sprintf("f%02d", f)), fmt.Sprintf("old %d\n", f))
	}
	opts := Options{StateDir: filepath.Join(base, "state"), Generations: &GenerationPolicy{Keep: 5, Source: "test"}}
	sync := func() int64 {
		t.Helper()
		s, err := OpenDirSource(src, DirSourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		before := retentionListings.Load()
		res, err := Sync(context.Background(), s, dst, opts)
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		if res.Generation == 0 {
			t.Fatal("no generation recorded")
		}
		return retentionListings.Load() - before
	}
	sync()
	for round := range 3 {
		for f := range 5 {
			writeFile(t, filepath.Join(src, fmt.Sprintf("f%02d", round*10+f)), fmt.Sprintf("new %d %d\n", round, f))
		}
		if n := sync(); n != 1 {
			t.Errorf("round %d: the run listed its retention dir %d times, want 1", round, n)
		}
		for f := range 5 {
			old := fmt.Sprintf("old %d\n", round*10+f)
			key := contentKey{xxhash.Sum64String(old), int64(len(old))}
			if _, err := os.Stat(filepath.Join(objectsDir(opts.StateDir), key.name())); err != nil {
				t.Errorf("round %d: the replaced content of f%02d is not kept: %v", round, round*10+f, err)
			}
		}
	}
}
