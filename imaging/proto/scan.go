package proto

import (
	"context"
	"fmt"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
)

// scanBatch is how many entries the reader hands over at once.
const scanBatch = 256

// scanState is one scan in flight on the first stream. The reader owns
// everything but ch and quit.
type scanState struct {
	req     imaging.ScanRequest
	ch      chan scanEvent
	quit    chan struct{} // closed when the caller stops listening
	checker tree.Checker
	dirs    []string // directories on the path to the last entry
	orphan  string   // first entry sent without its parent
	root    bool     // the root entry was sent
	n       int
	probs   int
	batch   []*tree.Entry
}

type scanEvent struct {
	entries []*tree.Entry
	end     bool
	res     imaging.ScanResult
	err     error
}

// Scan implements imaging.Source. Every entry passes a tree.Checker before
// fn sees it, and the ScanEnd must agree with what was sent: a sender that
// breaks the rules ends the session with an ErrProtocol.
func (c *Client) Scan(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
	if err := c.usable(); err != nil {
		return imaging.ScanResult{}, err
	}
	c.mu.Lock()
	s := c.streams[0]
	c.mu.Unlock()
	select {
	case s.scanSlot <- struct{}{}:
	case <-ctx.Done():
		return imaging.ScanResult{}, ctx.Err()
	case <-s.done:
		return imaging.ScanResult{}, s.err
	}
	sc := &scanState{
		req:  req,
		ch:   make(chan scanEvent, 4),
		quit: make(chan struct{}),
		checker: tree.Checker{MaxEntries: c.opts.MaxEntries, MaxBytes: c.opts.MaxListBytes, Partial: req.Since != "",
			DeferLinks: req.LinksChecked, Validated: true},
	}
	s.scan.Store(sc)
	s.expect.Add(1)
	s.m.request()
	if err := s.out.send(&wire.ScanRequest{Excludes: req.Excludes, Since: req.Since, Hash: req.Hash}); err != nil {
		s.scan.Store(nil)
		s.expect.Add(-1)
		<-s.scanSlot
		return imaging.ScanResult{}, fmt.Errorf("send scan request: %w", err)
	}
	handle := func(ev scanEvent) (imaging.ScanResult, bool, error) {
		for _, e := range ev.entries {
			if err := fn(e); err != nil {
				if !ev.end {
					s.abandon(sc)
				}
				return imaging.ScanResult{}, true, err
			}
		}
		return ev.res, ev.end, ev.err
	}
	for {
		select {
		case ev := <-sc.ch:
			if res, end, err := handle(ev); end {
				return res, err
			}
		case <-ctx.Done():
			s.abandon(sc)
			return imaging.ScanResult{}, ctx.Err()
		case <-s.done:
			// Events sent before the stream ended still count.
			for {
				select {
				case ev := <-sc.ch:
					if res, end, err := handle(ev); end {
						return res, err
					}
				default:
					return imaging.ScanResult{}, s.err
				}
			}
		}
	}
}

// EntriesValidated implements imaging.ValidatedSource: every entry a
// Scan hands out was validated by the wire's decoder, once, as it was
// decoded (the scan's checker then checks only its place in the stream).
func (c *Client) EntriesValidated() bool { return true }

// GiveBack implements imaging.LendingSource: e, an entry a Scan handed
// out that the caller no longer looks at, is decoded into again.
func (c *Client) GiveBack(e *tree.Entry) { c.lent.Put(e) }

// abandon stops listening to a scan and asks the server to stop it; the
// reader drops its remaining entries and frees the scan slot at ScanEnd.
func (s *stream) abandon(sc *scanState) {
	close(sc.quit)
	s.out.send(&wire.Cancel{}) // a failure ends the stream, which says why
}

// deliver hands an event to the scan's caller unless it stopped listening.
func (s *stream) deliver(sc *scanState, ev scanEvent) {
	select {
	case sc.ch <- ev:
	case <-sc.quit:
	case <-s.done:
	}
}

func (s *stream) onEntry(e *tree.Entry) error {
	sc := s.scan.Load()
	if sc == nil {
		return fmt.Errorf("%w: entry %q outside a scan", ErrProtocol, e.Path)
	}
	if err := sc.checker.Add(e); err != nil {
		return fmt.Errorf("%w: bad entry from the sender: %w", ErrProtocol, err)
	}
	// Track the directories above the entry to learn whether its parent
	// was sent, which a partial scan's checker does not insist on.
	for len(sc.dirs) > 0 && !tree.IsWithin(e.Path, sc.dirs[len(sc.dirs)-1]) {
		sc.dirs = sc.dirs[:len(sc.dirs)-1]
	}
	if e.Path == tree.Root {
		sc.root = true
	} else if sc.orphan == "" && (len(sc.dirs) == 0 || sc.dirs[len(sc.dirs)-1] != tree.Dir(e.Path)) {
		sc.orphan = e.Path
	}
	if e.Type == tree.TypeDir {
		sc.dirs = append(sc.dirs, e.Path)
	}
	sc.n++
	if e.Problem != "" {
		sc.probs++
	}
	s.c.entries.Add(1)
	sc.batch = append(sc.batch, e)
	if len(sc.batch) >= scanBatch || s.dec.Buffered() == 0 {
		s.deliver(sc, scanEvent{entries: sc.batch})
		sc.batch = nil
	}
	return nil
}

func (s *stream) onScanEnd(m *wire.ScanEnd) error {
	sc := s.scan.Load()
	if sc == nil {
		return fmt.Errorf("%w: scan end outside a scan", ErrProtocol)
	}
	ev := scanEvent{entries: sc.batch, end: true}
	if m.Err != "" {
		ev.err = fmt.Errorf("%w: scan: %s", ErrRemote, wire.Inert(m.Err))
	} else {
		if err := sc.checkEnd(m); err != nil {
			return err
		}
		ev.res = imaging.ScanResult{Scope: m.Scope, Problems: m.Problems, Token: m.Token, Entries: m.Entries}
	}
	s.deliver(sc, ev)
	sc.batch = nil
	s.scan.Store(nil)
	s.expect.Add(-1)
	<-s.scanSlot
	return nil
}

// checkEnd checks the ScanEnd against the entries sent.
func (sc *scanState) checkEnd(m *wire.ScanEnd) error {
	full := tree.IsFull(m.Scope)
	switch {
	case m.Entries != sc.n:
		return fmt.Errorf("%w: scan end counts %d entries, %d were sent", ErrProtocol, m.Entries, sc.n)
	case m.Problems != sc.probs:
		return fmt.Errorf("%w: scan end counts %d problems, %d were sent", ErrProtocol, m.Problems, sc.probs)
	case sc.req.Since == "" && !full:
		return fmt.Errorf("%w: a full scan was answered with a partial scope", ErrProtocol)
	case full && !sc.root:
		return fmt.Errorf("%w: a full scan without the root entry", ErrProtocol)
	case full && sc.orphan != "":
		return fmt.Errorf("%w: a full scan sent %q without its parent", ErrProtocol, sc.orphan)
	}
	return nil
}
