package proto

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
)

// fetchBatch is one Fetch call's share of the requests in flight.
type fetchBatch struct {
	open func(*imaging.FetchRequest) (imaging.ContentSink, error)

	mu     sync.Mutex
	err    error // first failure; remaining sinks are aborted with it
	left   int   // requests sent and not yet settled
	issued bool  // no more requests will be added
	done   chan struct{}
}

func (b *fetchBatch) setErr(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
}

func (b *fetchBatch) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *fetchBatch) add() {
	b.mu.Lock()
	b.left++
	b.mu.Unlock()
}

// settled counts one request out; with issued set, the last one closes done.
func (b *fetchBatch) settled() {
	b.mu.Lock()
	b.left--
	if b.left == 0 && b.issued {
		close(b.done)
	}
	b.mu.Unlock()
}

func (b *fetchBatch) finishIssuing() {
	b.mu.Lock()
	b.issued = true
	if b.left == 0 {
		close(b.done)
	}
	b.mu.Unlock()
}

// pending is one request in flight. Only the stream's reader touches it
// after it is sent, so the sink's calls never overlap.
type pending struct {
	s      *stream
	id     uint64
	req    *imaging.FetchRequest
	b      *fetchBatch
	cost   int64
	sink   imaging.ContentSink
	opened bool // open was called (or skipped after a failure)
	dead   bool // the sink got Abort (or was never opened); drop the rest
	next   int64
	sent   bool // Data or Reuse arrived
}

// sink returns the request's sink, opening it on first use, or nil when
// its content is to be dropped.
func (p *pending) sinkFor() imaging.ContentSink {
	if !p.opened {
		p.opened = true
		if p.b.failed() != nil {
			p.dead = true
			return nil
		}
		sink, err := p.b.open(p.req)
		if err == nil && sink == nil {
			err = errors.New("no sink")
		}
		if err != nil {
			p.b.setErr(fmt.Errorf("open %s: %w", p.req.Entry.Path, err))
			p.dead = true
			return nil
		}
		p.sink = sink
	}
	if p.dead {
		return nil
	}
	if err := p.b.failed(); err != nil {
		p.sink.Abort(err)
		p.dead = true
		return nil
	}
	return p.sink
}

// sinkErr records a failed sink call: the file is aborted and the Fetch
// fails, but the stream goes on.
func (p *pending) sinkErr(op string, err error) {
	p.b.setErr(fmt.Errorf("%s %s: %w", op, p.req.Entry.Path, err))
	p.sink.Abort(err)
	p.dead = true
}

// settle completes a request the stream can no longer answer.
func (p *pending) settle(err error) {
	if p.opened && !p.dead {
		p.sink.Abort(err)
	}
	p.b.setErr(err)
	p.b.settled()
}

// Fetch implements imaging.Source. Requests are spread over the streams,
// each keeping a bounded window in flight; the answers drive the sinks from
// the streams' reader goroutines. Content that goes backwards, overlaps, or
// exceeds the requested size or the basis is an ErrProtocol and ends the
// session. An error from open or from a sink aborts that file, stops
// sending new requests and is returned once the requests in flight are
// settled; the session goes on.
func (c *Client) Fetch(ctx context.Context, reqs []*imaging.FetchRequest, open func(*imaging.FetchRequest) (imaging.ContentSink, error)) error {
	if err := c.usable(); err != nil {
		return err
	}
	b := &fetchBatch{open: open, done: make(chan struct{})}
	var err error
	for i, r := range reqs {
		if r == nil || r.Entry == nil || r.Entry.Type != tree.TypeRegular {
			err = fmt.Errorf("fetch: request %d is not for a regular file", i)
			break
		}
		if b.failed() != nil {
			break
		}
		if err = c.send(ctx, b, r); err != nil {
			break
		}
	}
	b.finishIssuing()
	select {
	case <-b.done:
	case <-ctx.Done():
		// Answers to abandoned requests would still arrive: end the session.
		c.fail(ctx.Err())
		<-b.done
	}
	if e := ctx.Err(); e != nil {
		return e
	}
	if err != nil {
		return err
	}
	return b.failed()
}

