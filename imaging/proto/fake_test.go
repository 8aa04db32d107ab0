package proto

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
)

// segment is a written range of a sparse file; the rest are holes.
type segment struct{ off, n int64 }

type fakeFile struct {
	content  []byte
	segments []segment // nil: one Data call with everything
	err      error     // Abort with this
}

// fakeSource is an in-memory imaging.Source: a sorted list of entries and
// the contents of the regular files.
type fakeSource struct {
	entries []*tree.Entry
	files   map[string]*fakeFile
	// partial is what a scan with Since "tok-1" returns.
	partial      []*tree.Entry
	partialScope []tree.Scope

	fetched atomic.Int64
	closed  atomic.Bool
	// block, when set, makes Fetch send half of each file and wait for
	// the context to end.
	block bool
	// delay, when set, makes Scan think that long before the first entry.
	delay time.Duration
	// closeDelay, when set, makes Close take that long (a hash cache save).
	closeDelay time.Duration
}

func mkfile(p string, content []byte) *tree.Entry {
	e := &tree.Entry{Path: p, Type: tree.TypeRegular, Mode: 0o644, Size: int64(len(content)), Mtime: 1700000000_000000000 + int64(len(p))}
	e.SetHash(xxhash.Sum64(content))
	return e
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

// newFakeSource builds a tree with every entry type and files that
// exercise the fetch paths: empty, small, larger than one frame, sparse,
// unreadable, changing, and one for block reuse.
func newFakeSource() *fakeSource {
	f := &fakeSource{files: map[string]*fakeFile{}}
	add := func(e *tree.Entry) { f.entries = append(f.entries, e) }
	file := func(p string, content []byte, segs ...segment) {
		e := mkfile(p, content)
		add(e)
		f.files[p] = &fakeFile{content: content, segments: segs}
	}
	add(&tree.Entry{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755, Mtime: 1})
	add(&tree.Entry{Path: "dev", Type: tree.TypeDir, Mode: 0o755})
	add(&tree.Entry{Path: "dev/null", Type: tree.TypeCharDev, Mode: 0o666, Rdev: 0x103})
	add(&tree.Entry{Path: "etc", Type: tree.TypeDir, Mode: 0o755, Xattrs: []tree.Xattr{{Name: "security.selinux", Value: []byte("etc_t")}}})
	file("etc/empty", nil)
	file("etc/passwd", []byte("root:x:0:0:root:/root:/bin/bash\n"))
	add(&tree.Entry{Path: "etc/pipe", Type: tree.TypeFIFO, Mode: 0o600})
	add(&tree.Entry{Path: "etc/shadow", Type: tree.TypeRegular, Mode: 0o000, Size: 10, Problem: "open: permission denied"})
	f.files["etc/shadow"] = &fakeFile{err: &imaging.FileError{Op: "open", Path: "etc/shadow", Err: fs.ErrPermission}}
	file("etc/volatile", pattern(100, 1))
	f.files["etc/volatile"].err = &imaging.FileError{Op: "read", Path: "etc/volatile", Err: imaging.ErrChanged}
	add(&tree.Entry{Path: "usr", Type: tree.TypeDir, Mode: 0o755})
	file("usr/big", pattern(600<<10, 3))
	hl := mkfile("usr/big2", pattern(600<<10, 3))
	hl.LinkTo = "usr/big"
	add(hl)
	add(&tree.Entry{Path: "usr/link", Type: tree.TypeSymlink, Mode: 0o777, Target: "big"})
	file("usr/reuse", pattern(50000, 4))
	sparse := make([]byte, 1<<20)
	copy(sparse[4096:], pattern(300<<10, 5))
	copy(sparse[900<<10:], pattern(1000, 6))
	file("usr/sparse", sparse, segment{4096, 300 << 10}, segment{900 << 10, 1000})
	f.partial = []*tree.Entry{f.entries[5]} // etc/passwd
	f.partialScope = []tree.Scope{{Path: "etc/passwd"}}
	return f
}

func (f *fakeSource) Scan(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
	list, scope := f.entries, tree.FullScope
	if req.Since == "tok-1" {
		list, scope = f.partial, f.partialScope
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return imaging.ScanResult{}, ctx.Err()
		}
	}
	probs := 0
	for _, e := range list {
		if err := ctx.Err(); err != nil {
			return imaging.ScanResult{}, err
		}
		if err := fn(e.Clone()); err != nil {
			return imaging.ScanResult{}, err
		}
		if e.Problem != "" {
			probs++
		}
	}
	return imaging.ScanResult{Scope: scope, Problems: probs, Token: "tok-2", Entries: len(list)}, nil
}

