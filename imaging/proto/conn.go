package proto

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goldsync/goldsync/imaging/wire"
)

// Pipe returns the two ends of an in-memory, synchronous byte stream, for
// local syncs and tests: run Serve on server and NewClient on client.
func Pipe() (client, server io.ReadWriteCloser) {
	a, b := net.Pipe()
	return a, b
}

// meter counts the bytes through a stream and remembers when it last made
// progress, for "bytes on the wire" figures and stall detection.
type meter struct {
	rw      io.ReadWriter
	in, out atomic.Int64
	reading atomic.Bool  // a Read is blocked on the transport
	last    atomic.Int64 // unix ns of the last progress (see touch)
	// advanced is the unix ns of the last message other than a ping, or
	// of the last request sent: keepalives are not progress.
	advanced atomic.Int64
}

func newMeter(rw io.ReadWriter) *meter {
	m := &meter{rw: rw}
	m.request()
	return m
}

// request restarts both clocks: a request went out that the peer now owes
// an answer to.
func (m *meter) request() {
	now := time.Now().UnixNano()
	m.last.Store(now)
	m.advanced.Store(now)
}

// advance records a message that is not a keepalive.
func (m *meter) advance() { m.advanced.Store(time.Now().UnixNano()) }

// stalled returns how long the peer has sent nothing but keepalives.
func (m *meter) stalled(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, m.advanced.Load()))
}

// touch restarts the stall clock: bytes arrived, a read began, or a request
// went out that the peer now owes an answer to.
func (m *meter) touch() { m.last.Store(time.Now().UnixNano()) }

// idle returns how long a blocked read has waited without progress, or 0
// when no read is blocked.
func (m *meter) idle(now time.Time) time.Duration {
	if !m.reading.Load() {
		return 0
	}
	return now.Sub(time.Unix(0, m.last.Load()))
}

func (m *meter) Read(p []byte) (int, error) {
	m.touch()
	m.reading.Store(true)
	n, err := m.rw.Read(p)
	m.reading.Store(false)
	if n > 0 {
		m.in.Add(int64(n))
		m.touch()
	}
	return n, err
}

func (m *meter) Write(p []byte) (int, error) {
	n, err := m.rw.Write(p)
	m.out.Add(int64(n))
	return n, err
}

// sender serializes the frames of several goroutines onto one Encoder.
// Frames are buffered; a flusher goroutine pushes them out as soon as it
// wakes up, so bursts go out in few writes and a lone frame goes out at
// once. The first write error sticks and is reported to onErr.
type sender struct {
	mu        sync.Mutex
	enc       *wire.Encoder
	err       error
	kick      chan struct{}
	stop      chan struct{}
	stopOnce  sync.Once
	lastWrite atomic.Int64
	onErr     func(error)
}

func newSender(enc *wire.Encoder, onErr func(error)) *sender {
	s := &sender{enc: enc, kick: make(chan struct{}, 1), stop: make(chan struct{}), onErr: onErr}
	s.lastWrite.Store(time.Now().UnixNano())
	return s
}

// run flushes after every kick and, when keepalive is positive, sends a
// Ping after keepalive without traffic. It returns when close is called.
func (s *sender) run(keepalive time.Duration) {
	var tick <-chan time.Time
	if keepalive > 0 {
		t := time.NewTicker(keepalive / 2)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
			s.flush()
		case now := <-tick:
			if now.Sub(time.Unix(0, s.lastWrite.Load())) >= keepalive {
				if s.send(&wire.Ping{}) == nil {
					s.flush()
				}
			}
		}
	}
}

func (s *sender) close() { s.stopOnce.Do(func() { close(s.stop) }) }

func (s *sender) failed(err error) error {
	if s.err == nil {
		s.err = err
		if s.onErr != nil {
			go s.onErr(err)
		}
	}
	return s.err
}

func (s *sender) wrote() {
	s.lastWrite.Store(time.Now().UnixNano())
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// send queues one frame.
func (s *sender) send(m wire.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if err := s.enc.Encode(m); err != nil {
		if isEncodeError(err) {
			return err // nothing was written: the stream is still good
		}
		return s.failed(err)
	}
	s.wrote()
	return nil
}

func isEncodeError(err error) bool {
	var ee *wire.EncodeError
	return errors.As(err, &ee)
}

// sendFunc queues the message build returns, built under the sender's
// lock so that messages built in order go out in order.
func (s *sender) sendFunc(build func() (wire.Message, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	m, err := build()
	if err != nil {
		return err
	}
	if err := s.enc.Encode(m); err != nil {
		if isEncodeError(err) {
			return err
		}
		return s.failed(err)
	}
	s.wrote()
	return nil
}

// sendData queues FileData frames for p, split at wire.MaxData.
func (s *sender) sendData(id uint64, off int64, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), wire.MaxData)
		s.mu.Lock()
		if s.err != nil {
			s.mu.Unlock()
			return s.err
		}
		if err := s.enc.WriteFileData(id, off, p[:n]); err != nil {
			err = s.failed(err)
			s.mu.Unlock()
			return err
		}
		s.wrote()
		s.mu.Unlock()
		off += int64(n)
		p = p[n:]
	}
	return nil
}

// flush writes out what is buffered.
func (s *sender) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.enc.Buffered() == 0 {
		return nil
	}
	if err := s.enc.Flush(); err != nil {
		return s.failed(err)
	}
	return nil
}
