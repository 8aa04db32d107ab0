package proto

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
)

// session is a client talking to servers over pipes, each server with its
// own fakeSource.
type session struct {
	t       *testing.T
	client  *Client
	sources []*fakeSource
	errs    chan error
	wg      sync.WaitGroup
}

func serveFake(t *testing.T, ss *session, conn io.ReadWriteCloser, opts ServeOptions) {
	src := newFakeSource()
	ss.sources = append(ss.sources, src)
	ss.wg.Go(func() {
		err := Serve(t.Context(), conn, func(ctx context.Context, root string) (imaging.Source, error) {
			if root != "/golden" {
				return nil, errors.New("no such root")
			}
			return src, nil
		}, opts)
		conn.Close()
		ss.errs <- err
	})
}

// newSession starts a client with n streams to fake servers.
func newSession(t *testing.T, n int, copts ClientOptions, sopts ServeOptions) *session {
	t.Helper()
	ss := &session{t: t, errs: make(chan error, n)}
	cli, srv := Pipe()
	serveFake(t, ss, srv, sopts)
	c, err := NewClient(t.Context(), cli, "/golden", copts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	ss.client = c
	for range n - 1 {
		cli, srv := Pipe()
		serveFake(t, ss, srv, sopts)
		if err := c.AddStream(cli); err != nil {
			t.Fatalf("AddStream: %v", err)
		}
	}
	return ss
}

// close closes the client and checks that every server ended cleanly.
func (ss *session) close() {
	ss.t.Helper()
	if err := ss.client.Close(); err != nil {
		ss.t.Errorf("Close: %v", err)
	}
	ss.wg.Wait()
	close(ss.errs)
	for err := range ss.errs {
		if err != nil {
			ss.t.Errorf("Serve: %v", err)
		}
	}
	for i, src := range ss.sources {
		if !src.closed.Load() {
			ss.t.Errorf("server %d did not close its source", i)
		}
	}
}

func scanAll(t *testing.T, c *Client, req imaging.ScanRequest) ([]*tree.Entry, imaging.ScanResult) {
	t.Helper()
	var got []*tree.Entry
	res, err := c.Scan(t.Context(), req, func(e *tree.Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return got, res
}

func TestRoundTrip(t *testing.T) {
	ss := newSession(t, 1, ClientOptions{}, ServeOptions{})
	c, src := ss.client, ss.sources[0]
	if h := c.Remote(); h.Software != Software || h.Role != wire.RoleServer {
		t.Errorf("remote hello = %+v", h)
	}

	got, res := scanAll(t, c, imaging.ScanRequest{Excludes: []string{"/proc"}})
	if diff := cmp.Diff(src.entries, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("scan (-want +got):\n%s", diff)
	}
	wantRes := imaging.ScanResult{Scope: tree.FullScope, Problems: 1, Token: "tok-2", Entries: len(src.entries)}
	if diff := cmp.Diff(wantRes, res); diff != "" {
		t.Errorf("scan result (-want +got):\n%s", diff)
	}

	// The receiver has an old version of usr/reuse (two blocks changed)
	// and the current etc/passwd.
	k := newSinks(t)
	const bs = 8192
	reuse := src.files["usr/reuse"].content
	old := bytes.Clone(reuse)
	old[100] ^= 0xff
	old[3*bs+5] ^= 0xff
	k.bases["usr/reuse"] = old
	passwd := src.files["etc/passwd"].content
	k.bases["etc/passwd"] = passwd

	reqs := regular(got)
	reqs = append(reqs, &imaging.FetchRequest{Entry: mkfile("gone", []byte("x"))})
	for _, r := range reqs {
		switch r.Entry.Path {
		case "usr/reuse":
			r.Basis = &imaging.Basis{Size: int64(len(old)), BlockSize: bs, Blocks: blockHashes(old, bs)}
		case "etc/passwd":
			r.Basis = &imaging.Basis{Size: int64(len(passwd)), Hash: r.Entry.Hash, Hashed: true}
		}
	}
	if err := c.Fetch(t.Context(), reqs, k.open); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	k.checkSettled()

	for _, r := range reqs {
		p := r.Entry.Path
		s := k.byPath[p]
		if s == nil {
			t.Errorf("%s: never opened", p)
			continue
		}
		ff := src.files[p]
		switch {
		case ff == nil:
			var fe *imaging.FileError
			if !errors.As(s.aborted, &fe) || fe.Path != p || !errors.Is(s.aborted, fs.ErrNotExist) {
				t.Errorf("%s: aborted with %v, want a not-exist FileError", p, s.aborted)
			}
		case ff.err != nil:
			var fe *imaging.FileError
			if !errors.As(s.aborted, &fe) || fe.Path != p {
				t.Errorf("%s: aborted with %v, want a FileError", p, s.aborted)
			}
			if want := ff.err.(*imaging.FileError).Err; !errors.Is(s.aborted, want) {
				t.Errorf("%s: aborted with %v, want it to wrap %v", p, s.aborted, want)
			}
		default:
			if s.aborted != nil || s.result == nil {
				t.Errorf("%s: aborted %v, result %v", p, s.aborted, s.result)
				continue
			}
			if !bytes.Equal(s.buf, ff.content) {
				t.Errorf("%s: content differs (%d bytes, want %d)", p, len(s.buf), len(ff.content))
			}
			if s.result.Hash != r.Entry.Hash || s.result.Size != r.Entry.Size || s.result.Mtime != r.Entry.Mtime {
				t.Errorf("%s: result %+v, entry %+v", p, s.result, r.Entry)
			}
		}
	}
	if !k.byPath["etc/passwd"].result.Unchanged || k.byPath["etc/passwd"].calls != 0 {
		t.Errorf("etc/passwd with a matching basis hash was not reported unchanged")
	}

	st := c.Stats()
	if st.ReuseBytes != int64(len(reuse)-2*bs) {
		t.Errorf("reused %d bytes, want %d", st.ReuseBytes, len(reuse)-2*bs)
	}
	sparse := src.files["usr/sparse"]
	if wantData := int64(300<<10 + 1000 + 2*bs); st.DataBytes < wantData || st.DataBytes >= wantData+int64(len(sparse.content)) {
		t.Errorf("data bytes %d: the sparse file's holes were sent?", st.DataBytes)
	}
	if st.FileErrors != 3 || st.Entries != int64(len(src.entries)) || st.BytesIn <= st.DataBytes || st.BytesOut == 0 {
		t.Errorf("stats %+v", st)
	}
	ss.close()
	if peer := c.Stats().Peer; peer["files"] != int64(len(reqs)-3) || peer["fake_fetched"] != int64(len(reqs)) || peer["bytes_out"] == 0 {
		t.Errorf("peer stats %v", peer)
	}
}

// Checks for the errors the fake source reports: kinds survive the wire.
func TestFileErrorKinds(t *testing.T) {
	ss := newSession(t, 1, ClientOptions{}, ServeOptions{})
	defer ss.close()
	got, _ := scanAll(t, ss.client, imaging.ScanRequest{})
	k := newSinks(t)
	var reqs []*imaging.FetchRequest
	for _, r := range regular(got) {
		if r.Entry.Path == "etc/shadow" || r.Entry.Path == "etc/volatile" {
			reqs = append(reqs, r)
		}
	}
	if err := ss.client.Fetch(t.Context(), reqs, k.open); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		op   string
		is   error
	}{
		{path: "etc/shadow", op: "open", is: fs.ErrPermission},
		{path: "etc/volatile", op: "read", is: imaging.ErrChanged},
	}
	for _, tt := range tests {
		err := k.byPath[tt.path].aborted
		var fe *imaging.FileError
		if !errors.As(err, &fe) || fe.Op != tt.op || fe.Path != tt.path || !errors.Is(err, tt.is) {
			t.Errorf("%s: aborted with %#v, want FileError{Op: %s} wrapping %v", tt.path, err, tt.op, tt.is)
		}
	}
}

func TestScanSince(t *testing.T) {
	ss := newSession(t, 1, ClientOptions{}, ServeOptions{})
	defer ss.close()
	got, res := scanAll(t, ss.client, imaging.ScanRequest{Since: "tok-1"})
	if diff := cmp.Diff([]string{"etc/passwd"}, paths(got)); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]tree.Scope{{Path: "etc/passwd"}}, res.Scope); diff != "" {
		t.Errorf("scope (-want +got):\n%s", diff)
	}
}

