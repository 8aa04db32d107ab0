package imaging

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"unsafe"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestRecorderBatchesBounded: a recorder makes at most recorderBatches
// batches (~45 KB each), however far its encoder falls behind: on one
// core the encoder runs only when the walk waits, and with a new batch
// whenever none was back the recorder made one for most blocks (half of
// them in no-change pulls under load, ~16 MB of the golden node's
// allocations at 225k entries; issue #14). Work counts, not timings.
func TestRecorderBatchesBounded(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const blocks = 24
	es := make([]tree.Entry, blocks*manifestBlock)
	es[0] = tree.Entry{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755}
	for i := 1; i < len(es); i++ {
		es[i] = tree.Entry{Path: fmt.Sprintf("f%06d", i), Type: tree.TypeRegular, Mode: 0o644, Size: int64(i)}
	}
	r, err := newRecorder(filepath.Join(t.TempDir(), "cache"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range es {
		r.add(&es[i])
	}
	runtime.ReadMemStats(&after)
	path, _, err := r.finish(true)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := openManifestReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	if mr.total() != len(es) {
		t.Fatalf("recorded %d entries, want %d", mr.total(), len(es))
	}
	batch := uint64(manifestBlock * unsafe.Sizeof(tree.Entry{}))
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d blocks recorded: %d B allocated meanwhile, %.1f batches' worth", blocks, got, float64(got)/float64(batch))
	// The batches and what the encoder allocates meanwhile (its 64 KiB
	// buffer, its blocks: ~2 batches' worth).
	const most = 8
	if got > most*batch {
		t.Errorf("recording %d blocks allocated %d B, more than %d batches of %d B", blocks, got, most, batch)
	}

	// An encoder that fails (its file closed under it) still gives the
	// batches back: the walk goes on to the end, and finish says so.
	r, err = newRecorder(filepath.Join(t.TempDir(), "cache"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.f.Close()
	for i := range es {
		r.add(&es[i])
	}
	if _, _, err := r.finish(true); err == nil {
		t.Error("a recorder whose file was closed finished without an error")
	}
}
