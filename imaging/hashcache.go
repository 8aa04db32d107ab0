package imaging

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"iter"
	"os"
	"sync"

	"github.com/goldsync/goldsync/imaging/tree"
)

// manifestReader answers lookups by path in a manifest file (base and
// log) without decoding it whole: it holds the base's block index (a path
// and a few numbers per 256 entries), the log's folded record and a few
// decoded blocks, and preads the block a lookup needs. A walk asks about
// paths in nearly Compare order, so the blocks it needs are mostly those
// it just used. It is what a full walk merges against instead of the
// manifest or hash cache decoded whole (issue #14), and it is safe for
// concurrent use.
//
// A block that fails its checksum answers nothing (the manifest is a
// cache: a miss costs a re-read).
type manifestReader struct {
	f      *os.File
	bf     baseFile
	bi     *baseIndex
	v1     []*tree.Entry // a version-1 base, decoded whole (no blocks)
	logSet *tree.ScopeSet
	logged []*tree.Entry // the log's folded entries, sorted; they replace what logSet covers

	mu    sync.Mutex
	cache []readerBlock
	tick  uint64
	// keep is how many decoded blocks the reader keeps (0: readerBlocks).
	keep int
	// spare holds blocks out of the cache that no lookup uses any more,
	// to decode the next ones into (at most spareBlocks).
	spare []*packedBlock
}

// spareBlocks bounds a reader's spare blocks: one taken for each block
// decoded, one given back for each evicted once its last user is done.
const spareBlocks = 2

type readerBlock struct {
	i    int
	pb   *packedBlock // nil: damaged
	used uint64
}

// readerBlocks is how many decoded blocks a reader keeps: the workers of
// a walk each read a directory, and a directory's children can be a few
// blocks apart.
const readerBlocks = 32

// fetchReaderBlocks is how many decoded blocks the reader of a scan's
// record keeps. Its lookups are a pull's fetches, asked in the plan's
// (Compare) order by a few workers, so they need the block at hand and
// maybe the next; 32 kept blocks were ~5 MB, a third of the golden node's
// live heap in a full pull.
const fetchReaderBlocks = 4

// openManifestReader opens the manifest at path for lookups. Errors are as
// LoadManifest's (os.ErrNotExist when there is none).
func openManifestReader(path string) (*manifestReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	r := &manifestReader{f: f}
	var hdr [len("GSMANIF\x01")]byte
	if _, err := io.ReadFull(f, hdr[:]); err == nil && bytes.Equal(hdr[:], manifestMagicV1) {
		f.Close()
		m, err := LoadManifest(path)
		if err != nil {
			return nil, err
		}
		return &manifestReader{v1: m.Entries}, nil
	}
	if r.bf, err = fileBase(f); err == nil {
		r.bi, err = readIndex(r.bf)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("load manifest %s: %w", path, err)
	}
	if recs, _ := readLog(LogPath(path), r.bi.gen); len(recs) > 0 {
		logged := foldRecords(recs)
		r.logSet, r.logged = tree.NewScopeSet(logged.scopes), logged.entries
	}
	return r, nil
}

// shared returns a reader of the same base and log, with its own decoded
// blocks (keep of them): it reads r's file, which stays r's to close (its
// Close does nothing), and must not be used once r is closed.
func (r *manifestReader) shared(keep int) *manifestReader {
	return &manifestReader{bf: r.bf, bi: r.bi, v1: r.v1, logSet: r.logSet, logged: r.logged, keep: keep}
}

// Close releases the file.
func (r *manifestReader) Close() error {
	if r == nil || r.f == nil {
		return nil
	}
	return r.f.Close()
}

// total is the number of entries in the base (the log may add or remove
// some).
func (r *manifestReader) total() int {
	if r.bi == nil {
		return len(r.v1)
	}
	return r.bi.total
}

// hasLog reports whether the log changes the base.
func (r *manifestReader) hasLog() bool { return r.logSet != nil }

// lookup returns a copy of the recorded entry of path p, or nil.
func (r *manifestReader) lookup(p string) *tree.Entry {
	var e tree.Entry
	if !r.lookupInto(p, &e) {
		return nil
	}
	return &e
}

