package imaging

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/internal/heaptest"
)

// genTree makes n entries of a random tree, sorted: directories of depth up
// to 4, files with hashes and local identity, some symlinks.
func genTree(r *rand.Rand, n int, tag string) []*tree.Entry {
	es := []*tree.Entry{{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755, Mtime: 1}}
	dirs := []string{tree.Root}
	seen := map[string]bool{tree.Root: true}
	for len(es) < n {
		parent := dirs[r.IntN(len(dirs))]
		name := fmt.Sprintf("n%d", r.IntN(50))
		if r.IntN(10) == 0 {
			name += ".x" // sorts among the '/' cases of tree.Compare
		}
		p := tree.Join(parent, name)
		if seen[p] || len(p) > 200 {
			continue
		}
		seen[p] = true
		e := &tree.Entry{Path: p, Mode: 0o644, UID: uint32(r.IntN(3)), Mtime: r.Int64N(1 << 50),
			Dev: 7, Ino: uint64(len(es)), Nlink: 1, Ctime: r.Int64N(1 << 50)}
		switch k := r.IntN(10); {
		case k < 2 && len(p) < 150:
			e.Type, e.Mode = tree.TypeDir, 0o755
			dirs = append(dirs, p)
		case k < 3:
			e.Type, e.Target = tree.TypeSymlink, "t-"+tag
		default:
			e.Type, e.Size = tree.TypeRegular, r.Int64N(1<<20)
			e.SetHash(r.Uint64())
		}
		es = append(es, e)
	}
	sortEntries(es)
	return es
}

// randomScopes picks scopes among the entries' paths (and a few that do
// not exist).
func randomScopes(r *rand.Rand, es []*tree.Entry) []tree.Scope {
	var out []tree.Scope
	for range 1 + r.IntN(6) {
		p := es[r.IntN(len(es))].Path
		if r.IntN(5) == 0 {
			p = tree.Join(p, "new")
		}
		out = append(out, tree.Scope{Path: p, Tree: r.IntN(2) == 0})
	}
	return out
}

// filterCovered is the obvious implementation LoadManifestScoped must match.
func filterCovered(es []*tree.Entry, scopes []tree.Scope) []*tree.Entry {
	var out []*tree.Entry
	for _, e := range es {
		if tree.Covers(scopes, e.Path) {
			out = append(out, e)
		}
	}
	return out
}

// rewriteCovered makes the new content of the scopes: the covered entries
// changed or dropped, new ones beneath the tree scopes.
func rewriteCovered(r *rand.Rand, es []*tree.Entry, scopes []tree.Scope, round int) []*tree.Entry {
	var out []*tree.Entry
	seen := map[string]bool{}
	for _, e := range filterCovered(es, scopes) {
		if r.IntN(4) == 0 {
			continue
		}
		c := e.Clone()
		c.Mtime, c.Ctime = r.Int64N(1<<50), r.Int64N(1<<50)
		if c.Type == tree.TypeRegular {
			c.SetHash(r.Uint64())
		}
		out = append(out, c)
		seen[c.Path] = true
	}
	for _, sc := range scopes {
		for k := range 1 + r.IntN(30) {
			if !sc.Tree {
				break
			}
			p := tree.Join(sc.Path, fmt.Sprintf("new%d-%d", round, k))
			if seen[p] {
				continue
			}
			seen[p] = true
			e := &tree.Entry{Path: p, Type: tree.TypeRegular, Mode: 0o600, Size: 5, Mtime: 9, Dev: 7, Ino: uint64(k), Nlink: 1}
			e.SetHash(r.Uint64())
			out = append(out, e)
		}
	}
	sortEntries(out)
	return out
}

// modelSplice is the obvious implementation of a scoped update.
func modelSplice(es []*tree.Entry, scopes []tree.Scope, repl []*tree.Entry) []*tree.Entry {
	var out []*tree.Entry
	for _, e := range es {
		if !tree.Covers(scopes, e.Path) {
			out = append(out, e)
		}
	}
	out = append(out, repl...)
	sortEntries(out)
	return out
}

func samePaths(t *testing.T, what string, want, got []*tree.Entry) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Path != g.Path || w.Hash != g.Hash || w.Type != g.Type || w.Size != g.Size || w.Mtime != g.Mtime ||
			w.Ino != g.Ino || w.Ctime != g.Ctime || w.Target != g.Target {
			t.Fatalf("%s: entry %d: got %+v, want %+v", what, i, g, w)
		}
	}
}

