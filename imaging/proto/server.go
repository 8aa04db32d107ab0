package proto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
)

// Software is the default software string sent in the handshake.
const Software = "goldsync"

// ServeOptions tune Serve. The zero value is ready to use.
type ServeOptions struct {
	// Software names this side in the handshake; empty means Software.
	Software string
	// Keepalive is how long the server may stay silent before it sends a
	// Ping, so a client waiting on a slow scan does not take it for a
	// stalled peer. Zero means 10s; negative disables pings.
	Keepalive time.Duration
	// OnAck, when set, records a token the client confirms (a push applied
	// up to a journal point). The server echoes the token once OnAck
	// returns nil; an error ends the session. Without OnAck tokens are
	// echoed unrecorded.
	OnAck func(ctx context.Context, token string) error
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
}

// Counters is an optional interface of an imaging.Source: Serve adds its
// counters to the Stats it sends the client at goodbye.
type Counters interface {
	Counters() map[string]int64
}

// Serve runs the server (sender) side of one stream: the handshake, then
// Open, whose root it passes to open to get the source, then the client's
// requests until it says goodbye. Scan requests stream entries; fetch
// requests are read continuously and answered in order while more arrive.
//
// Serve closes the source it opened. If rw is an io.Closer, Serve closes it
// when ctx is canceled or the session fails, to unblock pending I/O; after
// a clean goodbye closing rw is the caller's business. It returns nil after
// a goodbye, and an error when the session failed (including a client that
// vanished without goodbye).
func Serve(ctx context.Context, rw io.ReadWriter, open func(ctx context.Context, root string) (imaging.Source, error), opts ServeOptions) error {
	if opts.Software == "" {
		opts.Software = Software
	}
	if opts.Keepalive == 0 {
		opts.Keepalive = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	srv := &server{opts: opts, rw: rw, m: newMeter(rw), cancel: cancel}
	stopClose := context.AfterFunc(ctx, srv.closeTransport)
	defer stopClose()
	err := srv.run(ctx, open)
	if err != nil {
		cancel(err)
		srv.closeTransport()
	}
	if srv.out != nil {
		srv.out.close()
	}
	srv.wg.Wait()
	if srv.src != nil {
		if cerr := srv.src.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close source: %w", cerr)
		}
	}
	if err == nil {
		err = srv.closeErr
	}
	return err
}

type server struct {
	opts   ServeOptions
	rw     io.ReadWriter
	m      *meter
	out    *sender
	src    imaging.Source
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	closeOnce sync.Once

	// scan state, owned by the read loop
	scanCancel context.CancelFunc
	scanDone   chan struct{}
	scanEnded  atomic.Bool // the running scan's ScanEnd is on its way

	closeErr error // the source's, closed at goodbye

	fetchOnly bool
	lastID    uint64
	queue     chan *fetchItem
	budget    *semaphore.Weighted

	entries, files, fileErrors, dataBytes, reuseBytes atomic.Int64
}

// queueBudget bounds the bytes of fetch requests read but not yet
// answered, against a client that floods requests with large bases.
const queueBudget = 64 << 20

func (s *server) closeTransport() {
	s.closeOnce.Do(func() {
		if c, ok := s.rw.(io.Closer); ok {
			c.Close()
		}
	})
}

// fatal reports err to the client as an Error frame, best effort.
func (s *server) fatal(err error) error {
	if s.out != nil {
		if s.out.send(&wire.Error{Msg: err.Error()}) == nil {
			s.out.flush()
		}
	}
	return err
}

