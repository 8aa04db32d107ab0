package imaging

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestScopedUpdateWorkFollowsChange checks that a scoped update (what a
// replica's receiver runs with the primary's change set, and a push with
// the agent's journal) decodes manifest entries in proportion to the
// change, not to the image: the same change on an image ten times bigger
// decodes at most twice as many. Before, recording the generation read the
// whole manifest (its content keys and count), and so did the harvest of
// retained files whenever content came back that had been replaced before
// (a change forth and back), and the harvest after a run that deleted an
// empty file (no content to keep, but it was looked up in the newest
// generation's whole manifest). Counted: entries decoded from manifest blocks
// and log records, by every reader (the keys of kept generations that the
// prune reads, 16 bytes a file without decoding, are not counted).
//
// It also checks that each generation recorded from a run's change lists
// the same content keys and entry count as a read of its manifest would.
func TestScopedUpdateWorkFollowsChange(t *testing.T) {
	small := scopedUpdateDecoded(t, 10)
	big := scopedUpdateDecoded(t, 100)
	t.Logf("entries decoded by one scoped update: %d (1,000 files), %d (10,000 files)", small, big)
	if big > 2*small {
		t.Errorf("one scoped update decoded %d manifest entries on a 10,000-file image and %d on a 1,000-file one: the work grows with the image, not the change", big, small)
	}
}

// scopedUpdateDecoded makes an image of dirs directories of 100 files,
// applies a small change forth and back with scoped syncs, recording
// generations, and returns the manifest entries the fourth update decoded.
func scopedUpdateDecoded(t *testing.T, dirs int) int64 {
	t.Helper()
	base := t.TempDir()
	src, dst := filepath.Join(base, "golden"), filepath.Join(base, "image")
	for d := range dirs {
		dir := filepath.Join(src, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), fmt.Appendf(nil, "file %d/%d\n", d, f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A hard-link group the changes do not touch.
	if err := os.Link(filepath.Join(src, "d000", "f000"), filepath.Join(src, "d000", "link")); err != nil {
		t.Fatal(err)
	}
	opts := Options{StateDir: filepath.Join(base, "state"), Generations: &GenerationPolicy{Keep: 3, Source: "test"}}
	sync := func(scopes []tree.Scope) (decoded int64) {
		t.Helper()
		s, err := OpenDirSource(src, DirSourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		o := opts
		o.Scopes = scopes
		before := decodedEntries.Load()
		res, err := Sync(context.Background(), s, dst, o)
		decoded = decodedEntries.Load() - before
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		if res.Generation == 0 {
			t.Fatal("sync recorded no generation")
		}
		checkGenerationKeys(t, opts.StateDir, res.Generation)
		return decoded
	}
	sync(nil)

	// The change: three files rewritten, three added, two deleted, in
	// two directories; back restores the files as they were (content
	// that comes back).
	changed := []string{"d001/f001", "d001/f002", "d001/f003", "d001/new1", "d001/new2", "d001/new3", "d002/f010", "d002/f011"}
	scopes := []tree.Scope{{Path: "d001"}, {Path: "d002"}, {Path: "d001/empty"}}
	for _, p := range changed {
		scopes = append(scopes, tree.Scope{Path: p})
	}
	forth := func(link bool) {
		for _, p := range changed[:3] {
			writeFile(t, filepath.Join(src, p), "rewritten "+p)
		}
		for _, p := range changed[3:6] {
			writeFile(t, filepath.Join(src, p), "new "+p)
		}
		writeFile(t, filepath.Join(src, "d001/empty"), "") // (back deletes it: an empty file needs no kept content)
		for _, p := range changed[6:] {
			if err := os.Remove(filepath.Join(src, p)); err != nil {
				t.Fatal(err)
			}
		}
		if link {
			if err := os.Link(filepath.Join(src, "d001", "new1"), filepath.Join(src, "d001", "new1-link")); err != nil {
				t.Fatal(err)
			}
		}
	}
	back := func() {
		for _, p := range []string{"d001/f001", "d001/f002", "d001/f003", "d002/f010", "d002/f011"} {
			var d, f int
			fmt.Sscanf(p, "d%03d/f%03d", &d, &f)
			writeFile(t, filepath.Join(src, p), fmt.Sprintf("file %d/%d\n", d, f))
		}
		for _, p := range slices.Concat(changed[3:6], []string{"d001/new1-link", "d001/empty"}) {
			if err := os.Remove(filepath.Join(src, p)); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	}
	var decoded int64
	for round := range 6 {
		if round%2 == 0 {
			forth(round == 4) // (round 4 adds a hard link: the keys are read from the manifest)
		} else {
			back()
		}
		sc := scopes
		if round >= 4 {
			sc = append(slices.Clone(scopes), tree.Scope{Path: "d001/new1-link"})
		}
		if n := sync(sc); round == 3 {
			decoded = n
		}
	}
	return decoded
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkGenerationKeys compares generation id's keys and entry count with
// those read from its manifest.
func checkGenerationKeys(t *testing.T, stateDir string, id int64) {
	t.Helper()
	g, err := GenerationInfo(stateDir, id)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []contentKey
	if err := eachKey(stateDir, id, func(k contentKey) { got = append(got, k) }); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(t.TempDir(), "keys")
	n, err := keysFromManifest(filepath.Join(genDir(stateDir, id), "manifest"), full)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+16 <= len(f); i += 16 {
		want = append(want, contentKey{leUint64(f[i:]), int64(leUint64(f[i+8:]))})
	}
	less := func(a, b contentKey) int {
		if a.hash != b.hash {
			return cmpU(a.hash, b.hash)
		}
		return int(a.size - b.size)
	}
	slices.SortFunc(got, less)
	slices.SortFunc(want, less)
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(contentKey{})); diff != "" {
		t.Errorf("generation %d: content keys differ from its manifest's (-want +got):\n%s", id, diff)
	}
	if g.Entries != n {
		t.Errorf("generation %d: %d entries recorded, its manifest holds %d", id, g.Entries, n)
	}
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func cmpU(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}