// send waits for room on a stream, registers the request and sends it.
func (c *Client) send(ctx context.Context, b *fetchBatch, r *imaging.FetchRequest) error {
	cost := r.Entry.Size + 256
	if r.Basis != nil {
		cost += 8 * int64(len(r.Basis.Blocks))
	}
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return ErrClosed
		}
		if c.broken != nil {
			err := c.broken
			c.mu.Unlock()
			return err
		}
		if s := c.pickLocked(cost); s != nil {
			// Reserve room now; the id is taken under the sender's lock so
			// ids go out in increasing order whoever sends them.
			p := &pending{s: s, req: r, b: b, cost: cost}
			s.outstanding++
			s.outBytes += cost
			b.add()
			s.expect.Add(1)
			c.mu.Unlock()
			s.m.request()
			err := s.out.sendFunc(func() (wire.Message, error) {
				c.mu.Lock()
				defer c.mu.Unlock()
				if s.dead {
					return nil, errStreamDead
				}
				p.id = s.nextID
				s.nextID++
				s.pending[p.id] = p
				m := &wire.FetchRequest{ID: p.id, Path: r.Entry.Path, Size: r.Entry.Size, Mtime: r.Entry.Mtime,
					Hash: r.Entry.Hash, Hashed: r.Entry.Hashed()}
				if bs := r.Basis; bs != nil {
					m.Basis = &wire.Basis{Size: bs.Size, Hash: bs.Hash, Hashed: bs.Hashed, BlockSize: bs.BlockSize, Blocks: bs.Blocks}
				}
				return m, nil
			})
			switch {
			case err == nil:
				return nil
			case p.id == 0:
				// Never registered, so the reader will not settle it.
				if err == errStreamDead {
					if err = s.failure(); err == nil {
						err = ErrClosed
					}
				}
				b.setErr(err)
				b.settled()
			case isEncodeError(err):
				// Registered but nothing was sent: settle it here.
				c.complete(p)
				b.settled()
			}
			// Otherwise the stream failed with the request registered and
			// its reader settles it.
			return fmt.Errorf("fetch %s: %w", r.Entry.Path, err)
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pickLocked returns the ready stream with the least outstanding that has
// room for a request of cost, or nil. The first stream is left alone while
// it carries a scan, if there is another.
func (c *Client) pickLocked(cost int64) *stream {
	var best *stream
	usable := 0
	for _, s := range c.streams {
		if s.ready && !s.dead {
			usable++
		}
	}
	for _, s := range c.streams {
		if !s.ready || s.dead || s.outstanding >= c.opts.Window {
			continue
		}
		if s.outstanding > 0 && s.outBytes+cost > c.opts.WindowBytes {
			continue
		}
		if s.id == 0 && usable > 1 && s.scan.Load() != nil {
			continue
		}
		if best == nil || s.outBytes < best.outBytes || s.outBytes == best.outBytes && s.outstanding < best.outstanding {
			best = s
		}
	}
	return best
}

// errStreamDead says a request found its stream gone before it was sent.
var errStreamDead = errors.New("stream ended")

// complete removes an answered request from its stream's window.
func (c *Client) complete(p *pending) {
	c.mu.Lock()
	s := p.s
	if s.pending != nil {
		delete(s.pending, p.id)
	}
	s.outstanding--
	s.outBytes -= p.cost
	if s.outstanding <= c.opts.Window-c.opts.Window/4 {
		// Room for a burst of requests: a waiting Fetch sends them
		// together. Woken at each answer, it sent one request a file,
		// each a hand-off between goroutines and a frame of its own
		// (issue 14). Every request is answered or its stream fails
		// (which wakes), so the window drains to here.
		c.wakeLocked()
	}
	c.mu.Unlock()
	s.expect.Add(-1)
}

func (s *stream) lookup(id uint64, what wire.Type) (*pending, error) {
	s.c.mu.Lock()
	p := s.pending[id]
	s.c.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("%w: %s for unknown request %d", ErrProtocol, what, id)
	}
	return p, nil
}

