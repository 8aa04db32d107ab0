package imaging

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
)

// spool is a sequence of records in a temp file, unlinked as soon as it is
// created (a killed run leaves nothing behind): what a sync needs in full
// more than once (the source's entries, the plan) is written here in the
// order it is made and read back as a stream, so the heap holds a record
// at a time whatever the size of the tree. Records are length-prefixed;
// a spool made with reverse keeps each record's offset (8 bytes) so that it
// can also be read backwards.
type spool struct {
	f       *os.File
	w       *bufio.Writer
	off     int64
	n       int
	offs    []int64
	reverse bool
	scratch []byte
	hdr     [binary.MaxVarintLen64]byte // a record's length, as written
}

// newSpool creates a spool in dir (the state dir: a sync's temp data stays
// with its state, on the image's filesystem side, not in /tmp).
//
// The file has no name (O_TMPFILE), so a killed run leaves nothing behind;
// where the filesystem cannot do that it is a ".spool-*" file unlinked at
// once, and a sync that takes the state dir's lock removes any such name
// a kill left between the two (removeStaleManifestTemps).
func newSpool(dir string, reverse bool) (*spool, error) {
	f, err := spoolFile(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &spool{f: f, w: bufio.NewWriterSize(f, 64<<10), reverse: reverse}, nil
}

// spoolFile opens a new nameless file in dir for a spool or the applier's
// outcomes.
func spoolFile(dir string) (*os.File, error) {
	if fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600); err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(spool)")), nil
	}
	f, err := os.CreateTemp(dir, spoolPrefix+"*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}

// spoolPrefix names a spool file on a filesystem without O_TMPFILE, for
// the moment between its creation and its unlinking.
const spoolPrefix = ".spool-"

// add appends one record.
func (s *spool) add(rec []byte) error {
	if s.reverse {
		s.offs = append(s.offs, s.off)
	}
	// The length in the spool's own array: a local one escaped through
	// the writer, one allocation a record (issue #14).
	h := binary.PutUvarint(s.hdr[:], uint64(len(rec)))
	if _, err := s.w.Write(s.hdr[:h]); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := s.w.Write(rec); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.off += int64(h + len(rec))
	s.n++
	return nil
}

// addFramed appends one record that the caller encoded after room for
// its length: rec is the record at b[spoolHdr:], written with its length
// in one piece.
func (s *spool) addFramed(b []byte) error {
	if s.reverse {
		s.offs = append(s.offs, s.off)
	}
	n := len(b) - spoolHdr
	h := binary.PutUvarint(s.hdr[:], uint64(n))
	start := spoolHdr - h
	copy(b[start:], s.hdr[:h])
	if _, err := s.w.Write(b[start:]); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.off += int64(h + n)
	s.n++
	return nil
}

// spoolHdr is the room addFramed's callers leave for a record's length.
const spoolHdr = binary.MaxVarintLen64

// Len returns the number of records.
func (s *spool) Len() int { return s.n }

// close removes the spool.
func (s *spool) close() {
	if s != nil && s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// each calls fn with every record in order (rec is valid during the call
// only). Records may still be added after it returns.
func (s *spool) each(fn func(rec []byte) error) error {
	return s.eachFrom(0, fn)
}

// eachFrom is each from the record at index k on: the records before it
// are skipped unread.
func (s *spool) eachFrom(k int, fn func(rec []byte) error) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, s.off), 64<<10)
	var buf []byte
	for i := range s.n {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if i < k {
			if _, err := r.Discard(int(n)); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			continue
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if err := fn(buf); err != nil {
			return err
		}
	}
	return nil
}