func TestManifestSaveLoadScoped(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	for _, n := range []int{1, 2, 255, 256, 257, 3000} {
		es := genTree(r, n, "a")
		path := filepath.Join(dir, fmt.Sprint("m", n))
		if err := (&Manifest{Entries: es}).Save(path); err != nil {
			t.Fatal(err)
		}
		m, err := LoadManifest(path)
		if err != nil {
			t.Fatal(err)
		}
		samePaths(t, "full load", es, m.Entries)
		for range 20 {
			sc := randomScopes(r, es)
			m, err := LoadManifestScoped(path, sc)
			if err != nil {
				t.Fatal(err)
			}
			samePaths(t, fmt.Sprintf("scoped %v", sc), filterCovered(es, sc), m.Entries)
		}
	}
}

// TestManifestUpdatesMatchModel applies random scoped updates through the
// log (and its compactions) and checks both loads against a model.
func TestManifestUpdatesMatchModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	defer func(s int64) { logSlack = s }(logSlack)
	logSlack = 0
	path := filepath.Join(t.TempDir(), "manifest")
	model := genTree(r, 2000, "base")
	if err := (&Manifest{Entries: model}).Save(path); err != nil {
		t.Fatal(err)
	}
	compactions := 0
	for i := range 60 {
		// The new content of the scopes: a random tree's covered part.
		sc := randomScopes(r, model)
		repl := rewriteCovered(r, model, sc, i)
		if i%7 == 0 {
			repl = nil // everything in the scopes deleted
		}
		gen, _, _ := baseGeneration(path)
		if err := UpdateManifest(path, sc, repl); err != nil {
			t.Fatal(err)
		}
		if g2, _, _ := baseGeneration(path); g2 != gen {
			compactions++
		}
		model = modelSplice(model, sc, repl)
		m, err := LoadManifest(path)
		if err != nil {
			t.Fatal(err)
		}
		samePaths(t, fmt.Sprintf("update %d: full load", i), model, m.Entries)
		q := randomScopes(r, model)
		ms, err := LoadManifestScoped(path, q)
		if err != nil {
			t.Fatal(err)
		}
		samePaths(t, fmt.Sprintf("update %d: scoped load %v", i, q), filterCovered(model, q), ms.Entries)
	}
	if compactions == 0 {
		t.Errorf("60 updates never compacted the log into a new base")
	}
	if _, err := os.Stat(LogPath(path)); compactions > 0 && err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

// TestManifestTornLog: an append cut short (a crash) loses only that
// update; the next update cuts the torn tail and appends after it.
func TestManifestTornLog(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	path := filepath.Join(t.TempDir(), "manifest")
	base := genTree(r, 3000, "base")
	if err := (&Manifest{Entries: base}).Save(path); err != nil {
		t.Fatal(err)
	}
	sc1 := []tree.Scope{{Path: base[10].Path, Tree: true}}
	if err := UpdateManifest(path, sc1, nil); err != nil {
		t.Fatal(err)
	}
	after1 := modelSplice(base, sc1, nil)
	st, _ := os.Stat(LogPath(path))
	good := st.Size()
	sc2 := []tree.Scope{{Path: base[500].Path}}
	if err := UpdateManifest(path, sc2, nil); err != nil {
		t.Fatal(err)
	}
	st, _ = os.Stat(LogPath(path))
	for _, cut := range []int64{good + 1, good + 11, st.Size() - 1} {
		if err := os.Truncate(LogPath(path), cut); err != nil {
			t.Fatal(err)
		}
		m, err := LoadManifest(path)
		if err != nil {
			t.Fatal(err)
		}
		samePaths(t, fmt.Sprintf("log cut at %d", cut), after1, m.Entries)
	}
	sc3 := []tree.Scope{{Path: base[2000].Path, Tree: true}}
	if err := UpdateManifest(path, sc3, nil); err != nil {
		t.Fatal(err)
	}
	m, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	samePaths(t, "after appending past a torn tail", modelSplice(after1, sc3, nil), m.Entries)
}