func (s *stream) onData(m *wire.FileData) error {
	p, err := s.lookup(m.ID, wire.TypeFileData)
	if err != nil {
		return err
	}
	e := p.req.Entry
	end := m.Off + int64(len(m.Data))
	switch {
	case m.Off < p.next:
		return fmt.Errorf("%w: data for %q at %d goes back before %d (overlap or out of order)", ErrProtocol, e.Path, m.Off, p.next)
	case end > e.Size:
		return fmt.Errorf("%w: data for %q up to %d exceeds the requested size %d", ErrProtocol, e.Path, end, e.Size)
	}
	p.next, p.sent = end, true
	s.c.dataBytes.Add(int64(len(m.Data)))
	if sink := p.sinkFor(); sink != nil && len(m.Data) > 0 {
		if err := sink.Data(m.Off, m.Data); err != nil {
			p.sinkErr("write", err)
		}
	}
	return nil
}

func (s *stream) onReuse(m *wire.FileReuse) error {
	p, err := s.lookup(m.ID, wire.TypeFileReuse)
	if err != nil {
		return err
	}
	e, bs := p.req.Entry, p.req.Basis
	switch {
	case bs == nil:
		return fmt.Errorf("%w: reuse for %q, which has no basis", ErrProtocol, e.Path)
	case m.N <= 0:
		return fmt.Errorf("%w: empty reuse for %q", ErrProtocol, e.Path)
	case m.Off < p.next:
		return fmt.Errorf("%w: reuse for %q at %d goes back before %d (overlap or out of order)", ErrProtocol, e.Path, m.Off, p.next)
	case m.N > min(e.Size, bs.Size)-m.Off:
		return fmt.Errorf("%w: reuse for %q of %d bytes at %d exceeds the requested size %d or the basis size %d",
			ErrProtocol, e.Path, m.N, m.Off, e.Size, bs.Size)
	}
	p.next, p.sent = m.Off+m.N, true
	s.c.reuseBytes.Add(m.N)
	if sink := p.sinkFor(); sink != nil {
		if err := sink.Reuse(m.Off, m.N); err != nil {
			p.sinkErr("write", err)
		}
	}
	return nil
}

func (s *stream) onEnd(m *wire.FileEnd) error {
	p, err := s.lookup(m.ID, wire.TypeFileEnd)
	if err != nil {
		return err
	}
	e, bs := p.req.Entry, p.req.Basis
	switch {
	case m.Size > e.Size:
		return fmt.Errorf("%w: %q ends at size %d, beyond the requested size %d", ErrProtocol, e.Path, m.Size, e.Size)
	case p.next > m.Size:
		return fmt.Errorf("%w: %q ends at size %d after content up to %d", ErrProtocol, e.Path, m.Size, p.next)
	case m.Unchanged && (bs == nil || !bs.Hashed):
		return fmt.Errorf("%w: %q reported unchanged without a hashed basis", ErrProtocol, e.Path)
	case m.Unchanged && (p.sent || m.Size != bs.Size || m.Hash != bs.Hash):
		return fmt.Errorf("%w: %q reported unchanged but differs from the basis", ErrProtocol, e.Path)
	}
	s.c.complete(p)
	s.c.files.Add(1)
	if sink := p.sinkFor(); sink != nil {
		if err := sink.Finish(imaging.FetchResult{Size: m.Size, Hash: m.Hash, Unchanged: m.Unchanged, Mtime: m.Mtime}); err != nil {
			p.b.setErr(fmt.Errorf("finish %s: %w", e.Path, err))
		}
	}
	p.b.settled()
	return nil
}

