package imaging

import (
	"encoding/binary"
	"iter"
	"sort"
	"sync"
	"unsafe"

	"github.com/goldsync/goldsync/imaging/tree"
)

// blockList is a base's block index as held in memory, by the reader of a
// base and by the writer of the next: the blocks' first paths front-coded
// against the block before (consecutive blocks share most of their
// directories), their offsets, lengths, counts and sums as varints, in one
// byte slice; the first path of every restartEvery-th block kept whole, to
// search. A slice of baseBlock was ~145 bytes a block (the struct and the
// path's own allocation), 1.3 MB at a million entries, the largest part of
// the golden node's live heap that grew with the image (issue #14); this
// is ~50-60 (TestBlockListIsCompact).
type blockList struct {
	n       int
	data    []byte   // the records
	restart []string // the first path of blocks 0, restartEvery, 2*restartEvery, ...
	at      []int    // where their records start in data
	last    []byte   // the last block's first path (add encodes against it)
	lastEnd int      // the last block's off+len
}

// restartEvery is how many blocks share one whole path: a lookup decodes
// at most this many records after its binary search.
const restartEvery = 16

// add appends b, whose first path sorts after the last one's (the caller
// checks).
func (l *blockList) add(b baseBlock) { l.addBytes([]byte(b.first), b) }

// addBytes is add with the first path in bytes (b.first is ignored).
func (l *blockList) addBytes(first []byte, b baseBlock) {
	shared := 0
	if l.n%restartEvery == 0 {
		l.restart = append(l.restart, string(first))
		l.at = append(l.at, len(l.data))
		shared = len(first) // the whole path is the restart's
		l.lastEnd = 0       // and the offset is stored whole
	} else {
		for shared < len(l.last) && shared < len(first) && l.last[shared] == first[shared] {
			shared++
		}
	}
	d := l.data
	d = binary.AppendUvarint(d, uint64(shared))
	d = binary.AppendUvarint(d, uint64(len(first)-shared))
	d = append(d, first[shared:]...)
	// Blocks are contiguous: the offset is stored against the end of
	// the block before (0 within a restart's record), signed so that a
	// list that is not still round-trips.
	d = binary.AppendVarint(d, int64(b.off-l.lastEnd))
	d = binary.AppendUvarint(d, uint64(b.len))
	d = binary.AppendUvarint(d, uint64(b.n))
	d = binary.LittleEndian.AppendUint64(d, b.sum)
	l.data = d
	l.last = append(l.last[:0], first...)
	l.lastEnd = b.off + b.len
	l.n++
}

// len is the number of blocks.
func (l *blockList) len() int { return l.n }

// trim gives back the spare capacity add's appends left (a reader's list
// is complete once read).
func (l *blockList) trim() {
	l.data = append([]byte(nil), l.data...)
	l.restart = append([]string(nil), l.restart...)
	l.at = append([]int(nil), l.at...)
	l.last = nil
}

// blockCursor decodes a blockList's records in order from a restart.
type blockCursor struct {
	l    *blockList
	pos  int    // next record in l.data
	path []byte // the current record's first path
	end  int    // the block before's off+len
	b    baseBlock
}

// seek places c before block k*restartEvery.
func (c *blockCursor) seek(k int) {
	c.pos = c.l.at[k]
	c.restart(k)
}

// restart makes c ready to decode restart k's record (c.pos at it).
func (c *blockCursor) restart(k int) {
	c.path = append(c.path[:0], c.l.restart[k]...)
	c.end = 0 // a restart's offset is stored whole
}

// next decodes the next record into c.path and c.b (c.b.first unset).
func (c *blockCursor) next() {
	d := c.l.data[c.pos:]
	uv := func() uint64 {
		v, k := binary.Uvarint(d)
		d = d[k:]
		return v
	}
	shared := int(uv())
	sl := int(uv())
	c.path = append(c.path[:shared], d[:sl]...)
	d = d[sl:]
	delta, k := binary.Varint(d)
	d = d[k:]
	c.b.off = c.end + int(delta)
	c.b.len = int(uv())
	c.b.n = int(uv())
	c.b.sum = binary.LittleEndian.Uint64(d)
	d = d[8:]
	c.end = c.b.off + c.b.len
	c.pos = len(c.l.data) - len(d)
}

// get returns block i.
func (l *blockList) get(i int) baseBlock {
	bp := pathScratch.Get().(*[]byte)
	c := blockCursor{l: l, path: (*bp)[:0]}
	c.seek(i / restartEvery)
	for range i%restartEvery + 1 {
		c.next()
	}
	c.b.first = string(c.path)
	*bp = c.path[:0]
	pathScratch.Put(bp)
	return c.b
}

// pathScratch holds the buffers get and search decode paths into.
var pathScratch = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// all yields the blocks in order from block from.
func (l *blockList) all(from int) iter.Seq2[int, baseBlock] {
	return func(yield func(int, baseBlock) bool) {
		l.each(from, func(i int, path []byte, b baseBlock) bool {
			b.first = string(path)
			return yield(i, b)
		})
	}
}

// each calls fn with the blocks in order from block from, each with its
// first path in bytes (valid during the call; b.first is unset), until fn
// returns false: no allocation a block.
func (l *blockList) each(from int, fn func(i int, path []byte, b baseBlock) bool) {
	if from >= l.n || from < 0 {
		return
	}
	c := blockCursor{l: l}
	start := from - from%restartEvery
	c.seek(start / restartEvery)
	for i := start; i < l.n; i++ {
		if i%restartEvery == 0 && i > start {
			c.restart(i / restartEvery)
		}
		c.next()
		if i >= from && !fn(i, c.path, c.b) {
			return
		}
	}
}

// search returns the last block whose first path is at or before p (the
// block that holds p if any does), -1 when p sorts before the first.
func (l *blockList) search(p string) int {
	k := sort.Search(len(l.restart), func(k int) bool { return tree.Compare(l.restart[k], p) > 0 }) - 1
	if k < 0 {
		return -1
	}
	bp := pathScratch.Get().(*[]byte)
	c := blockCursor{l: l, path: (*bp)[:0]}
	c.seek(k)
	i := k * restartEvery
	found := min(l.n, i+restartEvery) - 1 // the restart's last block, unless one after p
	c.next()                              // block i: at or before p
	for j := i + 1; j <= found; j++ {
		c.next()
		if comparePathBytes(c.path, p) > 0 {
			found = j - 1
			break
		}
	}
	*bp = c.path[:0]
	pathScratch.Put(bp)
	return found
}

// comparePathBytes is tree.Compare for a path held in bytes, without
// copying it: the string it makes of a lives only for the call, during
// which a is not changed.
func comparePathBytes(a []byte, b string) int {
	return tree.Compare(unsafe.String(unsafe.SliceData(a), len(a)), b)
}