// A scan whose fn fails is canceled; the session goes on.
func TestScanCallbackError(t *testing.T) {
	ss := newSession(t, 1, ClientOptions{}, ServeOptions{})
	defer ss.close()
	boom := errors.New("boom")
	n := 0
	_, err := ss.client.Scan(t.Context(), imaging.ScanRequest{}, func(*tree.Entry) error {
		if n++; n == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Scan: %v, want boom", err)
	}
	got, _ := scanAll(t, ss.client, imaging.ScanRequest{})
	if len(got) != len(ss.sources[0].entries) {
		t.Errorf("second scan: %d entries, want %d", len(got), len(ss.sources[0].entries))
	}
	k := newSinks(t)
	if err := ss.client.Fetch(t.Context(), regular(got)[:2], k.open); err != nil {
		t.Errorf("fetch after a failed scan: %v", err)
	}
}

func TestMultipleStreams(t *testing.T) {
	ss := newSession(t, 3, ClientOptions{Window: 4, WindowBytes: 64 << 10}, ServeOptions{})
	c := ss.client
	if got := c.Stats().Streams; got != 3 {
		t.Errorf("Streams = %d, want 3", got)
	}
	got, _ := scanAll(t, c, imaging.ScanRequest{})
	// Many requests for the readable files, so the windows fill up.
	var reqs []*imaging.FetchRequest
	var want [][]byte
	for range 10 {
		for _, r := range regular(got) {
			if ff := ss.sources[0].files[r.Entry.Path]; ff != nil && ff.err == nil {
				reqs = append(reqs, &imaging.FetchRequest{Entry: r.Entry})
				want = append(want, ff.content)
			}
		}
	}
	var mu sync.Mutex
	results := map[*imaging.FetchRequest]*memSink{}
	err := c.Fetch(t.Context(), reqs, func(r *imaging.FetchRequest) (imaging.ContentSink, error) {
		s := &memSink{t: t, req: r}
		mu.Lock()
		results[r] = s
		mu.Unlock()
		return s, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		s := results[r]
		if s == nil || s.result == nil || !bytes.Equal(s.buf, want[i]) {
			t.Errorf("request %d (%s): not fetched correctly", i, r.Entry.Path)
		}
	}
	used := 0
	for _, src := range ss.sources {
		if src.fetched.Load() > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("%d of 3 streams served fetches", used)
	}
	ss.close()
}

// Concurrent Fetch calls share the streams.
func TestConcurrentFetch(t *testing.T) {
	ss := newSession(t, 2, ClientOptions{Window: 2}, ServeOptions{})
	defer ss.close()
	got, _ := scanAll(t, ss.client, imaging.ScanRequest{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			k := newSinks(t)
			var reqs []*imaging.FetchRequest
			for _, r := range regular(got) {
				if ff := ss.sources[0].files[r.Entry.Path]; ff != nil && ff.err == nil {
					reqs = append(reqs, &imaging.FetchRequest{Entry: r.Entry})
				}
			}
			if err := ss.client.Fetch(t.Context(), reqs, k.open); err != nil {
				t.Error(err)
			}
			k.checkSettled()
		})
	}
	wg.Wait()
}

func TestAck(t *testing.T) {
	var mu sync.Mutex
	var recorded []string
	ss := newSession(t, 1, ClientOptions{}, ServeOptions{OnAck: func(_ context.Context, tok string) error {
		mu.Lock()
		defer mu.Unlock()
		recorded = append(recorded, tok)
		return nil
	}})
	for _, tok := range []string{"tok-2", "tok-3"} {
		if err := ss.client.Ack(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	ss.close()
	if diff := cmp.Diff([]string{"tok-2", "tok-3"}, recorded); diff != "" {
		t.Errorf("recorded (-want +got):\n%s", diff)
	}
}

func TestOpenFails(t *testing.T) {
	cli, srv := Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(t.Context(), srv, func(context.Context, string) (imaging.Source, error) {
			return nil, errors.New("stat /nope: no such file or directory")
		}, ServeOptions{})
	}()
	_, err := NewClient(t.Context(), cli, "/nope", ClientOptions{})
	if !errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), "open /nope: stat /nope: no such file or directory") {
		t.Errorf("NewClient: %v", err)
	}
	if err := <-done; err == nil {
		t.Error("Serve succeeded")
	}
}

