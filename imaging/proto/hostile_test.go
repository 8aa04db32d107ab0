package proto

import (
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
)

// hostileServer is a server scripted frame by frame with the wire encoder,
// to send what a correct server never would.
type hostileServer struct {
	conn io.ReadWriteCloser
	enc  *wire.Encoder
	dec  *wire.Decoder
	stop chan struct{}
}

// next returns the client's next message other than a ping, or nil.
func (h *hostileServer) next() wire.Message {
	for {
		m, err := h.dec.Next()
		if err != nil {
			return nil
		}
		if _, ok := m.(*wire.Ping); !ok {
			return m
		}
	}
}

func (h *hostileServer) send(ms ...wire.Message) {
	for _, m := range ms {
		if err := h.enc.Encode(m); err != nil {
			panic(err) // a broken test script
		}
	}
	h.enc.Flush()
}

func (h *hostileServer) raw(b []byte) {
	h.enc.Flush()
	h.conn.Write(b)
}

// hostile starts a scripted server, completes the handshake and Open, runs
// script, then reads and drops whatever the client sends.
func hostile(t *testing.T, opts ClientOptions, script func(h *hostileServer)) (*Client, error) {
	cli, srv := Pipe()
	h := &hostileServer{conn: srv, enc: wire.NewEncoder(srv), dec: wire.NewDecoder(srv), stop: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer srv.Close()
		hello := wire.Hello{Role: wire.RoleServer, MinVersion: 1, MaxVersion: 1, Software: "hostile"}
		if _, _, err := wire.Handshake(h.enc, h.dec, hello); err != nil {
			return
		}
		if _, ok := h.next().(*wire.Open); !ok {
			return
		}
		h.send(&wire.Opened{})
		script(h)
		for h.next() != nil {
		}
	}()
	t.Cleanup(func() {
		close(h.stop)
		srv.Close()
		<-done
	})
	return NewClient(t.Context(), cli, "/", opts)
}

func dir(p string) *wire.Entry {
	return &wire.Entry{Entry: &tree.Entry{Path: p, Type: tree.TypeDir, Mode: 0o755}}
}
func reg(p string) *wire.Entry {
	return &wire.Entry{Entry: &tree.Entry{Path: p, Type: tree.TypeRegular, Mode: 0o644}}
}