// lookupInto sets *e to the recorded entry of path p and reports whether
// there is one. e's strings and xattrs are shared with the reader: the
// caller must not modify the xattrs.
func (r *manifestReader) lookupInto(p string, e *tree.Entry) bool {
	if r.bi == nil {
		return copyFound(findEntry(r.v1, p), e)
	}
	if r.logSet != nil && r.logSet.Covers(p) {
		return copyFound(findEntry(r.logged, p), e)
	}
	pb, j, ok := r.locate(p)
	if ok {
		pb.entry(j, p, e)
	}
	r.release(pb)
	return ok
}

func copyFound(f, e *tree.Entry) bool {
	if f == nil {
		return false
	}
	*e = *f
	return true
}

// locate finds p in the base: the decoded block that would hold it and
// p's index there (ok) or where it would go. The caller releases the
// block when done with it.
func (r *manifestReader) locate(p string) (*packedBlock, int, bool) {
	// The last block whose first path is at or before p holds it, if any.
	i := r.bi.blocks.search(p)
	if i < 0 {
		return nil, 0, false
	}
	pb := r.block(i)
	if pb == nil {
		return nil, 0, false
	}
	j, ok := pb.search(p)
	return pb, j, ok
}

// cursor returns a lookup for one goroutine, asked about the children of
// one directory after another, each directory's in Compare order, and
// what to call after each directory (WalkOptions.previousDir; nil: nothing
// to do): see packedCursor. The entry it returns is the cursor's own,
// valid until its next lookup.
func (r *manifestReader) cursor() (lookup func(string) *tree.Entry, done func()) {
	if r.bi == nil {
		return r.lookup, nil
	}
	return packedCursorRelease(r.locate, r.release, r.logSet, r.logged)
}

// packedCursor answers lookups asked in increasing Compare order from the
// decoded block it last used (locate finds a path's block and place;
// the log's entries, where logSet covers, answer instead): a directory's
// files are consecutive in a manifest, so most lookups are one comparison
// of the next entry's path, without the index search, the lock and the
// binary search of a full lookup (a no-change walk asks about every
// path). What it returns is always the entry with exactly that path; a
// lookup out of order (the next directory's first child) only costs a full
// one: p found between the cursor and the block's end is in that block or
// nowhere, anything else is located afresh. The entry is the cursor's own,
// valid until its next lookup.
func packedCursor(locate func(string) (*packedBlock, int, bool), logSet *tree.ScopeSet, logged []*tree.Entry) func(string) *tree.Entry {
	lookup, _ := packedCursorRelease(locate, nil, logSet, logged)
	return lookup
}

// packedCursorRelease is packedCursor for blocks that are given back:
// release, when not nil, is called with the block the cursor used before
// each block locate hands it (nil included), and by done, which lets go
// of the block the cursor holds (the next lookup locates afresh).
func packedCursorRelease(locate func(string) (*packedBlock, int, bool), release func(*packedBlock), logSet *tree.ScopeSet, logged []*tree.Entry) (lookup func(string) *tree.Entry, done func()) {
	var (
		pb  *packedBlock // the block last used; nil: none
		j   int          // its last entry before or at the last path asked
		out tree.Entry
	)
	found := func(k int, p string) *tree.Entry {
		j = k
		pb.entry(k, p, &out)
		return &out
	}
	lookup = func(p string) *tree.Entry {
		if logSet != nil && logSet.Covers(p) {
			return findEntry(logged, p)
		}
		if pb != nil && j+1 < pb.len() {
			k := j + 1
			if pb.is(k, p) {
				return found(k, p)
			}
			if j >= 0 && pb.compare(pb.len()-1, p) >= 0 && pb.compare(j, p) < 0 {
				// Within the block, after the cursor: the block holds p
				// or nothing does.
				i, ok := pb.searchFrom(k, p)
				if ok {
					return found(i, p)
				}
				j = i - 1
				return nil
			}
		}
		b, i, ok := locate(p)
		if release != nil {
			release(pb)
		}
		if pb = b; pb == nil {
			return nil
		}
		if ok {
			return found(i, p)
		}
		j = i - 1
		return nil
	}
	done = func() {
		if release != nil {
			release(pb)
		}
		pb = nil
	}
	return lookup, done
}