// eachReverse is each from the last record to the first (for a spool
// made with reverse).
func (s *spool) eachReverse(fn func(rec []byte) error) error {
	if !s.reverse {
		return errors.New("spool: not made for reading backwards")
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	end := s.off
	for k := len(s.offs) - 1; k >= 0; k-- {
		n := int(end - s.offs[k])
		if cap(s.scratch) < n {
			s.scratch = make([]byte, n)
		}
		b := s.scratch[:n]
		if _, err := s.f.ReadAt(b, s.offs[k]); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		l, h := binary.Uvarint(b)
		if h <= 0 || int(l) != n-h {
			return errors.New("spool: damaged record")
		}
		if err := fn(b[h:]); err != nil {
			return err
		}
		end = s.offs[k]
	}
	return nil
}

// entrySpool holds a list of entries in a spool, in the order added (the
// source's scan: tree.Compare order). Each record is encoded against the
// one before it, as the manifest's blocks are (the path's shared prefix,
// mode, owner and xattrs equal to the previous entry's left out): half
// the bytes of whole entries on a tree like syn200000.
type entrySpool struct {
	*spool
	buf  []byte
	prev tree.Entry // the last entry added (what the encoding uses of it)
	has  bool
}

func (s *entrySpool) add(e *tree.Entry) error {
	var prev *tree.Entry
	if s.has {
		prev = &s.prev
	}
	var err error
	if s.buf, err = wire.AppendEntryLocal(append(s.buf[:0], make([]byte, spoolHdr)...), prev, e); err != nil {
		return fmt.Errorf("spool %q: %w", e.Path, err)
	}
	s.prev, s.has = spoolKey(e), true
	return s.spool.addFramed(s.buf)
}

// spoolKey is what the entry codec uses of the entry before.
func spoolKey(e *tree.Entry) tree.Entry {
	return tree.Entry{Path: e.Path, Mode: e.Mode, UID: e.UID, GID: e.GID, Mtime: e.Mtime, Xattrs: e.Xattrs}
}

// entries yields the spooled entries, each a new value the caller may
// keep (their xattrs read-only: an entry may share its predecessor's). A
// read error ends the sequence and is stored in *errp.
func (s *entrySpool) entries(errp *error) iter.Seq[*tree.Entry] {
	return s.entriesFrom(0, nil, errp)
}

// entriesFrom is entries from the k-th on; prev is the (k-1)-th, the one
// it is encoded against (nil for k = 0). The ones before are not decoded.
func (s *entrySpool) entriesFrom(k int, prev *tree.Entry, errp *error) iter.Seq[*tree.Entry] {
	return func(yield func(*tree.Entry) bool) {
		stop := errors.New("stop")
		n := int64(0)
		defer func() { spoolDecoded.Add(n) }()
		if k > 0 && prev == nil {
			*errp = cmp.Or(*errp, errors.New("spool: resumed without the entry before"))
			return
		}
		// A copy of what the encoding used of the entry before: the
		// caller may change the entries it is given.
		var key tree.Entry
		var pk *tree.Entry
		if prev != nil {
			key, pk = spoolKey(prev), &key
		}
		err := s.eachFrom(k, func(rec []byte) error {
			e := new(tree.Entry)
			if _, err := wire.DecodeEntryLocal(rec, pk, e); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			key, pk = spoolKey(e), &key
			n++
			if !yield(e) {
				return stop
			}
			return nil
		})
		if err != nil && err != stop && *errp == nil {
			*errp = err
		}
	}
}

// spoolDecoded counts the entries decoded from entry spools (a work count
// for tests: a no-change pull plans without reading its spools back).
var spoolDecoded atomic.Int64

// decodeAhead yields what seq yields, running seq in a goroutine of its
// own up to aheadBatches batches of aheadBatch entries ahead of the
// caller, so that decoding a spool (seq) and using its entries run on two
// cores. Whatever seq stores (its error) is complete once the returned
// sequence has ended, also when the caller stops early.
func decodeAhead(seq iter.Seq[*tree.Entry]) iter.Seq[*tree.Entry] {
	return func(yield func(*tree.Entry) bool) {
		ch := make(chan []*tree.Entry, aheadBatches)
		quit := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer close(ch)
			batch := make([]*tree.Entry, 0, aheadBatch)
			send := func() bool {
				select {
				case ch <- batch:
					batch = make([]*tree.Entry, 0, aheadBatch)
					return true
				case <-quit:
					return false
				}
			}
			for e := range seq {
				if batch = append(batch, e); len(batch) == aheadBatch && !send() {
					return
				}
			}
			if len(batch) > 0 {
				send()
			}
		}()
		defer func() {
			close(quit)
			<-done
		}()
		for b := range ch {
			for _, e := range b {
				if !yield(e) {
					return
				}
			}
		}
	}
}

// The read-ahead of decodeAhead: a few hundred KiB of entries.
const (
	aheadBatch   = 256
	aheadBatches = 4
)

// Action records in a spool: op, flags, ord, pord, path, from, then the source and
// destination entries when present.
const (
	actReplace = 1 << iota
	actSrc
	actDst
	actCond
)

