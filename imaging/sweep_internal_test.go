package imaging

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestPruneSweepFollowsChange checks the prune that follows every recorded
// generation (issue #17): with scoped updates (a replica's receiver, a
// push), its sweep of kept content reads one whole key list per run of
// consecutive kept generations and the few keys each scoped run added, not
// every kept generation's whole list; and it still keeps every object a
// kept generation needs (a rollback to each kept generation restores it
// exactly) and only those (the objects left are the ones a read of every
// kept generation's whole key list names).
//
// Five generations are kept (a pinned one, then the policy's four
// newest): two runs of consecutive ones, so two whole lists. Before, the
// sweep read all five whole lists.
func TestPruneSweepFollowsChange(t *testing.T) {
	base := t.TempDir()
	src, dst, state := filepath.Join(base, "golden"), filepath.Join(base, "image"), filepath.Join(base, "state")
	for d := range 10 {
		for f := range 100 {
			p := filepath.Join(src, fmt.Sprintf("d%02d/f%03d", d, f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, p, fmt.Sprintf("file %d/%d\n", d, f))
		}
	}
	opts := Options{StateDir: state, Generations: &GenerationPolicy{Keep: 4, Source: "test"}}
	saved := map[int64]map[string]string{} // generation: path -> content
	var files int
	sync := func(scopes []tree.Scope) (id int64, swept int64) {
		t.Helper()
		s, err := OpenDirSource(src, DirSourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		o := opts
		o.Scopes = scopes
		before := keysRead.Load()
		res, err := Sync(context.Background(), s, dst, o)
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		if res.Generation == 0 {
			t.Fatal("sync recorded no generation")
		}
		saved[res.Generation] = readContents(t, dst)
		files = len(saved[res.Generation])
		return res.Generation, keysRead.Load() - before
	}
	first, _ := sync(nil)
	if err := PinGeneration(state, first, true); err != nil {
		t.Fatal(err)
	}
	// Each round rewrites three files of one directory and adds one: the
	// content they replace is kept for the generations before.
	var swept int64
	for round := range 8 {
		dir := fmt.Sprintf("d%02d", round%3)
		scopes := []tree.Scope{{Path: dir}} // (a directory's scope is the directory, not what is in it)
		for f := range 3 {
			p := fmt.Sprintf("%s/f%03d", dir, f)
			writeFile(t, filepath.Join(src, p), fmt.Sprintf("round %d file %d\n", round, f))
			scopes = append(scopes, tree.Scope{Path: p})
		}
		p := fmt.Sprintf("%s/new%d", dir, round)
		writeFile(t, filepath.Join(src, p), fmt.Sprintf("new in round %d\n", round))
		_, swept = sync(append(scopes, tree.Scope{Path: p}))
		checkObjects(t, state)
	}
	if len(listObjects(state)) == 0 {
		t.Fatal("no kept content: the sweep had nothing to do")
	}
	ids, err := generationIDs(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 5 || ids[0] != first {
		t.Fatalf("generations %v, want the pinned %d and the 4 newest", ids, first)
	}
	// The last run read: the new generation's keys from the one before
	// (a whole list: recording it) and the sweep's. The sweep's share
	// is two whole lists (the pinned one, the oldest of the four) and
	// three runs' added keys (4 each), at most.
	recordShare := int64(files)
	t.Logf("keys read by the last run: %d (%d files a generation; recording reads one list)", swept, files)
	if limit := recordShare + 2*int64(files) + 3*10; swept > limit {
		t.Errorf("the last run read %d content keys (%d files a generation, 5 kept): want at most %d, one whole list per run of consecutive generations", swept, files, limit)
	}
	// Every kept generation is still whole.
	for _, id := range ids {
		if _, err := Rollback(context.Background(), dst, id, RollbackOptions{Options: Options{StateDir: state}}); err != nil {
			t.Fatalf("rollback to %d: %v", id, err)
		}
		got := readContents(t, dst)
		for p, c := range saved[id] {
			if got[p] != c {
				t.Errorf("rollback to %d: %s holds %q, want %q", id, p, got[p], c)
			}
		}
		if len(got) != len(saved[id]) {
			t.Errorf("rollback to %d: %d files, want %d", id, len(got), len(saved[id]))
		}
	}
}

// checkObjects checks that the objects left are exactly those some kept
// generation's whole key list names.
func checkObjects(t *testing.T, state string) {
	t.Helper()
	ids, err := generationIDs(state)
	if err != nil {
		t.Fatal(err)
	}
	objs := listObjects(state)
	named := map[contentKey]bool{}
	for _, id := range ids {
		if err := eachKey(state, id, func(k contentKey) {
			if objs[k] {
				named[k] = true
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	for k := range objs {
		if !named[k] {
			t.Errorf("object %s is kept but no generation of %v needs it", k.name(), ids)
		}
	}
}

// readContents maps each regular file under root to its content.
func readContents(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		m[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
