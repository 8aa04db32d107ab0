package proto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
)

// Errors callers may branch on. Handshake failures are the sentinels of
// package wire (wire.ErrRemoteExited, wire.ErrNotProtocol, wire.ErrVersion).
var (
	// ErrProtocol is wrapped by every violation of the protocol by the
	// peer: malformed frames, invalid or misordered entries, content
	// beyond a requested size, unexpected messages.
	ErrProtocol = errors.New("protocol error")
	// ErrRemote is wrapped by a fatal error the peer reported.
	ErrRemote = errors.New("remote error")
	// ErrStalled says the peer sent nothing for ClientOptions.IdleTimeout
	// while the client was waiting for it.
	ErrStalled = errors.New("peer stalled")
	// ErrClosed is returned by calls on a closed Client.
	ErrClosed = errors.New("client closed")
)

// errGoodbye ends a stream whose peer said Done.
var errGoodbye = errors.New("the server ended the session")

// ClientOptions tune a Client. The zero value is ready to use.
type ClientOptions struct {
	// Software names this side in the handshake; empty means Software.
	Software string
	// IdleTimeout is how long the client waits for a byte from a peer that
	// owes it an answer before it gives up with ErrStalled. Zero or
	// negative means 60s.
	IdleTimeout time.Duration
	// Window bounds the fetch requests outstanding on one stream; zero
	// means 64.
	Window int
	// WindowBytes bounds the bytes (file sizes plus basis block lists)
	// outstanding on one stream, so large files spread over the streams;
	// a stream with nothing outstanding always takes one request. Zero
	// means 8 MiB.
	WindowBytes int64
	// ProgressTimeout is how long the client waits while a peer that owes
	// it an answer sends nothing but keepalives, before it gives up with
	// ErrStalled: pings prove the peer alive, not that it is getting
	// anywhere (a slow scan hashing a large file sends none of its
	// entries meanwhile, hence the generous default). Zero means 10
	// minutes; negative means no limit.
	ProgressTimeout time.Duration
	// MaxEntries bounds a scan (see tree.Checker); zero means its default.
	MaxEntries int
	// MaxListBytes bounds the memory of a scan's entries (see
	// tree.Checker.MaxBytes); zero means its default, negative no bound.
	MaxListBytes int64
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
}

// Stats are a Client's counters, over all its streams.
type Stats struct {
	BytesIn, BytesOut int64 // bytes on the wire
	Streams           int
	Entries           int64 // entries received by scans
	Files             int64 // files finished
	FileErrors        int64 // files the source could not send
	DataBytes         int64 // literal content received
	ReuseBytes        int64 // content taken from bases
	// Peer holds the counters the server sent at goodbye (after Close).
	Peer map[string]int64
}

// Client is the receiver side of the protocol and an imaging.Source over
// one or more streams to the same sender. The first stream carries scans
// and fetches; streams added with AddStream carry fetches only.
//
// Scan and Fetch may run concurrently, but a Scan's fn must not wait for a
// Fetch: with a single stream the fetch's answers queue behind the scan's
// entries. Canceling a Fetch's context, or any transport failure, ends the
// whole session; a Scan whose fn fails or whose context is canceled is
// canceled on the server and the session goes on.
type Client struct {
	opts ClientOptions
	root string
	log  *slog.Logger

	mu         sync.Mutex
	streams    []*stream
	nextStream int
	wake       chan struct{} // closed and replaced when a window opens
	closed     bool
	broken     error
	peer       map[string]int64

	// goodbye (Release, Close), guarded by byeMu: the streams said
	// goodbye on, the session's failure before it, the first error
	// saying it, and whether a Close has waited for the answers
	byeMu      sync.Mutex
	byeStreams []*stream
	byeBroken  error
	byeErr     error
	byeWaited  bool

	ackMu     sync.Mutex
	stopWatch chan struct{}
	watchDone chan struct{}

	entries, files, fileErrors, dataBytes, reuseBytes atomic.Int64

	// lent are entries a Scan's caller gave back (GiveBack), for the
	// streams' decoders to decode into.
	lent tree.EntryPool
}

var (
	_ imaging.Source          = (*Client)(nil)
	_ imaging.ValidatedSource = (*Client)(nil)
	_ imaging.LendingSource   = (*Client)(nil)
)

// NewClient runs the handshake on rwc, opens root on the server and returns
// a Client reading from it. On failure rwc is closed. Handshake failures
// wrap the sentinels of package wire; a root the server cannot open is an
// ErrRemote.
func NewClient(ctx context.Context, rwc io.ReadWriteCloser, root string, opts ClientOptions) (*Client, error) {
	if opts.Software == "" {
		opts.Software = Software
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 60 * time.Second
	}
	if opts.ProgressTimeout == 0 {
		opts.ProgressTimeout = 10 * time.Minute
	}
	if opts.Window <= 0 {
		opts.Window = 64
	}
	if opts.WindowBytes <= 0 {
		opts.WindowBytes = 8 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{opts: opts, root: root, log: opts.Logger, wake: make(chan struct{}),
		stopWatch: make(chan struct{}), watchDone: make(chan struct{})}
	go c.watchdog()
	if _, err := c.dial(ctx, rwc, 0); err != nil {
		close(c.stopWatch)
		<-c.watchDone
		return nil, err
	}
	return c, nil
}

// AddStream adds another connection to the same sender (a second ssh
// process, say), used for fetches only. On failure rwc is closed and the
// client goes on with the streams it has.
func (c *Client) AddStream(rwc io.ReadWriteCloser) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		rwc.Close()
		return ErrClosed
	}
	_, err := c.dial(context.Background(), rwc, wire.OpenFetchOnly)
	return err
}