// block returns block i decoded, from the reader's few kept blocks when it
// is there; nil when it is damaged. The caller holds a reference to the
// block until it releases it: a block evicted from the cache is decoded
// into again only once no one holds it.
func (r *manifestReader) block(i int) *packedBlock {
	r.mu.Lock()
	r.tick++
	for k := range r.cache {
		if r.cache[k].i == i {
			r.cache[k].used = r.tick
			pb := r.cache[k].pb
			if pb != nil {
				pb.refs++
			}
			r.mu.Unlock()
			return pb
		}
	}
	var reuse *packedBlock
	if n := len(r.spare); n > 0 {
		reuse = r.spare[n-1]
		r.spare[n-1] = nil
		r.spare = r.spare[:n-1]
	}
	r.mu.Unlock()
	pb, err := decodePackedInto(r.bf, r.bi.blocks.get(i), reuse)
	if err != nil {
		pb = nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if pb != nil {
		pb.refs = 2 // the cache's and the caller's
	}
	if len(r.cache) < cmp.Or(r.keep, readerBlocks) {
		r.cache = append(r.cache, readerBlock{i: i, pb: pb, used: r.tick})
		return pb
	}
	old := 0
	for k := range r.cache {
		if r.cache[k].used < r.cache[old].used {
			old = k
		}
	}
	r.drop(r.cache[old].pb)
	r.cache[old] = readerBlock{i: i, pb: pb, used: r.tick}
	return pb
}

// dropBlocks empties the reader's cache of decoded blocks and its spares
// (lookups decode again what they need).
func (r *manifestReader) dropBlocks() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cache {
		r.drop(c.pb)
	}
	r.cache, r.spare = nil, nil
}

// release gives back a reference to a block that block returned (nil:
// none).
func (r *manifestReader) release(pb *packedBlock) {
	if pb == nil {
		return
	}
	r.mu.Lock()
	r.drop(pb)
	r.mu.Unlock()
}

// drop gives back a reference to pb (nil: none); the last one makes it a
// spare. Called with r.mu held.
func (r *manifestReader) drop(pb *packedBlock) {
	if pb == nil {
		return
	}
	if pb.refs--; pb.refs == 0 && len(r.spare) < spareBlocks {
		r.spare = append(r.spare, pb)
	}
}

// all yields the manifest's entries in Compare order, the log applied,
// decoding one block at a time; a damaged block ends it with an error.
// The entries are fresh: the caller may keep or change them.
func (r *manifestReader) all() iter.Seq2[*tree.Entry, error] {
	return func(yield func(*tree.Entry, error) bool) {
		if r.bi == nil {
			for _, e := range r.v1 {
				if !yield(e, nil) {
					return
				}
			}
			return
		}
		logged := r.logged
		// emitLogged yields the log's entries before p ("" for all).
		emitLogged := func(p string) bool {
			for len(logged) > 0 && (p == "" || tree.Compare(logged[0].Path, p) < 0) {
				e := logged[0]
				logged = logged[1:]
				if !yield(e, nil) {
					return false
				}
			}
			return true
		}
		last := ""
		for i, b := range r.bi.blocks.all(0) {
			es, err := decodeBlock(r.bf, b)
			if err != nil {
				yield(nil, err)
				return
			}
			if i > 0 && len(es) > 0 && tree.Compare(last, es[0].Path) >= 0 {
				yield(nil, fmt.Errorf("%w: entry %q out of order", ErrCorruptManifest, es[0].Path))
				return
			}
			for _, e := range es {
				if !emitLogged(e.Path) {
					return
				}
				if r.logSet != nil && r.logSet.Covers(e.Path) {
					continue
				}
				if !yield(e, nil) {
					return
				}
			}
			if len(es) > 0 {
				last = es[len(es)-1].Path
			}
		}
		emitLogged("")
	}
}
