package imaging

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/treetest"
)

// planTree makes a source of 20 directories of 20 files with hard-link
// groups (two in each directory, one across directories) and two files of
// the same content, and pulls it into an image. It returns the source,
// the image, the state dir and the number of entries.
func planTree(t *testing.T) (src, dst, state, cache string, n int) {
	t.Helper()
	base := t.TempDir()
	src, dst = filepath.Join(base, "golden"), filepath.Join(base, "image")
	state, cache = filepath.Join(base, "state"), filepath.Join(base, "cache")
	n = 1
	for d := range 20 {
		dir := filepath.Join(src, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		n++
		for f := range 20 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), fmt.Appendf(nil, "file %d/%d\n", d, f), 0o644); err != nil {
				t.Fatal(err)
			}
			n++
		}
		for _, l := range []string{"l1", "l2"} {
			if err := os.Link(filepath.Join(dir, "f000"), filepath.Join(dir, l)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if err := os.Link(filepath.Join(src, "d000", "f001"), filepath.Join(src, "d019", "x")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"d000/dup", "d015/dup"} {
		if err := os.WriteFile(filepath.Join(src, p), []byte("the same content\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n += 3
	planPull(t, src, dst, state, cache)
	return src, dst, state, cache, n
}

// planPull syncs src into dst through a DirSource with a hash cache and
// checks that dst equals src afterwards.
func planPull(t *testing.T, src, dst, state, cache string) *Result {
	t.Helper()
	s, err := OpenDirSource(src, DirSourceOptions{CacheFile: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := Sync(context.Background(), s, dst, Options{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if d := treetest.Diff(treetest.Scan(t, src), treetest.Scan(t, dst), treetest.DiffOptions{}); len(d) > 0 {
		t.Fatalf("image differs from the source: %v", d)
	}
	return res
}

// TestNoChangePlanReadsNoSpool: a no-change pull plans while it scans,
// from the two lists as they arrive, and reads neither spool back. Before,
// the plan ran after the scan and decoded both spools again: the
// destination's and the source's once more each for the hard links, then
// both for the merge (4n entries, n = 464 here, with hard links). Nor does
// the applier read back the conditional directory actions (one a source
// directory, 21 here) when no directory's entries changed.
func TestNoChangePlanReadsNoSpool(t *testing.T) {
	src, dst, state, cache, n := planTree(t)
	spoolDecoded.Store(0)
	spoolActionsRead.Store(0)
	res := planPull(t, src, dst, state, cache)
	if got := spoolDecoded.Load(); got != 0 {
		t.Errorf("a no-change pull of %d entries decoded %d spooled entries, want 0", n, got)
	}
	if got := spoolActionsRead.Load(); got != 0 {
		t.Errorf("a no-change pull read %d actions back from the plan's spools, want 0", got)
	}
	if res.Plan.Len() != 0 || res.Entries != n {
		t.Errorf("plan of %d actions over %d entries, want 0 over %d", res.Plan.Len(), res.Entries, n)
	}
}

// TestStreamPlanResumes: a pull whose plan needs the destination's files
// by hash (a file the source knows the hash of is missing from the image)
// plans during the scan up to that path and ends over the spools from
// there, decoding only their rest, and the image comes out equal to the
// source. Counted over the whole run: the record reads both spools (2n
// entries), the copy sources the destination's (n), the plan's rest of
// both lists after d015/dup about n/2. Before, the plan decoded both
// lists twice (4n more: 7n in all).
func TestStreamPlanResumes(t *testing.T) {
	src, dst, state, cache, n := planTree(t)
	if err := os.Remove(filepath.Join(dst, "d015", "dup")); err != nil {
		t.Fatal(err)
	}
	spoolDecoded.Store(0)
	res := planPull(t, src, dst, state, cache)
	got := spoolDecoded.Load()
	t.Logf("%d entries, %d decoded from the spools", n, got)
	if got < 3*int64(n) || got > 4*int64(n) {
		t.Errorf("decoded %d spooled entries for a pull of %d entries resumed at d015/dup; want %d to %d", got, n, 3*n, 4*n)
	}
	if c := res.Plan.Count(OpCopy); c != 1 {
		t.Errorf("%d local copies planned, want 1 (d015/dup from d000/dup)", c)
	}
}

// listSource sends a fixed list of entries (and no content).
type listSource struct{ entries []*tree.Entry }

func (l *listSource) Scan(ctx context.Context, req ScanRequest, fn func(*tree.Entry) error) (ScanResult, error) {
	for _, e := range l.entries {
		if err := fn(e); err != nil {
			return ScanResult{}, err
		}
	}
	return ScanResult{Entries: len(l.entries)}, nil
}

func (l *listSource) Fetch(ctx context.Context, reqs []*FetchRequest, open func(*FetchRequest) (ContentSink, error)) error {
	return errors.New("listSource: no content")
}

func (l *listSource) Close() error { return nil }

// TestStreamPlanRefusesBadLinks: the plan's check of the source's hard
// links (a member's leader must be a regular file before it in the
// stream) holds also where the image's own hard links vouch for a leader
// while the merge passes it, and the run is refused before anything is
// applied.
func TestStreamPlanRefusesBadLinks(t *testing.T) {
	file := func(p, data string) *tree.Entry {
		e := &tree.Entry{Path: p, Type: tree.TypeRegular, Mode: 0o644, Mtime: 1e18, Size: int64(len(data))}
		e.SetHash(xxhash.Sum64String(data))
		return e
	}
	link := func(p, to string) *tree.Entry {
		e := file(p, "x")
		e.LinkTo = to
		return e
	}
	root := &tree.Entry{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755, Mtime: 1e18}
	for _, tc := range []struct {
		name string
		list []*tree.Entry
	}{
		{"leader is a symlink where the image has a link group",
			[]*tree.Entry{root, {Path: "k", Type: tree.TypeSymlink, Target: "x", Mtime: 1}, link("z", "k")}},
		{"leader comes after its member",
			[]*tree.Entry{root, link("a", "k"), file("k", "x")}},
		{"leader never sent",
			[]*tree.Entry{root, file("k", "x"), link("z", "q")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dst := filepath.Join(base, "image")
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, "k"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, l := range []string{"a", "z"} {
				if err := os.Link(filepath.Join(dst, "k"), filepath.Join(dst, l)); err != nil {
					t.Fatal(err)
				}
			}
			before := treetest.Scan(t, dst)
			_, err := Sync(context.Background(), &listSource{tc.list}, dst, Options{StateDir: filepath.Join(base, "state")})
			if !errors.Is(err, ErrBadSource) {
				t.Errorf("err %v, want ErrBadSource", err)
			}
			treetest.Equal(t, before, treetest.Scan(t, dst), treetest.DiffOptions{})
		})
	}
}

// TestEntrySpoolSharesPrefixes: an entry spool encodes each entry against
// the one before it, so a run of entries in one directory costs less than
// their paths alone (before, each record held its whole path: 77 B on
// average in syn200000, ~120 B a record), and reads back the same, also
// from the middle given the entry before.
func TestEntrySpoolSharesPrefixes(t *testing.T) {
	sp, err := newSpool(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	s := &entrySpool{spool: sp}
	defer s.close()
	var want []*tree.Entry
	pathBytes := 0
	for i := range 1000 {
		e := &tree.Entry{Path: fmt.Sprintf("usr/share/locale/l%02d/LC_MESSAGES/domain-%03d.mo", i/100, i%100), Type: tree.TypeRegular,
			Mode: 0o644, Mtime: 1e18 + int64(i), Size: int64(i), Dev: 1, Ino: uint64(i), Nlink: 1, Ctime: 1e18}
		e.SetHash(uint64(i) * 7919)
		if i%10 == 0 {
			e.Xattrs = []tree.Xattr{{Name: "user.x", Value: []byte{byte(i)}}}
		}
		want = append(want, e)
		pathBytes += len(e.Path)
		if err := s.add(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.w.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d entries, %d bytes spooled, %d bytes of paths", len(want), s.off, pathBytes)
	if s.off >= int64(pathBytes) {
		t.Errorf("%d bytes spooled for %d bytes of paths: the shared prefixes are not left out", s.off, pathBytes)
	}
	for _, k := range []int{0, 1, 437, 999} {
		var prev *tree.Entry
		if k > 0 {
			prev = want[k-1]
		}
		var rerr error
		i := k
		for e := range s.entriesFrom(k, prev, &rerr) {
			if w := want[i]; e.Path != w.Path || e.Mode != w.Mode || e.Mtime != w.Mtime || e.Hash != w.Hash || e.Ino != w.Ino || len(e.Xattrs) != len(w.Xattrs) {
				t.Fatalf("from %d: entry %d read back as %+v, want %+v", k, i, e, w)
			}
			i++
		}
		if rerr != nil || i != len(want) {
			t.Errorf("from %d: %d entries read, err %v", k, i-k, rerr)
		}
	}
}

// TestBatcherAbandonsWhenFull: a list whose batches nobody takes waits at
// most streamWait, then abandons the streamed plan and sends nothing more
// (the source's stream is read on; the plan ends over the spools).
func TestBatcherAbandonsWhenFull(t *testing.T) {
	defer func(w time.Duration) { streamWait = w }(streamWait)
	streamWait = time.Millisecond
	var abandon atomic.Bool
	b := newBatcher(context.Background(), &abandon)
	for i := range streamBatch * (streamBatches + 3) {
		if err := b.add(&tree.Entry{Path: fmt.Sprintf("f%06d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	b.end()
	n := 0
	for range b.ch {
		n++
	}
	if !abandon.Load() || n != streamBatches {
		t.Errorf("abandoned %v with %d batches sent; want true with %d (the channel's room)", abandon.Load(), n, streamBatches)
	}
}

// TestStreamPlanAbandonedListNeverEnds: once a list abandons the streamed
// plan, the merge stops before its next pair: the list it no longer gets
// whole must not look ended, or every destination entry after its cut
// would be planned as a delete.
func TestStreamPlanAbandonedListNeverEnds(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	r := &syncRun{opts: Options{DryRun: true}}
	sp, err := r.startStreamPlan(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.m.close()
	e := func(p string, typ tree.Type) *tree.Entry {
		return &tree.Entry{Path: p, Type: typ, Mode: 0o644, Mtime: 1e18}
	}
	for _, x := range []*tree.Entry{e(tree.Root, tree.TypeDir), e("a", tree.TypeRegular), e("b", tree.TypeRegular), e("c", tree.TypeRegular)} {
		if err := sp.dst.add(x); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []*tree.Entry{e(tree.Root, tree.TypeDir), e("a", tree.TypeRegular)} {
		if err := sp.src.add(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmp.Or(sp.src.flush(), sp.dst.flush()); err != nil {
		t.Fatal(err)
	}
	sp.abandon.Store(true) // as a list that waited too long does
	sp.src.end()
	sp.dst.end()
	sp.wait()
	if !sp.stopped || sp.m.p.Count(OpDelete) != 0 || sp.m.nsrc > 2 {
		t.Errorf("stopped %v, %d deletes planned, %d source entries planned; want true, 0, at most 2", sp.stopped, sp.m.p.Count(OpDelete), sp.m.nsrc)
	}
}
