package imaging

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// sameCached checks that the compact cache answers, for every entry of
// want, what Unchanged and the walk's reuse read of the entry itself.
func sameCached(t *testing.T, what string, c *hashCache, want []*tree.Entry) {
	t.Helper()
	if c.n != len(want) {
		t.Fatalf("%s: cache counted %d entries, want %d", what, c.n, len(want))
	}
	for _, w := range want {
		got := c.lookup(w.Path)
		if w.Problem != "" {
			if got != nil {
				t.Fatalf("%s: %q has a problem but the cache answers it", what, w.Path)
			}
			continue
		}
		if got == nil {
			t.Fatalf("%s: %q missing from the cache", what, w.Path)
		}
		if got.Path != w.Path || got.Type != w.Type || got.Dev != w.Dev || got.Ino != w.Ino || got.Size != w.Size ||
			got.Mtime != w.Mtime || got.Ctime != w.Ctime || got.Hashed() != w.Hashed() || got.Hash != w.Hash ||
			got.Target != w.Target || !slices.EqualFunc(got.Xattrs, w.Xattrs, func(a, b tree.Xattr) bool { return a.Name == b.Name && bytes.Equal(a.Value, b.Value) }) {
			t.Fatalf("%s: %q: cache gives %+v, manifest %+v", what, w.Path, got, w)
		}
		if !Unchanged(got, w) {
			t.Fatalf("%s: %q: the cached entry is not Unchanged against the manifest's", what, w.Path)
		}
	}
	if got := c.lookup("no/such/path"); got != nil {
		t.Fatalf("%s: a path never recorded is answered: %+v", what, got)
	}
}

// TestHashCacheMatchesManifest: the compact cache a full walk uses, built
// block by block with the log replayed, answers what LoadManifest's
// entries hold, through scoped updates that stay in the log and across
// compactions.
func TestHashCacheMatchesManifest(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	path := filepath.Join(t.TempDir(), "cache")
	if _, err := loadHashCache(path); !errors.Is(err, os.ErrNotExist) {
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
	c, err := loadHashCache(path)
	if err != nil {
		t.Fatal(err)
	}
	sameCached(t, "base", c, model)
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
		c, err := loadHashCache(path)
		if err != nil {
			t.Fatal(err)
		}
		sameCached(t, fmt.Sprintf("update %d", i), c, model)
	}
	if _, err := os.Stat(LogPath(path)); err != nil {
		t.Fatalf("the updates left no log to replay: %v", err)
	}

	good, _ := os.ReadFile(path)
	bad := slices.Clone(good)
	bad[len(bad)/2] ^= 0x10
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadHashCache(path); !errors.Is(err, ErrCorruptManifest) {
		t.Fatalf("damaged base: %v, want ErrCorruptManifest", err)
	}
}

// TestHashCacheCollision: two paths whose keys collide are both left out
// (a re-read), never answered with each other's record.
func TestHashCacheCollision(t *testing.T) {
	c := &hashCache{}
	for _, p := range []string{"a", "b", "c"} {
		e := &tree.Entry{Path: p, Type: tree.TypeRegular, Ino: uint64(len(c.recs) + 1)}
		e.SetHash(uint64(len(c.recs)))
		c.add(e)
	}
	c.recs[1].key = c.recs[0].key // "b" collides with "a"
	c.finish()
	if e := c.lookup("a"); e != nil {
		t.Errorf("colliding path answered: %+v", e)
	}
	if e := c.lookup("c"); e == nil || e.Ino != 3 || e.Hash != 2 {
		t.Errorf("c: %+v, want its own record", e)
	}
	if len(c.recs) != 1 {
		t.Errorf("%d records kept, want 1", len(c.recs))
	}
}