// Canceling a Fetch ends the session promptly and settles every sink.
func TestFetchCancel(t *testing.T) {
	ss := newSession(t, 1, ClientOptions{}, ServeOptions{})
	ss.sources[0].block = true
	got, _ := scanAll(t, ss.client, imaging.ScanRequest{})
	ctx, cancel := context.WithCancel(t.Context())
	k := newSinks(t)
	opened := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		var reqs []*imaging.FetchRequest
		for _, r := range regular(got) {
			if r.Entry.Path == "usr/big" || r.Entry.Path == "usr/reuse" {
				reqs = append(reqs, r)
			}
		}
		errc <- ss.client.Fetch(ctx, reqs, func(r *imaging.FetchRequest) (imaging.ContentSink, error) {
			once.Do(func() { close(opened) })
			return k.open(r)
		})
	}()
	<-opened
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch: %v, want context.Canceled", err)
	}
	k.checkSettled()
	if err := ss.client.Fetch(t.Context(), regular(got)[:1], k.open); err == nil {
		t.Error("Fetch after a canceled one succeeded")
	}
	ss.client.Close()
	ss.wg.Wait()
}

// A stream to a peer that never answers fails with ErrStalled.
func TestStall(t *testing.T) {
	tests := []struct {
		name string
		op   func(t *testing.T, c *Client) error
	}{
		{name: "scan", op: func(t *testing.T, c *Client) error {
			_, err := c.Scan(t.Context(), imaging.ScanRequest{}, func(*tree.Entry) error { return nil })
			return err
		}},
		{name: "fetch", op: func(t *testing.T, c *Client) error {
			return c.Fetch(t.Context(), []*imaging.FetchRequest{{Entry: mkfile("f", []byte("x"))}}, newSinks(t).open)
		}},
		{name: "ack", op: func(t *testing.T, c *Client) error { return c.Ack(t.Context(), "t") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := hostile(t, ClientOptions{IdleTimeout: 200 * time.Millisecond}, func(h *hostileServer) {
				h.next() // the request, never answered
				<-h.stop
			})
			if err != nil {
				t.Fatal(err)
			}
			err = tt.op(t, c)
			if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "peer stalled") {
				t.Errorf("err = %v, want ErrStalled", err)
			}
			c.Close()
		})
	}
}

