package imaging

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestScopedLoadLongLogMatchesModel: random scoped updates on a log that
// is never folded (every record since the base is replayed or skipped by
// a scoped load), checked against a model, with scopes that the updates
// touch again and again.
func TestScopedLoadLongLogMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	defer func(s int64) { logSlack = s }(logSlack)
	logSlack = 1 << 40
	path := filepath.Join(t.TempDir(), "manifest")
	model := genTree(r, 1500, "base")
	if err := (&Manifest{Entries: model}).Save(path); err != nil {
		t.Fatal(err)
	}
	var recent [][]tree.Scope
	for i := range 80 {
		sc := randomScopes(r, model)
		if len(recent) > 0 && r.IntN(2) == 0 {
			sc = recent[r.IntN(len(recent))] // the same paths again
		}
		recent = append(recent, sc)
		repl := rewriteCovered(r, model, sc, i)
		if err := UpdateManifest(path, sc, repl); err != nil {
			t.Fatal(err)
		}
		model = modelSplice(model, sc, repl)
		for range 3 {
			q := randomScopes(r, model)
			if r.IntN(2) == 0 {
				q = append(q, recent[r.IntN(len(recent))]...)
			}
			ms, err := LoadManifestScoped(path, q)
			if err != nil {
				t.Fatal(err)
			}
			samePaths(t, fmt.Sprintf("update %d: scoped load %v", i, q), filterCovered(model, q), ms.Entries)
		}
	}
	if gen, _, _ := baseGeneration(path); gen == 0 {
		t.Fatal("no base")
	}
}

// TestScopedLoadLogWorkFollowsChange checks that a scoped load decodes as
// many log entries after 40 updates of the same paths as after 4: a
// change made and undone again and again (the replica benchmark's yum
// change forth and back, or a package's directories, changed by every
// update) costs the newest record that covers each path, not every record
// since the last fold. Before, every record that shared a path with the
// load was decoded: 2,463 entries after 4 updates, 7,359 after 40 (now
// 2,055 both: the blocks of the base and the newest record).
func TestScopedLoadLogWorkFollowsChange(t *testing.T) {
	short := scopedLogDecoded(t, 4)
	long := scopedLogDecoded(t, 40)
	t.Logf("entries decoded by a scoped load: %d (log of 4 updates), %d (log of 40)", short, long)
	if long > short {
		t.Errorf("a scoped load decoded %d entries with 40 records in the log and %d with 4: the work grows with the log", long, short)
	}
}

func scopedLogDecoded(t *testing.T, updates int) int64 {
	t.Helper()
	defer func(s int64) { logSlack = s }(logSlack)
	logSlack = 1 << 40
	path := filepath.Join(t.TempDir(), "manifest")
	m := &Manifest{Entries: []*tree.Entry{{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755}}}
	for d := range 20 {
		m.Entries = append(m.Entries, &tree.Entry{Path: fmt.Sprintf("d%02d", d), Type: tree.TypeDir, Mode: 0o755, Ino: uint64(d + 1), Nlink: 2})
		for f := range 99 {
			e := &tree.Entry{Path: fmt.Sprintf("d%02d/f%03d", d, f), Type: tree.TypeRegular, Mode: 0o644, Size: 10, Ino: uint64(1000 + d*100 + f), Nlink: 1}
			e.SetHash(uint64(d*100 + f))
			m.Entries = append(m.Entries, e)
		}
	}
	m.sort()
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	// The change: d01 whole (a package's directory), and one file of
	// each other directory, with their directories.
	scopes := []tree.Scope{{Path: "d01", Tree: true}}
	for d := 2; d < 20; d++ {
		scopes = append(scopes, tree.Scope{Path: fmt.Sprintf("d%02d", d)}, tree.Scope{Path: fmt.Sprintf("d%02d/f007", d)})
	}
	for i := range updates {
		var in []*tree.Entry
		for _, e := range m.Entries {
			if tree.Covers(scopes, e.Path) {
				c := e.Clone()
				c.Mtime = int64(i)
				in = append(in, c)
			}
		}
		if err := UpdateManifest(path, scopes, in); err != nil {
			t.Fatal(err)
		}
	}
	before := decodedEntries.Load()
	got, err := LoadManifestScoped(path, scopes)
	decoded := decodedEntries.Load() - before
	if err != nil {
		t.Fatal(err)
	}
	want := filterCovered(m.Entries, scopes)
	if len(got.Entries) != len(want) {
		t.Fatalf("scoped load: %d entries, want %d", len(got.Entries), len(want))
	}
	for _, e := range got.Entries {
		if e.Mtime != int64(updates-1) {
			t.Fatalf("%s: mtime %d, want the last update's %d", e.Path, e.Mtime, updates-1)
		}
	}
	return decoded
}

