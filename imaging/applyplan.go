package imaging

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"slices"
	"sync/atomic"
)

// The applier's phases, each a group of operations it runs in turn (see
// applier.run).
const (
	phMkdir   = iota // directories, top-down
	phCopy           // local copies
	phFetch          // content from the source
	phOther          // symlinks, devices, fifos, sockets, in-place metadata (path order)
	phLink           // hard links
	phDelete         // deletes, deepest first
	phDirMeta        // directory metadata, deepest first
	phCount
)

// phaseOf returns the applier phase of op.
func phaseOf(op Op) int {
	switch op {
	case OpMkdir:
		return phMkdir
	case OpCopy:
		return phCopy
	case OpFetch:
		return phFetch
	case OpLink:
		return phLink
	case OpDelete:
		return phDelete
	case OpDirMeta:
		return phDirMeta
	}
	return phOther
}

// actionSource is a plan as the applier reads it: one phase at a time.
type actionSource interface {
	// each calls fn with the actions of phase ph, in the order the
	// applier takes them; fn may change the action it is given.
	each(ph int, fn func(*Action) error) error
	// streamed says the plan carries a conditional OpDirMeta for every
	// source directory (see Action.cond), so the applier needs no list of
	// the source's directories.
	streamed() bool
}

// memActions reads a plan held whole (MakePlan's, for Apply).
type memActions struct{ p *Plan }