// TestManifestStaleLogIgnored: a log of an earlier base (a crash between
// writing a new base and removing the old log) is not replayed.
func TestManifestStaleLogIgnored(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	path := filepath.Join(t.TempDir(), "manifest")
	base := genTree(r, 1000, "base")
	if err := (&Manifest{Entries: base}).Save(path); err != nil {
		t.Fatal(err)
	}
	if err := UpdateManifest(path, []tree.Scope{{Path: tree.Root, Tree: true}}, base[:1]); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(LogPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Manifest{Entries: base}).Save(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(LogPath(path), old, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	samePaths(t, "with a stale log", base, m.Entries)
}

// TestManifestCorruption: every damaged byte of a base is detected by the
// load that reads it, never decoded into wrong entries.
func TestManifestCorruption(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	path := filepath.Join(t.TempDir(), "manifest")
	base := genTree(r, 600, "base")
	if err := (&Manifest{Entries: base}).Save(path); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	for i := 0; i < len(good); i += 1 + r.IntN(40) {
		bad := slices.Clone(good)
		bad[i] ^= 1 << r.IntN(8)
		if _, err := DecodeManifest(bad); !errors.Is(err, ErrCorruptManifest) {
			t.Fatalf("byte %d flipped: full decode gave %v, want ErrCorruptManifest", i, err)
		}
		m, _, err := decodeScoped(memBase(bad), tree.FullScope)
		if err == nil {
			t.Fatalf("byte %d flipped: scoped decode of everything gave %d entries and no error", i, len(m.Entries))
		}
	}
	for _, n := range []int{0, 5, manifestHeader, len(good) - 1} {
		if _, err := DecodeManifest(good[:n]); !errors.Is(err, ErrCorruptManifest) {
			t.Fatalf("cut at %d: %v, want ErrCorruptManifest", n, err)
		}
	}
}

// TestManifestReadsVersion1 keeps manifests of earlier releases usable, and
// an update of one keeps what lies outside its scopes.
func TestManifestReadsVersion1(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	es := genTree(r, 500, "v1")
	data := append([]byte(nil), manifestMagicV1...)
	data = binary.AppendUvarint(data, uint64(len(es)))
	var prev *tree.Entry
	for _, e := range es {
		var err error
		if data, err = wire.AppendEntryLocal(data, prev, e); err != nil {
			t.Fatal(err)
		}
		prev = e
	}
	data = binary.BigEndian.AppendUint64(data, xxhash.Sum64(data))
	path := filepath.Join(t.TempDir(), "manifest")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	samePaths(t, "version 1", es, m.Entries)
	sc := []tree.Scope{{Path: es[7].Path, Tree: true}}
	ms, err := LoadManifestScoped(path, sc)
	if err != nil {
		t.Fatal(err)
	}
	samePaths(t, "version 1 scoped", filterCovered(es, sc), ms.Entries)
	if err := UpdateManifest(path, sc, nil); err != nil {
		t.Fatal(err)
	}
	m, err = LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	samePaths(t, "version 1 updated", modelSplice(es, sc, nil), m.Entries)
}

func TestScopeSetMatchesCovers(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	es := genTree(r, 800, "s")
	for range 200 {
		sc := randomScopes(r, es)
		if r.IntN(10) == 0 {
			sc = append(sc, tree.Scope{Path: tree.Root, Tree: r.IntN(2) == 0})
		}
		set := tree.NewScopeSet(sc)
		for _, e := range es {
			for _, p := range []string{e.Path, tree.Join(e.Path, "child")} {
				if got, want := set.Covers(p), tree.Covers(sc, p); got != want {
					t.Fatalf("scopes %v, path %q: ScopeSet says %v, Covers %v", sc, p, got, want)
				}
				whole := false // a Tree scope is p or above it
				for _, s := range sc {
					whole = whole || s.Tree && (s.Path == tree.Root || s.Path == p || tree.IsWithin(p, s.Path))
				}
				if got := set.CoversTree(p); got != whole {
					t.Fatalf("scopes %v, path %q: CoversTree says %v, want %v", sc, p, got, whole)
				}
			}
		}
	}
}

// FuzzManifestDecode: hostile bytes as a base or a log give an error or
// entries that pass the checks, never a panic or a huge allocation.
func FuzzManifestDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(15, 16))
	es := genTree(r, 300, "f")
	if base, err := encodeBase(es, 42); err == nil {
		f.Add(base)
	}
	if rec, err := encodeLogRecord(42, []tree.Scope{{Path: es[3].Path, Tree: true}}, filterCovered(es, []tree.Scope{{Path: es[3].Path, Tree: true}})); err == nil {
		f.Add(rec)
	}
	f.Add([]byte("GSMANIF\x02"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := DecodeManifest(data); err == nil {
			for i := 1; i < len(m.Entries); i++ {
				if tree.Compare(m.Entries[i-1].Path, m.Entries[i].Path) >= 0 {
					t.Fatalf("decoded out of order")
				}
			}
		}
		decodeScoped(memBase(data), []tree.Scope{{Path: "a", Tree: true}, {Path: tree.Root}})
		for off := 0; off < len(data); {
			_, n, err := decodeLogRecord(data[off:])
			if err != nil || n == 0 {
				break
			}
			off += n
		}
	})
}

