package watch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/goldsync/goldsync/imaging/tree"
)

// Generations. Every mark is stamped with the current generation. Handing
// out a token seals the generation: the token names it, and the next mark
// opens the following one. So a token t has seen exactly the marks stamped
// ≤ t, and Since(t) reports the marks stamped > t. Marks within one
// generation are indistinguishable to every token holder, which is what
// lets a Tree mark swallow later marks beneath it in the same generation.

// dirty is what the journal keeps per path: the generation of its latest
// mark of each kind (0: none).
type dirty struct {
	self uint64 // the entry itself (its metadata, content, or absence)
	tree uint64 // the entry and everything beneath it
}

func (d dirty) max() uint64 { return max(d.self, d.tree) }

// maxBarriers bounds how many recent barrier ids the journal remembers.
const maxBarriers = 32

// state is the journal's content. It changes only through apply, so the
// writer and every reader of the log compute the same state.
type state struct {
	epoch      [16]byte
	cur        uint64 // current generation, ≥ 1
	sealed     bool   // a token names cur: the next mark opens cur+1
	floor      uint64 // tokens below floor are not answered: marks were dropped
	fullGen    uint64 // generation of the latest full-rescan mark (0: none)
	fullReason string
	acks       map[string]uint64 // destination → latest acknowledged generation
	volatile   []string          // paths no watcher can watch, sorted: always reported as Tree
	barriers   []string          // recent barrier ids, oldest first
	entries    map[string]dirty

	loaded     bool // the state record was read
	inSnapshot bool // only state and entries records so far
}

func newState(epoch [16]byte) *state {
	return &state{epoch: epoch, cur: 1, acks: map[string]uint64{}, entries: map[string]dirty{}}
}

// next returns the generation the next mark gets.
func (s *state) next() uint64 {
	if s.sealed {
		return s.cur + 1
	}
	return s.cur
}

// covered reports whether p or one of its ancestors is Tree-dirty in
// generation gen, so a mark of p in gen would add nothing.
func (s *state) covered(p string, gen uint64) bool {
	for a := p; a != ""; a = tree.Dir(a) {
		if e, ok := s.entries[a]; ok && e.tree == gen {
			return true
		}
	}
	return false
}

// apply replays one record payload.
func (s *state) apply(p []byte) error {
	d := &dec{b: p}
	typ := d.byte()
	if d.err != nil {
		return d.err
	}
	if !s.loaded && typ != recState {
		return fmt.Errorf("log does not start with a state record (type %d)", typ)
	}
	if typ != recEntries {
		s.inSnapshot = false
	}
	var err error
	switch typ {
	case recState:
		err = s.applyState(d)
	case recEntries:
		err = s.applyEntries(d)
	case recMarks:
		err = s.applyMarks(d)
	case recFull:
		gen := d.uvarint()
		reason := d.string(maxReason)
		if err = d.end(); err == nil {
			if gen != s.next() {
				return fmt.Errorf("full mark at generation %d, want %d", gen, s.next())
			}
			s.cur, s.sealed = gen, false
			s.fullGen, s.fullReason = gen, reason
			clear(s.entries)
		}
	case recSeal:
		gen := d.uvarint()
		if err = d.end(); err == nil {
			if gen != s.cur || s.sealed {
				return fmt.Errorf("seal of generation %d at %d (sealed %v)", gen, s.cur, s.sealed)
			}
			s.sealed = true
		}
	case recAck:
		dest := d.string(maxDestID)
		gen := d.uvarint()
		if err = d.end(); err == nil {
			if dest == "" || gen == 0 || gen > s.cur {
				return fmt.Errorf("bad ack %q at generation %d of %d", dest, gen, s.cur)
			}
			if gen > s.acks[dest] {
				s.acks[dest] = gen
			}
			s.raiseFloor()
		}
	case recForget:
		dest := d.string(maxDestID)
		if err = d.end(); err == nil {
			delete(s.acks, dest)
		}
	case recBarrier:
		id := d.string(maxBarrier)
		if err = d.end(); err == nil {
			if id == "" {
				return errors.New("empty barrier id")
			}
			s.addBarrier(id)
		}
	case recVolatile:
		paths, derr := decodePaths(d)
		if err = derr; err == nil {
			s.volatile = paths
		}
	default:
		return fmt.Errorf("unknown record type %d", typ)
	}
	return err
}

