package imaging

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// DirSourceOptions configure a DirSource. The zero value is usable.
type DirSourceOptions struct {
	// CacheFile, when set, persists the hash cache there between runs so
	// an unchanged file is never read again. It must live outside the tree.
	CacheFile string
	// ReadOnlyCache uses CacheFile without ever writing it: an image's own
	// manifest, when the image is the source of a replica push.
	ReadOnlyCache bool
	// Workers bounds parallel walking and reading; zero means a default.
	Workers int
	// Changes, when set, answers ScanRequest.Since with a scan of only
	// what changed, and hands out tokens for later scans.
	Changes Changes
	// CacheLoads, when set with ReadOnlyCache, shares the scoped scans'
	// loads of the cache between the sources of one run (see CacheLoads).
	CacheLoads *CacheLoads
	// LendEntries says that the fn given to Scan keeps no *tree.Entry it
	// is given past its return (it may keep copies, and the strings and
	// xattrs in them): a full scan then lists into the entries fn is done
	// with instead of a new one each. The agent's server, which encodes
	// each entry as it gets it, sets it: the walk's entries were a quarter
	// of the golden node's allocations in a no-change pull (issue #14).
	LendEntries bool
	// Logger receives debug messages; nil is silent.
	Logger *slog.Logger
}

// DirSource is a Source reading a local directory. The agent serves one over
// the wire; local pulls and tests use it directly.
//
// A full scan holds only a window of the tree (issue #14): the walk hands
// its entries out in Compare order as it lists them (WalkEach), merged
// against the hash cache on disk a block at a time (manifestReader), and
// records them, as they go, into a new cache base beside the cache file.
// Fetches look their files up in that record; Close makes it the cache,
// with the hashes the fetches learned.
type DirSource struct {
	root *fsx.Root
	opts DirSourceOptions
	log  *slog.Logger

	mu       sync.Mutex
	prev     *manifestReader // the cache file as it was (nil: none or not opened yet)
	prevDone bool            // prev was opened (or there is none)
	prevID   fileID          // the cache file and its log when prev was opened

	// The last full scan's record: a base file in the cache's directory,
	// not yet the cache, and a reader of it for fetches (recordReader).
	record       string
	recorded     *manifestReader
	recordDone   bool // the record is complete (the scan finished)
	recordOpened bool // recordReader tried to open it
	// recordIsCache says the scan's entries were prev's, all of them:
	// nothing was written (record is ""), prev is the record.
	recordIsCache bool

	extra   map[string]*tree.Entry // scoped scans' entries, by path
	learned learnedSet             // hashes fetches computed
	dirty   bool
	didScan bool         // a full scan was made
	scopes  []tree.Scope // the scopes of the scoped scans made
}

// fileID says whether the cache file (and its log) changed: another
// source of the same tree (a pull's extra stream) may record hashes in it
// while this one runs.
type fileID struct{ base, log [3]int64 }

func statID(p string) [3]int64 {
	var st unix.Stat_t
	if unix.Stat(p, &st) != nil {
		return [3]int64{}
	}
	return [3]int64{int64(st.Ino), st.Size, st.Mtim.Nano()}
}

func cacheID(path string) fileID { return fileID{statID(path), statID(LogPath(path))} }