// TestManifestLinksAcrossScopes: after a scoped update, a full load links
// hard-link groups whose members lie in different scopes (LinkTo, used by
// verify) but never hands one member's hash to another: they may have been
// recorded at different times, and a hash is only good with its own ctime.
func TestManifestLinksAcrossScopes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manifest")
	dir := func(p string) *tree.Entry {
		return &tree.Entry{Path: p, Type: tree.TypeDir, Mode: 0o755, Dev: 1, Ino: uint64(len(p)), Nlink: 2}
	}
	file := func(p string, h uint64, ctime int64) *tree.Entry {
		e := &tree.Entry{Path: p, Type: tree.TypeRegular, Mode: 0o644, Size: 3, Dev: 1, Ino: 99, Nlink: 2, Ctime: ctime}
		e.SetHash(h)
		return e
	}
	base := []*tree.Entry{dir(tree.Root), dir("a"), file("a/x", 1, 10), dir("b"), file("b/y", 1, 10)}
	if err := (&Manifest{Entries: base}).Save(path); err != nil {
		t.Fatal(err)
	}
	// b/y rewritten in place later (same inode, new hash and ctime); only
	// b was in scope.
	sc := []tree.Scope{{Path: "b", Tree: true}}
	if err := UpdateManifest(path, sc, []*tree.Entry{dir("b"), file("b/y", 2, 20)}); err != nil {
		t.Fatal(err)
	}
	m, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	idx := m.index()
	if got := idx["b/y"].LinkTo; got != "a/x" {
		t.Errorf("b/y LinkTo = %q, want a/x", got)
	}
	if idx["a/x"].Hash != 1 || idx["a/x"].Ctime != 10 || idx["b/y"].Hash != 2 || idx["b/y"].Ctime != 20 {
		t.Errorf("hashes moved between the links: a/x %x@%d, b/y %x@%d", idx["a/x"].Hash, idx["a/x"].Ctime, idx["b/y"].Hash, idx["b/y"].Ctime)
	}
}

// TestManifestReplicasCompactApart: eight state dirs that record the same
// updates of the same tree (replicas fed by one primary) fold their logs
// into new bases in different updates, not all in the same one (their
// bases' generations, drawn by each, place the fold), and every one still
// loads exactly what was recorded.
func TestManifestReplicasCompactApart(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	defer func(s int64) { logSlack = s }(logSlack)
	logSlack = 0
	// The generations drawn from a seeded source, for a test that gives
	// the same answer every time.
	defer func(f func() uint64) { newGeneration = f }(newGeneration)
	gr := rand.New(rand.NewPCG(13, 14))
	newGeneration = func() uint64 { return gr.Uint64() | 1 }
	const replicas, updates = 8, 300
	dir := t.TempDir()
	model := genTree(r, 2000, "base")
	var files []string
	for _, e := range model {
		if e.Type == tree.TypeRegular {
			files = append(files, e.Path)
		}
	}
	paths := make([]string, replicas)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprint("r", i+1), "manifest")
		if err := os.MkdirAll(filepath.Dir(paths[i]), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := (&Manifest{Entries: model}).Save(paths[i]); err != nil {
			t.Fatal(err)
		}
	}
	perUpdate := map[int]int{} // replicas folding in one update: how many updates
	folds := make([]int, replicas)
	for u := range updates {
		// The same change for every replica: a few files rewritten.
		var sc []tree.Scope
		for range 4 {
			sc = append(sc, tree.Scope{Path: files[r.IntN(len(files))]})
		}
		repl := rewriteCovered(r, model, sc, u)
		n := 0
		for i, p := range paths {
			gen, _, err := baseGeneration(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := UpdateManifest(p, sc, repl); err != nil {
				t.Fatal(err)
			}
			if g2, _, _ := baseGeneration(p); g2 != gen {
				folds[i]++
				n++
			}
		}
		if n > 0 {
			perUpdate[n]++
		}
		model = modelSplice(model, sc, repl)
	}
	st, _ := os.Stat(paths[0])
	t.Logf("base %d bytes; folds by replica %v; updates by how many replicas folded in them %v", st.Size(), folds, perUpdate)
	for i, f := range folds {
		if f < 2 {
			t.Fatalf("replica %d folded its log %d times in %d updates, want at least 2 (the test needs folds)", i+1, f, updates)
		}
	}
	// With the fold points drawn apart, a few replicas fold in the same
	// update now and then; with one fixed point (a quarter of the base),
	// all 8 fold together every time.
	for n, c := range perUpdate {
		if n > 4 {
			t.Errorf("%d updates had %d of the %d replicas fold their logs at once, want at most 4", c, n, replicas)
		}
	}
	for i, p := range paths {
		m, err := LoadManifest(p)
		if err != nil {
			t.Fatal(err)
		}
		samePaths(t, fmt.Sprint("replica ", i+1), model, m.Entries)
	}
}