func (s *state) applyState(d *dec) error {
	if s.loaded {
		return errors.New("state record after the start of the log")
	}
	cur := d.uvarint()
	sealed := d.byte()
	floor := d.uvarint()
	fullGen := d.uvarint()
	reason := d.string(maxReason)
	n := d.count(2)
	acks := make(map[string]uint64, n)
	for range n {
		dest := d.string(maxDestID)
		gen := d.uvarint()
		if d.err == nil {
			if _, dup := acks[dest]; dup || dest == "" || gen == 0 || gen > cur {
				return fmt.Errorf("bad ack %q at generation %d", dest, gen)
			}
			acks[dest] = gen
		}
	}
	vol, err := decodePaths(d)
	if err != nil {
		return err
	}
	n = d.count(2)
	var bars []string
	for range n {
		id := d.string(maxBarrier)
		if d.err == nil && id == "" {
			return errors.New("empty barrier id")
		}
		bars = append(bars, id)
	}
	if err := d.end(); err != nil {
		return err
	}
	if cur == 0 || sealed > 1 || floor > cur || fullGen > cur || len(bars) > maxBarriers {
		return fmt.Errorf("bad state: generation %d sealed %d floor %d full %d barriers %d", cur, sealed, floor, fullGen, len(bars))
	}
	s.cur, s.sealed, s.floor = cur, sealed == 1, floor
	s.fullGen, s.fullReason = fullGen, reason
	s.acks, s.volatile, s.barriers = acks, vol, bars
	s.loaded, s.inSnapshot = true, true
	return nil
}

func (s *state) applyEntries(d *dec) error {
	if !s.inSnapshot {
		return errors.New("entries record outside a snapshot")
	}
	n := d.count(3)
	if n == 0 && d.err == nil {
		return errors.New("empty entries record")
	}
	for range n {
		p := d.string(tree.MaxPathLen)
		e := dirty{self: d.uvarint(), tree: d.uvarint()}
		if d.err != nil {
			break
		}
		if err := tree.ValidatePath(p); err != nil {
			return err
		}
		if _, dup := s.entries[p]; dup {
			return fmt.Errorf("entry %q listed twice", p)
		}
		if e.max() == 0 || e.max() > s.cur {
			return fmt.Errorf("entry %q: generations %d/%d out of range", p, e.self, e.tree)
		}
		s.entries[p] = e
	}
	return d.end()
}

func (s *state) applyMarks(d *dec) error {
	gen := d.uvarint()
	n := d.count(2)
	if d.err == nil {
		if n == 0 {
			return errors.New("empty marks record")
		}
		if gen != s.next() {
			return fmt.Errorf("marks at generation %d, want %d", gen, s.next())
		}
	}
	marks := make([]DirtyPath, 0, n)
	for range n {
		fl := d.byte()
		p := d.string(tree.MaxPathLen)
		if d.err != nil {
			break
		}
		if fl > 1 {
			return fmt.Errorf("bad mark flags %#x", fl)
		}
		if err := tree.ValidatePath(p); err != nil {
			return err
		}
		marks = append(marks, DirtyPath{Path: p, Tree: fl == 1})
	}
	if err := d.end(); err != nil {
		return err
	}
	s.cur, s.sealed = gen, false
	for _, m := range marks {
		if s.covered(m.Path, gen) {
			continue
		}
		e := s.entries[m.Path]
		if m.Tree {
			e.tree = gen
		} else {
			e.self = gen
		}
		s.entries[m.Path] = e
	}
	return nil
}

func decodePaths(d *dec) ([]string, error) {
	n := d.count(2)
	var paths []string
	for range n {
		p := d.string(tree.MaxPathLen)
		if d.err != nil {
			break
		}
		if err := tree.ValidatePath(p); err != nil {
			return nil, err
		}
		if len(paths) > 0 && tree.Compare(paths[len(paths)-1], p) >= 0 {
			return nil, fmt.Errorf("paths not sorted at %q", p)
		}
		paths = append(paths, p)
	}
	return paths, d.err
}

// raiseFloor drops what no acknowledged destination still needs: marks at or
// below the oldest acknowledged generation.
func (s *state) raiseFloor() {
	if len(s.acks) == 0 {
		return
	}
	m := slices.Min(slices.Collect(maps.Values(s.acks)))
	if m <= s.floor {
		return
	}
	s.floor = m
	maps.DeleteFunc(s.entries, func(_ string, e dirty) bool { return e.max() <= m })
}

func (s *state) addBarrier(id string) {
	s.barriers = append(s.barriers, id)
	if len(s.barriers) > maxBarriers {
		s.barriers = slices.Clone(s.barriers[len(s.barriers)-maxBarriers:])
	}
}