func TestHostileScan(t *testing.T) {
	tests := []struct {
		name   string
		script func(h *hostileServer)
		want   string
	}{
		{name: "out of order", script: func(h *hostileServer) { h.send(dir("."), reg("b"), reg("a")) }, want: "out of order"},
		{name: "duplicate", script: func(h *hostileServer) { h.send(dir("."), reg("a"), reg("a")) }, want: "out of order or duplicate"},
		{name: "dotdot", script: func(h *hostileServer) { h.send(dir("."), reg("a/../../etc/shadow")) }, want: "contains .. component"},
		{name: "absolute", script: func(h *hostileServer) { h.send(dir("."), reg("/etc/passwd")) }, want: "absolute"},
		{name: "child under a symlink", script: func(h *hostileServer) {
			h.send(dir("."), &wire.Entry{Entry: &tree.Entry{Path: "l", Type: tree.TypeSymlink, Target: "/etc"}}, reg("l/passwd"))
		}, want: "parent is a symlink"},
		{name: "child under a file", script: func(h *hostileServer) { h.send(dir("."), reg("f"), reg("f/x")) }, want: "parent is a file"},
		{name: "over-long name", script: func(h *hostileServer) { h.send(dir("."), reg(strings.Repeat("n", 300))) }, want: "component longer than 255"},
		{name: "parent not sent", script: func(h *hostileServer) { h.send(dir("."), reg("a/b")) }, want: "parent not sent"},
		{name: "hard link to nothing", script: func(h *hostileServer) {
			h.send(dir("."), &wire.Entry{Entry: &tree.Entry{Path: "b", Type: tree.TypeRegular, LinkTo: "a"}})
		}, want: "hard link"},
		{name: "huge declared length", script: func(h *hostileServer) {
			h.send(dir("."))
			h.raw(binary.AppendUvarint([]byte{byte(wire.TypeEntry)}, 1<<40))
		}, want: "exceeds limit"},
		{name: "unknown message type", script: func(h *hostileServer) { h.raw([]byte{0x77, 0}) }, want: "unknown message type 0x77"},
		{name: "local fields", script: func(h *hostileServer) {
			b, _ := wire.AppendEntryLocal(nil, nil, &tree.Entry{Path: ".", Type: tree.TypeDir, Ino: 5})
			h.raw(append(binary.AppendUvarint([]byte{byte(wire.TypeEntry)}, uint64(len(b))), b...))
		}, want: "local-only"},
		{name: "count mismatch", script: func(h *hostileServer) {
			h.send(dir("."), &wire.ScanEnd{Scope: tree.FullScope, Entries: 5})
		}, want: "counts 5 entries, 1 were sent"},
		{name: "problem count mismatch", script: func(h *hostileServer) {
			h.send(dir("."), &wire.ScanEnd{Scope: tree.FullScope, Entries: 1, Problems: 1})
		}, want: "problems"},
		{name: "partial scope for a full scan", script: func(h *hostileServer) {
			h.send(dir("."), &wire.ScanEnd{Scope: []tree.Scope{{Path: "etc", Tree: true}}, Entries: 1})
		}, want: "partial scope"},
		{name: "full scan without root", script: func(h *hostileServer) {
			h.send(&wire.ScanEnd{Scope: tree.FullScope})
		}, want: "without the root entry"},
		{name: "file data during a scan", script: func(h *hostileServer) {
			h.send(dir("."), &wire.FileData{ID: 1, Data: []byte("x")})
		}, want: "unknown request 1"},
		{name: "second opened", script: func(h *hostileServer) { h.send(&wire.Opened{}) }, want: "unexpected opened"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := hostile(t, ClientOptions{IdleTimeout: 10 * time.Second}, func(h *hostileServer) {
				if _, ok := h.next().(*wire.ScanRequest); !ok {
					return
				}
				tt.script(h)
				<-h.stop
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Scan(t.Context(), imaging.ScanRequest{}, func(*tree.Entry) error { return nil })
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant ErrProtocol containing %q", err, tt.want)
			}
			// The session is over.
			if _, err := c.Scan(t.Context(), imaging.ScanRequest{}, func(*tree.Entry) error { return nil }); err == nil {
				t.Error("a second scan succeeded")
			}
		})
	}
}