func (m memActions) each(ph int, fn func(*Action) error) error {
	acts := m.p.Actions
	if ph == phDelete {
		for k := len(acts) - 1; k >= 0; k-- {
			if acts[k].Op == OpDelete {
				if err := fn(&acts[k]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for i := range acts {
		if phaseOf(acts[i].Op) == ph && acts[i].Op != OpNone {
			if err := fn(&acts[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (memActions) streamed() bool { return false }

// spoolActions is a plan streamed to disk by phase: each phase's actions in
// path order, read backwards for deletes and directory metadata.
type spoolActions struct {
	sp  [phCount]*spool
	buf []byte
}

// spoolActionsRead counts the actions the applier read back from action
// spools (a work count for tests).
var spoolActionsRead atomic.Int64

func newSpoolActions(dir string) (*spoolActions, error) {
	s := &spoolActions{}
	for ph := range s.sp {
		sp, err := newSpool(dir, ph == phDelete || ph == phDirMeta)
		if err != nil {
			s.close()
			return nil, err
		}
		s.sp[ph] = sp
	}
	return s, nil
}

// add records an action, in path order within its phase.
func (s *spoolActions) add(a *Action) error {
	var err error
	if s.buf, err = appendAction(s.buf[:0], a); err != nil {
		return err
	}
	return s.sp[phaseOf(a.Op)].add(s.buf)
}

func (s *spoolActions) each(ph int, fn func(*Action) error) error {
	read := s.sp[ph].each
	if ph == phDelete || ph == phDirMeta {
		read = s.sp[ph].eachReverse
	}
	return read(func(rec []byte) error {
		a, err := decodeAction(rec)
		if err != nil {
			return err
		}
		spoolActionsRead.Add(1)
		return fn(a)
	})
}

func (*spoolActions) streamed() bool { return true }

func (s *spoolActions) close() {
	for _, sp := range s.sp {
		sp.close()
	}
}

// outcomeStore keeps what the applier did to each source path it changed
// (see outcome): by path in memory for a plan held whole, by the action's
// source index in a file for a streamed plan. Callers serialize calls.
type outcomeStore interface {
	// update changes the outcome of the source entry at path (ord: 1 + its
	// index in the source's list, 0 when unknown).
	update(path string, ord int32, fn func(*outcome))
	get(path string, ord int32) outcome
	close()
}

// mapOutcomes keys outcomes by path.
type mapOutcomes map[string]outcome

func (m mapOutcomes) update(path string, _ int32, fn func(*outcome)) {
	o := m[path]
	fn(&o)
	m[path] = o
}

func (m mapOutcomes) get(path string, _ int32) outcome { return m[path] }
func (mapOutcomes) close()                             {}

// fileOutcomes keeps outcomes as fixed-size records at their source index
// in a spool file (sparse: untouched entries cost no disk), so a full pull
// holds none of them on the heap; the manifest reads them back in order.
// Outcomes by path alone (a hard-link leader touched by its member's link)
// are few and stay in a map.
//
// Updates collect in a bounded map and go to the file a span at a time:
// a file's outcome is updated twice (placed, then its identity), and a
// read and a write of 48 bytes for each were four system calls a file of
// a full pull (issue 14).
type fileOutcomes struct {
	f      *os.File
	byPath mapOutcomes
	// pending holds updated records not yet written, at most
	// outcomePending of them
	pending map[int32]outcome
	// a read-ahead window of records [lo, lo+len(win)/outcomeSize) of
	// the file, valid until the next flush
	win  []byte
	lo   int64
	buf  []byte // flush's span
	size int64  // the file's length: nothing to read beyond it
	err  error  // the first write that failed
}

const (
	outcomeSize = 48
	// outcomePending bounds the records held before a flush (~100 KiB).
	outcomePending = 1024
	// outcomeGap is the most unchanged records a flush rewrites to join
	// two spans into one write.
	outcomeGap = 64
)

// outcomeFileOps counts the reads and writes of outcome spool files (a
// work count for tests).
var outcomeFileOps atomic.Int64

func newFileOutcomes(dir string) (*fileOutcomes, error) {
	f, err := spoolFile(dir)
	if err != nil {
		return nil, err
	}
	return &fileOutcomes{f: f, byPath: mapOutcomes{}, pending: map[int32]outcome{}}, nil
}

func (s *fileOutcomes) read(ord int32) outcome {
	if ord <= 0 {
		return outcome{}
	}
	if o, ok := s.pending[ord]; ok {
		return o
	}
	i := int64(ord - 1)
	if i*outcomeSize >= s.size {
		return outcome{} // never written
	}
	if s.win == nil || i < s.lo || i >= s.lo+int64(len(s.win)/outcomeSize) {
		if cap(s.win) == 0 {
			s.win = make([]byte, 1024*outcomeSize)
		}
		s.win = s.win[:cap(s.win)]
		outcomeFileOps.Add(1)
		n, err := s.f.ReadAt(s.win, i*outcomeSize)
		if err != nil && !errors.Is(err, io.EOF) {
			s.win = s.win[:0]
			return outcome{}
		}
		s.win, s.lo = s.win[:n-n%outcomeSize], i
		if i >= s.lo+int64(len(s.win)/outcomeSize) {
			return outcome{}
		}
	}
	return decodeOutcome(s.win[(i-s.lo)*outcomeSize:])
}

func decodeOutcome(b []byte) outcome {
	return outcome{
		hash: binary.LittleEndian.Uint64(b[0:]), dev: binary.LittleEndian.Uint64(b[8:]),
		ino: binary.LittleEndian.Uint64(b[16:]), ctime: int64(binary.LittleEndian.Uint64(b[24:])),
		mtime: int64(binary.LittleEndian.Uint64(b[32:])), nlink: binary.LittleEndian.Uint32(b[40:]),
		flags: outcomeFlags(b[44]),
	}
}

func encodeOutcome(b []byte, o outcome) {
	binary.LittleEndian.PutUint64(b[0:], o.hash)
	binary.LittleEndian.PutUint64(b[8:], o.dev)
	binary.LittleEndian.PutUint64(b[16:], o.ino)
	binary.LittleEndian.PutUint64(b[24:], uint64(o.ctime))
	binary.LittleEndian.PutUint64(b[32:], uint64(o.mtime))
	binary.LittleEndian.PutUint32(b[40:], o.nlink)
	b[44] = byte(o.flags)
	clear(b[45:outcomeSize])
}

func (s *fileOutcomes) update(path string, ord int32, fn func(*outcome)) {
	if ord <= 0 {
		s.byPath.update(path, ord, fn)
		return
	}
	o := s.read(ord)
	fn(&o)
	s.pending[ord] = o
	if len(s.pending) >= outcomePending {
		s.flush()
	}
}

// flush writes the pending records: sorted, in spans that may include up
// to outcomeGap records between them (read first and written back as
// they were), one read and one write a span.
func (s *fileOutcomes) flush() {
	if len(s.pending) == 0 {
		return
	}
	ords := make([]int32, 0, len(s.pending))
	for o := range s.pending {
		ords = append(ords, o)
	}
	slices.Sort(ords)
	for len(ords) > 0 {
		n := 1
		for n < len(ords) && ords[n]-ords[n-1] <= outcomeGap {
			n++
		}
		first, last := int64(ords[0]-1), int64(ords[n-1]-1)
		size := int((last - first + 1) * outcomeSize)
		if cap(s.buf) < size {
			s.buf = make([]byte, size)
		}
		b := s.buf[:size]
		if n < int(last-first+1) {
			// Records between the pending ones: keep what the file has.
			outcomeFileOps.Add(1)
			m, err := s.f.ReadAt(b, first*outcomeSize)
			if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
				s.err = err
			}
			clear(b[m:])
		}
		for _, o := range ords[:n] {
			encodeOutcome(b[(int64(o-1)-first)*outcomeSize:], s.pending[o])
		}
		outcomeFileOps.Add(1)
		if _, err := s.f.WriteAt(b, first*outcomeSize); err != nil && s.err == nil {
			s.err = err
		}
		s.size = max(s.size, first*outcomeSize+int64(size))
		ords = ords[n:]
	}
	clear(s.pending)
	s.win = s.win[:0] // stale now
}

func (s *fileOutcomes) get(path string, ord int32) outcome {
	o := s.read(ord)
	if p, ok := s.byPath[path]; ok {
		o.flags |= p.flags
	}
	return o
}

func (s *fileOutcomes) close() { s.f.Close() }
