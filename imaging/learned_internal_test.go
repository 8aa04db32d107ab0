package imaging

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// The learned hashes come back from sorted in tree.Compare order whatever
// order the fetches learned them in, spilled runs and the records still in
// memory merged, duplicates of a path (two fetches of it) kept; hashFor
// finds only a record learned from the same object.
func TestLearnedSetSpillsSortedRuns(t *testing.T) {
	l := learnedSet{dir: t.TempDir()}
	defer l.close()
	const n = 3*learnedSpillAt + 100 // three runs and some in memory
	var paths []string
	for i := range n {
		paths = append(paths, fmt.Sprintf("usr/d%03d/f%05d", i%97, i))
	}
	paths = append(paths, "usr/d001", "usr/d001/f00001") // a directory's path, a path learned twice
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(paths), func(i, j int) { paths[i], paths[j] = paths[j], paths[i] })
	for i, p := range paths {
		l.add(&tree.Entry{Path: p, Type: tree.TypeRegular, Dev: 1, Ino: uint64(i + 1), Size: int64(len(p)), Mtime: 7, Ctime: 8, Hash: uint64(1000 + i)})
	}
	if !l.spilled() || len(l.runs) != 3 {
		t.Fatalf("%d runs spilled, want 3", len(l.runs))
	}
	if l.len() != len(paths) {
		t.Fatalf("len %d, want %d", l.len(), len(paths))
	}
	var err error
	var got []string
	byPath := map[string][]learnedRec{}
	for r := range l.sorted(&err) {
		got = append(got, r.path)
		byPath[r.path] = append(byPath[r.path], *r)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(paths)
	slices.SortFunc(want, tree.Compare)
	if !slices.Equal(got, want) {
		t.Fatalf("sorted yielded %d paths, want %d in Compare order", len(got), len(want))
	}
	for i, p := range paths {
		rs := byPath[p]
		if !slices.ContainsFunc(rs, func(r learnedRec) bool { return r.ino == uint64(i+1) && r.hash == uint64(1000+i) }) {
			t.Fatalf("%s: record of fetch %d lost or damaged: %+v", p, i, rs)
		}
	}

	// In memory only (a fetch-only source with a few hashes).
	m := learnedSet{}
	e := &tree.Entry{Path: "a/b", Type: tree.TypeRegular, Dev: 1, Ino: 2, Size: 3, Mtime: 4, Ctime: 5, Hash: 6}
	m.add(e)
	m.add(&tree.Entry{Path: "a/a", Type: tree.TypeRegular, Dev: 1, Ino: 3, Hash: 9})
	if h, ok := m.hashFor(e); !ok || h != 6 {
		t.Errorf("hashFor = %d, %v; want 6, true", h, ok)
	}
	other := *e
	other.Ino = 99
	if _, ok := m.hashFor(&other); ok {
		t.Errorf("hashFor lent the hash to another object at the same path")
	}
}

// The merge opens a run only when it reaches the run's first path: the
// runs of a full pull's fetches, learned in about path order, are merged
// with one open at a time, not all of them buffered from the start (~5 KiB
// each: 122 runs at a million files). The records are yielded from one
// variable: no allocation a record but its path.
func TestLearnedSetMergeOpensRunsAsReached(t *testing.T) {
	l := learnedSet{dir: t.TempDir()}
	defer l.close()
	const runs = 40
	for i := range runs * learnedSpillAt {
		p := fmt.Sprintf("usr/d%06d/f%08d", i/100, i)
		l.add(&tree.Entry{Path: p, Type: tree.TypeRegular, Dev: 1, Ino: uint64(i + 1), Hash: uint64(i)})
	}
	if len(l.runs) != runs {
		t.Fatalf("%d runs spilled, want %d", len(l.runs), runs)
	}
	var err error
	n := 0
	for range l.sorted(&err) {
		n++
	}
	if err != nil || n != runs*learnedSpillAt {
		t.Fatalf("merged %d records (err %v), want %d", n, err, runs*learnedSpillAt)
	}
	if l.maxOpen > 2 {
		t.Errorf("the merge had %d of %d runs open at once, want at most 2", l.maxOpen, runs)
	}
}

// A run whose records are not in order is reported, not merged out of
// order.
func TestLearnedSetDamagedRun(t *testing.T) {
	l := learnedSet{dir: t.TempDir()}
	defer l.close()
	for i := range learnedSpillAt {
		l.add(&tree.Entry{Path: fmt.Sprintf("a/f%06d", i), Type: tree.TypeRegular, Ino: uint64(i + 1)})
	}
	// Swap the first two records of the spilled run.
	var b0, b1 []byte
	r0 := learnedRec{path: "a/f000001", ino: 2}
	r1 := learnedRec{path: "a/f000000", ino: 1}
	b0, b1 = appendLearned(b0, &r0), appendLearned(b1, &r1)
	if err := l.w.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.f.WriteAt(append(b0, b1...), 0); err != nil {
		t.Fatal(err)
	}
	l.runs[0].first = "a/f000001"
	var err error
	for range l.sorted(&err) {
	}
	if err == nil {
		t.Fatal("a run out of order was merged without an error")
	}
}