func (s *stream) onFileError(m *wire.FileError) error {
	p, err := s.lookup(m.ID, wire.TypeFileError)
	if err != nil {
		return err
	}
	s.c.complete(p)
	s.c.fileErrors.Add(1)
	if sink := p.sinkFor(); sink != nil {
		op := m.Op
		if op == "" {
			op = "read"
		} else if strings.Trim(op, "abcdefghijklmnopqrstuvwxyz_ ") != "" {
			op = wire.Inert(op)
		}
		sink.Abort(&imaging.FileError{Op: op, Path: p.req.Entry.Path, Err: &remoteFileErr{msg: m.Msg, kind: m.Kind}})
	}
	p.b.settled()
	return nil
}

// remoteFileErr is a file error as the sender described it, unwrapping to
// the sentinel its kind names.
type remoteFileErr struct {
	msg  string
	kind wire.ErrKind
}

// Error returns the sender's message, quoted: it is peer text.
func (e *remoteFileErr) Error() string { return wire.Inert(e.msg) }

func (e *remoteFileErr) Unwrap() error {
	switch e.kind {
	case wire.KindChanged:
		return imaging.ErrChanged
	case wire.KindNotExist:
		return fs.ErrNotExist
	case wire.KindPermission:
		return fs.ErrPermission
	}
	return nil
}

// Ack confirms token to the server (a push applied up to that journal
// point) and waits until the server has recorded it.
func (c *Client) Ack(ctx context.Context, token string) error {
	if err := c.usable(); err != nil {
		return err
	}
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	c.mu.Lock()
	s := c.streams[0]
	c.mu.Unlock()
	s.expect.Add(1)
	s.m.request()
	if err := s.out.send(&wire.Ack{Token: token}); err != nil {
		s.expect.Add(-1)
		return fmt.Errorf("send ack: %w", err)
	}
	select {
	case got := <-s.acks:
		if got != token {
			err := fmt.Errorf("%w: ack for %q answered with %q", ErrProtocol, token, got)
			c.fail(err)
			return err
		}
		return nil
	case <-ctx.Done():
		c.fail(ctx.Err())
		return ctx.Err()
	case <-s.done:
		return s.err
	}
}

// Release says goodbye on every stream without waiting for the server's
// answer: the client takes no more calls (ErrClosed), and the server ends
// its side (a DirSource saves its hash cache) while the caller goes on
// with work of its own, such as the last steps of a pull that needs no
// more of the source. Close then waits for the answers. Calling it more
// than once, or after Close, does nothing.
func (c *Client) Release() {
	c.byeMu.Lock()
	defer c.byeMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.byeBroken = c.broken
	c.byeStreams = append([]*stream(nil), c.streams...)
	c.wakeLocked()
	c.mu.Unlock()
	for _, s := range c.byeStreams {
		if s.failure() != nil {
			continue
		}
		s.expect.Add(1)
		s.m.request()
		if e := s.out.send(&wire.Done{}); e != nil && c.byeErr == nil {
			c.byeErr = fmt.Errorf("stream %d: say goodbye: %w", s.id, e)
		}
	}
}

// Close says goodbye on every stream (unless Release did), waits for the
// server's answer (at most IdleTimeout of silence) and closes the streams.
// The server's counters are then in Stats().Peer.
func (c *Client) Close() error {
	c.Release()
	c.byeMu.Lock()
	if c.byeWaited {
		c.byeMu.Unlock()
		return nil
	}
	c.byeWaited = true
	err := c.byeErr
	c.byeMu.Unlock()
	for _, s := range c.byeStreams {
		<-s.readerDone
		s.fail(errGoodbye)
		if e := s.err; e != errGoodbye && err == nil && c.byeBroken == nil {
			err = fmt.Errorf("stream %d: %w", s.id, e)
		}
	}
	close(c.stopWatch)
	<-c.watchDone
	return err
}