func (f *fakeSource) Fetch(ctx context.Context, reqs []*imaging.FetchRequest, open func(*imaging.FetchRequest) (imaging.ContentSink, error)) error {
	for _, r := range reqs {
		f.fetched.Add(1)
		sink, err := open(r)
		if err != nil {
			return err
		}
		if err := f.fetchOne(ctx, r, sink); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSource) fetchOne(ctx context.Context, r *imaging.FetchRequest, sink imaging.ContentSink) error {
	ff := f.files[r.Entry.Path]
	switch {
	case ff == nil:
		sink.Abort(&imaging.FileError{Op: "open", Path: r.Entry.Path, Err: fs.ErrNotExist})
		return nil
	case ff.err != nil:
		sink.Abort(ff.err)
		return nil
	}
	c := ff.content
	h := xxhash.Sum64(c)
	res := imaging.FetchResult{Size: int64(len(c)), Hash: h, Mtime: r.Entry.Mtime}
	if f.block {
		if err := sink.Data(0, c[:len(c)/2]); err != nil {
			return err
		}
		<-ctx.Done()
		sink.Abort(ctx.Err())
		return ctx.Err()
	}
	b := r.Basis
	switch {
	case b != nil && b.Hashed && b.Hash == h && b.Size == int64(len(c)):
		res.Unchanged = true
	case b != nil && b.BlockSize > 0:
		for off := int64(0); off < int64(len(c)); off += int64(b.BlockSize) {
			end := min(off+int64(b.BlockSize), int64(len(c)))
			i := off / int64(b.BlockSize)
			if i < int64(len(b.Blocks)) && end <= b.Size && xxhash.Sum64(c[off:end]) == b.Blocks[i] {
				if err := sink.Reuse(off, end-off); err != nil {
					return err
				}
			} else if err := sink.Data(off, c[off:end]); err != nil {
				return err
			}
		}
	case ff.segments != nil:
		for _, s := range ff.segments {
			if err := sink.Data(s.off, c[s.off:s.off+s.n]); err != nil {
				return err
			}
		}
	default:
		if len(c) > 0 {
			if err := sink.Data(0, c); err != nil {
				return err
			}
		}
	}
	return sink.Finish(res)
}

func (f *fakeSource) Close() error {
	time.Sleep(f.closeDelay)
	f.closed.Store(true)
	return nil
}

func (f *fakeSource) Counters() map[string]int64 {
	return map[string]int64{"fake_fetched": f.fetched.Load()}
}

// memSink collects one file in memory and checks the sink contract.
type memSink struct {
	t     *testing.T
	req   *imaging.FetchRequest
	basis []byte

	mu       sync.Mutex
	buf      []byte
	next     int64
	calls    int // Data and Reuse calls
	result   *imaging.FetchResult
	aborted  error
	finished bool
}

func (s *memSink) Data(off int64, p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		s.t.Errorf("%s: Data after Finish or Abort", s.req.Entry.Path)
	}
	if off < s.next {
		s.t.Errorf("%s: Data at %d before %d", s.req.Entry.Path, off, s.next)
	}
	if need := off + int64(len(p)); need > int64(len(s.buf)) {
		s.buf = append(s.buf, make([]byte, need-int64(len(s.buf)))...)
	}
	copy(s.buf[off:], p)
	s.next = off + int64(len(p))
	s.calls++
	return nil
}

func (s *memSink) Reuse(off, n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off < s.next {
		s.t.Errorf("%s: Reuse at %d before %d", s.req.Entry.Path, off, s.next)
	}
	if need := off + n; need > int64(len(s.buf)) {
		s.buf = append(s.buf, make([]byte, need-int64(len(s.buf)))...)
	}
	copy(s.buf[off:off+n], s.basis[off:off+n])
	s.next = off + n
	s.calls++
	return nil
}

func (s *memSink) Finish(res imaging.FetchResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		s.t.Errorf("%s: Finish after Finish or Abort", s.req.Entry.Path)
	}
	s.finished = true
	if res.Unchanged {
		s.buf = bytes.Clone(s.basis)
	}
	if int64(len(s.buf)) < res.Size {
		s.buf = append(s.buf, make([]byte, res.Size-int64(len(s.buf)))...)
	}
	s.buf = s.buf[:res.Size]
	s.result = &res
	return nil
}

func (s *memSink) Abort(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		s.t.Errorf("%s: Abort after Finish or Abort", s.req.Entry.Path)
	}
	s.finished = true
	s.aborted = err
}

// sinks opens memSinks and remembers them by path.
type sinks struct {
	t      *testing.T
	bases  map[string][]byte
	mu     sync.Mutex
	byPath map[string]*memSink
	opens  map[string]int
}

func newSinks(t *testing.T) *sinks {
	return &sinks{t: t, bases: map[string][]byte{}, byPath: map[string]*memSink{}, opens: map[string]int{}}
}

func (k *sinks) open(r *imaging.FetchRequest) (imaging.ContentSink, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.opens[r.Entry.Path]++
	s := &memSink{t: k.t, req: r, basis: k.bases[r.Entry.Path]}
	k.byPath[r.Entry.Path] = s
	return s, nil
}

// settled reports an opened sink that got neither Finish nor Abort.
func (k *sinks) checkSettled() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for p, s := range k.byPath {
		s.mu.Lock()
		if !s.finished {
			k.t.Errorf("%s: sink opened but neither finished nor aborted", p)
		}
		s.mu.Unlock()
	}
	for p, n := range k.opens {
		if n != 1 {
			k.t.Errorf("%s: opened %d times", p, n)
		}
	}
}

// regular returns fetch requests for the regular files of entries, less
// hard links, which a receiver links rather than fetches.
func regular(entries []*tree.Entry) []*imaging.FetchRequest {
	var reqs []*imaging.FetchRequest
	for _, e := range entries {
		if e.Type == tree.TypeRegular && e.LinkTo == "" {
			reqs = append(reqs, &imaging.FetchRequest{Entry: e})
		}
	}
	return reqs
}

// blockHashes returns the basis block list of content.
func blockHashes(content []byte, bs int) []uint64 {
	var out []uint64
	for off := 0; off < len(content); off += bs {
		out = append(out, xxhash.Sum64(content[off:min(off+bs, len(content))]))
	}
	return out
}

func paths(es []*tree.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Path)
	}
	return out
}

func init() {
	// The fake tree must itself be valid, or tests prove nothing.
	f := newFakeSource()
	var c tree.Checker
	for _, e := range f.entries {
		if err := c.Add(e); err != nil {
			panic(fmt.Sprintf("fake source: %v", err))
		}
	}
	if !slices.IsSortedFunc(paths(f.entries), tree.Compare) {
		panic("fake source: entries not sorted")
	}
}