// OpenDirSource opens the directory at path as a Source.
func OpenDirSource(path string, opts DirSourceOptions) (*DirSource, error) {
	r, err := fsx.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	s := &DirSource{root: r, opts: opts, log: opts.Logger}
	if opts.CacheFile != "" {
		s.learned.dir = filepath.Dir(opts.CacheFile)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// prevCache opens the hash cache for lookups, once. Called with s.mu held.
func (s *DirSource) prevCache() *manifestReader {
	if s.prevDone || s.opts.CacheFile == "" {
		s.prevDone = true
		return s.prev
	}
	s.prevDone = true
	s.prevID = cacheID(s.opts.CacheFile)
	r, err := openManifestReader(s.opts.CacheFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		s.log.Warn("hash cache unreadable, starting cold", "file", s.opts.CacheFile, "err", err)
	default:
		s.prev = r
	}
	return s.prev
}

// Scan walks the directory. Files the hash cache vouches for carry their
// hash; others are hashed only when req.Hash is set (or later, on Fetch).
func (s *DirSource) Scan(ctx context.Context, req ScanRequest, fn func(*tree.Entry) error) (ScanResult, error) {
	m, err := exclude.New(req.Excludes)
	if err != nil {
		return ScanResult{}, fmt.Errorf("excludes: %w", err)
	}
	token := ""
	if s.opts.Changes != nil && len(req.Scopes) == 0 {
		scopes, tok, full, err := s.opts.Changes.Changes(ctx, req.Since)
		switch {
		case err != nil:
			s.log.Warn("change journal unusable: full scan", "err", err)
		case !full && req.Since != "":
			req.Scopes = changeScopes(scopes)
			token = tok
		default:
			token = tok
		}
	}
	wo := WalkOptions{Hash: req.Hash, Workers: s.opts.Workers, Logger: s.log, Scopes: req.Scopes, ReadAhead: sourceReadAhead}
	if m != nil {
		wo.Exclude = m
	}
	var res *WalkResult
	if len(req.Scopes) > 0 {
		res, err = s.scanScoped(ctx, wo, fn)
	} else {
		res, err = s.scanFull(ctx, wo, fn)
	}
	if err != nil {
		return ScanResult{}, err
	}
	scope := tree.FullScope
	if len(req.Scopes) > 0 {
		scope = req.Scopes
	}
	return ScanResult{Scope: scope, Problems: res.Problems, Entries: res.Listed, Token: token}, nil
}

// sourceReadAhead is the read-ahead window of a source's walk, in listed
// entries (WalkOptions.ReadAhead). The walk's default, 8,192, held ~2.2 MB
// of entries, a third of the golden node's live heap in a no-change pull;
// an eighth of it still leaves each of the walk's 8 workers ~128 entries
// of directories to read ahead of the one handed out, and measured no
// slower on a 225k-entry tree in the page cache (issue #14).
const sourceReadAhead = 1024

// scanScoped walks a few changed parts of the tree (a journal-driven
// push): the cache is read only where the scopes are, and the entries are
// kept for fetches and the cache update, all in proportion to the change.
func (s *DirSource) scanScoped(ctx context.Context, wo WalkOptions, fn func(*tree.Entry) error) (*WalkResult, error) {
	if s.opts.CacheFile != "" {
		if find, err := s.loadScoped(wo.Scopes); err == nil {
			wo.Previous = find
		} else if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("hash cache unreadable, starting cold", "file", s.opts.CacheFile, "err", err)
		}
	}
	var entries []*tree.Entry
	res, err := WalkEach(ctx, s.root, wo, func(e *tree.Entry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	ResolveHardLinks(entries)
	s.mu.Lock()
	if res.Reread > 0 || res.HashedFiles > 0 {
		s.dirty = true
	}
	s.scopes = append(s.scopes, wo.Scopes...)
	if s.extra == nil {
		// Even an empty scoped scan is recorded (Close saves it).
		s.extra = make(map[string]*tree.Entry, len(entries))
	}
	for _, e := range entries {
		s.extra[e.Path] = e
	}
	s.mu.Unlock()
	for _, e := range entries {
		if err := fn(e); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// loadScoped loads the cache where scopes are, for lookups: once per
// run and scope set when the cache is read-only and shared (CacheLoads).
func (s *DirSource) loadScoped(scopes []tree.Scope) (func(string) *tree.Entry, error) {
	if s.opts.CacheLoads == nil || !s.opts.ReadOnlyCache {
		cm, err := LoadManifestScoped(s.opts.CacheFile, scopes)
		if err != nil {
			return nil, err
		}
		return cm.finder(), nil
	}
	return s.opts.CacheLoads.load(s.opts.CacheFile, scopes)
}

// CacheLoads shares the scoped loads of a read-only hash cache (an
// image's own manifest, DirSourceOptions.ReadOnlyCache) between the
// sources of one run: the replicas of an image pushed together are
// mostly sent the same change set, which is then decoded from the
// manifest once instead of once a replica. A load is reused only for the
// same cache file, unchanged (its and its log's inode, size and mtime),
// and the same scopes. It is safe for concurrent use; the zero value is
// ready. It never forgets: make one per run.
type CacheLoads struct {
	mu sync.Mutex
	m  map[string]*cacheLoad
	// loads counts the loads made (for tests).
	loads atomic.Int64
}

type cacheLoad struct {
	once sync.Once
	find func(string) *tree.Entry
	err  error
}

// load is LoadManifestScoped's finder, made once per file state and scopes.
func (c *CacheLoads) load(path string, scopes []tree.Scope) (func(string) *tree.Entry, error) {
	var key strings.Builder
	fmt.Fprintf(&key, "%s\x00%v", path, cacheID(path))
	for _, sc := range scopes {
		key.WriteByte(0)
		if sc.Tree {
			key.WriteByte(1)
		}
		key.WriteString(sc.Path)
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*cacheLoad{}
	}
	l := c.m[key.String()]
	if l == nil {
		l = &cacheLoad{}
		c.m[key.String()] = l
	}
	c.mu.Unlock()
	l.once.Do(func() {
		c.loads.Add(1)
		cm, err := LoadManifestScoped(path, scopes)
		if err != nil {
			l.err = err
			return
		}
		// finder sorts the entries if need be: done here, once, before
		// the lookups are shared (they only read).
		l.find = cm.finder()
	})
	return l.find, l.err
}

// scanFull walks the whole tree, handing each entry to fn as it is listed
// and recording it into a new cache base.
func (s *DirSource) scanFull(ctx context.Context, wo WalkOptions, fn func(*tree.Entry) error) (*WalkResult, error) {
	s.mu.Lock()
	prev := s.prevCache()
	s.dropRecord()
	s.mu.Unlock()
	if prev != nil {
		wo.Previous = prev.lookup
		wo.previousDir = prev.cursor
	}
	// (The recorder below keeps copies.)
	wo.lend = s.opts.LendEntries
	var rec *recorder
	if s.opts.CacheFile != "" && !s.opts.ReadOnlyCache {
		// (A read-only cache is an image's manifest: nothing is written
		// beside it; fetches then stat their files.)
		var err error
		if rec, err = newRecorder(s.opts.CacheFile, prev); err != nil {
			s.log.Warn("hash cache: cannot record this scan", "err", err)
		}
	}
	recorded, differs := 0, false
	res, err := WalkEach(ctx, s.root, wo, func(e *tree.Entry) error {
		if rec != nil && e.Problem == "" {
			rec.add(e)
			recorded++
		}
		return fn(e)
	})
	if rec != nil {
		path, same, rerr := rec.finish(err == nil)
		if err == nil && rerr != nil {
			s.log.Warn("hash cache: cannot record this scan", "err", rerr)
		}
		if err == nil && rerr == nil {
			s.mu.Lock()
			s.record, s.recordDone, s.recordIsCache = path, true, same
			s.mu.Unlock()
			differs = !same
		}
	}
	if prev != nil {
		// Until Close, prev answers only a fetch's rare miss in the
		// record and the rewrite of the cache: its blocks need not stay
		// decoded meanwhile.
		prev.dropBlocks()
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.didScan = true
	// A record that differs from the cache replaces it, even where only
	// the hashes a hard link's group lends its other names differ (the
	// cache rewritten after a full pull has them on the fetched leaders
	// only): the next scans then write nothing.
	if res.Reread > 0 || res.HashedFiles > 0 || prev == nil || prev.hasLog() || recorded != prev.total() || differs {
		s.dirty = true
	}
	s.mu.Unlock()
	return res, nil
}

// dropRecord removes the record of an earlier scan. Called with s.mu held.
func (s *DirSource) dropRecord() {
	if s.recorded != nil {
		s.recorded.Close()
	}
	if s.record != "" {
		os.Remove(s.record)
	}
	s.record, s.recorded, s.recordDone, s.recordOpened, s.recordIsCache = "", nil, false, false, false
}

// recordReader returns a reader of the last full scan's record, opened
// on first use (nil: none, or it cannot be read). A no-change pull
// fetches nothing, and the record's index read as the scan ended (~0.4 MB
// for 225k entries, the walk's blocks still held) made the golden node's
// peak RSS (issue #14). Called with s.mu held.
func (s *DirSource) recordReader() *manifestReader {
	if s.recorded == nil && s.recordDone && !s.recordOpened {
		s.recordOpened = true
		if s.recordIsCache {
			// The cache's file, open since before the scan, and its
			// index: the record's blocks, read by a reader of its own.
			s.recorded = s.prev.shared(fetchReaderBlocks)
			return s.recorded
		}
		if r, err := openManifestReader(s.record); err == nil {
			r.keep = fetchReaderBlocks
			s.recorded = r
		} else {
			s.log.Warn("hash cache: cannot read this scan's record", "err", err)
		}
	}
	return s.recorded
}

// recorder writes a scan's entries, as the walk hands them out, into a new
// base file beside the cache (not yet the cache): one block of entries is
// encoded at a time, on its own goroutine.
//
// While the entries are those of the cache, entry for entry (a no-change
// scan), nothing is encoded: the recorder compares them with the cache's
// decoded blocks (the walk has just decoded them for its lookups) and
// writes only from the first difference, the cache's blocks before it
// copied as they are (checked against their sums again) and the rest
// encoded. A scan that differs nowhere writes nothing: its record is the
// cache itself (same). Encoding a record that a no-change pull then
// deleted was ~0.1 s of the golden node's ~1.5 s at 225k entries (issue
// #14).
//
// The batches go back to the walk once encoded (free): a recorded scan
// copies each entry into one, and new batches were a fifth of the golden
// node's allocations in a no-change pull, and of its collections (issue
// #14). There are at most recorderBatches: the walk waits for one to come
// back rather than make another. With one spare kept and a new batch
// whenever none was back yet, half the batches of a no-change pull of
// 225k entries were new (~16 MB) under load; more spares held ~0.2 MiB
// more of its RSS.
type recorder struct {
	f     *os.File
	ch    chan []tree.Entry
	free  chan []tree.Entry
	batch []tree.Entry
	made  int // batches made
	done  chan error
	// same is set when the scan's entries were the cache's, all of them
	// and in order: nothing was written (read after done).
	same bool
	// copied and encoded count the blocks copied from the cache and
	// encoded, written the bytes written (read after done).
	copied, encoded, written int
}

// recordWork adds up what recorders did (for tests): blocks copied from
// the cache and encoded, bytes written.
var recordWork struct{ copied, encoded, written atomic.Int64 }

// recorderQueue is how many full batches may wait for the encoder: it
// encodes ~20 times faster than a walk lists.
const recorderQueue = 2

// recorderBatches bounds a recorder's batches: one being filled and the
// queue's (one of which may be being encoded).
const recorderBatches = recorderQueue + 1

// newRecorder starts a record of a scan beside cache. prev, when not nil,
// is the cache's reader: while the scan's entries are its own, nothing is
// written (see recorder). A cache with a log is not the scan's record as
// it is: prev is then ignored.
func newRecorder(cache string, prev *manifestReader) (*recorder, error) {
	f, err := os.CreateTemp(filepath.Dir(cache), filepath.Base(cache)+".scan-*")
	if err != nil {
		return nil, err
	}
	// free holds every batch there is: giving one back never waits.
	r := &recorder{f: f, ch: make(chan []tree.Entry, recorderQueue), free: make(chan []tree.Entry, recorderBatches), done: make(chan error, 1)}
	if prev != nil && (prev.bi == nil || prev.hasLog()) {
		prev = nil
	}
	go func() {
		err := r.record(prev)
		for b := range r.ch { // the walk goes on
			r.giveBack(b)
		}
		r.done <- err
	}()
	return r, nil
}

func (r *recorder) giveBack(b []tree.Entry) {
	clear(b)
	r.free <- b[:0]
}

// record writes the batches as they come, from the first entry that is not
// prev's (nil: from the first).
func (r *recorder) record(prev *manifestReader) error {
	m := cacheMatch{r: prev}
	defer m.release()
	var (
		out *bufio.Writer
		bw  *baseWriter
	)
	// begin starts the file: the cache's entries the scan matched, then
	// the scan's from the one that differed on.
	begin := func() error {
		// 64 KiB: the writes are a few hundred for a 225k-entry tree
		// either way, and the buffer is live through the whole scan.
		out = bufio.NewWriterSize(r.f, 64<<10)
		var err error
		if bw, err = newBaseWriter(out, newGeneration()); err != nil {
			return err
		}
		return m.writePrefix(bw)
	}
	for b := range r.ch {
		for i := range b {
			e := &b[i]
			if bw == nil {
				if m.r != nil && m.same(e) {
					continue
				}
				if err := begin(); err != nil {
					r.giveBack(b)
					return err
				}
			}
			if err := bw.add(e); err != nil {
				r.giveBack(b)
				return err
			}
		}
		// (baseWriter keeps a copy of the last entry, not b's.)
		r.giveBack(b)
	}
	if bw == nil {
		if m.r != nil && m.complete() {
			r.same = true
			return nil
		}
		// The scan ended before the cache did.
		if err := begin(); err != nil {
			return err
		}
	}
	err := bw.finish()
	if err == nil {
		err = out.Flush()
	}
	r.copied, r.encoded, r.written = bw.copied, bw.encoded, bw.written
	recordWork.copied.Add(int64(bw.copied))
	recordWork.encoded.Add(int64(bw.encoded))
	recordWork.written.Add(int64(bw.written))
	return err
}

// cacheMatch follows a scan's entries through a cache's blocks, entry for
// entry, while they are the same.
type cacheMatch struct {
	r    *manifestReader // nil: no cache
	i, j int             // the next entry: block i's entry j
	pb   *packedBlock    // block i, held (nil: not located yet)
	last string          // the path of the last entry matched
}

// same reports whether e is the cache's next entry, every field of it,
// and moves on past it if so.
func (m *cacheMatch) same(e *tree.Entry) bool {
	if !m.next() || !m.pb.equal(m.j, e) {
		return false
	}
	m.j++
	m.last = e.Path
	return true
}

// next locates the next entry; false at the cache's end or at a damaged
// block.
func (m *cacheMatch) next() bool {
	for m.i < m.r.bi.blocks.len() {
		if m.pb == nil {
			if m.pb = m.r.block(m.i); m.pb == nil {
				return false
			}
		}
		if m.j < m.pb.len() {
			return true
		}
		m.release()
		m.i, m.j = m.i+1, 0
	}
	return false
}

// complete reports whether every entry of the cache was matched.
func (m *cacheMatch) complete() bool { return !m.next() && m.i == m.r.bi.blocks.len() }

func (m *cacheMatch) release() {
	if m.pb != nil {
		m.r.release(m.pb)
		m.pb = nil
	}
}

// writePrefix writes what was matched into bw: the blocks before block i
// copied, and block i's first j entries encoded.
func (m *cacheMatch) writePrefix(bw *baseWriter) error {
	if m.r == nil || (m.i == 0 && m.j == 0) {
		return nil
	}
	last := m.last
	if m.j > 0 {
		last = "" // added below, the last of them after
	}
	if err := bw.copyBlocks(m.r.bf, &m.r.bi.blocks, m.i, last); err != nil {
		return err
	}
	var e tree.Entry
	for k := range m.j {
		m.pb.entry(k, m.pb.path(k), &e)
		if err := bw.add(&e); err != nil {
			return err
		}
	}
	m.release()
	return nil
}

// add records a copy of e (the receiver may change the entry it is given).
func (r *recorder) add(e *tree.Entry) {
	if r.batch == nil {
		select {
		case r.batch = <-r.free:
		default:
			if r.made < recorderBatches {
				r.batch = make([]tree.Entry, 0, manifestBlock)
				r.made++
			} else {
				r.batch = <-r.free
			}
		}
	}
	r.batch = append(r.batch, *e)
	if len(r.batch) == manifestBlock {
		r.ch <- r.batch
		r.batch = nil
	}
}

// finish completes the file and returns its path; without ok (the scan
// failed) it removes it. When the scan's entries were the cache's, all of
// them, nothing was written: the path is "" and same is set.
func (r *recorder) finish(ok bool) (path string, same bool, err error) {
	if len(r.batch) > 0 {
		r.ch <- r.batch
	}
	close(r.ch)
	// No fsync here: the scan's end (and the receiver's first fetch)
	// would wait for it, 1-4 ms on a quiet disk and 0.5 s on a busy one.
	// The record becomes the cache only at Close, synced then
	// (saveFullCache); a full pull rewrites it with the fetches' hashes
	// instead, and that file is synced as it is written.
	err = <-r.done
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err != nil || !ok || r.same {
		os.Remove(r.f.Name())
		return "", err == nil && ok && r.same, err
	}
	return r.f.Name(), false, nil
}

// changeScopes turns a journal's dirty scopes into scan scopes: each
// changed path's parent is rescanned too (a child created or removed
// changed its mtime), and the root always, so even an empty change set is
// a valid, non-empty scan.
func changeScopes(dirty []tree.Scope) []tree.Scope {
	out := []tree.Scope{{Path: tree.Root}}
	seen := map[tree.Scope]bool{out[0]: true}
	add := func(s tree.Scope) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, d := range dirty {
		if d.Path != tree.Root {
			add(tree.Scope{Path: tree.Dir(d.Path)})
		}
		add(d)
	}
	slices.SortFunc(out, func(a, b tree.Scope) int {
		if c := tree.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		if a.Tree == b.Tree {
			return 0
		}
		if a.Tree {
			return 1
		}
		return -1
	})
	return out
}

// CopyFile copies a scanned file into dst with a reflink where the
// filesystem can, else copy_file_range over its data extents (holes stay
// holes). The content is hashed from dst unless the cache vouches for it.
func (s *DirSource) CopyFile(ctx context.Context, e *tree.Entry, dst *fsx.File) (FetchResult, error) {
	scanned, err := s.lookup(e)
	if err != nil {
		return FetchResult{}, &FileError{Op: "copy", Path: e.Path, Err: err}
	}
	f, err := s.root.OpenFile(e.Path)
	if err != nil {
		return FetchResult{}, &FileError{Op: "copy", Path: e.Path, Err: err}
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return FetchResult{}, &FileError{Op: "copy", Path: e.Path, Err: err}
	}
	cur := entryFromStat(e.Path, &st)
	if !Unchanged(scanned, cur) {
		return FetchResult{}, &FileError{Op: "copy", Path: e.Path, Err: ErrChanged}
	}
	bp := fsx.GetBuf()
	defer fsx.PutBuf(bp)
	buf := *bp
	if err := fsx.Clone(dst, f); err != nil {
		exts, err := fsx.ExtentsOf(f, &st)
		if err != nil {
			return FetchResult{}, &FileError{Op: "copy", Path: e.Path, Err: err}
		}
		for _, x := range exts {
			if err := fsx.CopyRange(dst, f, x.Off, x.Len, buf); err != nil {
				return FetchResult{}, fmt.Errorf("copy %q: %w", e.Path, err)
			}
		}
		if err := dst.Truncate(cur.Size); err != nil {
			return FetchResult{}, fmt.Errorf("copy %q: %w", e.Path, err)
		}
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || !Unchanged(scanned, entryFromStat(e.Path, &st)) {
		return FetchResult{}, &FileError{Op: "copy", Path: e.Path, Err: ErrChanged}
	}
	h := scanned.Hash
	if !scanned.Hashed() {
		if h, _, err = HashContent(dst, cur.Size, buf); err != nil {
			return FetchResult{}, fmt.Errorf("copy %q: %w", e.Path, err)
		}
		cur.SetHash(h)
		s.remember(scanned, cur)
	}
	return FetchResult{Size: cur.Size, Hash: h, Mtime: cur.Mtime}, nil
}

// Fetch reads the requested files in parallel and feeds their sinks. The
// workers take the next request by index, without a feeding goroutine, and
// a lone request is read on the caller's goroutine: a receiver asks for
// files a few at a time, and a goroutine hand-off per file (a feeder, a
// channel, a worker started per call) cost the golden node more than
// reading a small file does (issue 14).
func (s *DirSource) Fetch(ctx context.Context, reqs []*FetchRequest, open func(*FetchRequest) (ContentSink, error)) error {
	workers := s.opts.Workers
	if workers <= 0 {
		workers = ioWorkers(2)
	}
	workers = min(workers, len(reqs))
	var next atomic.Int64
	work := func(ctx context.Context) error {
		for {
			i := next.Add(1) - 1
			if i >= int64(len(reqs)) {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			r := reqs[i]
			sink, err := open(r)
			if err != nil {
				return err
			}
			if err := s.send(ctx, r, sink); err != nil {
				return err
			}
		}
	}
	if workers <= 1 {
		return work(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	for range workers - 1 {
		g.Go(func() error { return work(gctx) })
	}
	err := work(gctx)
	if err != nil {
		cancel() // the others stop at their next file
	}
	if werr := g.Wait(); err == nil {
		err = werr
	}
	return err
}

// smallFetchBuf is the size of the buffers a fetch of a small file reads
// into; a larger file (or block size) takes a 256 KiB fsx.GetBuf.
const smallFetchBuf = 32 << 10

var smallBufPool = sync.Pool{New: func() any { b := make([]byte, smallFetchBuf); return &b }}

// send streams one file into its sink. Errors returned are the sink's (the
// receiver gave up); problems with the file itself go to sink.Abort.
func (s *DirSource) send(ctx context.Context, r *FetchRequest, sink ContentSink) error {
	p := r.Entry.Path
	scanned, err := s.lookup(r.Entry)
	if err != nil {
		sink.Abort(&FileError{Op: "fetch", Path: p, Err: err})
		return nil
	}
	// Pooled (a receiver fetches in many small batches, and a fresh
	// buffer per worker per batch kept the GC busy), and as large as the
	// file needs: most files are small, and the fetch workers each
	// holding a 256 KiB buffer were a third of the golden node's live
	// heap in a full pull (issue #14). A file that fits is read in one
	// call either way.
	need := scanned.Size
	if b := r.Basis; b != nil && b.BlockSize > 0 {
		need = max(need, int64(b.BlockSize))
	}
	var bp *[]byte
	if need <= smallFetchBuf {
		bp = smallBufPool.Get().(*[]byte)
		defer smallBufPool.Put(bp)
	} else {
		bp = fsx.GetBuf()
		defer fsx.PutBuf(bp)
	}
	buf := *bp
	const tries = 3
	var lastErr error
	for range tries {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, sent, err := s.sendOnce(scanned, r.Basis, sink, buf)
		if err == nil {
			return sink.Finish(res)
		}
		var se sinkError
		if errors.As(err, &se) {
			return se.err
		}
		lastErr = err
		if sent || !errors.Is(err, ErrChanged) {
			break
		}
	}
	sink.Abort(&FileError{Op: "read", Path: p, Err: lastErr})
	return nil
}

type sinkError struct{ err error }

func (e sinkError) Error() string { return e.err.Error() }

// lookup finds the scanned entry for a request: in the last full scan's
// record, or among a scoped scan's entries. A stream that did not scan (an
// extra transfer stream of a pull) stats the file instead; it must be a
// regular file with the size and mtime the receiver was told, and takes
// its hash from the cache when the cache vouches for it.
//
// It returns a copy the caller may read freely.
func (s *DirSource) lookup(want *tree.Entry) (*tree.Entry, error) {
	s.mu.Lock()
	var snap tree.Entry
	found := false
	if e := s.extra[want.Path]; e != nil {
		snap, found = *e, true
	} else if r := s.recordReader(); r != nil {
		found = r.lookupInto(want.Path, &snap)
	}
	if found {
		s.mu.Unlock()
		if snap.Type != tree.TypeRegular {
			return nil, errors.New("not a regular file of the last scan")
		}
		return &snap, nil
	}
	s.mu.Unlock()
	if err := tree.ValidatePath(want.Path); err != nil || want.Path == tree.Root {
		return nil, fmt.Errorf("bad path: %v", err)
	}
	d, name, err := s.root.OpenParent(want.Path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var st unix.Stat_t
	if err := d.Lstat(name, &st); err != nil {
		return nil, err
	}
	e := entryFromStat(want.Path, &st)
	if e.Type != tree.TypeRegular || e.Size != want.Size || e.Mtime != want.Mtime {
		return nil, fmt.Errorf("%w: not the file that was scanned", ErrChanged)
	}
	s.mu.Lock()
	var prev *tree.Entry
	if c := s.prevCache(); c != nil {
		prev = c.lookup(want.Path)
	}
	s.mu.Unlock()
	if Unchanged(prev, e) && prev.Hashed() {
		e.SetHash(prev.Hash)
	}
	return e, nil
}

// sendOnce reads the file once. sent reports whether any Data or Reuse
// reached the sink (after which a retry is impossible).
func (s *DirSource) sendOnce(scanned *tree.Entry, basis *Basis, sink ContentSink, buf []byte) (res FetchResult, sent bool, err error) {
	f, err := s.root.OpenFile(scanned.Path)
	if err != nil {
		return res, false, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return res, false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Dev != scanned.Dev || st.Ino != scanned.Ino {
		return res, false, fmt.Errorf("%w: replaced since the scan", ErrChanged)
	}
	cur := entryFromStat(scanned.Path, &st)
	if cur.Size != scanned.Size || cur.Mtime != scanned.Mtime {
		// The receiver was told the scanned size and never accepts more:
		// report the file as changed (the next run takes it).
		return res, false, fmt.Errorf("%w: modified since the scan", ErrChanged)
	}
	if Unchanged(scanned, cur) && scanned.Hashed() {
		cur.SetHash(scanned.Hash)
	}
	size := cur.Size

	// The receiver has a whole-file hash: answer "unchanged" if ours is
	// the same, reading the file at most once to learn it.
	if basis != nil && basis.Hashed && basis.Size == size {
		if !cur.Hashed() {
			h, _, err := hashOpenFile(f, cur, buf)
			if err != nil {
				return res, false, err
			}
			cur.SetHash(h)
			s.remember(scanned, cur)
		}
		if cur.Hash == basis.Hash {
			return FetchResult{Size: size, Hash: cur.Hash, Unchanged: true, Mtime: cur.Mtime}, false, nil
		}
	}

	d := xxhash.New()
	var pos int64 // bytes accounted for in the hash
	emitData := func(off int64, p []byte) error {
		hashZeros(d, off-pos)
		d.Write(p)
		pos = off + int64(len(p))
		if fsx.IsZero(p) {
			return nil // keep it a hole
		}
		sent = true
		if err := sink.Data(off, p); err != nil {
			return sinkError{err}
		}
		return nil
	}

	exts, err := fsx.ExtentsOf(f, &st)
	if err != nil {
		return res, false, err
	}
	if basis != nil && basis.BlockSize > 0 && basis.BlockSize <= len(buf) && len(basis.Blocks) > 0 {
		// Block delta: compare each block of ours with the receiver's
		// block at the same offset; send only those that differ.
		bs := int64(basis.BlockSize)
		ei := 0
		for off := int64(0); off < size; off += bs {
			n := min(bs, size-off)
			for ei < len(exts) && exts[ei].Off+exts[ei].Len <= off {
				ei++
			}
			if ei == len(exts) || exts[ei].Off >= off+n {
				continue // the whole block is a hole
			}
			p := buf[:n]
			if err := fsx.ReadFullAt(f, p, off); err != nil {
				return res, sent, fmt.Errorf("read: %w", err)
			}
			i := off / bs
			if i < int64(len(basis.Blocks)) && off+n <= basis.Size && (n == bs || off+n == basis.Size) && xxhash.Sum64(p) == basis.Blocks[i] {
				hashZeros(d, off-pos)
				d.Write(p)
				pos = off + n
				sent = true
				if err := sink.Reuse(off, n); err != nil {
					return res, sent, sinkError{err}
				}
				continue
			}
			if err := emitData(off, p); err != nil {
				return res, sent, err
			}
		}
	} else {
		for _, x := range exts {
			for off, end := x.Off, x.Off+x.Len; off < end; {
				n := min(int64(len(buf)), end-off)
				p := buf[:n]
				if err := fsx.ReadFullAt(f, p, off); err != nil {
					return res, sent, fmt.Errorf("read: %w", err)
				}
				if err := emitData(off, p); err != nil {
					return res, sent, err
				}
				off += n
			}
		}
	}
	hashZeros(d, size-pos)
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return res, sent, err
	}
	if after := entryFromStat(scanned.Path, &st); !Unchanged(cur, after) {
		return res, sent, fmt.Errorf("%w: modified while read", ErrChanged)
	}
	h := d.Sum64()
	if cur.Hashed() && cur.Hash != h {
		// The cache said otherwise although the file looks unchanged:
		// trust what was read, and fix the cache.
		s.log.Warn("hash cache disagreed with content", "path", scanned.Path)
	}
	cur.SetHash(h)
	s.remember(scanned, cur)
	return FetchResult{Size: size, Hash: h, Mtime: cur.Mtime}, sent, nil
}

// remember records a freshly computed hash for the cache: on a scoped
// scan's entry, or compactly for Close to merge in.
func (s *DirSource) remember(snap, cur *tree.Entry) {
	if !Unchanged(snap, cur) || (snap.Hashed() && snap.Hash == cur.Hash) {
		// (A hash the scan had from the cache is the record's already:
		// the cache is not rewritten for it.)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.extra[snap.Path]; e != nil {
		if Unchanged(e, cur) {
			e.SetHash(cur.Hash)
			s.dirty = true
		}
		return
	}
	if s.opts.CacheFile == "" || s.opts.ReadOnlyCache {
		return // no cache to save it in
	}
	s.learned.add(cur)
	s.dirty = true
}

// Close saves the hash cache and releases the root. Several DirSources of
// one tree (the streams of one pull) may close in any order: the cache file
// is locked, and each merges the hashes the other learned.
func (s *DirSource) Close() error {
	var err error
	s.mu.Lock()
	if s.opts.CacheFile != "" && !s.opts.ReadOnlyCache && s.dirty {
		err = s.saveCache()
	}
	if s.learned.err != nil {
		s.log.Warn("hash cache: some learned hashes were not kept", "err", s.learned.err)
	}
	s.learned.close()
	s.prev.Close()
	s.prev, s.prevDone = nil, false
	s.dropRecord()
	s.mu.Unlock()
	if cerr := s.root.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *DirSource) saveCache() error {
	lock, err := os.OpenFile(s.opts.CacheFile+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("hash cache: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("hash cache: %w", err)
	}
	switch {
	case s.didScan:
		if s.recordReader() == nil {
			return nil // the scan could not be recorded (logged then)
		}
		return s.saveFullCache()
	case len(s.scopes) > 0:
		// Only changed parts were scanned: record them, in time
		// proportional to them.
		set := tree.NewScopeSet(s.scopes)
		onDisk := map[string]*tree.Entry{}
		if m, err := LoadManifestScoped(s.opts.CacheFile, s.scopes); err == nil {
			onDisk = m.index()
		}
		var entries []*tree.Entry
		for _, e := range s.extra {
			if e.Problem != "" || !set.Covers(e.Path) {
				continue
			}
			if d := onDisk[e.Path]; !e.Hashed() && d != nil && d.Hashed() && Unchanged(d, e) {
				e.SetHash(d.Hash)
			}
			entries = append(entries, e)
		}
		sortEntries(entries)
		return UpdateManifest(s.opts.CacheFile, s.scopes, entries)
	case s.learned.len() == 0:
		return nil
	case !s.learned.spilled() && s.learned.len() <= maxLearnedPaths:
		// A few hashes from a fetch-only source: its entries came from a
		// bare lstat (no xattrs, no link target) and must never replace
		// what a scan recorded, so only hashes travel, as a log update.
		paths := s.learned.paths()
		scopes := make([]tree.Scope, len(paths))
		for i, p := range paths {
			scopes[i] = tree.Scope{Path: p}
		}
		m, err := LoadManifestScoped(s.opts.CacheFile, scopes)
		if err != nil {
			return nil // nothing recorded to add the hashes to
		}
		learned := false
		for _, d := range m.Entries {
			if h, ok := s.learned.hashFor(d); ok && !d.Hashed() {
				d.SetHash(h)
				learned = true
			}
		}
		if !learned {
			return nil // nothing the cache did not know
		}
		return UpdateManifest(s.opts.CacheFile, scopes, m.Entries)
	default:
		// Many hashes from a fetch-only source: a new base, the cache as
		// it is now with the hashes merged in, a block at a time.
		cur, err := openManifestReader(s.opts.CacheFile)
		if err != nil {
			return nil
		}
		defer cur.Close()
		return s.rewriteCache(cur.all(), nil)
	}
}

// syncRecord flushes a scan's record to disk before it becomes the cache
// (a variable: tests count the calls).
var syncRecord = func(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// saveFullCache makes the last full scan's record the cache, with the
// hashes fetches learned and those another source of the same tree
// recorded meanwhile merged in. When there are none, the record becomes
// the cache as it is.
func (s *DirSource) saveFullCache() error {
	if s.recordIsCache && s.learned.len() == 0 && cacheID(s.opts.CacheFile) == s.prevID {
		return nil // the cache is the record already
	}
	if s.learned.len() == 0 && cacheID(s.opts.CacheFile) == s.prevID {
		s.recorded.Close()
		s.recorded = nil
		if err := syncRecord(s.record); err != nil {
			return fmt.Errorf("save hash cache: %w", err)
		}
		if err := os.Rename(s.record, s.opts.CacheFile); err != nil {
			return fmt.Errorf("save hash cache: %w", err)
		}
		s.record = ""
		if err := os.Remove(LogPath(s.opts.CacheFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("save hash cache: %w", err)
		}
		syncDir(filepath.Dir(s.opts.CacheFile))
		return nil
	}
	// What is on disk now (another stream may have added hashes).
	var onDisk *manifestReader
	if cacheID(s.opts.CacheFile) != s.prevID {
		if r, err := openManifestReader(s.opts.CacheFile); err == nil {
			onDisk = r
			defer r.Close()
		}
	} else {
		onDisk = s.prev
	}
	// The fetches are over: the blocks their lookups kept decoded are
	// not needed by the rewrite (all decodes its own, one at a time),
	// and held beside the merge they made the golden node's peak.
	s.recorded.dropBlocks()
	return s.rewriteCache(s.recorded.all(), onDisk)
}

// rewriteCache writes entries (in Compare order) as the new cache base,
// giving an unhashed file the hash a fetch learned or onDisk recorded
// while the file is still the object they saw.
func (s *DirSource) rewriteCache(entries iter.Seq2[*tree.Entry, error], onDisk *manifestReader) error {
	var rerr, lerr error
	// The learned hashes, in the entries' order: merged as they go.
	next, stop := iter.Pull(s.learned.sorted(&lerr))
	defer stop()
	cur, more := next()
	learned := func(e *tree.Entry) (uint64, bool) {
		for more && tree.Compare(cur.path, e.Path) < 0 {
			cur, more = next()
		}
		h, ok := uint64(0), false
		for more && cur.path == e.Path {
			if !ok && cur.matches(e) {
				h, ok = cur.hash, true
			}
			cur, more = next()
		}
		return h, ok
	}
	var d tree.Entry // onDisk's entry, reused
	seq := func(yield func(*tree.Entry) bool) {
		for e, err := range entries {
			if err != nil {
				rerr = err
				return
			}
			if e.Type == tree.TypeRegular && !e.Hashed() {
				if h, ok := learned(e); ok {
					e.SetHash(h)
				} else if onDisk != nil {
					if onDisk.lookupInto(e.Path, &d) && d.Hashed() && Unchanged(&d, e) {
						e.SetHash(d.Hash)
					}
				}
			}
			if !yield(e) {
				return
			}
		}
	}
	if err := saveManifestSeq(s.opts.CacheFile, seq); err != nil {
		return err
	}
	if rerr != nil {
		// A damaged record: what was written is a short cache, which
		// costs re-reads, never a wrong hash.
		s.log.Warn("hash cache: record damaged", "err", rerr)
	}
	if lerr != nil {
		s.log.Warn("hash cache: learned hashes unreadable", "err", lerr)
	}
	return nil
}