// TestManifestFoldStreams: folding a log into a new base holds a block of
// the old base at a time, not the manifest: the live heap at the end of the
// new base's writing stays far below what the manifest's entries take.
func TestManifestFoldStreams(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	defer func(s int64) { logSlack = s }(logSlack)
	logSlack = 1 << 40 // no fold until asked
	path := filepath.Join(t.TempDir(), "manifest")
	model := genTree(r, 50000, "base")
	if err := (&Manifest{Entries: model}).Save(path); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		sc := randomScopes(r, model)
		repl := rewriteCovered(r, model, sc, i)
		if err := UpdateManifest(path, sc, repl); err != nil {
			t.Fatal(err)
		}
		model = modelSplice(model, sc, repl)
	}
	// What the manifest's entries take when held: a full load's growth.
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	h0 := heap()
	m, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	held := heap() - h0
	runtime.KeepAlive(m)
	m = nil

	sc := randomScopes(r, model)
	repl := rewriteCovered(r, model, sc, 99)
	model = modelSplice(model, sc, repl)
	logSlack = -1 << 40 // the next update folds
	var most int64 = -1 // the live heap's most while the new base is written
	defer func() { blockWritten = nil }()
	h0 = heap()
	blockWritten = func(n int) {
		if n%32 == 0 {
			most = max(most, heap()-h0)
		}
	}
	gen, _, _ := baseGeneration(path)
	if err := UpdateManifest(path, sc, repl); err != nil {
		t.Fatal(err)
	}
	blockWritten = nil
	if g2, _, _ := baseGeneration(path); g2 == gen || most < 0 {
		t.Fatalf("the update did not fold the log into a new base")
	}
	if _, err := os.Stat(LogPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the log is still there after the fold: %v", err)
	}
	t.Logf("50,000 entries held: %d KiB; the live heap's most while the fold wrote its base: %d KiB", held>>10, most>>10)
	if held < 4<<20 {
		t.Fatalf("the loaded manifest holds only %d KiB: the test cannot tell", held>>10)
	}
	if most > held/4 {
		t.Errorf("the fold held %d KiB while writing, want at most a quarter of the manifest's %d KiB", most>>10, held>>10)
	}
	got, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	samePaths(t, "after the fold", model, got.Entries)
}

// TestManifestFoldDamagedBase: a fold that finds a damaged block of the
// base starts again from what the update knows (the manifest is a cache),
// never writing a base that silently lacks the rest.
func TestManifestFoldDamagedBase(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	defer func(s int64) { logSlack = s }(logSlack)
	logSlack = 1 << 40
	path := filepath.Join(t.TempDir(), "manifest")
	model := genTree(r, 3000, "base")
	if err := (&Manifest{Entries: model}).Save(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff // a block in the middle
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	sc := []tree.Scope{{Path: model[1].Path, Tree: true}}
	repl := rewriteCovered(r, model, sc, 1)
	logSlack = -1 << 40 // the next update folds
	if err := UpdateManifest(path, sc, repl); err != nil {
		t.Fatal(err)
	}
	m, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	samePaths(t, "after folding a damaged base", repl, m.Entries)
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("the state dir holds %q after the fold, want the base alone", names)
	}
}

