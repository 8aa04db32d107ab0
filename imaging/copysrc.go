package imaging

import (
	"bufio"
	"cmp"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"sort"

	"github.com/goldsync/goldsync/imaging/tree"
)

// copySources are the destination's hashed regular files by content hash,
// the sources of a streamed plan's local copies, built from the
// destination's list the first time a plan could use one. A map of them
// was ~100 bytes a file (~100 MiB at 1M files) for any run that created a
// file, a one-package update included (issue #14). Here the paths go to
// one nameless file and fixed-size records (hash, size, where the path
// is) to another, sorted by hash: up to copyRunLen records are sorted in
// memory and written as a run, and the runs are merged into one sorted
// list with a sparse index (a hash every copyBlockLen records) in memory.
// A lookup reads one block of records and one path. Among files with the
// same hash the first in the list wins, as with the map.
type copySources struct {
	paths  *os.File
	recs   *os.File // the sorted records (after the merge)
	n      int      // records in recs
	sparse []uint64 // the hash of record 0, copyBlockLen, 2*copyBlockLen...
	mem    []copyRec
	block  []byte
}

// copyRec is a copy source: content hash and size, and where its path is
// in the paths file.
type copyRec struct {
	hash      uint64
	size, off int64
	plen      uint32
}

const (
	copyRecSize  = 32
	copyRunLen   = 32 << 10 // records sorted in memory at a time (1 MiB)
	copyBlockLen = 128      // records read per lookup (4 KiB)
)

func (r *copyRec) put(b []byte) {
	binary.LittleEndian.PutUint64(b[0:], r.hash)
	binary.LittleEndian.PutUint64(b[8:], uint64(r.size))
	binary.LittleEndian.PutUint64(b[16:], uint64(r.off))
	binary.LittleEndian.PutUint32(b[24:], r.plen)
	binary.LittleEndian.PutUint32(b[28:], 0)
}

func getCopyRec(b []byte) copyRec {
	return copyRec{hash: binary.LittleEndian.Uint64(b[0:]), size: int64(binary.LittleEndian.Uint64(b[8:])),
		off: int64(binary.LittleEndian.Uint64(b[16:])), plen: binary.LittleEndian.Uint32(b[24:])}
}

// sortRun sorts a run by hash, keeping the first record of each hash
// (records arrive in the destination's order).
func sortRun(run []copyRec) []copyRec {
	slices.SortStableFunc(run, func(a, b copyRec) int { return cmp.Compare(a.hash, b.hash) })
	return slices.CompactFunc(run, func(a, b copyRec) bool { return a.hash == b.hash })
}

// buildCopySources lists the copy sources among dst (in the destination's
// order) in files in dir. A plan with few of them holds their records in
// memory.
func buildCopySources(dir string, dst iter.Seq[*tree.Entry]) (_ *copySources, err error) {
	c := &copySources{}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if c.paths, err = spoolFile(dir); err != nil {
		return nil, fmt.Errorf("copy sources: %w", err)
	}
	pw := bufio.NewWriterSize(c.paths, 64<<10)
	var (
		off    int64
		run    []copyRec
		runs   *os.File
		rw     *bufio.Writer
		bounds []int64 // each spilled run's record count
		buf    [copyRecSize]byte
	)
	spill := func() error {
		run = sortRun(run)
		if runs == nil {
			if runs, err = spoolFile(dir); err != nil {
				return err
			}
			rw = bufio.NewWriterSize(runs, 64<<10)
		}
		for i := range run {
			run[i].put(buf[:])
			if _, err := rw.Write(buf[:]); err != nil {
				return err
			}
		}
		bounds = append(bounds, int64(len(run)))
		run = run[:0]
		return nil
	}
	for d := range dst {
		if d.Type != tree.TypeRegular || !d.Hashed() || d.Size <= 0 {
			continue
		}
		if _, err := pw.WriteString(d.Path); err != nil {
			return nil, fmt.Errorf("copy sources: %w", err)
		}
		run = append(run, copyRec{hash: d.Hash, size: d.Size, off: off, plen: uint32(len(d.Path))})
		off += int64(len(d.Path))
		if len(run) == copyRunLen {
			if err := spill(); err != nil {
				return nil, fmt.Errorf("copy sources: %w", err)
			}
		}
	}
	if err := pw.Flush(); err != nil {
		return nil, fmt.Errorf("copy sources: %w", err)
	}
	if runs == nil {
		c.mem = sortRun(run)
		return c, nil
	}
	defer runs.Close()
	if len(run) > 0 {
		if err := spill(); err != nil {
			return nil, fmt.Errorf("copy sources: %w", err)
		}
	}
	if err := rw.Flush(); err != nil {
		return nil, fmt.Errorf("copy sources: %w", err)
	}
	if err := c.merge(dir, runs, bounds); err != nil {
		return nil, fmt.Errorf("copy sources: %w", err)
	}
	return c, nil
}