// A peer that stalls during the handshake is caught too.
func TestStallInHandshake(t *testing.T) {
	cli, srv := Pipe()
	defer srv.Close()
	go io.Copy(io.Discard, srv) // reads, never writes
	_, err := NewClient(t.Context(), cli, "/", ClientOptions{IdleTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrStalled) {
		t.Errorf("err = %v, want ErrStalled", err)
	}
}

func TestHandshakeErrors(t *testing.T) {
	tests := []struct {
		name   string
		server func(conn io.ReadWriteCloser)
		is     error
		want   string
	}{
		{
			name: "shell noise",
			server: func(conn io.ReadWriteCloser) {
				io.WriteString(conn, "Welcome to node004\n")
				Serve(context.Background(), conn, func(context.Context, string) (imaging.Source, error) { return newFakeSource(), nil }, ServeOptions{})
			},
			is:   wire.ErrNotProtocol,
			want: `remote printed "Welcome to node004\n" before the protocol started: remove output from the remote shell's startup files (.bashrc`,
		},
		{
			name:   "early eof",
			server: func(conn io.ReadWriteCloser) { conn.Close() },
			is:     wire.ErrRemoteExited,
			want:   "remote closed the stream before the protocol started",
		},
		{
			name: "command not found",
			server: func(conn io.ReadWriteCloser) {
				io.WriteString(conn, "sh: goldsync-agent: not found\n")
				conn.Close()
			},
			is:   wire.ErrRemoteExited,
			want: `remote printed "sh: goldsync-agent: not found\n" and exited`,
		},
		{
			name: "version",
			server: func(conn io.ReadWriteCloser) {
				wire.Handshake(wire.NewEncoder(conn), wire.NewDecoder(conn), wire.Hello{Role: wire.RoleServer, MinVersion: 7, MaxVersion: 9, Software: "goldsync 9"})
				conn.Close()
			},
			is:   wire.ErrVersion,
			want: "we speak 1..1, the remote (\"goldsync 9\") speaks 7..9",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, srv := Pipe()
			go tt.server(srv)
			_, err := NewClient(t.Context(), cli, "/", ClientOptions{IdleTimeout: 5 * time.Second})
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant errors.Is %v, containing %q", err, tt.is, tt.want)
			}
			srv.Close()
		})
	}
}

// A client with noise on its side is reported by the server the same way
// (a push: the agent serves and reads the remote receiver's output).
func TestServerSeesNoise(t *testing.T) {
	cli, srv := Pipe()
	go func() {
		io.WriteString(cli, "Last login: Mon\n")
		NewClient(context.Background(), cli, "/", ClientOptions{IdleTimeout: 5 * time.Second})
	}()
	err := Serve(t.Context(), srv, func(context.Context, string) (imaging.Source, error) { return newFakeSource(), nil }, ServeOptions{})
	if !errors.Is(err, wire.ErrNotProtocol) || !strings.Contains(err.Error(), `remote printed "Last login: Mon\n"`) {
		t.Errorf("Serve: %v", err)
	}
	srv.Close()
}

