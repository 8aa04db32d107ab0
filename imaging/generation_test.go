package imaging_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/treetest"
)

// put writes data to src/p the way a package manager does (temp file and
// rename, so the golden node's old inode goes), creating parents.
func put(t *testing.T, src, p string, data []byte, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(src, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := full + ".rpmnew"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, full); err != nil {
		t.Fatal(err)
	}
}

// putSparse writes a file of size bytes with data only at the start and at
// off (a kernel image with holes, as far as the test cares).
func putSparse(t *testing.T, src, p string, seed uint64, off, size int64) {
	t.Helper()
	full := filepath.Join(src, p)
	f, err := os.Create(full)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(randBytes(seed, 8192)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randBytes(seed+1, 4096), off); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// yumSteps are the golden node's changes between pulls: package installs
// and updates, a kernel update, removals, kind changes.
var yumSteps = []struct {
	name string
	do   func(t *testing.T, src string)
}{
	{"base", func(t *testing.T, src string) {
		put(t, src, "usr/bin/tool", randBytes(1, 200<<10), 0o755)
		put(t, src, "usr/bin/other", randBytes(2, 3000), 0o755)
		put(t, src, "etc/conf", []byte("v=1\n"), 0o644)
		must(t, os.MkdirAll(filepath.Join(src, "boot"), 0o755))
		putSparse(t, src, "boot/vmlinuz-1", 10, 6<<20, 8<<20)
		put(t, src, "boot/initrd-1", randBytes(11, 70<<10), 0o600)
		must(t, os.Symlink("vmlinuz-1", filepath.Join(src, "boot/vmlinuz")))
	}},
	{"install pkg-a, update tool", func(t *testing.T, src string) {
		put(t, src, "usr/bin/tool", randBytes(3, 210<<10), 0o755)
		put(t, src, "usr/lib/pkg-a/lib.so", randBytes(4, 64<<10), 0o755)
		must(t, os.Link(filepath.Join(src, "usr/lib/pkg-a/lib.so"), filepath.Join(src, "usr/lib/pkg-a/lib.so.1")))
		put(t, src, "usr/share/doc/pkg-a/README", []byte("pkg-a\n"), 0o644)
		must(t, unix.Lsetxattr(filepath.Join(src, "etc/conf"), "user.rpm", []byte("pkg-a"), 0))
		must(t, os.Remove(filepath.Join(src, "usr/bin/other")))
	}},
	{"kernel update", func(t *testing.T, src string) {
		putSparse(t, src, "boot/vmlinuz-2", 20, 5<<20, 9<<20)
		put(t, src, "boot/initrd-2", randBytes(21, 80<<10), 0o600)
		must(t, os.Remove(filepath.Join(src, "boot/vmlinuz-1")))
		must(t, os.Remove(filepath.Join(src, "boot/initrd-1")))
		must(t, os.Remove(filepath.Join(src, "boot/vmlinuz")))
		must(t, os.Symlink("vmlinuz-2", filepath.Join(src, "boot/vmlinuz")))
		must(t, os.Chmod(filepath.Join(src, "usr/bin/tool"), 0o700))
		// Rewritten in place on the golden node, same size.
		must(t, os.WriteFile(filepath.Join(src, treetest.PathRandom), randBytes(22, 1<<20), 0o644))
	}},
	{"remove pkg-a, break a link pair", func(t *testing.T, src string) {
		must(t, os.RemoveAll(filepath.Join(src, "usr/lib/pkg-a")))
		must(t, os.RemoveAll(filepath.Join(src, "usr/share/doc/pkg-a")))
		must(t, os.Remove(filepath.Join(src, treetest.PathLinkOf2b)))
		put(t, src, treetest.PathUserXattr, []byte("new content, xattrs gone"), 0o644)
		if os.Geteuid() == 0 {
			must(t, os.Lchown(filepath.Join(src, "etc/conf"), 4242, 4343))
		}
	}},
	{"kind changes, old content back", func(t *testing.T, src string) {
		must(t, os.Remove(filepath.Join(src, "etc/conf")))
		put(t, src, "etc/conf/main", []byte("v=2\n"), 0o644)
		must(t, os.RemoveAll(filepath.Join(src, "usr/share")))
		put(t, src, "usr/share", []byte("now a file\n"), 0o644)
		// The first tool's content comes back under another name.
		put(t, src, "usr/bin/other", randBytes(1, 200<<10), 0o755)
	}},
}

func genOpts(state string) imaging.Options {
	return imaging.Options{StateDir: state, MaxDelete: -1, Generations: &imaging.GenerationPolicy{Source: "golden"}}
}

func rbOpts(state string) imaging.RollbackOptions {
	return imaging.RollbackOptions{Options: genOpts(state)}
}

// pullGenerations builds the golden tree step by step, pulling after each
// step, and returns the tree as it was at each pull and the generations.
func pullGenerations(t *testing.T) (dst, state string, saved []treetest.Manifest, ids []int64) {
	src, dst := newDirs(t)
	state = filepath.Join(filepath.Dir(dst), "state")
	treetest.MakeTricky(t, src, treetest.TrickyOptions{NoLongPath: true})
	for _, st := range yumSteps {
		st.do(t, src)
		saved = append(saved, treetest.Scan(t, src))
		res := syncDirs(t, src, dst, genOpts(state))
		if res.Generation == 0 {
			t.Fatalf("pull after %q recorded no generation", st.name)
		}
		if n := len(ids); n > 0 && res.Generation <= ids[n-1] {
			t.Fatalf("generation ids not increasing: %d after %d", res.Generation, ids[n-1])
		}
		ids = append(ids, res.Generation)
		treetest.Equal(t, saved[len(saved)-1], treetest.Scan(t, dst), exact)
	}
	// No golden node from here on.
	must(t, os.RemoveAll(src))
	return dst, state, saved, ids
}

func TestRollbackToEachGenerationAndForward(t *testing.T) {
	treetest.TrackFDs(t)
	dst, state, saved, ids := pullGenerations(t)
	ctx := context.Background()

	gens, err := imaging.ListGenerations(state)
	must(t, err)
	if len(gens) != len(ids) {
		t.Fatalf("%d generations listed, want %d", len(gens), len(ids))
	}
	// Back to every earlier generation in a mixed order, then forward to
	// the newest again.
	last := len(ids) - 1
	for _, i := range []int{last - 1, 0, 2, 1, last} {
		var items []string
		dry := genOpts(state)
		dry.DryRun = true
		dry.Itemize = func(c imaging.Change) { items = append(items, c.String()) }
		before := treetest.Scan(t, dst)
		if _, err := imaging.Rollback(ctx, dst, ids[i], imaging.RollbackOptions{Options: dry}); err != nil {
			t.Fatalf("dry-run rollback to %d: %v", ids[i], err)
		}
		if len(items) == 0 {
			t.Errorf("dry-run rollback to %d itemized nothing", ids[i])
		}
		treetest.Equal(t, before, treetest.Scan(t, dst), treetest.DiffOptions{})

		res, err := imaging.Rollback(ctx, dst, ids[i], rbOpts(state))
		if err != nil {
			t.Fatalf("rollback to %d: %v (problems %v)", ids[i], err, problems(res))
		}
		treetest.Equal(t, saved[i], treetest.Scan(t, dst), exact)
		if res.Generation == 0 {
			t.Fatalf("rollback to %d recorded no generation", ids[i])
		}
		g, _, err := imaging.LoadGeneration(state, res.Generation)
		must(t, err)
		if g.RollbackOf != ids[i] || !strings.Contains(g.Source, "rollback") {
			t.Errorf("rollback generation %+v, want rollback_of %d", g, ids[i])
		}
	}
	// The rollback generations are restorable too: undo the last rollback
	// (the image is at the newest pull) by going to the one before it.
	gens, err = imaging.ListGenerations(state)
	must(t, err)
	prev := gens[len(gens)-2] // the rollback to ids[1]
	if _, err := imaging.Rollback(ctx, dst, prev.ID, rbOpts(state)); err != nil {
		t.Fatal(err)
	}
	treetest.Equal(t, saved[1], treetest.Scan(t, dst), exact)
}

func TestRollbackRefusesIncompleteGeneration(t *testing.T) {
	dst, state, _, ids := pullGenerations(t)
	objs := filepath.Join(imaging.GenerationsDir(state), "objects")
	ents, err := os.ReadDir(objs)
	must(t, err)
	if len(ents) == 0 {
		t.Fatal("no content kept after five pulls with replacements")
	}
	for _, e := range ents {
		must(t, os.Remove(filepath.Join(objs, e.Name())))
	}
	before := treetest.Scan(t, dst)
	_, err = imaging.Rollback(context.Background(), dst, ids[0], rbOpts(state))
	if !errors.Is(err, imaging.ErrIncomplete) {
		t.Fatalf("rollback without kept content: err %v, want ErrIncomplete", err)
	}
	for _, p := range []string{"usr/bin/other", "boot/vmlinuz-1"} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not name %s: %v", p, err)
		}
	}
	treetest.Equal(t, before, treetest.Scan(t, dst), treetest.DiffOptions{})
	missing, err := imaging.MissingContent(state, dst, ids[0])
	must(t, err)
	if len(missing) == 0 {
		t.Error("MissingContent found nothing missing")
	}
	// The newest generation is the live image: nothing of it is missing.
	if missing, _ := imaging.MissingContent(state, dst, ids[len(ids)-1]); len(missing) != 0 {
		t.Errorf("newest generation misses %v", missing)
	}
}

