package imaging

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// sameRead checks that the reader answers, for every entry of want, the
// entry itself, that all lists exactly want, and that a path never
// recorded is not answered.
func sameRead(t *testing.T, what string, r *manifestReader, want []*tree.Entry) {
	t.Helper()
	same := func(got, w *tree.Entry) bool {
		return got.Path == w.Path && got.Type == w.Type && got.Dev == w.Dev && got.Ino == w.Ino && got.Size == w.Size &&
			got.Mtime == w.Mtime && got.Ctime == w.Ctime && got.Hashed() == w.Hashed() && got.Hash == w.Hash &&
			got.Problem == w.Problem && got.Target == w.Target &&
			slices.EqualFunc(got.Xattrs, w.Xattrs, func(a, b tree.Xattr) bool { return a.Name == b.Name && bytes.Equal(a.Value, b.Value) })
	}
	// Looked up in a shuffled order: the reader keeps only a few blocks.
	order := rand.New(rand.NewPCG(1, uint64(len(want)))).Perm(len(want))
	for _, i := range order {
		w := want[i]
		got := r.lookup(w.Path)
		if got == nil {
			t.Fatalf("%s: %q missing from the reader", what, w.Path)
		}
		if !same(got, w) {
			t.Fatalf("%s: %q: reader gives %+v, manifest %+v", what, w.Path, got, w)
		}
	}
	for _, p := range []string{"no/such/path", "", "zzzz/after/everything"} {
		if got := r.lookup(p); got != nil {
			t.Fatalf("%s: a path never recorded (%q) is answered: %+v", what, p, got)
		}
	}
	i := 0
	for got, err := range r.all() {
		if err != nil {
			t.Fatalf("%s: all: %v", what, err)
		}
		if i >= len(want) || !same(got, want[i]) {
			t.Fatalf("%s: all gives %q at %d", what, got.Path, i)
		}
		i++
	}
	if i != len(want) {
		t.Fatalf("%s: all gave %d entries, want %d", what, i, len(want))
	}
}

// TestHashCacheMatchesManifest: the reader a full walk looks the hash
// cache up in, a block at a time with the log replayed, answers what
// LoadManifest's entries hold, through scoped updates that stay in the log
// and across compactions; a damaged block answers nothing.
func TestHashCacheMatchesManifest(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	path := filepath.Join(t.TempDir(), "cache")
	if _, err := openManifestReader(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing cache: %v, want os.ErrNotExist", err)
	}
	model := genTree(r, 3000, "base")
	for i, e := range model {
		switch i % 97 {
		case 1:
			e.Xattrs = []tree.Xattr{{Name: "user.a", Value: []byte(fmt.Sprint(i))}}
		case 2:
			e.Problem = "unreadable"
		}
	}
	if err := (&Manifest{Entries: model}).Save(path); err != nil {
		t.Fatal(err)
	}
	c, err := openManifestReader(path)
	if err != nil {
		t.Fatal(err)
	}
	sameRead(t, "base", c, model)
	c.Close()
	for i := range 12 {
		sc := randomScopes(r, model)
		repl := rewriteCovered(r, model, sc, i)
		if err := UpdateManifest(path, sc, repl); err != nil {
			t.Fatal(err)
		}
		m, err := LoadManifest(path)
		if err != nil {
			t.Fatal(err)
		}
		model = m.Entries
		c, err := openManifestReader(path)
		if err != nil {
			t.Fatal(err)
		}
		sameRead(t, fmt.Sprintf("update %d", i), c, model)
		c.Close()
	}
	if _, err := os.Stat(LogPath(path)); err != nil {
		t.Fatalf("the updates left no log to replay: %v", err)
	}

	// A damaged block: the reader opens (the index is intact), answers
	// nothing from that block, and all stops with the error.
	if err := (&Manifest{Entries: model}).Save(path); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	bad := slices.Clone(good)
	bad[manifestHeader+10] ^= 0x10
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = openManifestReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.lookup(model[1].Path); got != nil {
		t.Errorf("damaged block answered %q", got.Path)
	}
	if got := c.lookup(model[len(model)-1].Path); got == nil {
		t.Errorf("an intact block did not answer %q", model[len(model)-1].Path)
	}
	for _, err := range c.all() {
		if err != nil {
			if !errors.Is(err, ErrCorruptManifest) {
				t.Errorf("all: %v, want ErrCorruptManifest", err)
			}
			return
		}
	}
	t.Error("all went through a damaged block without an error")
}

