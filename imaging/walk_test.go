package imaging_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// sortTrapTree makes names whose byte order differs from tree.Compare
// order ('-' and '.' sort before '/' as bytes, after it in Compare), deep
// and wide directories, empty ones, and a hard-linked file with links in
// three directories.
func sortTrapTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, p := range []string{
		"a/x", "a-b/y", "a.b/z", "a/b/c/d/e/f", "ab/1", "b", "empty/", "z/y/x/",
		"usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu.conf", "usr/lib-extra/k",
		"\xc3\xa9t\xc3\xa9/f", "A/B", "0/1/2",
	} {
		full := filepath.Join(root, p)
		if p[len(p)-1] == '/' {
			mkdir(t, full)
			continue
		}
		mkdir(t, filepath.Dir(full))
		write(t, full, p)
	}
	for i := range 300 {
		write(t, filepath.Join(root, "a", "b", "wide-"+string(rune('a'+i%26))+string(rune('a'+i/26))), "w")
	}
	write(t, filepath.Join(root, "z", "hl"), "linked")
	for _, p := range []string{"a/hl", "a.b/hl"} {
		if err := os.Link(filepath.Join(root, "z", "hl"), filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func openRoot(t *testing.T, p string) *fsx.Root {
	t.Helper()
	r, err := fsx.OpenRoot(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// listPaths lists the tree with the standard library, sorted in Compare
// order: what a walk must hand out.
func listPaths(t *testing.T, root string) []string {
	t.Helper()
	var want []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			rel = tree.Root
		}
		want = append(want, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, tree.Compare)
	return want
}

// WalkEach hands out every path once, in Compare order, whatever the
// number of workers and however small the read-ahead window (a window of
// one entry makes the emitter wait on every directory), with hard links
// resolved to the first path in that order.
func TestWalkEachSortedOrder(t *testing.T) {
	root := sortTrapTree(t)
	want := listPaths(t, root)
	r := openRoot(t, root)
	for _, c := range []struct {
		name               string
		workers, readAhead int
	}{
		{name: "defaults"},
		{name: "one worker, window 1", workers: 1, readAhead: 1},
		{name: "three workers, window 1", workers: 3, readAhead: 1},
		{name: "many workers, window 7", workers: 16, readAhead: 7},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			links := map[string]string{}
			res, err := imaging.WalkEach(context.Background(), r, imaging.WalkOptions{Workers: c.workers, ReadAhead: c.readAhead, Hash: true},
				func(e *tree.Entry) error {
					got = append(got, e.Path)
					if e.LinkTo != "" {
						links[e.Path] = e.LinkTo
					}
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			if res.Listed != len(want) || res.Entries != nil {
				t.Errorf("Listed %d, Entries %d; want %d and none", res.Listed, len(res.Entries), len(want))
			}
			wantLinks := map[string]string{"a.b/hl": "a/hl", "z/hl": "a/hl"}
			if diff := cmp.Diff(wantLinks, links); diff != "" {
				t.Errorf("LinkTo (-want +got):\n%s", diff)
			}
		})
	}
}

// Walk, which collects WalkEach's entries, lists the same as before the
// walk streamed: every path, sorted, hard links resolved.
func TestWalkCollectsSorted(t *testing.T) {
	root := sortTrapTree(t)
	res, err := imaging.Walk(context.Background(), openRoot(t, root), imaging.WalkOptions{Workers: 2, ReadAhead: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range res.Entries {
		got = append(got, e.Path)
	}
	if diff := cmp.Diff(listPaths(t, root), got); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
}

// Scopes that overlap or come in any order are walked once each, in
// Compare order.
func TestWalkEachScopes(t *testing.T) {
	root := sortTrapTree(t)
	r := openRoot(t, root)
	scopes := []tree.Scope{
		{Path: "z", Tree: true}, {Path: "a/b/c", Tree: true}, {Path: "a"}, {Path: "a/b/c/d"}, {Path: tree.Root},
		{Path: "a-b"}, {Path: "missing", Tree: true}, {Path: "b/beneath-a-file"}, {Path: "z/y"},
	}
	var got []string
	if _, err := imaging.WalkEach(context.Background(), r, imaging.WalkOptions{Scopes: scopes, ReadAhead: 1},
		func(e *tree.Entry) error { got = append(got, e.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{tree.Root, "a", "a/b/c", "a/b/c/d", "a/b/c/d/e", "a/b/c/d/e/f", "a-b", "z", "z/hl", "z/y", "z/y/x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
}

// An error from fn stops the walk and comes back as is; so does a walk
// consumed through iter.Pull (fn runs on the caller's goroutine).
func TestWalkEachStops(t *testing.T) {
	root := sortTrapTree(t)
	r := openRoot(t, root)
	stop := errors.New("enough")
	n := 0
	_, err := imaging.WalkEach(context.Background(), r, imaging.WalkOptions{ReadAhead: 2}, func(*tree.Entry) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Fatalf("err %v after %d entries, want %v after 5", err, n, stop)
	}

	seq := func(yield func(*tree.Entry) bool) {
		imaging.WalkEach(context.Background(), r, imaging.WalkOptions{}, func(e *tree.Entry) error {
			if !yield(e) {
				return stop
			}
			return nil
		})
	}
	next, done := iter.Pull(iter.Seq[*tree.Entry](seq))
	defer done()
	var got []string
	for range 4 {
		e, ok := next()
		if !ok {
			t.Fatal("walk ended early")
		}
		got = append(got, e.Path)
	}
	if diff := cmp.Diff(listPaths(t, root)[:4], got); diff != "" {
		t.Errorf("first paths through iter.Pull (-want +got):\n%s", diff)
	}
}

// TestWalkTempsOneAtATime: the workers report engine temp files through
// Temps one call at a time, and every one is reported. Sync's and the
// snapshot builder's Temps append to a slice: called from several workers
// at once, an append was lost now and then, and a killed run's temp file
// stayed in the image after the complete re-run (the reliability suite's
// TestRollbackCrashConvergence, once in CI). The callback sleeps to widen
// the window; without the walk's lock, calls overlap at once.
func TestWalkTempsOneAtATime(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	var want []string
	for d := range 32 {
		for f := range 4 {
			p := filepath.Join(fmt.Sprintf("d%02d", d), fmt.Sprintf("%s%d", imaging.TempPrefix, f))
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, p), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			want = append(want, p)
		}
	}
	var (
		inside, most atomic.Int32
		got          []string
	)
	temps := func(p string) {
		n := inside.Add(1)
		if n > most.Load() {
			most.Store(n)
		}
		time.Sleep(200 * time.Microsecond)
		got = append(got, p)
		inside.Add(-1)
	}
	if _, err := imaging.Walk(context.Background(), openRoot(t, root), imaging.WalkOptions{Workers: 8, Temps: temps}); err != nil {
		t.Fatal(err)
	}
	if m := most.Load(); m > 1 {
		t.Errorf("Temps ran %d calls at once, want one at a time", m)
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("temps reported (-want +got):\n%s", diff)
	}
}
