package imaging

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
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
type fileOutcomes struct {
	f      *os.File
	byPath mapOutcomes
	rec    [outcomeSize]byte
	// a read-ahead window of records [lo, lo+len(win)/outcomeSize),
	// valid until the next update
	win []byte
	lo  int64
	err error // the first write that failed
}

const outcomeSize = 48

func newFileOutcomes(dir string) (*fileOutcomes, error) {
	f, err := spoolFile(dir)
	if err != nil {
		return nil, err
	}
	return &fileOutcomes{f: f, byPath: mapOutcomes{}}, nil
}

func (s *fileOutcomes) read(ord int32) outcome {
	if ord <= 0 {
		return outcome{}
	}
	i := int64(ord - 1)
	if s.win == nil || i < s.lo || i >= s.lo+int64(len(s.win)/outcomeSize) {
		if cap(s.win) == 0 {
			s.win = make([]byte, 1024*outcomeSize)
		}
		s.win = s.win[:cap(s.win)]
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

func (s *fileOutcomes) update(path string, ord int32, fn func(*outcome)) {
	if ord <= 0 {
		s.byPath.update(path, ord, fn)
		return
	}
	s.win = s.win[:0] // the window is stale after a write
	b := s.rec[:]
	var o outcome
	if n, _ := s.f.ReadAt(b, int64(ord-1)*outcomeSize); n == outcomeSize {
		o = decodeOutcome(b)
	}
	fn(&o)
	binary.LittleEndian.PutUint64(b[0:], o.hash)
	binary.LittleEndian.PutUint64(b[8:], o.dev)
	binary.LittleEndian.PutUint64(b[16:], o.ino)
	binary.LittleEndian.PutUint64(b[24:], uint64(o.ctime))
	binary.LittleEndian.PutUint64(b[32:], uint64(o.mtime))
	binary.LittleEndian.PutUint32(b[40:], o.nlink)
	b[44] = byte(o.flags)
	if _, err := s.f.WriteAt(b, int64(ord-1)*outcomeSize); err != nil && s.err == nil {
		s.err = err
	}
}

func (s *fileOutcomes) get(path string, ord int32) outcome {
	o := s.read(ord)
	if p, ok := s.byPath[path]; ok {
		o.flags |= p.flags
	}
	return o
}

func (s *fileOutcomes) close() { s.f.Close() }
