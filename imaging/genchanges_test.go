package imaging_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/treetest"
)

// pushGenerations syncs the image dst (state dir state) into replica the
// way a replica fan-out does: a DirSource of the image answering from its
// generations, with the image's manifest as a read-only hash cache, into
// an incremental sync that keeps the token in rstate.
func pushGenerations(t *testing.T, dst, state, replica, rstate string) *imaging.Result {
	t.Helper()
	return pushSharing(t, dst, state, replica, rstate, nil)
}

// pushSharing is pushGenerations with the cache's scoped loads shared
// through loads (nil: not shared), as the replicas of one run are.
func pushSharing(t *testing.T, dst, state, replica, rstate string, loads *imaging.CacheLoads) *imaging.Result {
	t.Helper()
	s, err := imaging.OpenDirSource(dst, imaging.DirSourceOptions{
		Changes:   imaging.GenerationChanges{StateDir: state},
		CacheFile: imaging.State(state).Manifest, ReadOnlyCache: true, CacheLoads: loads,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := imaging.Sync(context.Background(), s, replica, imaging.Options{StateDir: rstate, MaxDelete: -1, Incremental: true})
	if err != nil {
		t.Fatalf("push to the replica: %v", err)
	}
	return res
}

// TestGenerationChangesDriveAReplica: after each pull of the yum-like
// steps, the replica gets only what changed between the generation it
// holds and the new one, and ends exactly equal to the image; the image's
// manifest is never written by the push.
func TestGenerationChangesDriveAReplica(t *testing.T) {
	treetest.TrackFDs(t)
	src, dst := newDirs(t)
	base := filepath.Dir(dst)
	state, replica, rstate := filepath.Join(base, "state"), filepath.Join(base, "replica"), filepath.Join(base, "rstate")
	treetest.MakeTricky(t, src, treetest.TrickyOptions{NoLongPath: true})
	for i, st := range yumSteps {
		st.do(t, src)
		res := syncDirs(t, src, dst, genOpts(state))
		manifest := imaging.State(state).Manifest
		before, err := os.Stat(manifest)
		must(t, err)

		pr := pushGenerations(t, dst, state, replica, rstate)
		treetest.Equal(t, treetest.Scan(t, dst), treetest.Scan(t, replica), exact)

		after, err := os.Stat(manifest)
		must(t, err)
		if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
			t.Errorf("step %q: the push wrote the image's manifest", st.name)
		}
		gen, err := imaging.GenerationInfo(state, res.Generation)
		must(t, err)
		if pr.Token != imaging.GenerationToken(gen) {
			t.Errorf("step %q: replica token %q, want %q", st.name, pr.Token, imaging.GenerationToken(gen))
		}
		m, err := imaging.LoadManifest(manifest)
		must(t, err)
		if i == 0 {
			if pr.Entries != len(m.Entries) {
				t.Errorf("first push listed %d entries, want the whole image's %d", pr.Entries, len(m.Entries))
			}
			continue
		}
		// Scoped: the root, the changed paths and their parents.
		if pr.Entries >= len(m.Entries)/2 {
			t.Errorf("step %q: push listed %d of the image's %d entries: not driven by the generations", st.name, pr.Entries, len(m.Entries))
		}
	}
}

// TestReplicasShareTheScopedCacheLoad: the replicas of one run, sent the
// same change set, load the image's manifest where it changed once, not
// once a replica (the primary's per-replica work), and each ends equal
// to the image. One CacheLoads serves every step: the manifest a new pull
// wrote is loaded afresh (one load per scoped step, none for the first,
// full, push). Without the sharing: one load per replica and step.
func TestReplicasShareTheScopedCacheLoad(t *testing.T) {
	treetest.TrackFDs(t)
	src, dst := newDirs(t)
	base := filepath.Dir(dst)
	state := filepath.Join(base, "state")
	treetest.MakeTricky(t, src, treetest.TrickyOptions{NoLongPath: true})
	const replicas = 3
	loads := &imaging.CacheLoads{}
	scoped := 0
	for i, st := range yumSteps {
		st.do(t, src)
		syncDirs(t, src, dst, genOpts(state))
		for r := range replicas {
			replica := filepath.Join(base, fmt.Sprintf("replica%d", r))
			rstate := filepath.Join(base, fmt.Sprintf("rstate%d", r))
			pr := pushSharing(t, dst, state, replica, rstate, loads)
			treetest.Equal(t, treetest.Scan(t, dst), treetest.Scan(t, replica), exact)
			if i > 0 && r == 0 {
				m, err := imaging.LoadManifest(imaging.State(state).Manifest)
				must(t, err)
				if pr.Entries >= len(m.Entries)/2 {
					t.Fatalf("step %q: push listed %d of the image's %d entries: not scoped", st.name, pr.Entries, len(m.Entries))
				}
				scoped++
			}
		}
		if got := loads.Made(); got != int64(scoped) {
			t.Errorf("step %q: %d scoped loads of the image's manifest after %d scoped steps of %d replicas, want one a step", st.name, got, scoped, replicas)
		}
	}
	if scoped == 0 {
		t.Fatal("no scoped push: the test checks nothing")
	}
}

func TestGenerationChangesFallBackToFull(t *testing.T) {
	dst, state, _, ids := pullGenerations(t)
	ctx := context.Background()
	c := imaging.GenerationChanges{StateDir: state}
	cur, err := c.Current()
	must(t, err)
	if cur == nil || cur.ID != ids[len(ids)-1] {
		t.Fatalf("Current = %+v, want generation %d", cur, ids[len(ids)-1])
	}
	first, err := imaging.GenerationInfo(state, ids[0])
	must(t, err)
	forged := *first
	forged.Time = forged.Time.Add(1)
	for _, tc := range []struct {
		name  string
		since string
		full  bool
	}{
		{name: "no token", since: "", full: true},
		{name: "a watcher's token", since: "j:42:7", full: true},
		{name: "another state dir's generation 1", since: imaging.GenerationToken(&forged), full: true},
		{name: "a generation never recorded", since: "gen-999-1", full: true},
		{name: "the first generation", since: imaging.GenerationToken(first), full: false},
		{name: "the current generation", since: imaging.GenerationToken(cur), full: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scopes, tok, full, err := c.Changes(ctx, tc.since)
			must(t, err)
			if full != tc.full {
				t.Errorf("full = %v, want %v", full, tc.full)
			}
			if tok != imaging.GenerationToken(cur) {
				t.Errorf("token %q, want the current generation's", tok)
			}
			if tc.since == imaging.GenerationToken(cur) && len(scopes) != 0 {
				t.Errorf("no change since the current generation, got scopes %v", scopes)
			}
		})
	}
	// A shared cache answers the same, once per pair of generations.
	want, _, _, err := c.Changes(ctx, imaging.GenerationToken(first))
	must(t, err)
	cached := imaging.GenerationChanges{StateDir: state, Cache: &imaging.ChangeCache{}}
	for range 2 {
		got, _, full, err := cached.Changes(ctx, imaging.GenerationToken(first))
		must(t, err)
		if full || !slices.Equal(got, want) {
			t.Errorf("cached change set: full %v, %d scopes, want %d", full, len(got), len(want))
		}
	}
	// The paths between the first and the last generation are what a
	// plan between their manifests touches.
	paths, err := imaging.ChangedPaths(ctx, state, ids[0], ids[len(ids)-1])
	must(t, err)
	items, err := imaging.DiffGenerations(state, ids[0], ids[len(ids)-1])
	must(t, err)
	for _, it := range items {
		if p := strings.TrimSuffix(it.Path, "/"); !slices.Contains(paths, p) {
			t.Errorf("DiffGenerations changes %s, ChangedPaths lacks it", it.Path)
		}
	}
	if !slices.IsSortedFunc(paths, tree.Compare) {
		t.Errorf("ChangedPaths not in tree order")
	}
	// The image moves on without a generation (a run that failed after
	// saving its manifest, or a hand edit the manifest learned): nothing
	// is vouched for, and no token is handed out.
	must(t, os.WriteFile(filepath.Join(dst, "hand-edit"), []byte("x"), 0o644))
	s, err := imaging.OpenDirSource(dst, imaging.DirSourceOptions{})
	must(t, err)
	_, err = imaging.Sync(ctx, s, filepath.Join(t.TempDir(), "copy"), imaging.Options{StateDir: filepath.Join(t.TempDir(), "st")})
	s.Close()
	must(t, err)
	must(t, imaging.UpdateManifest(imaging.State(state).Manifest, []tree.Scope{{Path: "hand-edit"}}, []*tree.Entry{{Path: "hand-edit", Type: tree.TypeRegular, Size: 1}}))
	_, tok, full, err := c.Changes(ctx, imaging.GenerationToken(first))
	must(t, err)
	if !full || tok != "" {
		t.Errorf("image off its generations: full %v token %q, want a full scan and no token", full, tok)
	}
}