func appendAction(b []byte, a *Action) ([]byte, error) {
	flags := byte(0)
	if a.Replace {
		flags |= actReplace
	}
	if a.Src != nil {
		flags |= actSrc
	}
	if a.Dst != nil {
		flags |= actDst
	}
	if a.cond {
		flags |= actCond
	}
	b = append(b, byte(a.Op), flags)
	b = binary.AppendUvarint(b, uint64(a.ord))
	b = binary.AppendUvarint(b, uint64(a.pord))
	b = binary.AppendUvarint(b, uint64(len(a.Path)))
	b = append(b, a.Path...)
	b = binary.AppendUvarint(b, uint64(len(a.From)))
	b = append(b, a.From...)
	for _, e := range []*tree.Entry{a.Src, a.Dst} {
		if e == nil {
			continue
		}
		var err error
		if b, err = wire.AppendEntryLocal(b, nil, e); err != nil {
			return nil, fmt.Errorf("spool %q: %w", a.Path, err)
		}
	}
	return b, nil
}

var errBadAction = errors.New("spool: damaged action")

func decodeAction(b []byte) (*Action, error) {
	if len(b) < 2 {
		return nil, errBadAction
	}
	a := &Action{Op: Op(b[0])}
	flags := b[1]
	b = b[2:]
	a.Replace, a.cond = flags&actReplace != 0, flags&actCond != 0
	ord, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errBadAction
	}
	a.ord, b = int32(ord), b[n:]
	pord, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errBadAction
	}
	a.pord, b = int32(pord), b[n:]
	str := func() (string, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return "", false
		}
		s := string(b[n : n+int(l)])
		b = b[n+int(l):]
		return s, true
	}
	var ok1, ok2 bool
	a.Path, ok1 = str()
	a.From, ok2 = str()
	if !ok1 || !ok2 {
		return nil, errBadAction
	}
	var err error
	if flags&actSrc != 0 {
		a.Src = new(tree.Entry)
		if b, err = wire.DecodeEntryLocal(b, nil, a.Src); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	if flags&actDst != 0 {
		a.Dst = new(tree.Entry)
		if _, err = wire.DecodeEntryLocal(b, nil, a.Dst); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	return a, nil
}

// replacedFiles are the destination's hashed regular files a streamed
// plan replaces or deletes, for the generations' harvest, which looks up
// the few that retention kept: fixed-size records (identity, content key,
// mtime) in a nameless file, as a plan that fetches every file with a
// basis (an agent without its hash cache) replaces the whole list. The
// zero value and nil hold nothing.
type replacedFiles struct {
	dir string // where the file goes, made at the first add
	f   *os.File
	w   *bufio.Writer
	n   int
	err error // the first write that failed
}

const replacedSize = 40

func newReplacedFiles(dir string) *replacedFiles { return &replacedFiles{dir: dir} }

// add records d (its path is not kept).
func (r *replacedFiles) add(d *tree.Entry) {
	if r.err != nil {
		return
	}
	if r.f == nil {
		if r.f, r.err = spoolFile(r.dir); r.err != nil {
			return
		}
		r.w = bufio.NewWriterSize(r.f, 16<<10)
	}
	var b [replacedSize]byte
	binary.LittleEndian.PutUint64(b[0:], d.Dev)
	binary.LittleEndian.PutUint64(b[8:], d.Ino)
	binary.LittleEndian.PutUint64(b[16:], d.Hash)
	binary.LittleEndian.PutUint64(b[24:], uint64(d.Size))
	binary.LittleEndian.PutUint64(b[32:], uint64(d.Mtime))
	if _, r.err = r.w.Write(b[:]); r.err == nil {
		r.n++
	}
}

// each calls fn with each recorded file's identity and an entry holding
// its content key and mtime, in the order added.
func (r *replacedFiles) each(fn func(inoKey, *tree.Entry)) error {
	if r == nil || r.f == nil {
		return nil
	}
	if r.err != nil {
		return fmt.Errorf("replaced files: %w", r.err)
	}
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("replaced files: %w", err)
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r.f, 0, int64(r.n)*replacedSize), 16<<10)
	var b [replacedSize]byte
	for range r.n {
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return fmt.Errorf("replaced files: %w", err)
		}
		e := &tree.Entry{Type: tree.TypeRegular, Size: int64(binary.LittleEndian.Uint64(b[24:])),
			Mtime: int64(binary.LittleEndian.Uint64(b[32:]))}
		e.SetHash(binary.LittleEndian.Uint64(b[16:]))
		fn(inoKey{binary.LittleEndian.Uint64(b[0:]), binary.LittleEndian.Uint64(b[8:])}, e)
	}
	return nil
}

func (r *replacedFiles) close() {
	if r != nil && r.f != nil {
		r.f.Close()
		r.f = nil
	}
}