func (s *server) run(ctx context.Context, open func(context.Context, string) (imaging.Source, error)) error {
	enc := wire.NewEncoder(s.m)
	dec := wire.NewDecoder(s.m)
	local := wire.Hello{Role: wire.RoleServer, MinVersion: wire.VersionMin, MaxVersion: wire.VersionMax, Software: s.opts.Software}
	remote, _, err := wire.Handshake(enc, dec, local)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		if errors.Is(err, wire.ErrVersion) {
			// Tell the client why, in the frame format it may understand.
			enc.Encode(&wire.Error{Msg: err.Error()})
			enc.Flush()
		}
		return fmt.Errorf("handshake: %w", err)
	}
	s.opts.Logger.Debug("client connected", "software", remote.Software)
	s.out = newSender(enc, func(err error) { s.cancel(fmt.Errorf("send: %w", err)); s.closeTransport() })

	m, err := dec.Next()
	if err != nil {
		return s.fatal(readErr(ctx, err))
	}
	op, ok := m.(*wire.Open)
	if !ok {
		return s.fatal(fmt.Errorf("%w: expected open, got %s", ErrProtocol, m.Type()))
	}
	s.fetchOnly = op.Flags&wire.OpenFetchOnly != 0
	src, err := open(ctx, op.Root)
	if err != nil {
		return s.fatal(fmt.Errorf("open %s: %w", op.Root, err))
	}
	s.src = src
	if err := s.out.send(&wire.Opened{}); err != nil {
		return err
	}
	s.wg.Go(func() { s.out.run(s.opts.Keepalive) })
	s.out.wrote()

	s.queue = make(chan *fetchItem, 4096)
	s.budget = semaphore.NewWeighted(queueBudget)
	fetchDone := make(chan struct{})
	s.wg.Go(func() { defer close(fetchDone); s.fetchLoop(ctx) })

	for {
		m, err := dec.Next()
		if err != nil {
			return s.fatal(readErr(ctx, err))
		}
		switch m := m.(type) {
		case *wire.ScanRequest:
			if err := s.startScan(ctx, m); err != nil {
				return s.fatal(err)
			}
		case *wire.Cancel:
			if s.scanCancel != nil {
				s.scanCancel()
			}
		case *wire.FetchRequest:
			if m.ID <= s.lastID {
				return s.fatal(fmt.Errorf("%w: fetch request id %d after %d", ErrProtocol, m.ID, s.lastID))
			}
			s.lastID = m.ID
			cost := int64(len(m.Path)) + 64
			if m.Basis != nil {
				cost += 8 * int64(len(m.Basis.Blocks))
			}
			if err := s.budget.Acquire(ctx, cost); err != nil {
				return context.Cause(ctx)
			}
			select {
			case s.queue <- &fetchItem{msg: m, cost: cost}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		case *wire.Ack:
			if s.opts.OnAck != nil {
				if err := s.opts.OnAck(ctx, m.Token); err != nil {
					return s.fatal(fmt.Errorf("record ack %q: %w", m.Token, err))
				}
			}
			if err := s.out.send(&wire.Ack{Token: m.Token}); err != nil {
				return err
			}
		case *wire.Ping:
		case *wire.Done:
			return s.goodbye(ctx, fetchDone)
		case *wire.Error:
			return fmt.Errorf("%w: %s", ErrRemote, wire.Inert(m.Msg))
		default:
			return s.fatal(fmt.Errorf("%w: unexpected %s from the client", ErrProtocol, m.Type()))
		}
	}
}

// readErr turns a failed read into the session's error.
func readErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("client closed the connection without saying goodbye: %w", io.ErrUnexpectedEOF)
	}
	var de *wire.DecodeError
	if errors.As(err, &de) {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return fmt.Errorf("receive: %w", err)
}

// goodbye ends a session the client closed: finish the scan (answered with
// a ScanEnd), drop queued fetches, then send Stats and Done.
func (s *server) goodbye(ctx context.Context, fetchDone chan struct{}) error {
	if s.scanCancel != nil {
		s.scanCancel()
		<-s.scanDone
	}
	close(s.queue)
	<-fetchDone
	stats := &wire.Stats{Counters: s.counters()}
	// Close the source (a DirSource saves its hash cache) before the
	// client hears Done: it waits for Done as long as keepalives come,
	// but gives the process only moments to exit after it, and a cache
	// cut short is a full re-read on the next pull.
	src := s.src
	s.src = nil
	if err := src.Close(); err != nil {
		s.closeErr = fmt.Errorf("close source: %w", err)
	}
	if err := s.out.send(stats); err != nil {
		return err
	}
	if err := s.out.send(&wire.Done{}); err != nil {
		return err
	}
	if err := s.out.flush(); err != nil {
		return fmt.Errorf("say goodbye: %w", err)
	}
	s.opts.Logger.Debug("client said goodbye")
	return context.Cause(ctx)
}