// Remote returns the server's handshake.
func (c *Client) Remote() wire.Hello {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[0].remote
}

// Stats returns the client's counters so far.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{
		Entries: c.entries.Load(), Files: c.files.Load(), FileErrors: c.fileErrors.Load(),
		DataBytes: c.dataBytes.Load(), ReuseBytes: c.reuseBytes.Load(), Peer: c.peer,
	}
	for _, s := range c.streams {
		if s.ready {
			st.Streams++
		}
		st.BytesIn += s.m.in.Load()
		st.BytesOut += s.m.out.Load()
	}
	return st
}

// stream is one connection of a Client.
type stream struct {
	c       *Client
	id      int
	rwc     io.ReadWriteCloser
	m       *meter
	out     *sender
	dec     *wire.Decoder
	remote  wire.Hello
	version uint32

	// guarded by c.mu
	ready       bool
	dead        bool
	pending     map[uint64]*pending
	outstanding int
	outBytes    int64
	nextID      uint64

	expect     atomic.Int32 // answers owed by the peer; stall detection runs while > 0
	failOnce   sync.Once
	err        error         // why the stream ended; set before done is closed
	done       chan struct{} // closed when the stream ends
	readerDone chan struct{}

	scanSlot chan struct{} // held from a ScanRequest to its ScanEnd
	scan     atomic.Pointer[scanState]
	acks     chan string
}

// fail ends the stream: the first error sticks, the transport is closed so
// blocked reads and writes return, and the reader cleans up.
func (s *stream) fail(err error) {
	s.failOnce.Do(func() {
		s.err = err
		close(s.done)
		s.rwc.Close()
		s.out.close()
		if err != errGoodbye {
			s.c.log.Debug("stream failed", "stream", s.id, "err", err)
		}
	})
}

// failure returns why the stream ended, once it has.
func (s *stream) failure() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// dial runs the handshake and Open on rwc and adds it as a stream.
func (c *Client) dial(ctx context.Context, rwc io.ReadWriteCloser, flags wire.OpenFlags) (*stream, error) {
	s := &stream{c: c, rwc: rwc, m: newMeter(rwc), done: make(chan struct{}), readerDone: make(chan struct{}),
		pending: map[uint64]*pending{}, nextID: 1, scanSlot: make(chan struct{}, 1), acks: make(chan string, 1)}
	c.mu.Lock()
	s.id = c.nextStream
	c.nextStream++
	c.streams = append(c.streams, s) // watched for stalls, not used until ready
	c.mu.Unlock()
	enc := wire.NewEncoder(s.m)
	s.dec = wire.NewDecoder(s.m)
	s.dec.LendEntries(&c.lent)
	s.out = newSender(enc, s.fail)
	s.expect.Add(1)
	stop := context.AfterFunc(ctx, func() { s.fail(ctx.Err()) })
	err := c.open(s, enc, flags)
	stop()
	if err != nil {
		if e := s.failure(); e != nil && e != errGoodbye {
			err = e // a stall or cancellation explains the read error
		}
		s.fail(err)
		close(s.readerDone)
		c.mu.Lock()
		s.dead = true
		c.streams = slices.DeleteFunc(c.streams, func(x *stream) bool { return x == s })
		c.mu.Unlock()
		return nil, fmt.Errorf("stream %d: %w", s.id, err)
	}
	s.expect.Add(-1)
	go s.out.run(0)
	go s.readLoop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil || c.closed {
		go s.fail(ErrClosed)
		return nil, ErrClosed
	}
	s.ready = true
	c.wakeLocked()
	return s, nil
}

func (c *Client) open(s *stream, enc *wire.Encoder, flags wire.OpenFlags) error {
	local := wire.Hello{Role: wire.RoleClient, MinVersion: wire.VersionMin, MaxVersion: wire.VersionMax, Software: c.opts.Software}
	remote, version, err := wire.Handshake(enc, s.dec, local)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	s.remote, s.version = remote, version
	if err := s.out.send(&wire.Open{Root: c.root, Flags: flags}); err != nil {
		return fmt.Errorf("open %s: %w", c.root, err)
	}
	if err := s.out.flush(); err != nil {
		return fmt.Errorf("open %s: %w", c.root, err)
	}
	m, err := s.next()
	if err != nil {
		return fmt.Errorf("open %s: %w", c.root, err)
	}
	switch m := m.(type) {
	case *wire.Opened:
		return nil
	case *wire.Error:
		return &RefusedError{Msg: wire.Inert(m.Msg)}
	default:
		return fmt.Errorf("open %s: %w: expected opened, got %s", c.root, ErrProtocol, m.Type())
	}
}