// TestFoldRecordsScopesOnce: folding a log of many records over the same
// paths (a change and its revert, again and again) keeps each scope once
// and allocates in proportion to the records, not their square, with the
// same effect as applying them one by one.
func TestFoldRecordsScopesOnce(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	model := genTree(r, 3000, "base")
	sc := randomScopes(r, model)
	for len(sc) < 100 {
		sc = append(sc, randomScopes(r, model)...)
	}
	var recs []logRecord
	want := model
	for i := range 100 {
		repl := rewriteCovered(r, want, sc, i)
		recs = append(recs, logRecord{scopes: sc, entries: repl})
		want = modelSplice(want, sc, repl)
	}
	var folded logRecord
	allocated := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			folded = foldRecords(recs)
		}
	}).AllocedBytesPerOp()
	got := modelSplice(model, folded.scopes, folded.entries)
	samePaths(t, "the folded log applied", want, got)
	distinct := map[tree.Scope]bool{}
	for _, s := range sc {
		distinct[s] = true
	}
	if len(folded.scopes) != len(distinct) {
		t.Errorf("folded %d records of the same %d scopes into %d scopes, want %d", len(recs), len(sc), len(folded.scopes), len(distinct))
	}
	// The scopes copied at every record: 100²/2 × 102 scopes × 24 B ≈ 12
	// MB more (23.4 MiB in all against 7.1 MiB, load ~10).
	t.Logf("%d records of %d scopes folded: %d KiB allocated", len(recs), len(sc), allocated>>10)
	if allocated > 12<<20 {
		t.Errorf("folding allocated %d KiB, want at most 12 MiB", allocated>>10)
	}
}

// TestScopedLoadKeepsOnlyCovered: a scoped load decodes the blocks its
// scopes touch (here, 300 paths scattered over 20,000 entries: most
// blocks) but keeps, and allocates, only the entries they cover, each
// whole: an xattr list repeated from the entry before, which the decoder
// shares with that entry, survives the reuse of the decoder's two slots.
func TestScopedLoadKeepsOnlyCovered(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	es := genTree(r, 20000, "k")
	for i, e := range es {
		if e.Type == tree.TypeRegular && i%5 != 0 { // runs of equal lists: repeats in the encoding
			e.Xattrs = []tree.Xattr{{Name: "user.g", Value: fmt.Append(nil, i/5)}}
		}
	}
	data, err := encodeBase(es, 42)
	if err != nil {
		t.Fatal(err)
	}
	var scopes []tree.Scope
	for range 300 {
		scopes = append(scopes, tree.Scope{Path: es[r.IntN(len(es))].Path})
	}
	scopes = append(scopes, tree.Scope{Path: es[len(es)/2].Path, Tree: true}, tree.Scope{Path: "zz/none"})
	want := filterCovered(es, scopes)
	var m *Manifest
	before := decodedEntries.Load()
	allocated, _ := heaptest.Allocated(func() {
		var err error
		if m, _, err = decodeScoped(memBase(data), scopes); err != nil {
			t.Fatal(err)
		}
	})
	decoded := decodedEntries.Load() - before
	if len(m.Entries) != len(want) || m.total != len(es) {
		t.Fatalf("%d entries of %d, want %d of %d", len(m.Entries), m.total, len(want), len(es))
	}
	for i, w := range want {
		g := m.Entries[i]
		if g.Path != w.Path || g.Hash != w.Hash || g.Mtime != w.Mtime || g.Ino != w.Ino || g.Target != w.Target ||
			!slices.EqualFunc(g.Xattrs, w.Xattrs, func(a, b tree.Xattr) bool { return a.Name == b.Name && string(a.Value) == string(b.Value) }) {
			t.Fatalf("entry %d: got %+v, want %+v", i, g, w)
		}
	}
	t.Logf("%d entries kept of %d decoded: %d bytes allocated", len(m.Entries), decoded, allocated)
	if decoded < int64(len(es))/2 {
		t.Fatalf("only %d entries decoded: the scopes should touch most blocks", decoded)
	}
	// Decoding every touched entry into its own allocation costs ~250 bytes
	// an entry (3.5 MB here); the kept ones and the index cost under 0.5 MB.
	if allocated > 1<<20 {
		t.Errorf("a scoped load that keeps %d entries allocated %d bytes: it holds what it decodes", len(m.Entries), allocated)
	}
}