func TestHostileFetch(t *testing.T) {
	const size = 10
	tests := []struct {
		name   string
		basis  *imaging.Basis
		script func(h *hostileServer, id uint64)
		is     error
		want   string
	}{
		{name: "data beyond the size", script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileData{ID: id, Data: make([]byte, 20)})
		}, want: "up to 20 exceeds the requested size 10"},
		{name: "data beyond the size later", script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileData{ID: id, Data: make([]byte, 4)}, &wire.FileData{ID: id, Off: 8, Data: make([]byte, 4)})
		}, want: "exceeds the requested size"},
		{name: "overlapping data", script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileData{ID: id, Data: make([]byte, 8)}, &wire.FileData{ID: id, Off: 5, Data: make([]byte, 3)})
		}, want: "at 5 goes back before 8"},
		{name: "backwards", script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileData{ID: id, Off: 5, Data: make([]byte, 2)}, &wire.FileData{ID: id, Data: make([]byte, 2)})
		}, want: "goes back"},
		{name: "reuse without a basis", script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileReuse{ID: id, N: 4})
		}, want: "no basis"},
		{name: "reuse beyond the basis", basis: &imaging.Basis{Size: 4}, script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileReuse{ID: id, N: 8})
		}, want: "exceeds the requested size 10 or the basis size 4"},
		{name: "huge reuse", basis: &imaging.Basis{Size: 10}, script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileReuse{ID: id, Off: 2, N: 1<<63 - 1})
		}, want: "exceeds"},
		{name: "end beyond the size", script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileEnd{ID: id, Size: 11})
		}, want: "beyond the requested size"},
		{name: "end before the data", script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileData{ID: id, Data: make([]byte, 8)}, &wire.FileEnd{ID: id, Size: 4})
		}, want: "after content up to 8"},
		{name: "unchanged without a basis", script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileEnd{ID: id, Size: 10, Unchanged: true})
		}, want: "without a hashed basis"},
		{name: "unchanged but different", basis: &imaging.Basis{Size: 10, Hash: 1, Hashed: true}, script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileEnd{ID: id, Size: 10, Hash: 2, Unchanged: true})
		}, want: "differs from the basis"},
		{name: "unknown id", script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileData{ID: id + 100, Data: []byte("x")})
		}, want: "unknown request"},
		{name: "entry outside a scan", script: func(h *hostileServer, id uint64) {
			h.send(dir("."))
		}, want: "outside a scan"},
		{name: "remote error", script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileData{ID: id, Data: make([]byte, 3)}, &wire.Error{Msg: "disk on fire"})
		}, is: ErrRemote, want: "disk on fire"},
		{name: "server hangs up", script: func(h *hostileServer, id uint64) {
			h.send(&wire.FileData{ID: id, Data: make([]byte, 3)})
			h.conn.Close()
		}, is: io.ErrUnexpectedEOF, want: "the server closed the connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := hostile(t, ClientOptions{IdleTimeout: 10 * time.Second}, func(h *hostileServer) {
				m, ok := h.next().(*wire.FetchRequest)
				if !ok {
					return
				}
				tt.script(h, m.ID)
				<-h.stop
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			k := newSinks(t)
			err = c.Fetch(t.Context(), []*imaging.FetchRequest{{Entry: mkfile("f", make([]byte, size)), Basis: tt.basis}}, k.open)
			is := tt.is
			if is == nil {
				is = ErrProtocol
			}
			if !errors.Is(err, is) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant errors.Is %v, containing %q", err, is, tt.want)
			}
			k.checkSettled()
		})
	}
}

// A Fetch whose sink fails returns the sink's error and the session goes
// on.
func TestSinkError(t *testing.T) {
	ss := newSession(t, 1, ClientOptions{}, ServeOptions{})
	defer ss.close()
	got, _ := scanAll(t, ss.client, imaging.ScanRequest{})
	boom := errors.New("disk full")
	var aborted []string
	err := ss.client.Fetch(t.Context(), regular(got), func(r *imaging.FetchRequest) (imaging.ContentSink, error) {
		if r.Entry.Path == "usr/big" {
			return &failingSink{err: boom, aborted: &aborted}, nil
		}
		return &memSink{t: t, req: r}, nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "usr/big") {
		t.Errorf("Fetch: %v, want disk full for usr/big", err)
	}
	if len(aborted) != 1 {
		t.Errorf("failing sink aborted %d times, want 1", len(aborted))
	}
	k := newSinks(t)
	if err := ss.client.Fetch(t.Context(), regular(got)[:2], k.open); err != nil {
		t.Errorf("fetch after a failed one: %v", err)
	}
	k.checkSettled()
}

type failingSink struct {
	err     error
	aborted *[]string
}

func (s *failingSink) Data(int64, []byte) error         { return s.err }
func (s *failingSink) Reuse(int64, int64) error         { return s.err }
func (s *failingSink) Finish(imaging.FetchResult) error { return s.err }
func (s *failingSink) Abort(err error)                  { *s.aborted = append(*s.aborted, err.Error()) }

// TestKeepalivesAreNotProgress: a server that answers a scan request with
// nothing but pings fails the scan with ErrStalled after ProgressTimeout,
// though the connection is never idle.
func TestKeepalivesAreNotProgress(t *testing.T) {
	c, err := hostile(t, ClientOptions{IdleTimeout: time.Second, ProgressTimeout: 300 * time.Millisecond}, func(h *hostileServer) {
		if _, ok := h.next().(*wire.ScanRequest); !ok {
			return
		}
		for {
			select {
			case <-h.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if h.enc.Encode(&wire.Ping{}) != nil || h.enc.Flush() != nil {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Scan(t.Context(), imaging.ScanRequest{}, func(*tree.Entry) error { return nil })
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("scan answered with pings only: %v, want ErrStalled", err)
	}
}
