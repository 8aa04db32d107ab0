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
