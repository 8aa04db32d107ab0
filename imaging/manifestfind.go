package imaging

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"

	"github.com/goldsync/goldsync/imaging/tree"
)

// manifestFinder answers a full destination walk's lookups
// (WalkOptions.Previous) from the manifest file itself, block by block:
// it holds the base's index (a path and a few numbers per 256 entries), the
// log's records folded (at most about a quarter of the base, usually a few
// pushes' worth) and a few decoded blocks, kept by recency. Decoding the
// manifest whole for the walk was the largest part of a no-change pull's
// heap (54 MiB of 77 at 225k entries).
//
// A block that fails its checksum answers nothing (its files are read
// afresh): the manifest is a cache. The blocks are kept packed (see
// packedBlock), as the golden node's hash-cache reader keeps them: decoded
// into entries they were the largest part of the image server's
// allocations in a no-change pull (~80 MB at 225k entries; issue #14).
type manifestFinder struct {
	mu      sync.Mutex
	f       *os.File
	bf      baseFile
	idx     *baseIndex
	logSet  *tree.ScopeSet // nil: no log records apply
	logEnts []*tree.Entry  // the folded log's entries, sorted
	cache   [finderBlocks]finderBlock
	tick    uint64
	log     *slog.Logger
	warned  bool
	// total is how many entries the manifest holds (the base's, with the
	// log replayed).
	total int
}

type finderBlock struct {
	i    int          // block index; -1: empty slot
	pb   *packedBlock // nil: damaged
	used uint64
}

// finderBlocks is how many decoded blocks a finder keeps (about 32 KiB
// each): a walk's lookups within a directory fall in one or two blocks,
// and its workers read a few directories at a time.
const finderBlocks = 32

// errManifestV1 says a manifest is in the first format (no index): it is
// loaded whole.
var errManifestV1 = errors.New("manifest of the first format")

// openManifestFinder opens the manifest at path for lookups. Errors are as
// LoadManifest's; a manifest of the first format gives errManifestV1.
func openManifestFinder(path string, log *slog.Logger) (*manifestFinder, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	var hdr [len("GSMANIF\x01")]byte
	if _, err := io.ReadFull(f, hdr[:]); err == nil && bytes.Equal(hdr[:], manifestMagicV1) {
		return nil, errManifestV1
	}
	bf, err := fileBase(f)
	if err != nil {
		return nil, fmt.Errorf("load manifest %s: %w", path, err)
	}
	idx, err := readIndex(bf)
	if err != nil {
		return nil, fmt.Errorf("load manifest %s: %w", path, err)
	}
	m := &manifestFinder{f: f, bf: bf, idx: idx, log: log, total: idx.total}
	for k := range m.cache {
		m.cache[k].i = -1
	}
	if recs, _ := readLog(LogPath(path), idx.gen); len(recs) > 0 {
		r := foldRecords(recs)
		m.logSet, m.logEnts = tree.NewScopeSet(r.scopes), r.entries
		// What the log replaces of the base: the blocks its scopes touch.
		covered, _, err := decodeScoped(bf, r.scopes)
		if err != nil {
			return nil, fmt.Errorf("load manifest %s: %w", path, err)
		}
		m.total += len(r.entries) - len(covered.Entries)
	}
	ok = true
	return m, nil
}

// find returns (a copy of) the manifest's entry at p, or nil. Safe for
// concurrent use.
func (m *manifestFinder) find(p string) *tree.Entry {
	if m.logSet != nil && m.logSet.Covers(p) {
		return findEntry(m.logEnts, p)
	}
	pb, j, ok := m.locate(p)
	if !ok {
		return nil
	}
	e := new(tree.Entry)
	pb.entry(j, p, e)
	return e
}

// locate finds p in the base: the decoded block that would hold it and
// p's index there (ok) or where it would go. Safe for concurrent use; the
// block returned is never changed.
func (m *manifestFinder) locate(p string) (*packedBlock, int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.idx.blocks.search(p)
	if i < 0 {
		return nil, 0, false
	}
	pb := m.block(i)
	if pb == nil {
		return nil, 0, false
	}
	j, ok := pb.search(p)
	return pb, j, ok
}

