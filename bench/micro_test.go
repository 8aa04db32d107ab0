package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/goldsync/goldsync/bench/internal/gen"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// microSizes are the tree sizes (regular files) of the microbenchmarks.
// Each tree also holds a 16 MiB file and a 256 MiB sparse file with 2 MiB
// of data (see package gen).
var microSizes = []int{1000, 5000}

// genTrees makes one tree per size in b.TempDir(), once per benchmark
// function (sub-benchmarks share them).
func genTrees(b *testing.B) map[int]string {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root: the generated trees have owners, devices and capabilities")
	}
	dirs := map[int]string{}
	base := b.TempDir()
	for _, n := range microSizes {
		d := filepath.Join(base, fmt.Sprintf("src%d", n))
		if _, err := gen.Tree(context.Background(), d, gen.Spec{Files: n, Seed: 1}); err != nil {
			b.Fatal(err)
		}
		dirs[n] = d
	}
	return dirs
}

func walk(b *testing.B, dir string, opts imaging.WalkOptions) *imaging.WalkResult {
	b.Helper()
	root, err := fsx.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	res, err := imaging.Walk(context.Background(), root, opts)
	if err != nil {
		b.Fatal(err)
	}
	return res
}

func reportPerEntry(b *testing.B, entries int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(entries), "ns/entry")
}

// BenchmarkWalk lists a tree with metadata and xattrs, hashing nothing
// (warm cache). Bytes are the tree's logical size, for scale only.
func BenchmarkWalk(b *testing.B) {
	trees := genTrees(b)
	for _, n := range microSizes {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			first := walk(b, trees[n], imaging.WalkOptions{})
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				walk(b, trees[n], imaging.WalkOptions{})
			}
			reportPerEntry(b, len(first.Entries))
		})
	}
}

// BenchmarkHash walks and hashes every regular file (warm cache): the cost
// of a scan without a hash cache. Bytes are the data bytes read.
func BenchmarkHash(b *testing.B) {
	trees := genTrees(b)
	for _, n := range microSizes {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			first := walk(b, trees[n], imaging.WalkOptions{Hash: true})
			b.SetBytes(first.HashedBytes)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				walk(b, trees[n], imaging.WalkOptions{Hash: true})
			}
		})
	}
}

// BenchmarkPlan diffs a tree against a copy of itself before a yum-like
// change (60 new, 5 modified, 3 deleted files): the pure planner only.
func BenchmarkPlan(b *testing.B) {
	trees := genTrees(b)
	for _, n := range microSizes {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			dst := filepath.Join(b.TempDir(), "dst")
			syncTree(b, trees[n], dst)
			jdir := filepath.Join(filepath.Dir(trees[n]), fmt.Sprintf("journal%d", n))
			if _, err := gen.Mutate(trees[n], jdir, gen.ChangeYum, 1); err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := gen.Revert(trees[n], jdir); err != nil {
					b.Fatal(err)
				}
			}()
			src := walk(b, trees[n], imaging.WalkOptions{Hash: true}).Entries
			old := walk(b, dst, imaging.WalkOptions{Hash: true}).Entries
			b.ReportAllocs()
			b.ResetTimer()
			var p *imaging.Plan
			for b.Loop() {
				p = imaging.MakePlan(src, old, imaging.PlanOptions{})
			}
			b.StopTimer()
			if len(p.Actions) < 68 {
				b.Fatalf("plan of a yum-like change has %d actions, want at least 68", len(p.Actions))
			}
			reportPerEntry(b, len(src))
		})
	}
}

// BenchmarkApply carries out the plan of a full copy into an empty
// directory from a local DirSource (reflink or copy_file_range where the
// filesystem can). Bytes are the data bytes of the tree.
func BenchmarkApply(b *testing.B) {
	trees := genTrees(b)
	ctx := context.Background()
	for _, n := range microSizes {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			st, err := gen.Count(trees[n])
			if err != nil {
				b.Fatal(err)
			}
			src, err := imaging.OpenDirSource(trees[n], imaging.DirSourceOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			var entries []*tree.Entry
			if _, err := src.Scan(ctx, imaging.ScanRequest{}, func(e *tree.Entry) error {
				entries = append(entries, e)
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			base := b.TempDir()
			b.SetBytes(st.DataBytes)
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				b.StopTimer()
				dst := filepath.Join(base, fmt.Sprintf("dst%d", i))
				i++
				if err := os.Mkdir(dst, 0o755); err != nil {
					b.Fatal(err)
				}
				plan := imaging.MakePlan(entries, nil, imaging.PlanOptions{})
				b.StartTimer()
				if _, err := imaging.Apply(ctx, src, dst, plan, entries, imaging.ApplyOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.RemoveAll(dst); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// syncTree copies src to dst with the engine, as a pull would.
func syncTree(b *testing.B, src, dst string) {
	b.Helper()
	s, err := imaging.OpenDirSource(src, imaging.DirSourceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := imaging.Sync(context.Background(), s, dst, imaging.Options{StateDir: dst + ".state", Retention: -1}); err != nil {
		b.Fatal(err)
	}
}