func TestServeClientVanishes(t *testing.T) {
	cli, srv := Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(t.Context(), srv, func(context.Context, string) (imaging.Source, error) { return newFakeSource(), nil }, ServeOptions{})
	}()
	c, err := NewClient(t.Context(), cli, "/", ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "without saying goodbye") {
		t.Errorf("Serve: %v", err)
	}
	c.Close()
}

// A server busy for longer than the client's IdleTimeout keeps the session
// alive with pings.
func TestKeepaliveOutlastsIdleTimeout(t *testing.T) {
	ss := newSession(t, 1, ClientOptions{IdleTimeout: time.Second}, ServeOptions{Keepalive: 50 * time.Millisecond})
	defer ss.close()
	ss.sources[0].delay = 1500 * time.Millisecond
	got, _ := scanAll(t, ss.client, imaging.ScanRequest{})
	if len(got) != len(ss.sources[0].entries) {
		t.Errorf("%d entries, want %d", len(got), len(ss.sources[0].entries))
	}
}

// A request the encoder refuses fails its Fetch, and the session goes on.
func TestFetchRequestRefused(t *testing.T) {
	ss := newSession(t, 1, ClientOptions{}, ServeOptions{})
	defer ss.close()
	got, _ := scanAll(t, ss.client, imaging.ScanRequest{})
	bad := &imaging.FetchRequest{Entry: mkfile("usr/reuse", make([]byte, 10)),
		Basis: &imaging.Basis{Size: 10, BlockSize: 4, Blocks: make([]uint64, 9)}}
	k := newSinks(t)
	err := ss.client.Fetch(t.Context(), []*imaging.FetchRequest{bad}, k.open)
	var ee *wire.EncodeError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "more blocks") {
		t.Errorf("Fetch: %v, want an encode error", err)
	}
	if err := ss.client.Fetch(t.Context(), regular(got)[:2], k.open); err != nil {
		t.Errorf("fetch after a refused one: %v", err)
	}
	k.checkSettled()
}

// The server closes its source (the agent's DirSource saves its hash
// cache then) before it answers the client's goodbye: once Close returns
// on the client, the source is closed, however long that took. (The
// client gives a local or ssh agent only moments to exit after Done; a
// cache save cut short costs the next pull a re-read of every file.)
func TestSourceClosedBeforeGoodbye(t *testing.T) {
	ss := newSession(t, 2, ClientOptions{}, ServeOptions{})
	for _, src := range ss.sources {
		src.closeDelay = 300 * time.Millisecond
	}
	scanAll(t, ss.client, imaging.ScanRequest{})
	if err := ss.client.Close(); err != nil {
		t.Fatal(err)
	}
	for i, src := range ss.sources {
		if !src.closed.Load() {
			t.Errorf("stream %d: the client heard goodbye before the source was closed", i)
		}
	}
	ss.close()
}

// TestReleaseEndsSessionBeforeClose: Release says goodbye and returns;
// each server ends its side (closes its source, answers) without the
// client's Close, which then only collects the answers. A pull lets the
// golden node save its hash cache while the image's last steps run this
// way (issue 14). Calls after Release fail with ErrClosed.
func TestReleaseEndsSessionBeforeClose(t *testing.T) {
	ss := newSession(t, 2, ClientOptions{}, ServeOptions{})
	scanAll(t, ss.client, imaging.ScanRequest{})
	ss.client.Release()
	ss.client.Release() // a second time: nothing
	ended := make(chan struct{})
	go func() { ss.wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(time.Minute): // a deadlock breaker, not a measure
		t.Fatal("the servers did not end their sessions after Release")
	}
	for i, src := range ss.sources {
		if !src.closed.Load() {
			t.Errorf("stream %d: source not closed after Release", i)
		}
	}
	err := ss.client.Fetch(t.Context(), []*imaging.FetchRequest{{Entry: &tree.Entry{Path: "a", Type: tree.TypeRegular}}},
		func(*imaging.FetchRequest) (imaging.ContentSink, error) { return nil, errors.New("not called") })
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Fetch after Release: %v, want ErrClosed", err)
	}
	ss.close()
	if ss.client.Stats().Peer == nil {
		t.Errorf("no server counters after Close")
	}
	if err := ss.client.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}