// TestNoChangePushLeavesTheManifest: a replica update that brings no
// change (the primary's newest generation is the one the replica holds:
// a sync that found nothing new) leaves the replica's manifest files as
// they were and records no generation. Saving the run's scopes again
// appended a record to the manifest's log at every such update, and the
// changed files made the generation check decode the live manifest and
// the newest generation's whole (issue 17).
func TestNoChangePushLeavesTheManifest(t *testing.T) {
	treetest.TrackFDs(t)
	src, dst := newDirs(t)
	base := filepath.Dir(dst)
	state, replica, rstate := filepath.Join(base, "state"), filepath.Join(base, "replica"), filepath.Join(base, "rstate")
	treetest.MakeTricky(t, src, treetest.TrickyOptions{NoLongPath: true})
	push := func() *imaging.Result {
		t.Helper()
		s, err := imaging.OpenDirSource(dst, imaging.DirSourceOptions{
			Changes:   imaging.GenerationChanges{StateDir: state},
			CacheFile: imaging.State(state).Manifest, ReadOnlyCache: true,
		})
		must(t, err)
		defer s.Close()
		opts := genOpts(rstate)
		opts.Incremental = true
		res, err := imaging.Sync(context.Background(), s, replica, opts)
		if err != nil {
			t.Fatalf("push to the replica: %v", err)
		}
		treetest.Equal(t, treetest.Scan(t, dst), treetest.Scan(t, replica), exact)
		return res
	}
	files := func() string {
		t.Helper()
		var b strings.Builder
		m := imaging.State(rstate).Manifest
		for _, p := range []string{m, imaging.LogPath(m)} {
			fi, err := os.Stat(p)
			if err != nil {
				fmt.Fprintf(&b, "%s: none; ", filepath.Base(p))
				continue
			}
			fmt.Fprintf(&b, "%s: %d bytes, %v; ", filepath.Base(p), fi.Size(), fi.ModTime().UnixNano())
		}
		gens, err := imaging.ListGenerations(rstate)
		must(t, err)
		fmt.Fprintf(&b, "%d generations", len(gens))
		return b.String()
	}
	for _, st := range yumSteps[:2] {
		st.do(t, src)
		syncDirs(t, src, dst, genOpts(state))
		push()
	}
	if _, err := os.Stat(imaging.LogPath(imaging.State(rstate).Manifest)); err != nil {
		t.Fatalf("the scoped push left no manifest log: the test checks nothing (%v)", err)
	}
	before := files()
	for range 3 {
		if res := push(); res.Entries > 1 {
			t.Fatalf("a push with no change listed %d entries, want the root only", res.Entries)
		}
		if after := files(); after != before {
			t.Fatalf("a push with no change wrote the replica's state:\nbefore %s\nafter  %s", before, after)
		}
	}
	// A change after them still reaches the replica, scoped.
	yumSteps[2].do(t, src)
	syncDirs(t, src, dst, genOpts(state))
	if res := push(); res.Generation == 0 {
		t.Error("the push after the no-change ones recorded no generation on the replica")
	}
	if after := files(); after == before {
		t.Error("the push of a change left the replica's manifest as it was")
	}
}
