package imaging

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"

	"github.com/goldsync/goldsync/imaging/tree"
)

// learnedSet holds the hashes fetches computed until Close merges them
// into the cache. A full pull learns one per file it sends, and held in
// the heap until Close that was ~60 bytes a file (~60 MiB at 1M files,
// issue #14): so at most learnedSpillAt of them are kept in memory, and
// each time that many are held they are sorted in path order and written
// as one run to a nameless file beside the cache (like a sync's spools,
// spool.go). Close reads the runs back merged, in tree.Compare order,
// beside the record it is rewriting, a few KiB per run.
//
// A run that cannot be written is dropped with the hashes in it: the cache
// then lacks them, which costs a re-read next time, never a wrong hash.
type learnedSet struct {
	dir     string // where runs are spilled; "" keeps everything in memory
	recs    []learnedRec
	inOrder bool // recs is in path order

	f    *os.File // the runs, once there are any
	w    *bufio.Writer
	off  int64
	runs []learnedRun
	n    int   // hashes learned, in recs and runs
	err  error // the first spill that failed

	maxOpen int // the most runs the last merge had open at once (for tests)
}

type learnedRec struct {
	path               string
	dev, ino, hash     uint64
	size, mtime, ctime int64
}

// learnedRun is one sorted run in the spill file, and the path of its
// first record: the merge opens a run only when it reaches that path.
type learnedRun struct {
	off, len int64
	first    string
}

// learnedSpillAt is how many learned hashes are held before they are
// spilled (about 120 bytes each with the path: ~1 MiB).
const learnedSpillAt = 8192

// maxLearnedPaths is how many learned hashes a source without a full scan
// records as a log update; beyond it, it writes a new base.
const maxLearnedPaths = 4096

func compareLearned(a, b learnedRec) int { return tree.Compare(a.path, b.path) }

func (l *learnedSet) add(e *tree.Entry) {
	l.recs = append(l.recs, learnedRec{path: e.Path, dev: e.Dev, ino: e.Ino, hash: e.Hash, size: e.Size, mtime: e.Mtime, ctime: e.Ctime})
	l.inOrder = false
	l.n++
	if len(l.recs) >= learnedSpillAt && l.dir != "" {
		l.spill()
	}
}

// sort puts the records held in memory in path order.
func (l *learnedSet) sort() {
	if !l.inOrder {
		slices.SortFunc(l.recs, compareLearned)
		l.inOrder = true
	}
}

// spill writes the held records as one sorted run.
func (l *learnedSet) spill() {
	l.sort()
	recs := l.recs
	l.recs = l.recs[:0]
	if l.err != nil {
		l.n -= len(recs)
		return
	}
	if l.f == nil {
		f, err := spoolFile(l.dir)
		if err != nil {
			l.err, l.n = fmt.Errorf("spill learned hashes: %w", err), l.n-len(recs)
			return
		}
		l.f, l.w = f, bufio.NewWriterSize(f, 32<<10)
	}
	var b []byte
	start, size := l.off, int64(0)
	for i := range recs {
		b = appendLearned(b[:0], &recs[i])
		if _, err := l.w.Write(b); err != nil {
			l.err = fmt.Errorf("spill learned hashes: %w", err)
			break
		}
		size += int64(len(b))
	}
	if l.err == nil {
		if err := l.w.Flush(); err != nil {
			l.err = fmt.Errorf("spill learned hashes: %w", err)
		}
	}
	if l.err != nil {
		l.n -= len(recs)
		return
	}
	l.off += size
	l.runs = append(l.runs, learnedRun{off: start, len: size, first: recs[0].path})
	clear(recs) // the paths
}

func appendLearned(b []byte, r *learnedRec) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.path)))
	b = append(b, r.path...)
	for _, v := range [...]uint64{r.dev, r.ino, r.hash, uint64(r.size), uint64(r.mtime), uint64(r.ctime)} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// readLearned reads the next record of a run into rec, with scratch as
// its buffer; io.EOF at the end of the run.
func readLearned(r *bufio.Reader, scratch *[]byte, rec *learnedRec) error {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return err
	}
	if n > tree.MaxPathLen {
		return errors.New("damaged run")
	}
	if cap(*scratch) < int(n)+48 {
		*scratch = make([]byte, int(n)+48, max(int(n)+48, 512))
	}
	p := (*scratch)[:int(n)+48]
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	rec.path = string(p[:n])
	v := p[n:]
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(v[8*i:]) }
	rec.dev, rec.ino, rec.hash = u(0), u(1), u(2)
	rec.size, rec.mtime, rec.ctime = int64(u(3)), int64(u(4)), int64(u(5))
	return nil
}

func (l *learnedSet) len() int { return l.n }

// spilled reports whether some hashes are in runs (so not in memory).
func (l *learnedSet) spilled() bool { return len(l.runs) > 0 }

// paths returns the paths of the hashes held in memory.
func (l *learnedSet) paths() []string {
	out := make([]string, len(l.recs))
	for i := range l.recs {
		out[i] = l.recs[i].path
	}
	return out
}