// runReader reads one sorted run; k is its place among the runs (the
// earlier run wins a tie: it came first in the destination's list).
type runReader struct {
	r    *bufio.Reader
	left int64
	cur  copyRec
	k    int
}

type runHeap []*runReader

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	if h[i].cur.hash != h[j].cur.hash {
		return h[i].cur.hash < h[j].cur.hash
	}
	return h[i].k < h[j].k
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (rr *runReader) next() (bool, error) {
	if rr.left == 0 {
		return false, nil
	}
	var b [copyRecSize]byte
	if _, err := io.ReadFull(rr.r, b[:]); err != nil {
		return false, err
	}
	rr.cur, rr.left = getCopyRec(b[:]), rr.left-1
	return true, nil
}

// merge merges the runs into c.recs, one record per hash, and makes the
// sparse index.
func (c *copySources) merge(dir string, runs *os.File, bounds []int64) error {
	var err error
	if c.recs, err = spoolFile(dir); err != nil {
		return err
	}
	w := bufio.NewWriterSize(c.recs, 64<<10)
	h := runHeap{}
	var start int64
	for k, n := range bounds {
		rr := &runReader{r: bufio.NewReaderSize(io.NewSectionReader(runs, start*copyRecSize, n*copyRecSize), 4<<10), left: n, k: k}
		start += n
		if ok, err := rr.next(); err != nil {
			return err
		} else if ok {
			h = append(h, rr)
		}
	}
	heap.Init(&h)
	var (
		buf  [copyRecSize]byte
		last uint64
	)
	for h.Len() > 0 {
		rr := h[0]
		if r := rr.cur; c.n == 0 || r.hash != last {
			if c.n%copyBlockLen == 0 {
				c.sparse = append(c.sparse, r.hash)
			}
			r.put(buf[:])
			if _, err := w.Write(buf[:]); err != nil {
				return err
			}
			c.n++
			last = r.hash
		}
		ok, err := rr.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return w.Flush()
}

// lookup returns the copy source of content hash h. A read that fails
// finds none: the file is then fetched, as when no copy source exists.
func (c *copySources) lookup(h uint64) hashSrc {
	var r copyRec
	if c.recs == nil {
		i, ok := slices.BinarySearchFunc(c.mem, h, func(r copyRec, h uint64) int { return cmp.Compare(r.hash, h) })
		if !ok {
			return hashSrc{}
		}
		r = c.mem[i]
	} else {
		// The last block whose first hash is at most h.
		b := sort.Search(len(c.sparse), func(i int) bool { return c.sparse[i] > h })
		if b == 0 {
			return hashSrc{}
		}
		b--
		n := min(copyBlockLen, c.n-b*copyBlockLen)
		if cap(c.block) < copyBlockLen*copyRecSize {
			c.block = make([]byte, copyBlockLen*copyRecSize)
		}
		blk := c.block[:n*copyRecSize]
		if _, err := c.recs.ReadAt(blk, int64(b*copyBlockLen*copyRecSize)); err != nil {
			return hashSrc{}
		}
		lo, hi := 0, n
		for lo < hi {
			m := (lo + hi) / 2
			if binary.LittleEndian.Uint64(blk[m*copyRecSize:]) < h {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo == n || binary.LittleEndian.Uint64(blk[lo*copyRecSize:]) != h {
			return hashSrc{}
		}
		r = getCopyRec(blk[lo*copyRecSize:])
	}
	p := make([]byte, r.plen)
	if _, err := c.paths.ReadAt(p, r.off); err != nil {
		return hashSrc{}
	}
	return hashSrc{path: string(p), size: r.size}
}

func (c *copySources) close() {
	if c == nil {
		return
	}
	for _, f := range []*os.File{c.paths, c.recs} {
		if f != nil {
			f.Close()
		}
	}
}