func (s *server) counters() []wire.Counter {
	c := map[string]int64{}
	if cs, ok := s.src.(Counters); ok {
		maps.Copy(c, cs.Counters())
	}
	c["entries"] = s.entries.Load()
	c["files"] = s.files.Load()
	c["file_errors"] = s.fileErrors.Load()
	c["data_bytes"] = s.dataBytes.Load()
	c["reuse_bytes"] = s.reuseBytes.Load()
	c["bytes_in"] = s.m.in.Load()
	c["bytes_out"] = s.m.out.Load()
	var out []wire.Counter
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if len(out) == wire.MaxCounters {
			break
		}
		if len(k) > 0 && len(k) <= wire.MaxCounterName {
			out = append(out, wire.Counter{Name: k, Value: c[k]})
		}
	}
	return out
}

func (s *server) startScan(ctx context.Context, m *wire.ScanRequest) error {
	if s.fetchOnly {
		return fmt.Errorf("%w: scan request on a fetch-only stream", ErrProtocol)
	}
	if s.scanDone != nil {
		// The client may ask again as soon as it has the ScanEnd, which
		// the scan goroutine sends just before it returns.
		if !s.scanEnded.Load() {
			return fmt.Errorf("%w: scan request while a scan is running", ErrProtocol)
		}
		<-s.scanDone
	}
	s.scanEnded.Store(false)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.scanCancel, s.scanDone = cancel, done
	req := imaging.ScanRequest{Excludes: m.Excludes, Since: m.Since, Hash: m.Hash}
	s.wg.Go(func() {
		defer close(done)
		defer cancel()
		s.scan(sctx, req)
	})
	return nil
}

func (s *server) scan(ctx context.Context, req imaging.ScanRequest) {
	var n, problems int
	// One message for the scan: send encodes it before it returns, and a
	// new one an entry was an allocation an entry (issue #14).
	var msg wire.Entry
	res, err := s.src.Scan(ctx, req, func(e *tree.Entry) error {
		msg.Entry = e
		err := s.out.send(&msg)
		msg.Entry = nil
		if err != nil {
			return err
		}
		n++
		if e.Problem != "" {
			problems++
		}
		return nil
	})
	s.entries.Add(int64(n))
	end := &wire.ScanEnd{Scope: res.Scope, Problems: problems, Entries: n, Token: res.Token}
	if req.Since == "" && len(end.Scope) == 0 {
		end.Scope = tree.FullScope
	}
	if err != nil {
		if ctx.Err() != nil {
			err = errors.New("scan canceled")
		}
		end = &wire.ScanEnd{Problems: problems, Entries: n, Err: err.Error()}
		s.opts.Logger.Debug("scan failed", "err", err)
	}
	s.scanEnded.Store(true)
	if err := s.out.send(end); err != nil && isEncodeError(err) {
		s.out.send(&wire.ScanEnd{Problems: problems, Entries: n, Err: err.Error()})
	}
}

type fetchItem struct {
	msg  *wire.FetchRequest
	cost int64
	done atomic.Bool // FileEnd or FileError sent
}