// TestPackedBlocksMatchDecoded: a block the reader keeps packed gives, for
// every entry, every field decodeBlock gives (hard links, device numbers,
// targets, xattrs, problems included); its searches and the walk's cursor
// find what the decoded entries hold, and nothing for paths never
// recorded.
func TestPackedBlocksMatchDecoded(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	model := genTree(r, 3000, "packed")
	// A directory whose name sorts below Root's ".".
	model = append(model, &tree.Entry{Path: "+d", Type: tree.TypeDir}, &tree.Entry{Path: "+d/f", Type: tree.TypeRegular}, &tree.Entry{Path: "+d/g", Type: tree.TypeSymlink, Target: "f"})
	sortEntries(model)
	leader := ""
	for i, e := range model {
		e.Mode, e.UID, e.GID, e.Nlink = uint32(i%0o7777), uint32(i), uint32(i*7), uint32(1+i%3)
		switch {
		case i%89 == 3:
			e.Xattrs = []tree.Xattr{{Name: "user.a", Value: []byte(fmt.Sprint(i))}, {Name: "user.b", Value: nil}}
		case i%89 == 4:
			e.Problem = "unreadable"
		case i%89 == 5 && e.Type == tree.TypeRegular && leader != "":
			e.LinkTo = leader
		case i%89 == 6 && e.Type == tree.TypeRegular:
			e.Type, e.Size, e.Flags, e.Hash, e.Rdev = tree.TypeCharDev, 0, 0, 0, uint64(i)<<8|3
		case e.Type == tree.TypeRegular:
			leader = e.Path
		}
	}
	path := filepath.Join(t.TempDir(), "cache")
	if err := (&Manifest{Entries: model}).Save(path); err != nil {
		t.Fatal(err)
	}
	c, err := openManifestReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.bi.blocks.len() < 5 {
		t.Fatalf("%d blocks: too few to test", c.bi.blocks.len())
	}
	// Paths to search every block for: every recorded path and, around
	// each, paths never recorded that sort just before or after it, its
	// parent's prefixes, and a sibling with a byte below '/'.
	probes := []string{tree.Root, "", "\x01", "~"}
	for _, e := range model {
		p := e.Path
		probes = append(probes, p, p+"\x01", p+"/", p+"/a", p+"!", p[:len(p)/2])
		if d := tree.Dir(p); d != "" && d != tree.Root {
			probes = append(probes, d+"!"+tree.Base(p), d+"+", d+"0")
		}
	}
	var got tree.Entry
	seen := 0
	for i, b := range c.bi.blocks.all(0) {
		es, err := decodeBlock(c.bf, b)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := decodePacked(c.bf, b)
		if err != nil {
			t.Fatal(err)
		}
		if pb.len() != len(es) {
			t.Fatalf("block %d: %d packed entries, %d decoded", i, pb.len(), len(es))
		}
		for k, w := range es {
			pb.entry(k, w.Path, &got)
			if !reflect.DeepEqual(&got, w) {
				t.Fatalf("block %d entry %d: packed %+v, decoded %+v", i, k, got, *w)
			}
			if j, ok := pb.search(w.Path); !ok || j != k {
				t.Fatalf("block %d: search %q gives %d %v, want %d", i, w.Path, j, ok, k)
			}
			// A path just after this one, never recorded: where it goes.
			miss := w.Path + "\x01"
			want, _ := searchEntries(es, miss)
			if j, ok := pb.search(miss); ok || j != want {
				t.Fatalf("block %d: search %q gives %d %v, want %d false", i, miss, j, ok, want)
			}
			if w.LinkTo != "" || w.Rdev != 0 || len(w.Xattrs) > 0 || w.Problem != "" {
				seen++
			}
		}
		for _, p := range probes {
			wj, wok := searchEntries(es, p)
			if j, ok := pb.search(p); j != wj || ok != wok {
				t.Fatalf("block %d: search %q gives %d %v, want %d %v", i, p, j, ok, wj, wok)
			}
		}
	}
	if seen < 20 {
		t.Fatalf("only %d entries with rare fields", seen)
	}

	// The cursor, asked about each directory's children in order (and a
	// name never recorded between them), answers what lookup does: a
	// cursor a directory, and one cursor for all of them, as a walk's
	// worker asks it (its paths go back from one directory to the next).
	shared, _ := c.cursor()
	for k := range 2 * len(model) {
		d := model[k%len(model)]
		if d.Type != tree.TypeDir {
			continue
		}
		look := shared
		if k < len(model) {
			look, _ = c.cursor()
		}
		for _, e := range model {
			if tree.Dir(e.Path) != d.Path || e.Path == tree.Root {
				continue
			}
			if x := look(e.Path + "\x01"); x != nil {
				t.Fatalf("cursor answers %q, never recorded", e.Path+"\x01")
			}
			x := look(e.Path)
			if x == nil || !reflect.DeepEqual(x, c.lookup(e.Path)) {
				t.Fatalf("cursor in %q: %q gives %+v, lookup %+v", d.Path, e.Path, x, c.lookup(e.Path))
			}
		}
	}
}
