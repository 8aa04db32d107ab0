package imaging

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestChangedByBlocksMatchesWhole records generations of a random tree
// changed by full saves (a full pull: a new base) and by scoped updates
// (the log, and its folds), and checks that the block-by-block change set
// of every pair is the one a comparison of the whole manifests gives.
func TestChangedByBlocksMatchesWhole(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	defer func(s int64) { logSlack = s }(logSlack)
	logSlack = 2 << 10 // fold now and then
	dir := t.TempDir()
	sp := State(dir)
	opts := &Options{Generations: &GenerationPolicy{Source: "test"}}
	model := genTree(r, 3000, "base")
	if err := (&Manifest{Entries: model}).Save(sp.Manifest); err != nil {
		t.Fatal(err)
	}
	ids := []int64{}
	record := func() {
		t.Helper()
		id, err := recordGeneration(sp, opts, &Result{}, ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	record()
	for i := range 24 {
		sc := randomScopes(r, model)
		repl := rewriteCovered(r, model, sc, i)
		model = modelSplice(model, sc, repl)
		if i%3 == 0 {
			// A full run: the whole manifest saved again (a new base).
			if err := (&Manifest{Entries: model}).Save(sp.Manifest); err != nil {
				t.Fatal(err)
			}
		} else if err := UpdateManifest(sp.Manifest, sc, repl); err != nil {
			t.Fatal(err)
		}
		record()
	}
	fast := 0
	for i, from := range ids {
		for _, to := range ids[i+1:] {
			want, err := changedWhole(context.Background(), dir, from, to)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := changedByBlocks(genDir(dir, from)+"/manifest", genDir(dir, to)+"/manifest")
			if !ok {
				continue
			}
			fast++
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("generations %d → %d: block-by-block change set differs from the whole comparison (-whole +blocks):\n%s", from, to, d)
			}
		}
	}
	if all := len(ids) * (len(ids) - 1) / 2; fast != all {
		t.Errorf("the block-by-block comparison answered %d of %d pairs (the tree has no hard links)", fast, all)
	}
}

// TestChangedPathsWorkFollowsChange checks that the change set between two
// generations (what a replica push serves) decodes manifest entries in
// proportion to the change, not to the image, both when each generation is
// a new base (a full pull) and when the second is a log record on the
// first's base (a journal-driven pull): the same change on an image ten
// times bigger decodes at most twice as many. Measured: 331 entries on
// both sizes (new bases), 336 (a log record); before, ChangedPaths decoded
// both manifests whole: 2,334 and 20,334 (2,344 and 20,344).
func TestChangedPathsWorkFollowsChange(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		small := changedPathsDecoded(t, 1000, scoped)
		big := changedPathsDecoded(t, 10000, scoped)
		t.Logf("scoped %v: entries decoded for the change set: %d (1,000 entries), %d (10,000 entries)", scoped, small, big)
		if big > 2*small {
			t.Errorf("scoped %v: the change set of a 10,000-entry image decoded %d manifest entries, of a 1,000-entry one %d: the work grows with the image, not the change", scoped, big, small)
		}
	}
}

