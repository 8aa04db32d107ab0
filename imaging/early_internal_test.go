package imaging

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/treetest"
)

func sameStamps(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, s := range before {
		if after[p] != s {
			t.Errorf("%s changed: %q, now %q", p, s, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s was created", p)
		}
	}
}

// earlyPull is planPull started early: the destination's walk is started
// before the source is opened and, with wait, has listed the whole image
// before the source's first entry (as when the remote shell's login takes
// longer than the walk). Entries the early walk and the plan give back
// are spoiled at once.
func earlyPull(t *testing.T, src, dst, state, cache string, wait bool) *Result {
	t.Helper()
	poisonGiven = spoil
	defer func() { poisonGiven = nil }()
	e := StartEarly(context.Background(), dst, Options{StateDir: state})
	if e == nil {
		t.Fatal("StartEarly did not start an image pulled before")
	}
	if wait {
		<-e.r.early.done
	}
	s, err := OpenDirSource(src, DirSourceOptions{CacheFile: cache})
	if err != nil {
		e.Close()
		t.Fatal(err)
	}
	defer s.Close()
	res, err := e.Sync(context.Background(), &lendingSource{DirSource: s})
	if err != nil {
		t.Fatal(err)
	}
	if d := treetest.Diff(treetest.Scan(t, src), treetest.Scan(t, dst), treetest.DiffOptions{}); len(d) > 0 {
		t.Fatalf("image differs from the source: %v", d)
	}
	return res
}

// TestEarlyWalkAheadOfSource: a run started early walks the whole image
// before the source (held back here) sends anything, changing nothing
// meanwhile; the streamed plan then reads the walk back from its spool
// (n entries), plans during the scan without resuming over the spools
// (none decoded by the plan, nothing abandoned), and a no-change pull
// plans nothing.
func TestEarlyWalkAheadOfSource(t *testing.T) {
	src, dst, state, cache, n := planTree(t)
	before := treetest.Stamps(t, dst, state)
	e := StartEarly(context.Background(), dst, Options{StateDir: state})
	if e == nil {
		t.Fatal("StartEarly did not start an image pulled before")
	}
	<-e.r.early.done
	if err := e.r.early.err; err != nil {
		t.Fatal(err)
	}
	if got := e.r.dstN; got != n {
		t.Errorf("the early walk listed %d entries before the source was opened, want %d", got, n)
	}
	sameStamps(t, before, treetest.Stamps(t, dst, state))

	s, err := OpenDirSource(src, DirSourceOptions{CacheFile: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	earlyReadBack.Store(0)
	spoolDecoded.Store(0)
	res, err := e.Sync(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if got := earlyReadBack.Load(); got != int64(n) {
		t.Errorf("the plan read %d entries back from the early walk's spool, want %d", got, n)
	}
	if got := spoolDecoded.Load(); got != 0 {
		t.Errorf("the plan resumed over the spools (%d entries decoded), want a plan made during the scan", got)
	}
	if res.Plan.Len() != 0 || res.Entries != n {
		t.Errorf("plan of %d actions over %d entries, want 0 over %d", res.Plan.Len(), res.Entries, n)
	}
	if d := treetest.Diff(treetest.Scan(t, src), treetest.Scan(t, dst), treetest.DiffOptions{}); len(d) > 0 {
		t.Fatalf("image differs from the source: %v", d)
	}
}

// TestEarlyPullChanges: pulls started early carry changes of every kind
// into the image, whether the walk ended before the source's first entry
// or runs beside it (the plan switches from the spool to the walk's
// entries as they come, at whatever count), with every entry given back
// spoiled at once; the next pull plans nothing.
func TestEarlyPullChanges(t *testing.T) {
	src, dst, state, cache, _ := planTree(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, wait := range []bool{true, false, false, false} {
		must(os.WriteFile(filepath.Join(src, "d003", "f004"), fmt.Appendf(nil, "content %d\n", i), 0o644))
		must(os.Chmod(filepath.Join(src, "d005", "f006"), os.FileMode(0o600+i)))
		must(os.WriteFile(filepath.Join(src, fmt.Sprintf("d%03d", 7+i), "new"), []byte("a new file\n"), 0o644))
		must(os.RemoveAll(filepath.Join(src, fmt.Sprintf("d%03d", 16+i))))
		must(os.WriteFile(filepath.Join(src, fmt.Sprintf("d%03d", 16+i)), []byte("was a directory\n"), 0o644))
		must(os.Remove(filepath.Join(src, "d013", "l1")))
		must(os.Link(filepath.Join(src, "d013", fmt.Sprintf("f%03d", 5+i)), filepath.Join(src, "d013", "l1")))
		if res := earlyPull(t, src, dst, state, cache, wait); res.Plan.Len() == 0 {
			t.Fatalf("pull %d of changes planned nothing", i)
		}
		if res := earlyPull(t, src, dst, state, cache, !wait); res.Plan.Len() != 0 {
			t.Errorf("the pull after pull %d planned %d actions, want 0", i, res.Plan.Len())
		}
	}
}

// TestEarlyCloseChangesNothing: an early start given up (the source could
// not be connected) leaves the image and its state dir as they were and
// lets go of the lock; an early start is not made where it would create
// something (no image yet, no state dir) or is not a full scan, and not
// under another run's lock.
func TestEarlyCloseChangesNothing(t *testing.T) {
	_, dst, state, _, _ := planTree(t)
	before := treetest.Stamps(t, dst, state)
	for _, wait := range []bool{true, false} {
		e := StartEarly(context.Background(), dst, Options{StateDir: state})
		if e == nil {
			t.Fatal("StartEarly did not start an image pulled before")
		}
		if wait {
			<-e.r.early.done
		}
		e.Close()
		e.Close()
		sameStamps(t, before, treetest.Stamps(t, dst, state))
	}
	unlock, err := Lock(state)
	if err != nil {
		t.Fatalf("the lock is still held after Close: %v", err)
	}
	if e := StartEarly(context.Background(), dst, Options{StateDir: state}); e != nil {
		e.Close()
		t.Error("StartEarly started under another run's lock")
	}
	unlock()
	base := t.TempDir()
	for name, c := range map[string]struct {
		dest string
		opts Options
	}{
		"no image":     {filepath.Join(base, "new"), Options{StateDir: filepath.Join(base, "new-state")}},
		"no state dir": {dst, Options{StateDir: filepath.Join(base, "other-state")}},
		"dry run":      {dst, Options{StateDir: state, DryRun: true}},
		"scoped":       {dst, Options{StateDir: state, Scopes: []tree.Scope{{Path: "d001", Tree: true}}}},
	} {
		if e := StartEarly(context.Background(), c.dest, c.opts); e != nil {
			e.Close()
			t.Errorf("%s: started early", name)
		}
	}
	if _, err := os.Lstat(filepath.Join(base, "new")); err == nil {
		t.Error("StartEarly created a destination")
	}
	if _, err := os.Lstat(filepath.Join(base, "other-state")); err == nil {
		t.Error("StartEarly created a state dir")
	}
	sameStamps(t, before, treetest.Stamps(t, dst, state))
}

// TestEarlyWalkHoldsNoEntries: a walk started early that runs far ahead of
// its source (the whole image listed while the source is held back) keeps
// what it lists on disk, in its spool: the live heap then is bounded by a
// constant (the entries given back, at most a few thousand), not by the
// image's size (20,200 entries here, ~5 MB held as entries). Until the
// source is connected, one of the walk's workers works.
func TestEarlyWalkHoldsNoEntries(t *testing.T) {
	base := t.TempDir()
	src, dst, state := filepath.Join(base, "golden"), filepath.Join(base, "image"), filepath.Join(base, "state")
	for d := range 200 {
		dir := filepath.Join(src, fmt.Sprintf("directory-%04d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("a-file-with-a-longer-name-%04d", f)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	planPull(t, src, dst, state, filepath.Join(base, "cache"))
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	h0 := heap()
	walkWorkers.Store(0)
	e := StartEarly(context.Background(), dst, Options{StateDir: state, Workers: 4})
	if e == nil {
		t.Fatal("StartEarly did not start an image pulled before")
	}
	defer e.Close()
	<-e.r.early.done
	h1 := heap()
	grown := int64(h1) - int64(h0)
	t.Logf("%d entries listed ahead, heap %d -> %d bytes (%+d)", e.r.dstN, h0, h1, grown)
	if e.r.dstN != 20201 {
		t.Errorf("listed %d entries, want 20201", e.r.dstN)
	}
	if got := walkWorkers.Load(); got != 1 {
		t.Errorf("%d of the walk's 4 workers worked before the source was connected, want 1 (the others leave a core to the login)", got)
	}
	if grown > 2<<20 {
		t.Errorf("the heap grew by %d bytes with %d entries listed ahead, want under 2 MiB (the entries given back)", grown, e.r.dstN)
	}
}

// heldSource holds its scan back until release is closed.
type heldSource struct {
	Source
	release <-chan struct{}
}

func (h heldSource) Scan(ctx context.Context, req ScanRequest, fn func(*tree.Entry) error) (ScanResult, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
		return ScanResult{}, ctx.Err()
	}
	return h.Source.Scan(ctx, req, fn)
}

// TestEarlyWalkLead: an early walk lists at most earlyLead entries before
// the source is connected, then waits for it; once connected, it lists
// nothing more until the plan has read those back, and the plan takes the
// rest as the walk lists it. The source here sends nothing until the walk
// waits for the plan or has ended: a walk that went on into the spool
// alone lists the whole image (n entries) ahead of the plan, and the plan
// reads all n back (the image server read back all 225,343 entries of
// syn200000 in every no-change pull over ssh that way).
func TestEarlyWalkLead(t *testing.T) {
	src, dst, state, cache, n := planTree(t)
	defer func(l int, w time.Duration) { earlyLead, earlyParked, earlyCatchingUp, streamWait = l, nil, nil, w }(earlyLead, streamWait)
	earlyLead = 100
	streamWait = time.Hour // no timing here: the walk waits for the plan
	parked, catching := make(chan struct{}), make(chan struct{})
	earlyParked = func() { close(parked) }
	earlyCatchingUp = func() { close(catching) }
	e := StartEarly(context.Background(), dst, Options{StateDir: state})
	if e == nil {
		t.Fatal("StartEarly did not start an image pulled before")
	}
	<-parked
	e.r.early.mu.Lock()
	listed := e.r.dstN
	e.r.early.mu.Unlock()
	if listed != 100 {
		t.Errorf("the early walk listed %d entries before the source was connected, want 100", listed)
	}
	s, err := OpenDirSource(src, DirSourceOptions{CacheFile: cache})
	if err != nil {
		e.Close()
		t.Fatal(err)
	}
	defer s.Close()
	release, walked := make(chan struct{}), e.r.early.done
	go func() {
		select {
		case <-catching:
		case <-walked:
		}
		close(release)
	}()
	earlyReadBack.Store(0)
	spoolDecoded.Store(0)
	res, err := e.Sync(context.Background(), heldSource{Source: s, release: release})
	if err != nil {
		t.Fatal(err)
	}
	if got := earlyReadBack.Load(); got != 100 {
		t.Errorf("the plan read %d entries back from the early walk's spool, want the 100 listed before the source was connected", got)
	}
	if got := spoolDecoded.Load(); got != 0 {
		t.Errorf("the plan resumed over the spools (%d entries decoded), want a plan made during the scan", got)
	}
	if res.Plan.Len() != 0 || res.Entries != n {
		t.Errorf("plan of %d actions over %d entries, want 0 over %d", res.Plan.Len(), res.Entries, n)
	}
}

// TestEarlyWalkGoesOnAlone: a plan its source holds back longer than
// streamWait does not hold the walk: the walk goes on into the spool
// alone (here the source sends nothing until the walk has ended, which
// without that would never come), and the plan reads all of it back.
func TestEarlyWalkGoesOnAlone(t *testing.T) {
	src, dst, state, cache, n := planTree(t)
	defer func(l int, w time.Duration) { earlyLead, earlyParked, streamWait = l, nil, w }(earlyLead, streamWait)
	earlyLead = 100
	streamWait = time.Millisecond
	parked := make(chan struct{})
	earlyParked = func() { close(parked) }
	e := StartEarly(context.Background(), dst, Options{StateDir: state})
	if e == nil {
		t.Fatal("StartEarly did not start an image pulled before")
	}
	<-parked
	s, err := OpenDirSource(src, DirSourceOptions{CacheFile: cache})
	if err != nil {
		e.Close()
		t.Fatal(err)
	}
	defer s.Close()
	earlyReadBack.Store(0)
	res, err := e.Sync(context.Background(), heldSource{Source: s, release: e.r.early.done})
	if err != nil {
		t.Fatal(err)
	}
	if got := earlyReadBack.Load(); got != int64(n) {
		t.Errorf("the plan read %d entries back from the early walk's spool, want all %d", got, n)
	}
	if res.Plan.Len() != 0 || res.Entries != n {
		t.Errorf("plan of %d actions over %d entries, want 0 over %d", res.Plan.Len(), res.Entries, n)
	}
}
