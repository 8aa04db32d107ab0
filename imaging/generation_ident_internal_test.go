package imaging

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestUnchangedRunAfterResaveSkipsCompare: a run that saves the manifest
// without changing the tree (a file on the image chmod'ed to the mode it
// had: its ctime moves, so it is re-read) records no generation, and the
// runs after it that change nothing must not compare the live manifest
// with the newest generation's again, decoding both whole (issue #14).
// On the code before, every such run decoded 4 manifests' worth: the
// walk's lookups, the hash cache's, then both manifests for liveDiffers.
func TestUnchangedRunAfterResaveSkipsCompare(t *testing.T) {
	base := t.TempDir()
	src, dst := filepath.Join(base, "golden"), filepath.Join(base, "image")
	for d := range 10 {
		dir := filepath.Join(src, fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 100 {
			writeFile(t, filepath.Join(dir, fmt.Sprintf("f%03d", f)), fmt.Sprintf("file %d/%d\n", d, f))
		}
	}
	opts := Options{StateDir: filepath.Join(base, "state"), Generations: &GenerationPolicy{Keep: 3, Source: "test"}}
	sync := func(what string) (gen int64, decoded int64) {
		t.Helper()
		s, err := OpenDirSource(src, DirSourceOptions{CacheFile: filepath.Join(base, "hashcache")})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		before := decodedEntries.Load()
		res, err := Sync(context.Background(), s, dst, opts)
		if err != nil {
			t.Fatalf("%s: sync: %v", what, err)
		}
		return res.Generation, decodedEntries.Load() - before
	}
	if g, _ := sync("full"); g == 0 {
		t.Fatal("the first sync recorded no generation")
	}
	m, err := LoadManifest(State(opts.StateDir).Manifest)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(m.Entries))
	sync("the golden node's hash cache made")
	if err := os.Chmod(filepath.Join(dst, "d03", "f007"), 0o644); err != nil {
		t.Fatal(err)
	}
	if g, _ := sync("after the chmod"); g != 0 {
		t.Fatalf("a run that changed nothing recorded generation %d", g)
	}
	for i := range 2 {
		g, decoded := sync(fmt.Sprintf("no change %d", i+1))
		if g != 0 {
			t.Fatalf("no change %d: recorded generation %d", i+1, g)
		}
		// The destination walk's lookups decode the manifest once, and
		// the source's lookups its hash cache (a manifest of the same
		// tree) once.
		if decoded > 2*n+n/2 {
			t.Errorf("no change %d: %d manifest entries decoded for a %d-entry image: the live manifest was compared with the generation's again", i+1, decoded, n)
		}
	}
	gs, err := ListGenerations(opts.StateDir)
	if err != nil || len(gs) != 1 {
		t.Fatalf("generations: %v, %v", gs, err)
	}
	if gs[0].ManifestIdent != manifestIdent(State(opts.StateDir).Manifest) {
		t.Errorf("generation %d: ident %q, live manifest %q", gs[0].ID, gs[0].ManifestIdent, manifestIdent(State(opts.StateDir).Manifest))
	}
}