func TestRollbackStoppedMidwayConverges(t *testing.T) {
	dst, state, saved, ids := pullGenerations(t)
	for _, target := range []int{0, len(ids) - 1} {
		ctx, cancel := context.WithCancel(context.Background())
		opts := genOpts(state)
		n := 0
		opts.Progress = func(p imaging.Progress) {
			if p.Phase == imaging.PhaseTransfer && p.Path != "" {
				n++
				if n == 2 {
					cancel()
				}
			}
		}
		_, err := imaging.Rollback(ctx, dst, ids[target], imaging.RollbackOptions{Options: opts})
		cancel()
		if err == nil {
			t.Fatalf("rollback to %d was not stopped", ids[target])
		}
		if diff := treetest.Diff(saved[target], treetest.Scan(t, dst), exact); len(diff) == 0 {
			t.Fatalf("the stopped rollback to %d already finished", ids[target])
		}
		res, err := imaging.Rollback(context.Background(), dst, ids[target], rbOpts(state))
		if err != nil {
			t.Fatalf("rerun of rollback to %d: %v (problems %v)", ids[target], err, problems(res))
		}
		treetest.Equal(t, saved[target], treetest.Scan(t, dst), exact)
	}
}

func TestPruneGenerations(t *testing.T) {
	dst, state, saved, ids := pullGenerations(t)
	must(t, imaging.PinGeneration(state, ids[0], true))
	removed, freed, err := imaging.PruneGenerations(state, imaging.GenerationPolicy{Keep: 2}, time.Now())
	must(t, err)
	want := ids[1 : len(ids)-2]
	if len(removed) != len(want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for i := range want {
		if removed[i] != want[i] {
			t.Fatalf("removed %v, want %v", removed, want)
		}
	}
	if freed == 0 {
		t.Error("pruning freed no kept content")
	}
	// The pinned first generation is still whole (and found through a
	// relative state dir).
	t.Chdir(filepath.Dir(state))
	if _, err := imaging.Rollback(context.Background(), dst, ids[0], rbOpts(filepath.Base(state))); err != nil {
		t.Fatal(err)
	}
	treetest.Equal(t, saved[0], treetest.Scan(t, dst), exact)
	if _, err := imaging.Rollback(context.Background(), dst, ids[1], rbOpts(state)); !errors.Is(err, imaging.ErrNoGeneration) {
		t.Errorf("rollback to a pruned generation: %v, want ErrNoGeneration", err)
	}
	// Unpinned and past the policy: the next prune drops it.
	must(t, imaging.PinGeneration(state, ids[0], false))
	removed, _, err = imaging.PruneGenerations(state, imaging.GenerationPolicy{Keep: 2}, time.Now())
	must(t, err)
	if len(removed) != 2 || removed[0] != ids[0] {
		t.Errorf("second prune removed %v, want %d and one more", removed, ids[0])
	}
}

func TestDiffGenerations(t *testing.T) {
	_, state, _, ids := pullGenerations(t)
	changes, err := imaging.DiffGenerations(state, ids[1], ids[2])
	must(t, err)
	got := map[string]string{}
	for _, c := range changes {
		got[c.Path] = c.Code
	}
	for p, code := range map[string]string{
		"boot/vmlinuz-2": ">f+++++++++",
		"boot/vmlinuz-1": "*deleting  ",
		"usr/bin/tool":   ".f...p.....",
		"boot/vmlinuz":   "cLc.t......",
	} {
		if got[p] != code {
			t.Errorf("%s: itemized %q, want %q (all: %v)", p, got[p], code, changes)
		}
	}
	live, err := imaging.DiffGenerations(state, ids[len(ids)-1], 0)
	must(t, err)
	if len(live) != 0 {
		t.Errorf("newest generation differs from the live manifest: %v", live)
	}
}

// A run that records no generation (--no-generations, or killed between
// saving the manifest and recording) still keeps what it replaces, and the
// next recording run with nothing to do records the image's state.
func TestGenerationAfterUnrecordedRun(t *testing.T) {
	src, dst := newDirs(t)
	state := filepath.Join(filepath.Dir(dst), "state")
	put(t, src, "bin/tool", randBytes(1, 100<<10), 0o755)
	put(t, src, "etc/conf", []byte("v=1\n"), 0o644)
	v1 := treetest.Scan(t, src)
	first := syncDirs(t, src, dst, genOpts(state))
	put(t, src, "bin/tool", randBytes(2, 100<<10), 0o755)
	must(t, os.Remove(filepath.Join(src, "etc/conf")))
	v2 := treetest.Scan(t, src)
	if res := syncDirs(t, src, dst, imaging.Options{StateDir: state}); res.Generation != 0 {
		t.Fatalf("a run without a policy recorded generation %d", res.Generation)
	}
	res := syncDirs(t, src, dst, genOpts(state))
	if res.Generation == 0 || res.Plan.Len() != 0 {
		t.Fatalf("the next run (%d actions) recorded generation %d, want a new one", res.Plan.Len(), res.Generation)
	}
	if again := syncDirs(t, src, dst, genOpts(state)); again.Generation != 0 {
		t.Errorf("a run with nothing new recorded generation %d", again.Generation)
	}
	if _, err := imaging.Rollback(context.Background(), dst, first.Generation, rbOpts(state)); err != nil {
		t.Fatal(err)
	}
	treetest.Equal(t, v1, treetest.Scan(t, dst), exact)
	if _, err := imaging.Rollback(context.Background(), dst, res.Generation, rbOpts(state)); err != nil {
		t.Fatal(err)
	}
	treetest.Equal(t, v2, treetest.Scan(t, dst), exact)
}

func TestRollbackRefusesDrift(t *testing.T) {
	dst, state, saved, ids := pullGenerations(t)
	// Changed by hand behind goldsync's back: a file edited in place, one
	// added, one removed.
	f, err := os.OpenFile(filepath.Join(dst, "usr/bin/other"), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	f.Write([]byte("patched"))
	f.Close()
	must(t, os.WriteFile(filepath.Join(dst, "etc/conf/local"), []byte("x"), 0o644))
	must(t, os.Remove(filepath.Join(dst, treetest.PathDangling)))
	before := treetest.Scan(t, dst)
	_, err = imaging.Rollback(context.Background(), dst, ids[1], rbOpts(state))
	if !errors.Is(err, imaging.ErrDrift) {
		t.Fatalf("rollback over hand changes: %v, want ErrDrift", err)
	}
	for _, p := range []string{"usr/bin/other (changed)", "etc/conf/local (added)", treetest.PathDangling + " (removed)"} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not name %q: %v", p, err)
		}
	}
	treetest.Equal(t, before, treetest.Scan(t, dst), treetest.DiffOptions{})
	drift, err := imaging.Drift(context.Background(), dst, state, nil, nil)
	must(t, err)
	if len(drift) != 3 {
		t.Errorf("Drift: %q", drift)
	}
	ro := rbOpts(state)
	ro.Force = true
	if res, err := imaging.Rollback(context.Background(), dst, ids[1], ro); err != nil {
		t.Fatalf("%v: %v", err, problems(res))
	}
	treetest.Equal(t, saved[1], treetest.Scan(t, dst), exact)
}
