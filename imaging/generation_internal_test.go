package imaging

import (
	"fmt"
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
	opts := &Options{Generations: &GenerationPolicy{Source: "bench"}}
	b.ResetTimer()
	for i := range b.N {
		ids, _ := generationIDs(dir)
		if _, err := recordGeneration(sp, opts, &Result{}, ids); err != nil {
			b.Fatal(err)
		}
		_ = i
	}
	b.StopTimer()
	b.ReportMetric(float64(len(m.Entries)), "entries")
}

func BenchmarkLoadManifest225k(b *testing.B) {
	dir := b.TempDir()
	sp := State(dir)
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
	b.ResetTimer()
	for range b.N {
		if _, err := LoadManifest(sp.Manifest); err != nil {
			b.Fatal(err)
		}
	}
}
