package imaging_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// benchTree writes n files of 1–16 KiB in 100-file directories and returns
// the root and the total bytes.
func benchTree(b *testing.B, n int) (string, int64) {
	b.Helper()
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 16<<10)
	var total int64
	for i := range n {
		d := filepath.Join(dir, fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		size := 1<<10 + rng.IntN(15<<10)
		for j := range size {
			buf[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), buf[:size], 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	return dir, total
}

func walk(b *testing.B, dir string, opts imaging.WalkOptions) *imaging.WalkResult {
	r, err := fsx.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	res, err := imaging.Walk(context.Background(), r, opts)
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// BenchmarkWalk: a cached walk (the no-change case: lstat only).
func BenchmarkWalkCached(b *testing.B) {
	dir, _ := benchTree(b, 5000)
	first := walk(b, dir, imaging.WalkOptions{Hash: true})
	idx := map[string]*tree.Entry{}
	for _, e := range first.Entries {
		idx[e.Path] = e
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := walk(b, dir, imaging.WalkOptions{Previous: func(p string) *tree.Entry { return idx[p] }})
		if res.HashedFiles != 0 {
			b.Fatal("cached walk hashed files")
		}
	}
	b.ReportMetric(float64(len(first.Entries)), "entries/op")
}

// BenchmarkWalkHash: a cold walk that reads and hashes every file.
func BenchmarkWalkHash(b *testing.B) {
	dir, total := benchTree(b, 2000)
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		walk(b, dir, imaging.WalkOptions{Hash: true})
	}
}

func BenchmarkHashContent(b *testing.B) {
	f, err := os.CreateTemp(b.TempDir(), "h")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f.Write(data)
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := imaging.HashContent(f, int64(len(data)), buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlan(b *testing.B) {
	const n = 100000
	src := make([]*tree.Entry, 0, n+1)
	dst := make([]*tree.Entry, 0, n+1)
	root := &tree.Entry{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755}
	src, dst = append(src, root), append(dst, root)
	for i := range n {
		e := &tree.Entry{Path: fmt.Sprintf("d%03d/f%06d", i/1000, i), Type: tree.TypeRegular, Mode: 0o644, Size: 100, Nlink: 1}
		e.SetHash(uint64(i))
		d := e.Clone()
		if i%100 == 0 {
			d.SetHash(uint64(i) + 1)
		}
		src, dst = append(src, e), append(dst, d)
	}
	// directories
	var dirs []*tree.Entry
	for i := range n / 1000 {
		dirs = append(dirs, &tree.Entry{Path: fmt.Sprintf("d%03d", i), Type: tree.TypeDir, Mode: 0o755})
	}
	src = append(src, dirs...)
	dst = append(dst, dirs...)
	sortEntries(src)
	sortEntries(dst)
	b.ReportAllocs()
	for b.Loop() {
		p := imaging.MakePlan(src, dst, imaging.PlanOptions{})
		if len(p.Actions) != n/100 {
			b.Fatalf("%d actions", len(p.Actions))
		}
	}
	b.ReportMetric(n, "entries/op")
}

func sortEntries(es []*tree.Entry) {
	slices.SortFunc(es, func(a, b *tree.Entry) int { return tree.Compare(a.Path, b.Path) })
}

// BenchmarkSyncFull: a full local sync (walk both sides, plan, apply with
// temp files and renames) of 2000 files into an empty image.
func BenchmarkSyncFull(b *testing.B) {
	src, total := benchTree(b, 2000)
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		dst := filepath.Join(b.TempDir(), "image")
		s, err := imaging.OpenDirSource(src, imaging.DirSourceOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := imaging.Sync(context.Background(), s, dst, imaging.Options{Retention: -1}); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

func BenchmarkManifestRoundTrip(b *testing.B) {
	dir, _ := benchTree(b, 5000)
	res := walk(b, dir, imaging.WalkOptions{Hash: true})
	m := &imaging.Manifest{Entries: res.Entries}
	path := filepath.Join(b.TempDir(), "manifest")
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Save(path); err != nil {
			b.Fatal(err)
		}
		if _, err := imaging.LoadManifest(path); err != nil {
			b.Fatal(err)
		}
	}
	st, _ := os.Stat(path)
	b.ReportMetric(float64(st.Size())/float64(len(res.Entries)), "bytes/entry")
}

// BenchmarkSyncNoChange: the nightly run when nothing changed (both walks
// cached, nothing planned).
func BenchmarkSyncNoChange(b *testing.B) {
	src, _ := benchTree(b, 5000)
	base := b.TempDir()
	dst := filepath.Join(base, "image")
	run := func() *imaging.Result {
		s, err := imaging.OpenDirSource(src, imaging.DirSourceOptions{CacheFile: filepath.Join(base, "cache")})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		res, err := imaging.Sync(context.Background(), s, dst, imaging.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	run()
	run()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if res := run(); res.Plan.Len() != 0 {
			b.Fatalf("%d actions", res.Plan.Len())
		}
	}
}