// prune drops entries that a Tree mark of an ancestor, at least as recent as
// every mark of the entry, already reports to every token holder.
func (s *state) prune() {
	paths := slices.SortedFunc(maps.Keys(s.entries), tree.Compare)
	type open struct {
		path string
		gen  uint64 // the highest Tree generation among it and its ancestors
	}
	var stack []open
	for _, p := range paths {
		for len(stack) > 0 && !tree.IsWithin(p, stack[len(stack)-1].path) {
			stack = stack[:len(stack)-1]
		}
		var anc uint64
		if len(stack) > 0 {
			anc = stack[len(stack)-1].gen
		}
		e := s.entries[p]
		if anc >= e.max() {
			delete(s.entries, p)
			continue
		}
		if e.tree > anc {
			stack = append(stack, open{p, e.tree})
		}
	}
}

// changes returns the minimal, sorted scopes that cover every mark after
// generation t.
func (s *state) changes(t uint64) []tree.Scope {
	var scopes []tree.Scope
	for p, e := range s.entries {
		switch {
		case e.tree > t:
			scopes = append(scopes, tree.Scope{Path: p, Tree: true})
		case e.self > t:
			scopes = append(scopes, tree.Scope{Path: p})
		}
	}
	for _, p := range s.volatile {
		scopes = append(scopes, tree.Scope{Path: p, Tree: true})
	}
	return minimize(scopes)
}

// minimize sorts scopes in tree.Compare order and drops every scope another
// one already covers. Sorting puts a directory right before its subtree, so
// one pass that remembers the last Tree scope kept is enough.
func minimize(scopes []tree.Scope) []tree.Scope {
	slices.SortFunc(scopes, func(a, b tree.Scope) int {
		if c := tree.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		switch {
		case a.Tree == b.Tree:
			return 0
		case a.Tree:
			return -1
		}
		return 1
	})
	out := scopes[:0]
	last := "" // path of the last Tree scope kept
	for i, sc := range scopes {
		if i > 0 && sc.Path == scopes[i-1].Path {
			continue
		}
		if last != "" && tree.IsWithin(sc.Path, last) {
			continue
		}
		out = append(out, sc)
		if sc.Tree {
			last = sc.Path
		}
	}
	return out
}

// encodeSnapshot returns a whole log holding s: header, state record and
// entries records of bounded size.
func (s *state) encodeSnapshot() []byte {
	b := encodeHeader(s.epoch)
	p := []byte{recState}
	p = binary.AppendUvarint(p, s.cur)
	p = append(p, boolByte(s.sealed))
	p = binary.AppendUvarint(p, s.floor)
	p = binary.AppendUvarint(p, s.fullGen)
	p = appendString(p, s.fullReason)
	p = binary.AppendUvarint(p, uint64(len(s.acks)))
	for _, dest := range slices.Sorted(maps.Keys(s.acks)) {
		p = appendString(p, dest)
		p = binary.AppendUvarint(p, s.acks[dest])
	}
	p = binary.AppendUvarint(p, uint64(len(s.volatile)))
	for _, v := range s.volatile {
		p = appendString(p, v)
	}
	p = binary.AppendUvarint(p, uint64(len(s.barriers)))
	for _, id := range s.barriers {
		p = appendString(p, id)
	}
	b = frame(b, p)

	const chunk = 1 << 20
	n := 0
	var body []byte
	flush := func() {
		if n == 0 {
			return
		}
		rec := binary.AppendUvarint([]byte{recEntries}, uint64(n))
		b = frame(b, append(rec, body...))
		body, n = body[:0], 0
	}
	for _, path := range slices.SortedFunc(maps.Keys(s.entries), tree.Compare) {
		e := s.entries[path]
		body = appendString(body, path)
		body = binary.AppendUvarint(body, e.self)
		body = binary.AppendUvarint(body, e.tree)
		n++
		if len(body) >= chunk {
			flush()
		}
	}
	flush()
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// decodeLog rebuilds the state from a whole log. It returns the state of the
// longest valid prefix, that prefix's length, and the error that stopped it
// (nil when the whole log was read). A nil state means not even the header
// and state record could be read.
func decodeLog(data []byte) (*state, int, error) {
	epoch, err := decodeHeader(data)
	if err != nil {
		return nil, 0, err
	}
	s := newState(epoch)
	off := headerLen
	for off < len(data) {
		payload, n, err := nextRecord(data[off:])
		if err == nil {
			err = s.apply(payload)
		}
		if err != nil {
			if !s.loaded {
				return nil, 0, fmt.Errorf("record at byte %d: %w", off, err)
			}
			return s, off, fmt.Errorf("record at byte %d: %w", off, err)
		}
		off += n
	}
	if !s.loaded {
		return nil, 0, errors.New("log has no state record")
	}
	return s, off, nil
}