func changedPathsDecoded(t *testing.T, n int, scoped bool) int64 {
	t.Helper()
	dir := t.TempDir()
	sp := State(dir)
	opts := &Options{Generations: &GenerationPolicy{Source: "test"}}
	m := &Manifest{Entries: []*tree.Entry{{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755}}}
	for d := range n / 100 {
		m.Entries = append(m.Entries, &tree.Entry{Path: fmt.Sprintf("d%03d", d), Type: tree.TypeDir, Mode: 0o755, Ino: uint64(d + 1), Nlink: 2})
		for f := range 99 {
			e := &tree.Entry{Path: fmt.Sprintf("d%03d/f%03d", d, f), Type: tree.TypeRegular, Mode: 0o644, Size: 10, Ino: uint64(1000 + d*100 + f), Nlink: 1}
			e.SetHash(uint64(d*100 + f))
			m.Entries = append(m.Entries, e)
		}
	}
	m.sort()
	if err := m.Save(sp.Manifest); err != nil {
		t.Fatal(err)
	}
	if _, err := recordGeneration(sp, opts, &Result{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// The change: two files rewritten, two added, one deleted, in two
	// directories (whose entries change too).
	scopes := []tree.Scope{{Path: "d001"}, {Path: "d001/f001"}, {Path: "d001/f002"}, {Path: "d001/new1"}, {Path: "d001/new2"}, {Path: "d002"}, {Path: "d002/f010"}}
	var in []*tree.Entry
	for _, e := range m.Entries {
		if !tree.Covers(scopes, e.Path) || e.Path == "d002/f010" {
			continue
		}
		c := e.Clone()
		switch c.Path {
		case "d001", "d002":
			c.Mtime++
		default:
			c.SetHash(c.Hash + 1)
		}
		in = append(in, c)
	}
	for _, p := range []string{"d001/new1", "d001/new2"} {
		e := &tree.Entry{Path: p, Type: tree.TypeRegular, Mode: 0o644, Size: 3, Ino: 999999, Nlink: 1}
		e.SetHash(7)
		in = append(in, e)
	}
	sortEntries(in)
	if scoped {
		if err := UpdateManifest(sp.Manifest, scopes, in); err != nil {
			t.Fatal(err)
		}
	} else if err := (&Manifest{Entries: spliceScoped(m.Entries, scopes, in)}).Save(sp.Manifest); err != nil {
		t.Fatal(err)
	}
	if _, err := recordGeneration(sp, opts, &Result{}, []int64{1}, nil); err != nil {
		t.Fatal(err)
	}
	before := decodedEntries.Load()
	got, err := ChangedPaths(context.Background(), dir, 1, 2)
	decoded := decodedEntries.Load() - before
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"d001", "d001/f001", "d001/f002", "d001/new1", "d001/new2", "d002", "d002/f010"}
	if !slices.Equal(got, want) {
		t.Fatalf("changed paths %q, want %q", got, want)
	}
	return decoded
}

// TestChangedPathsLinkGroupsWhole: a change that touches a hard-link group
// brings every path of the group, also where the group's other members
// lie in blocks the change did not touch (the comparison then reads the
// manifests whole).
func TestChangedPathsLinkGroupsWhole(t *testing.T) {
	dir := t.TempDir()
	sp := State(dir)
	opts := &Options{Generations: &GenerationPolicy{Source: "test"}}
	m := &Manifest{Entries: []*tree.Entry{{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755}}}
	for f := range 2000 {
		e := &tree.Entry{Path: fmt.Sprintf("f%04d", f), Type: tree.TypeRegular, Mode: 0o644, Size: 10, Dev: 1, Ino: uint64(10 + f), Nlink: 1}
		e.SetHash(uint64(f))
		m.Entries = append(m.Entries, e)
	}
	// f0000 and f1999 are one inode: far apart, in different blocks.
	first, last := m.Entries[1], m.Entries[len(m.Entries)-1]
	first.Nlink, last.Nlink, last.Ino, last.Hash, last.LinkTo = 2, 2, first.Ino, first.Hash, first.Path
	m.sort()
	if err := m.Save(sp.Manifest); err != nil {
		t.Fatal(err)
	}
	if _, err := recordGeneration(sp, opts, &Result{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	c := first.Clone()
	c.SetHash(c.Hash + 1)
	if err := UpdateManifest(sp.Manifest, []tree.Scope{{Path: c.Path}}, []*tree.Entry{c}); err != nil {
		t.Fatal(err)
	}
	if _, err := recordGeneration(sp, opts, &Result{}, []int64{1}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := ChangedPaths(context.Background(), dir, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"f0000", "f1999"}; !slices.Equal(got, want) {
		t.Errorf("changed paths %q, want the whole group %q", got, want)
	}
}
