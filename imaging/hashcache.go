package imaging

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/goldsync/goldsync/imaging/tree"
)

// hashCache is a source's hash cache held for a full walk: what Unchanged
// and the walk's reuse need of each recorded entry (identity, size, times,
// hash; xattrs and link target only where there are any), keyed by a
// 64-bit hash of the path, in one sorted slice. It holds about 64 bytes an
// entry where the decoded manifest held a tree.Entry, its path and a
// pointer (about 250), and it is built block by block from the file, never
// holding the decoded manifest whole (issue #14).
//
// Two paths with the same key are both left out (a re-read, never a wrong
// hash). A lookup's answer is trusted only through Unchanged, which also
// compares dev and inode, so even an undetected collision could not lend
// one file another's hash.
type hashCache struct {
	recs   []cacheRec
	extras []cacheExtra
	n      int // entries recorded, including those left out
}

type cacheRec struct {
	key          uint64
	dev, ino     uint64
	size         int64
	mtime, ctime int64
	hash         uint64
	typ          tree.Type
	flags        tree.Flags
	extra        int32 // index in extras, -1 for none
}

type cacheExtra struct {
	target string
	xattrs []tree.Xattr
}

func pathKey(p string) uint64 { return xxhash.Sum64String(p) }

func (c *hashCache) add(e *tree.Entry) {
	c.n++
	if e.Problem != "" {
		return // never Unchanged: nothing to reuse
	}
	r := cacheRec{key: pathKey(e.Path), dev: e.Dev, ino: e.Ino, size: e.Size, mtime: e.Mtime, ctime: e.Ctime,
		hash: e.Hash, typ: e.Type, flags: e.Flags, extra: -1}
	if e.Target != "" || len(e.Xattrs) > 0 {
		r.extra = int32(len(c.extras))
		c.extras = append(c.extras, cacheExtra{target: e.Target, xattrs: e.Xattrs})
	}
	c.recs = append(c.recs, r)
}

// finish sorts the records and drops colliding keys.
func (c *hashCache) finish() {
	slices.SortFunc(c.recs, func(a, b cacheRec) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	out := c.recs[:0]
	for i := 0; i < len(c.recs); {
		j := i + 1
		for j < len(c.recs) && c.recs[j].key == c.recs[i].key {
			j++
		}
		if j == i+1 {
			out = append(out, c.recs[i])
		}
		i = j
	}
	c.recs = slices.Clip(out)
}

// lookup returns a fresh entry for the record of path p, or nil.
func (c *hashCache) lookup(p string) *tree.Entry {
	k := pathKey(p)
	i, ok := slices.BinarySearchFunc(c.recs, k, func(r cacheRec, k uint64) int {
		switch {
		case r.key < k:
			return -1
		case r.key > k:
			return 1
		}
		return 0
	})
	if !ok {
		return nil
	}
	r := &c.recs[i]
	e := &tree.Entry{Path: p, Type: r.typ, Dev: r.dev, Ino: r.ino, Size: r.size, Mtime: r.mtime, Ctime: r.ctime,
		Hash: r.hash, Flags: r.flags}
	if r.extra >= 0 {
		x := c.extras[r.extra]
		e.Target, e.Xattrs = x.target, x.xattrs
	}
	return e
}

// loadHashCache reads the whole manifest at path (base and log) into a
// hashCache, one base block at a time. Errors are as LoadManifest's.
func loadHashCache(path string) (*hashCache, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	defer f.Close()
	var hdr [len("GSMANIF\x01")]byte
	if _, err := io.ReadFull(f, hdr[:]); err == nil && bytes.Equal(hdr[:], manifestMagicV1) {
		// The first format has no blocks: decode it whole, once.
		m, err := LoadManifest(path)
		if err != nil {
			return nil, err
		}
		c := &hashCache{recs: make([]cacheRec, 0, len(m.Entries))}
		for _, e := range m.Entries {
			c.add(e)
		}
		c.finish()
		return c, nil
	}
	bf, err := fileBase(f)
	if err != nil {
		return nil, fmt.Errorf("load manifest %s: %w", path, err)
	}
	bi, err := readIndex(bf)
	if err != nil {
		return nil, fmt.Errorf("load manifest %s: %w", path, err)
	}
	// The log's folded record replaces what its scopes cover.
	var logged logRecord
	var set *tree.ScopeSet
	if recs, _ := readLog(LogPath(path), bi.gen); len(recs) > 0 {
		logged = foldRecords(recs)
		set = tree.NewScopeSet(logged.scopes)
	}
	c := &hashCache{recs: make([]cacheRec, 0, bi.total+len(logged.entries))}
	last := ""
	for i, b := range bi.blocks {
		es, err := decodeBlock(bf, b)
		if err != nil {
			return nil, fmt.Errorf("load manifest %s: %w", path, err)
		}
		if i > 0 && len(es) > 0 && tree.Compare(last, es[0].Path) >= 0 {
			return nil, fmt.Errorf("load manifest %s: %w: entry %q out of order", path, ErrCorruptManifest, es[0].Path)
		}
		for _, e := range es {
			if set == nil || !set.Covers(e.Path) {
				c.add(e)
			}
		}
		if len(es) > 0 {
			last = es[len(es)-1].Path
		}
	}
	for _, e := range logged.entries {
		c.add(e)
	}
	c.finish()
	return c, nil
}
