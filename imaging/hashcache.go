package imaging

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"iter"
	"os"
	"sort"
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
}

type readerBlock struct {
	i       int
	entries []*tree.Entry
	used    uint64
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

// lookup returns the recorded entry of path p, or nil. The entry is shared:
// callers must not modify it.
func (r *manifestReader) lookup(p string) *tree.Entry {
	if r.bi == nil {
		return findEntry(r.v1, p)
	}
	if r.logSet != nil && r.logSet.Covers(p) {
		return findEntry(r.logged, p)
	}
	es, j, ok := r.locate(p)
	if !ok {
		return nil
	}
	return es[j]
}

// locate finds p in the base: the decoded block that would hold it and
// p's index there (ok) or where it would go.
func (r *manifestReader) locate(p string) ([]*tree.Entry, int, bool) {
	// The last block whose first path is at or before p holds it, if any.
	i := sort.Search(len(r.bi.blocks), func(i int) bool { return tree.Compare(r.bi.blocks[i].first, p) > 0 }) - 1
	if i < 0 {
		return nil, 0, false
	}
	es := r.block(i)
	j, ok := searchEntries(es, p)
	return es, j, ok
}

// cursor returns a lookup for the children of one directory, asked in
// Compare order from one goroutine (WalkOptions.previousDir); see
// blockCursor.
func (r *manifestReader) cursor() func(string) *tree.Entry {
	if r.bi == nil {
		return r.lookup
	}
	c := blockCursor{locate: r.locate}
	return func(p string) *tree.Entry {
		if r.logSet != nil && r.logSet.Covers(p) {
			return findEntry(r.logged, p)
		}
		return c.lookup(p)
	}
}

// block returns block i decoded, from the reader's few kept blocks when it
// is there; nil when it is damaged.
func (r *manifestReader) block(i int) []*tree.Entry {
	r.mu.Lock()
	r.tick++
	for k := range r.cache {
		if r.cache[k].i == i {
			r.cache[k].used = r.tick
			es := r.cache[k].entries
			r.mu.Unlock()
			return es
		}
	}
	r.mu.Unlock()
	es, err := decodeBlock(r.bf, r.bi.blocks[i])
	if err != nil {
		es = nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) < cmp.Or(r.keep, readerBlocks) {
		r.cache = append(r.cache, readerBlock{i: i, entries: es, used: r.tick})
		return es
	}
	old := 0
	for k := range r.cache {
		if r.cache[k].used < r.cache[old].used {
			old = k
		}
	}
	r.cache[old] = readerBlock{i: i, entries: es, used: r.tick}
	return es
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
		for i, b := range r.bi.blocks {
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