// TestScopedRunChecksLogOnce: a scoped run reads its manifest log's
// records (length and checksum of each: O(log bytes)) once, for its
// scoped load; the append that records the run knows the log's valid
// length from that read while the file is as read. Before, the append
// read and checked the whole log again (2 reads a run). A log changed
// since the read (a torn tail here) is read again, and the append
// after it lands at the valid length.
func TestScopedRunChecksLogOnce(t *testing.T) {
	defer func(s int64) { logSlack = s }(logSlack)
	logSlack = 1 << 40 // no fold: every update appends
	base := t.TempDir()
	src, dst := filepath.Join(base, "golden"), filepath.Join(base, "image")
	for d := range 5 {
		if err := os.MkdirAll(filepath.Join(src, fmt.Sprintf("d%d", d)), 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 20 {
			writeFile(t, filepath.Join(src, fmt.Sprintf("d%d/f%02d", d, f)), fmt.Sprintf("file %d %d\n", d, f))
		}
	}
	opts := Options{StateDir: filepath.Join(base, "state"), Generations: &GenerationPolicy{Keep: 3, Source: "test"}}
	sync := func(scopes []tree.Scope) int64 {
		t.Helper()
		s, err := OpenDirSource(src, DirSourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		o := opts
		o.Scopes = scopes
		before := logReads.Load()
		if _, err := Sync(context.Background(), s, dst, o); err != nil {
			t.Fatalf("sync: %v", err)
		}
		return logReads.Load() - before
	}
	sync(nil)
	sp := State(opts.StateDir)
	for round := range 4 {
		p := fmt.Sprintf("d%d/f%02d", round, round)
		writeFile(t, filepath.Join(src, p), fmt.Sprintf("new %d\n", round))
		n := sync([]tree.Scope{{Path: p}})
		if round > 0 && n != 1 {
			t.Errorf("round %d: the run read its manifest log %d times, want 1", round, n)
		}
		m, err := LoadManifestScoped(sp.Manifest, []tree.Scope{{Path: p}})
		if err != nil || len(m.Entries) != 1 || m.Entries[0].Size != int64(len(fmt.Sprintf("new %d\n", round))) {
			t.Fatalf("round %d: the manifest does not record the change of %s: %v %v", round, p, m, err)
		}
	}

	// A torn tail after the read: the log is read again, and the next
	// append cuts it.
	lp := LogPath(sp.Manifest)
	if _, err := LoadManifestScoped(sp.Manifest, []tree.Scope{{Path: "d0"}}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(lp)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(lp, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("torn"))
	f.Close()
	before := logReads.Load()
	if got := logValid(lp); got != st.Size() {
		t.Errorf("valid length after a torn tail: %d, want %d", got, st.Size())
	}
	if logReads.Load()-before != 1 {
		t.Errorf("a log changed since it was read was not read again")
	}
	p := "d4/f04"
	writeFile(t, filepath.Join(src, p), "after the torn tail\n")
	sync([]tree.Scope{{Path: p}})
	m, err := LoadManifest(sp.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range m.Entries {
		if e.Path == p {
			found = e.Size == int64(len("after the torn tail\n"))
		}
	}
	if !found {
		t.Errorf("the update after the torn tail is not recorded")
	}
}