// fetchLoop answers queued fetch requests, handing the source whatever
// has queued up at once so it can read files in parallel.
func (s *server) fetchLoop(ctx context.Context) {
	for {
		var first *fetchItem
		select {
		case it, ok := <-s.queue:
			if !ok {
				return
			}
			first = it
		case <-ctx.Done():
			return
		}
		batch := []*fetchItem{first}
	more:
		for len(batch) < 256 {
			select {
			case it, ok := <-s.queue:
				if !ok {
					break more
				}
				batch = append(batch, it)
			default:
				break more
			}
		}
		err := s.fetchBatch(ctx, batch)
		for _, it := range batch {
			s.budget.Release(it.cost)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.fatal(fmt.Errorf("fetch: %w", err))
				s.cancel(fmt.Errorf("fetch: %w", err))
				s.closeTransport()
			}
			return
		}
	}
}

func (s *server) fetchBatch(ctx context.Context, batch []*fetchItem) error {
	reqs := make([]*imaging.FetchRequest, len(batch))
	items := make(map[*imaging.FetchRequest]*fetchItem, len(batch))
	for i, it := range batch {
		m := it.msg
		e := &tree.Entry{Path: m.Path, Type: tree.TypeRegular, Size: m.Size, Mtime: m.Mtime}
		if m.Hashed {
			e.SetHash(m.Hash)
		}
		r := &imaging.FetchRequest{Entry: e}
		if b := m.Basis; b != nil {
			r.Basis = &imaging.Basis{Size: b.Size, Hash: b.Hash, Hashed: b.Hashed, BlockSize: b.BlockSize, Blocks: b.Blocks}
		}
		reqs[i] = r
		items[r] = it
	}
	err := s.src.Fetch(ctx, reqs, func(r *imaging.FetchRequest) (imaging.ContentSink, error) {
		it := items[r]
		if it == nil {
			return nil, fmt.Errorf("source opened a request it was not given")
		}
		return &serverSink{s: s, it: it}, nil
	})
	if err != nil {
		return err
	}
	for _, it := range batch {
		if !it.done.Load() {
			// A source that forgets a file must not leave the client waiting.
			s.finishItem(it, &wire.FileError{ID: it.msg.ID, Op: "fetch", Msg: "the source did not send the file"})
		}
	}
	return nil
}

func (s *server) finishItem(it *fetchItem, m wire.Message) error {
	if it.done.Swap(true) {
		return fmt.Errorf("file %s already completed", it.msg.Path)
	}
	return s.out.send(m)
}

// serverSink turns a source's ContentSink calls into frames.
type serverSink struct {
	s  *server
	it *fetchItem
}

func (k *serverSink) Data(off int64, p []byte) error {
	if k.it.done.Load() {
		return fmt.Errorf("data for %s after it completed", k.it.msg.Path)
	}
	k.s.dataBytes.Add(int64(len(p)))
	return k.s.out.sendData(k.it.msg.ID, off, p)
}

func (k *serverSink) Reuse(off, n int64) error {
	if k.it.done.Load() {
		return fmt.Errorf("reuse for %s after it completed", k.it.msg.Path)
	}
	k.s.reuseBytes.Add(n)
	return k.s.out.send(&wire.FileReuse{ID: k.it.msg.ID, Off: off, N: n})
}

func (k *serverSink) Finish(res imaging.FetchResult) error {
	k.s.files.Add(1)
	return k.s.finishItem(k.it, &wire.FileEnd{ID: k.it.msg.ID, Size: res.Size, Hash: res.Hash, Unchanged: res.Unchanged, Mtime: res.Mtime})
}

func (k *serverSink) Abort(err error) {
	k.s.fileErrors.Add(1)
	m := &wire.FileError{ID: k.it.msg.ID, Op: "read", Msg: "unknown error"}
	if err != nil {
		m.Msg = err.Error()
		var fe *imaging.FileError
		if errors.As(err, &fe) {
			m.Op = fe.Op
			if fe.Err != nil {
				m.Msg = fe.Err.Error()
			}
		}
		switch {
		case errors.Is(err, imaging.ErrChanged):
			m.Kind = wire.KindChanged
		case errors.Is(err, fs.ErrNotExist):
			m.Kind = wire.KindNotExist
		case errors.Is(err, fs.ErrPermission):
			m.Kind = wire.KindPermission
		}
	}
	k.s.finishItem(k.it, m)
}
