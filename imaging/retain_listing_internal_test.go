package imaging

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// TestRetentionListedOnlyWhenDue: a run lists its retention dir only when
// a retained link in it is due for the purge, or when it cannot know what
// the dir holds: the dir holds every file replaced during the grace period
// (24 h by default, thousands of links on a replica updated every few
// minutes), and listing it every run was a cost per run that grew with
// that history. A run leaves a note (the oldest link's time, and the run
// whose generation's harvest looked at every link) that the next one
// removes before it links anything; without the note (a killed run), with
// another grace period, or with a link due, the run lists the dir once
// (the purge), and the harvest works from that listing. Before, every run
// listed it (and before that, twice). The replaced content is still kept
// for the generations.
func TestRetentionListedOnlyWhenDue(t *testing.T) {
	base := t.TempDir()
	src, dst := filepath.Join(base, "golden"), filepath.Join(base, "image")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for f := range 50 {
		writeFile(t, filepath.Join(src, fmt.Sprintf("f%02d", f)), fmt.Sprintf("old %d\n", f))
	}
	opts := Options{StateDir: filepath.Join(base, "state"), Generations: &GenerationPolicy{Keep: 5, Source: "test"}}
	sp := State(opts.StateDir)
	sync := func() int64 {
		t.Helper()
		s, err := OpenDirSource(src, DirSourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		before := retentionListings.Load()
		res, err := Sync(context.Background(), s, dst, opts)
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		if res.Generation == 0 {
			t.Fatal("no generation recorded")
		}
		return retentionListings.Load() - before
	}
	kept := func(what string, round int) {
		t.Helper()
		for f := range 5 {
			old := fmt.Sprintf("old %d\n", round*5+f)
			key := contentKey{xxhash.Sum64String(old), int64(len(old))}
			if _, err := os.Stat(filepath.Join(objectsDir(opts.StateDir), key.name())); err != nil {
				t.Errorf("%s: the replaced content of f%02d is not kept: %v", what, round*5+f, err)
			}
		}
	}
	change := func(round int) {
		for f := range 5 {
			writeFile(t, filepath.Join(src, fmt.Sprintf("f%02d", round*5+f)), fmt.Sprintf("new %d %d\n", round, f))
		}
	}
	if n := sync(); n != 1 {
		t.Errorf("first run: listed its retention dir %d times, want 1 (no note yet)", n)
	}
	note := sp.Retention + ".note"
	for round := range 3 {
		change(round)
		if n := sync(); n != 0 {
			t.Errorf("round %d: the run listed its retention dir %d times, want 0 (nothing due)", round, n)
		}
		kept(fmt.Sprintf("round %d", round), round)
	}

	// A killed run leaves no note: the next run lists.
	if err := os.Remove(note); err != nil {
		t.Fatalf("no note after a run: %v", err)
	}
	change(3)
	if n := sync(); n != 1 {
		t.Errorf("after a run that left no note: %d listings, want 1", n)
	}
	kept("after a run that left no note", 3)

	// The note names another run's harvest than the newest generation's:
	// the purge is skipped (nothing due), the harvest lists.
	rewrite := func(edit func(n *retentionNote)) {
		t.Helper()
		n, ok := readRetentionNote(note)
		if !ok {
			t.Fatal("no note after a run")
		}
		edit(&n)
		data, _ := json.Marshal(n)
		if err := os.WriteFile(note, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rewrite(func(n *retentionNote) { n.Seen = "1.deadbeef" })
	change(4)
	if n := sync(); n != 1 {
		t.Errorf("note of another run's harvest: %d listings, want 1 (the harvest's)", n)
	}
	kept("note of another run's harvest", 4)

	// Another grace period, or a link due: the purge lists, and removes
	// the link that is due.
	rewrite(func(n *retentionNote) { n.Grace++ })
	change(5)
	if n := sync(); n != 1 {
		t.Errorf("note of another grace period: %d listings, want 1", n)
	}
	due := filepath.Join(sp.Retention, "1000.cafe.1")
	writeFile(t, due, "due\n")
	rewrite(func(n *retentionNote) { n.Oldest = 1000 })
	change(6)
	if n := sync(); n != 1 {
		t.Errorf("a link due: %d listings, want 1", n)
	}
	if _, err := os.Lstat(due); err == nil {
		t.Error("the link due was not purged")
	}
	kept("after the purge", 6)
	change(7)
	if n := sync(); n != 0 {
		t.Errorf("after the purge: %d listings, want 0", n)
	}
	// A note that does not parse is no note.
	os.WriteFile(note, []byte("{"), 0o600)
	change(8)
	if n := sync(); n != 1 {
		t.Errorf("a note that does not parse: %d listings, want 1", n)
	}
}
