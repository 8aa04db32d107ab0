package imaging

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sync"

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
	// Logger receives debug messages; nil is silent.
	Logger *slog.Logger
}

// DirSource is a Source reading a local directory. The agent serves one over
// the wire; local pulls and tests use it directly.
type DirSource struct {
	root *fsx.Root
	opts DirSourceOptions
	log  *slog.Logger

	mu         sync.Mutex
	scanned    scannedSet               // from the last Scan, with local identity
	cache      func(string) *tree.Entry // lookup in the hash cache loaded from CacheFile (nil: none)
	cacheLen   int                      // entries in the cache
	cacheScope []tree.Scope             // what cache holds: nil for all of it
	cacheDone  bool                     // cache was loaded (or there is none)
	dirty      bool
	didScan    bool         // a full scan was made
	scopes     []tree.Scope // the scopes of the scoped scans made
}

// OpenDirSource opens the directory at path as a Source.
func OpenDirSource(path string, opts DirSourceOptions) (*DirSource, error) {
	r, err := fsx.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	s := &DirSource{root: r, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// loadCache loads the hash cache, all of it or (scopes set) only what the
// scopes cover, so that a scan of a few changed paths reads in proportion
// to them. Called with s.mu held or before any concurrent use.
func (s *DirSource) loadCache(scopes []tree.Scope) {
	if s.opts.CacheFile == "" || (s.cacheDone && s.cacheScope == nil) {
		s.cacheDone = true
		return
	}
	var err error
	if scopes != nil {
		var m *Manifest
		if m, err = LoadManifestScoped(s.opts.CacheFile, scopes); err == nil {
			s.cache, s.cacheLen = m.finder(), len(m.Entries)
		}
	} else {
		// A full walk: the compact form, built block by block (a
		// decoded manifest was the largest part of the golden node's
		// heap).
		var c *hashCache
		if c, err = loadHashCache(s.opts.CacheFile); err == nil {
			s.cache, s.cacheLen = c.lookup, c.n
		}
	}
	s.cacheDone, s.cacheScope = true, scopes
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		s.log.Warn("hash cache unreadable, starting cold", "file", s.opts.CacheFile, "err", err)
	}
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
	wo := WalkOptions{Hash: req.Hash, Workers: s.opts.Workers, Logger: s.log, Scopes: req.Scopes}
	if m != nil {
		wo.Exclude = m
	}
	s.mu.Lock()
	if len(req.Scopes) > 0 {
		s.loadCache(req.Scopes)
	} else {
		s.loadCache(nil)
	}
	s.mu.Unlock()
	if s.cache != nil {
		wo.Previous = s.cache
	}
	res, err := Walk(ctx, s.root, wo)
	if err != nil {
		return ScanResult{}, err
	}
	s.mu.Lock()
	// The walk has taken what it needed from the cache; the scanned
	// entries carry the hashes now. Drop it before the transfer (a third
	// of the heap of a full pull); saving reads the file again anyway.
	cacheLen := s.cacheLen
	s.cache, s.cacheLen, s.cacheDone = nil, 0, false // a later scan loads it again
	if res.Reread > 0 || res.HashedFiles > 0 || len(res.Entries) != cacheLen {
		s.dirty = true
	}
	s.didScan = s.didScan || len(req.Scopes) == 0
	if len(req.Scopes) > 0 {
		s.scopes = append(s.scopes, req.Scopes...)
	}
	if len(req.Scopes) == 0 {
		s.scanned.reset(res.Entries)
	} else {
		if s.scanned.extra == nil {
			// Even an empty scoped scan is recorded (Close saves it).
			s.scanned.extra = make(map[string]*tree.Entry, len(res.Entries))
		}
		for _, e := range res.Entries {
			s.scanned.put(e)
		}
	}
	s.mu.Unlock()
	for _, e := range res.Entries {
		if err := fn(e); err != nil {
			return ScanResult{}, err
		}
	}
	scope := tree.FullScope
	if len(req.Scopes) > 0 {
		scope = req.Scopes
	}
	return ScanResult{Scope: scope, Problems: res.Problems, Entries: len(res.Entries), Token: token}, nil
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
func (s *DirSource) CopyFile(ctx context.Context, e *tree.Entry, dst *os.File) (FetchResult, error) {
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

// Fetch reads the requested files in parallel and feeds their sinks.
func (s *DirSource) Fetch(ctx context.Context, reqs []*FetchRequest, open func(*FetchRequest) (ContentSink, error)) error {
	workers := s.opts.Workers
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	g, ctx := errgroup.WithContext(ctx)
	next := make(chan *FetchRequest)
	g.Go(func() error {
		defer close(next)
		for _, r := range reqs {
			select {
			case next <- r:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			// Pooled: a receiver fetches in many small batches, and a
			// fresh buffer per worker per batch kept the GC busy.
			bp := fsx.GetBuf()
			defer fsx.PutBuf(bp)
			buf := *bp
			for r := range next {
				sink, err := open(r)
				if err != nil {
					return err
				}
				if err := s.send(ctx, r, sink, buf); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// send streams one file into its sink. Errors returned are the sink's (the
// receiver gave up); problems with the file itself go to sink.Abort.
func (s *DirSource) send(ctx context.Context, r *FetchRequest, sink ContentSink, buf []byte) error {
	p := r.Entry.Path
	scanned, err := s.lookup(r.Entry)
	if err != nil {
		sink.Abort(&FileError{Op: "fetch", Path: p, Err: err})
		return nil
	}
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

// lookup finds the scanned entry for a request. A stream that did not scan
// (an extra transfer stream of a pull) stats the file instead; it must be a
// regular file with the size and mtime the receiver was told.
//
// It returns a copy, taken under the lock, that the caller may read freely
// while other fetches of the same path record hashes (see remember).
func (s *DirSource) lookup(want *tree.Entry) (*tree.Entry, error) {
	s.mu.Lock()
	scanned := s.scanned.get(want.Path)
	var snap tree.Entry
	if scanned != nil {
		snap = *scanned
	}
	s.mu.Unlock()
	if scanned != nil {
		if snap.Type != tree.TypeRegular {
			return nil, errors.New("not a regular file of the last scan")
		}
		return &snap, nil
	}
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
	if !s.cacheDone {
		// A stream that only fetches (a pull's extra connection).
		s.loadCache(nil)
	}
	var prev *tree.Entry
	if s.cache != nil {
		prev = s.cache(want.Path)
	}
	if Unchanged(prev, e) && prev.Hashed() {
		e.SetHash(prev.Hash)
	}
	s.scanned.put(e)
	cp := *e
	s.mu.Unlock()
	return &cp, nil
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

// remember records a freshly computed hash for the cache, on the shared
// scanned entry (snap is the caller's copy of it, from lookup).
func (s *DirSource) remember(snap, cur *tree.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if shared := s.scanned.get(snap.Path); shared != nil && Unchanged(shared, cur) {
		shared.SetHash(cur.Hash)
		s.dirty = true
	}
}

// Close saves the hash cache and releases the root. Several DirSources of
// one tree (the streams of one pull) may close in any order: the cache file
// is locked, and each merges the hashes the other learned.
func (s *DirSource) Close() error {
	var err error
	s.mu.Lock()
	if s.opts.CacheFile != "" && !s.opts.ReadOnlyCache && s.dirty && !s.scanned.empty() {
		err = s.saveCache()
	}
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
		for e := range s.scanned.all() {
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
	default:
		// Only hashes travel from a fetch-only source: its entries come
		// from a bare lstat (no xattrs, no link target) and must never
		// replace what a scan recorded.
		var scopes []tree.Scope
		for e := range s.scanned.all() {
			if e.Hashed() {
				scopes = append(scopes, tree.Scope{Path: e.Path})
			}
		}
		if len(scopes) == 0 {
			return nil
		}
		m, err := LoadManifestScoped(s.opts.CacheFile, scopes)
		if err != nil {
			return nil // nothing recorded to add the hashes to
		}
		learned := false
		for _, d := range m.Entries {
			if e := s.scanned.get(d.Path); e != nil && e.Hashed() && !d.Hashed() && Unchanged(d, e) {
				d.SetHash(e.Hash)
				learned = true
			}
		}
		if !learned {
			return nil // nothing the cache did not know
		}
		return UpdateManifest(s.opts.CacheFile, scopes, m.Entries)
	}
}

// saveFullCache writes the whole listing of a full scan, keeping hashes
// that another source of the same tree recorded meanwhile.
func (s *DirSource) saveFullCache() error {
	// What is on disk now, in the compact form (not decoded whole).
	onDisk := func(string) *tree.Entry { return nil }
	if c, err := loadHashCache(s.opts.CacheFile); err == nil {
		onDisk = c.lookup
	}
	m := &Manifest{}
	for e := range s.scanned.all() {
		if e.Problem != "" {
			continue
		}
		if !e.Hashed() {
			if d := onDisk(e.Path); d != nil && d.Hashed() && Unchanged(d, e) {
				e.SetHash(d.Hash)
			}
		}
		m.Entries = append(m.Entries, e)
	}
	m.sort()
	return m.Save(s.opts.CacheFile)
}

// scannedSet holds a source's scanned entries by path: the last full
// scan's list as the walk returned it (sorted, found by binary search, no
// map of every path), and a map of what scoped scans and fetch-only
// lookups added since, which takes precedence.
type scannedSet struct {
	list  []*tree.Entry // tree.Compare order
	extra map[string]*tree.Entry
}

// reset makes a full scan's sorted entries the set.
func (ss *scannedSet) reset(list []*tree.Entry) { ss.list, ss.extra = list, nil }

func (ss *scannedSet) put(e *tree.Entry) {
	if ss.extra == nil {
		ss.extra = make(map[string]*tree.Entry)
	}
	ss.extra[e.Path] = e
}

func (ss *scannedSet) get(p string) *tree.Entry {
	if e := ss.extra[p]; e != nil {
		return e
	}
	return findEntry(ss.list, p)
}

func (ss *scannedSet) empty() bool { return ss.list == nil && ss.extra == nil }

// all yields every entry once (in no particular order).
func (ss *scannedSet) all() iter.Seq[*tree.Entry] {
	return func(yield func(*tree.Entry) bool) {
		for _, e := range ss.list {
			if _, ok := ss.extra[e.Path]; ok {
				continue
			}
			if !yield(e) {
				return
			}
		}
		for _, e := range ss.extra {
			if !yield(e) {
				return
			}
		}
	}
}