// cursor returns a lookup for one goroutine, asked about the children of
// one directory after another, each directory's in Compare order
// (WalkOptions.previousDir): see packedCursor.
func (m *manifestFinder) cursor() func(string) *tree.Entry {
	return packedCursor(m.locate, m.logSet, m.logEnts)
}

// searchEntries binary-searches a list sorted in Compare order for p: its
// index, or where it would go.
func searchEntries(es []*tree.Entry, p string) (int, bool) {
	return slices.BinarySearchFunc(es, p, func(e *tree.Entry, p string) int { return tree.Compare(e.Path, p) })
}

// block returns block i decoded, from the cache or the file; nil when it
// is damaged. Callers hold m.mu.
func (m *manifestFinder) block(i int) *packedBlock {
	m.tick++
	lru := 0
	for k := range m.cache {
		c := &m.cache[k]
		if c.i == i {
			c.used = m.tick
			return c.pb
		}
		if c.used < m.cache[lru].used {
			lru = k
		}
	}
	pb, err := decodePacked(m.bf, m.idx.blocks.get(i))
	if err != nil {
		if !m.warned {
			m.warned = true
			m.log.Warn("manifest partly unreadable; its files will be re-read", "err", err)
		}
		pb = nil
	}
	m.cache[lru] = finderBlock{i: i, pb: pb, used: m.tick}
	return pb
}

func (m *manifestFinder) close() { m.f.Close() }

// eachManifestEntry calls fn with every entry of the manifest at path, in
// tree.Compare order, with the log replayed and hard links resolved as
// LoadManifest has them, decoding one block at a time: the heap holds a
// block, the folded log and the multiply-linked inodes, not the manifest.
// Errors are as LoadManifest's.
func eachManifestEntry(path string, fn func(*tree.Entry) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load manifest: %w", err)
	}
	defer f.Close()
	var hdr [len("GSMANIF\x01")]byte
	if _, err := io.ReadFull(f, hdr[:]); err == nil && bytes.Equal(hdr[:], manifestMagicV1) {
		m, err := LoadManifest(path)
		if err != nil {
			return err
		}
		for _, e := range m.Entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	bf, err := fileBase(f)
	if err != nil {
		return fmt.Errorf("load manifest %s: %w", path, err)
	}
	idx, err := readIndex(bf)
	if err != nil {
		return fmt.Errorf("load manifest %s: %w", path, err)
	}
	var (
		logSet  *tree.ScopeSet
		logEnts []*tree.Entry
	)
	if recs, _ := readLog(LogPath(path), idx.gen); len(recs) > 0 {
		r := foldRecords(recs)
		logSet, logEnts = tree.NewScopeSet(r.scopes), r.entries
	}
	type key struct{ dev, ino uint64 }
	leaders := map[key]string{}
	var last string
	emit := func(e *tree.Entry) error {
		if last != "" && tree.Compare(last, e.Path) >= 0 {
			return fmt.Errorf("load manifest %s: %w: entry %q out of order", path, ErrCorruptManifest, e.Path)
		}
		last = e.Path
		if logSet != nil {
			// Links across the log's scopes: recomputed from the recorded
			// identities, as LoadManifest does.
			e.LinkTo = ""
			if e.Type == tree.TypeRegular && e.Nlink >= 2 {
				k := key{e.Dev, e.Ino}
				if l, ok := leaders[k]; ok {
					e.LinkTo = l
				} else {
					leaders[k] = e.Path
				}
			}
		}
		return fn(e)
	}
	j := 0
	for _, b := range idx.blocks.all(0) {
		es, err := decodeBlock(bf, b)
		if err != nil {
			return fmt.Errorf("load manifest %s: %w", path, err)
		}
		for _, e := range es {
			if logSet != nil && logSet.Covers(e.Path) {
				continue
			}
			for ; j < len(logEnts) && tree.Compare(logEnts[j].Path, e.Path) < 0; j++ {
				if err := emit(logEnts[j]); err != nil {
					return err
				}
			}
			if j < len(logEnts) && logEnts[j].Path == e.Path {
				j++ // (covered, so not reached: a log entry replaces the base's)
			}
			if err := emit(e); err != nil {
				return err
			}
		}
	}
	for ; j < len(logEnts); j++ {
		if err := emit(logEnts[j]); err != nil {
			return err
		}
	}
	return nil
}