// RefusedError is the peer's answer when it cannot serve the root asked
// for (missing, not a directory, not allowed): an error in selecting the
// source, not in the protocol. It matches ErrRemote.
type RefusedError struct {
	// Msg is the peer's message, made inert.
	Msg string
}

func (e *RefusedError) Error() string { return ErrRemote.Error() + ": " + e.Msg }

// Is makes a RefusedError match ErrRemote.
func (e *RefusedError) Is(target error) bool { return target == ErrRemote }

// next reads one message, skipping pings, and classifies failures.
func (s *stream) next() (wire.Message, error) {
	for {
		m, err := s.dec.Next()
		if err != nil {
			var de *wire.DecodeError
			switch {
			case errors.As(err, &de):
				return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				return nil, fmt.Errorf("the server closed the connection: %w", io.ErrUnexpectedEOF)
			}
			return nil, fmt.Errorf("receive: %w", err)
		}
		if _, ok := m.(*wire.Ping); !ok {
			s.m.advance()
			return m, nil
		}
	}
}

// watchdog fails streams whose peer owes an answer and has sent nothing
// for IdleTimeout. Closing the stream unblocks the reader even on
// transports without deadlines.
func (c *Client) watchdog() {
	defer close(c.watchDone)
	tick := c.opts.IdleTimeout
	if p := c.opts.ProgressTimeout; p > 0 {
		tick = min(tick, p)
	}
	t := time.NewTicker(max(tick/4, 5*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.stopWatch:
			return
		case now := <-t.C:
			c.mu.Lock()
			streams := append([]*stream(nil), c.streams...)
			c.mu.Unlock()
			for _, s := range streams {
				switch {
				case s.expect.Load() == 0:
				case s.m.idle(now) > c.opts.IdleTimeout:
					s.fail(fmt.Errorf("%w: nothing received for %v while waiting for an answer", ErrStalled, c.opts.IdleTimeout))
				case c.opts.ProgressTimeout > 0 && s.m.stalled(now) > c.opts.ProgressTimeout:
					s.fail(fmt.Errorf("%w: only keepalives received for %v while waiting for an answer", ErrStalled, c.opts.ProgressTimeout))
				}
			}
		}
	}
}

// fail breaks the session: every stream ends with err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.broken == nil {
		c.broken = err
	}
	streams := append([]*stream(nil), c.streams...)
	c.wakeLocked()
	c.mu.Unlock()
	for _, s := range streams {
		s.fail(err)
	}
}

func (c *Client) wakeLocked() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// usable returns why the client cannot take calls, if it cannot.
func (c *Client) usable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.broken != nil:
		return fmt.Errorf("session failed earlier: %w", c.broken)
	}
	return nil
}

// readLoop reads a stream's messages and dispatches them until the stream
// ends, then settles everything still pending on it.
func (s *stream) readLoop() {
	defer close(s.readerDone)
	err := s.readMessages()
	s.fail(err)
	if err != errGoodbye {
		s.c.fail(fmt.Errorf("stream %d: %w", s.id, err))
	}
	s.c.mu.Lock()
	s.dead = true
	pend := s.pending
	s.pending = nil
	s.c.wakeLocked()
	s.c.mu.Unlock()
	why := s.err
	if why == errGoodbye {
		why = fmt.Errorf("stream %d: %w before answering", s.id, errGoodbye)
	}
	for _, p := range pend {
		p.settle(why)
	}
}

func (s *stream) readMessages() error {
	for {
		m, err := s.next()
		if err != nil {
			if e := s.failure(); e != nil {
				return e
			}
			return err
		}
		switch m := m.(type) {
		case *wire.Entry:
			err = s.onEntry(m.Entry)
		case *wire.ScanEnd:
			err = s.onScanEnd(m)
		case *wire.FileData:
			err = s.onData(m)
		case *wire.FileReuse:
			err = s.onReuse(m)
		case *wire.FileEnd:
			err = s.onEnd(m)
		case *wire.FileError:
			err = s.onFileError(m)
		case *wire.Ack:
			select {
			case s.acks <- m.Token:
				s.expect.Add(-1)
			default:
				err = fmt.Errorf("%w: unexpected ack", ErrProtocol)
			}
		case *wire.Stats:
			peer := make(map[string]int64, len(m.Counters))
			for _, c := range m.Counters {
				peer[c.Name] = c.Value
			}
			s.c.mu.Lock()
			if s.id == 0 {
				s.c.peer = peer
			}
			s.c.mu.Unlock()
		case *wire.Done:
			return errGoodbye
		case *wire.Error:
			return fmt.Errorf("%w: %s", ErrRemote, wire.Inert(m.Msg))
		default:
			err = fmt.Errorf("%w: unexpected %s from the server", ErrProtocol, m.Type())
		}
		if err != nil {
			return err
		}
	}
}