// matches reports whether r was learned from the object e describes (two
// fetches of one path may have seen two files; neither lends the other its
// hash).
func (r *learnedRec) matches(e *tree.Entry) bool {
	return r.path == e.Path && r.dev == e.Dev && r.ino == e.Ino && r.size == e.Size && r.mtime == e.Mtime && r.ctime == e.Ctime
}

// hashFor returns the hash learned for e's path while the file is the
// object it was learned from, among the hashes held in memory.
func (l *learnedSet) hashFor(e *tree.Entry) (uint64, bool) {
	if len(l.recs) == 0 || e.Type != tree.TypeRegular {
		return 0, false
	}
	l.sort()
	i, _ := slices.BinarySearchFunc(l.recs, e.Path, func(r learnedRec, p string) int { return tree.Compare(r.path, p) })
	for ; i < len(l.recs) && l.recs[i].path == e.Path; i++ {
		if l.recs[i].matches(e) {
			return l.recs[i].hash, true
		}
	}
	return 0, false
}

// sorted yields every learned hash in tree.Compare order of its path: the
// runs and the records in memory merged, one buffered record per open run.
// A run is opened only once the merge reaches its first path and let go
// at its end: fetches learn in about the plan's order, so runs overlap
// little and a few are open at once, where opening all of them at the
// start cost ~5 KiB each (~0.6 MB of a 1M-file full pull's golden node,
// 122 runs, issue #14). A damaged run ends the sequence and is stored in
// *errp. The record yielded is valid until the next is asked for.
func (l *learnedSet) sorted(errp *error) iter.Seq[*learnedRec] {
	return func(yield func(*learnedRec) bool) {
		l.sort()
		if l.f != nil {
			if err := l.w.Flush(); err != nil {
				*errp = err
				return
			}
		}
		pending := slices.Clone(l.runs)
		slices.SortStableFunc(pending, func(a, b learnedRun) int { return tree.Compare(a.first, b.first) })
		h := &learnedHeap{}
		l.maxOpen = 0
		var out learnedRec
		if len(l.recs) > 0 {
			h.cs = append(h.cs, &learnedCursor{mem: l.recs[1:], cur: l.recs[0]})
		}
		for {
			// Every record of a run not yet open is at or after its
			// first path: open those that could hold the smallest.
			for len(pending) > 0 && (h.Len() == 0 || tree.Compare(pending[0].first, h.cs[0].cur.path) <= 0) {
				r := pending[0]
				pending = pending[1:]
				c := &learnedCursor{r: bufio.NewReaderSize(io.NewSectionReader(l.f, r.off, r.len), 4<<10)}
				if err := readLearned(c.r, &c.scratch, &c.cur); err != nil {
					*errp = fmt.Errorf("learned hashes: %w", err)
					return
				}
				if c.cur.path != r.first {
					*errp = errors.New("learned hashes: damaged run")
					return
				}
				heap.Push(h, c)
				l.maxOpen = max(l.maxOpen, h.Len())
			}
			if h.Len() == 0 {
				return
			}
			c := h.cs[0]
			out = c.cur
			rec := &out
			if !yield(rec) {
				return
			}
			switch {
			case c.r != nil:
				if err := readLearned(c.r, &c.scratch, &c.cur); err == io.EOF {
					heap.Pop(h)
					continue
				} else if err != nil {
					*errp = fmt.Errorf("learned hashes: %w", err)
					return
				}
				if tree.Compare(c.cur.path, rec.path) < 0 {
					// Runs are written sorted: the merge relies on it.
					*errp = errors.New("learned hashes: damaged run")
					return
				}
			case len(c.mem) > 0:
				c.cur, c.mem = c.mem[0], c.mem[1:]
			default:
				heap.Pop(h)
				continue
			}
			heap.Fix(h, 0)
		}
	}
}

// close releases the spill file.
func (l *learnedSet) close() {
	if l.f != nil {
		l.f.Close()
	}
	*l = learnedSet{dir: l.dir}
}

// learnedCursor is one run being merged (or, with r nil, the records in
// memory).
type learnedCursor struct {
	r       *bufio.Reader
	scratch []byte
	mem     []learnedRec
	cur     learnedRec
}

type learnedHeap struct{ cs []*learnedCursor }

func (h *learnedHeap) Len() int           { return len(h.cs) }
func (h *learnedHeap) Less(i, j int) bool { return compareLearned(h.cs[i].cur, h.cs[j].cur) < 0 }
func (h *learnedHeap) Swap(i, j int)      { h.cs[i], h.cs[j] = h.cs[j], h.cs[i] }
func (h *learnedHeap) Push(x any)         { h.cs = append(h.cs, x.(*learnedCursor)) }
func (h *learnedHeap) Pop() any {
	c := h.cs[len(h.cs)-1]
	h.cs = h.cs[:len(h.cs)-1]
	return c
}
