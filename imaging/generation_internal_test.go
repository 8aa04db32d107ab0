package imaging

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goldsync/goldsync/imaging/tree"
)

// BenchmarkRecordGeneration times recording a generation of a 225k-entry
// image (the size of the benchmark root): what every successful run with
// generations on pays beyond the sync itself.
func BenchmarkRecordGeneration(b *testing.B) {
	dir := b.TempDir()
	sp := State(dir)
	m := saveManifest225k(b, sp)
	opts := &Options{Generations: &GenerationPolicy{Source: "bench"}}
	b.ResetTimer()
	for range b.N {
		ids, _ := generationIDs(dir)
		if _, err := recordGeneration(sp, opts, &Result{}, ids, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(m.Entries)), "entries")
}

// saveManifest225k saves, as sp's manifest, a manifest of 225,901 entries
// shaped like the benchmark root (900 package dirs of 250 files) and
// returns it.
func saveManifest225k(b *testing.B, sp StatePaths) *Manifest {
	b.Helper()
	m := &Manifest{Entries: []*tree.Entry{{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755}}}
	for d := range 900 {
		dp := fmt.Sprintf("usr/lib/pkg%03d", d)
		m.Entries = append(m.Entries, &tree.Entry{Path: dp, Type: tree.TypeDir, Mode: 0o755, Ino: uint64(d + 10)})
		for f := range 250 {
			e := &tree.Entry{Path: fmt.Sprintf("%s/file%03d.so", dp, f), Type: tree.TypeRegular, Mode: 0o644,
				Size: int64(1000 + f), Mtime: time.Now().UnixNano(), Ino: uint64(d*1000 + f + 10000), Nlink: 1, Ctime: 1}
			e.SetHash(uint64(d)<<32 | uint64(f))
			m.Entries = append(m.Entries, e)
		}
	}
	m.sort()
	if err := m.Save(sp.Manifest); err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkLoadManifest225k(b *testing.B) {
	sp := State(b.TempDir())
	saveManifest225k(b, sp)
	b.ResetTimer()
	for range b.N {
		if _, err := LoadManifest(sp.Manifest); err != nil {
			b.Fatal(err)
		}
	}
}

// Generations recorded between two folds of the manifest's log share its
// base (one more hard link, not a copy) and each keeps the tree as it was:
// a later scoped update and a later full save change neither. The size of
// the generations counts the shared base once.
func TestGenerationSharesManifestBase(t *testing.T) {
	dir := t.TempDir()
	sp := State(dir)
	m := &Manifest{Entries: []*tree.Entry{
		{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755},
		{Path: "usr", Type: tree.TypeDir, Mode: 0o755, Ino: 2},
	}}
	for i := range 2000 {
		e := &tree.Entry{Path: fmt.Sprintf("usr/f%04d", i), Type: tree.TypeRegular, Mode: 0o644,
			Size: int64(100 + i), Mtime: 1, Ino: uint64(10 + i), Nlink: 1, Ctime: 1}
		e.SetHash(uint64(i + 1))
		m.Entries = append(m.Entries, e)
	}
	if err := m.Save(sp.Manifest); err != nil {
		t.Fatal(err)
	}
	opts := &Options{Generations: &GenerationPolicy{Source: "test"}}
	record := func() int64 {
		t.Helper()
		ids, _ := generationIDs(dir)
		id, err := recordGeneration(sp, opts, &Result{}, ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	g1 := record()
	// A push: one file changed, recorded in the log.
	e := m.Entries[2].Clone()
	e.SetHash(999)
	if err := UpdateManifest(sp.Manifest, []tree.Scope{{Path: e.Path}}, []*tree.Entry{e}); err != nil {
		t.Fatal(err)
	}
	g2 := record()
	base, err := os.Stat(sp.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{g1, g2} {
		fi, err := os.Stat(filepath.Join(genDir(dir, id), "manifest"))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(base, fi) {
			t.Errorf("generation %d: its manifest base is a copy, not the live base", id)
		}
	}
	// A full save replaces the live base: the generations keep theirs.
	m.Entries = m.Entries[:2]
	if err := m.Save(sp.Manifest); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int64]uint64{g1: 1, g2: 999} {
		_, gm, err := LoadGeneration(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(gm.Entries) != 2002 || gm.Entries[2].Hash != want {
			t.Errorf("generation %d: %d entries, usr/f0000 hash %d; want 2002 entries, hash %d", id, len(gm.Entries), gm.Entries[2].Hash, want)
		}
	}
	var want int64 = base.Size()
	for _, p := range []string{"1/keys", "2/keys", "2/manifest.log"} {
		fi, err := os.Stat(filepath.Join(GenerationsDir(dir), p))
		if err != nil {
			t.Fatal(err)
		}
		want += fi.Size()
	}
	if _, got, err := GenerationsSize(dir); err != nil || got != want {
		t.Errorf("GenerationsSize = %d, %v; want %d (the shared base once)", got, err, want)
	}
}
