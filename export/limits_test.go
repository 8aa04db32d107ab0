package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The rsync export's own resources and policy, tried as a hostile rsync
// client would: running the server out of descriptors, holding slots
// with handshakes that never finish, from one address, from a network it
// does not serve, and asking for root-only files.

// serveHelperEnv makes the test binary a standalone export server (see
// serveHelperMain): a process whose descriptor limit the test can lower
// without lowering its own.
const serveHelperEnv = "GOLDSYNC_EXPORT_TEST_SERVE"

// serveHelperConfig is what the test tells a helper server.
type serveHelperConfig struct {
	Root           string
	NoFile         uint64 // RLIMIT_NOFILE, soft and hard
	MaxConnections int
}

// serveHelperMain runs an export server for the image at the config's
// Root on a loopback port with RLIMIT_NOFILE lowered, prints the address
// on stdout, logs to stderr and serves until stdin closes. It exits 1
// when Serve returns an error, as goldsync serve does.
func serveHelperMain() {
	var cfg serveHelperConfig
	if err := json.Unmarshal([]byte(os.Getenv(serveHelperEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "helper config:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := New(Options{Images: []Image{{Name: "img", Root: cfg.Root}}, MaxConnections: cfg.MaxConnections,
		MaxPerIP: cfg.MaxConnections, Logger: log, ServeRootOnly: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "new:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	lim := syscall.Rlimit{Cur: cfg.NoFile, Max: cfg.NoFile}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	fmt.Println(ln.Addr())
	if err := s.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, "SERVE RETURNED:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// lineWatch collects a process's stderr lines and tells when one holds a
// string.
type lineWatch struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func watchLines(r io.Reader) *lineWatch {
	w := &lineWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *lineWatch) has(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// smallImage is an image with one world-readable file, etc/motd.
func smallImage(t *testing.T) string {
	t.Helper()
	img := mkImage(t, "img")
	if err := os.MkdirAll(filepath.Join(img, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(img, "etc", "motd"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return img
}

// pullOK pulls the image at rsync://addr/img/ with extra rsync options
// and checks that etc/motd arrived.
func pullOK(t *testing.T, addr string, extra ...string) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "dst")
	out, code := rsyncRun(t, append(append([]string{"-a"}, extra...), "rsync://"+addr+"/img/", dst+"/")...)
	if code != 0 {
		t.Fatalf("rsync %s exit %d:\n%s", strings.Join(extra, " "), code, out)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "etc", "motd")); err != nil || string(b) != "hello\n" {
		t.Fatalf("pulled etc/motd = %q, %v", b, err)
	}
}

// pullRefused pulls and checks that the client was refused with a
// message holding want, and got nothing.
func pullRefused(t *testing.T, addr, want string, extra ...string) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "dst")
	out, code := rsyncRun(t, append(append([]string{"-a"}, extra...), "rsync://"+addr+"/img/", dst+"/")...)
	if code != 5 || !strings.Contains(out, want) {
		t.Fatalf("rsync %s exit %d, want 5 (error starting client-server protocol) and a refusal holding %q:\n%s", strings.Join(extra, " "), code, want, out)
	}
	if _, err := os.Stat(filepath.Join(dst, "etc", "motd")); err == nil {
		t.Fatalf("refused client got etc/motd")
	}
}

// holdSlots opens n connections from the address local (empty: any) that
// read the greeting (so the server has accepted them) and then send
// nothing, as a slowloris client does. They close at cleanup, or when
// the returned function is called.
func holdSlots(t *testing.T, addr, local string, n int) func() {
	t.Helper()
	d := net.Dialer{}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	var conns []net.Conn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	t.Cleanup(closeAll)
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetReadDeadline(time.Now().Add(time.Minute))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != greeting {
			t.Fatalf("slowloris connection %d: read %q, %v; want the greeting", len(conns), line, err)
		}
	}
	return closeAll
}

// waitIdle waits until the server holds no connection slot.
func waitIdle(t *testing.T, s *Server) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); len(s.sem) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connection slots still held a minute after the clients left", len(s.sem))
		}
	}
}

// TestHandshakesHoldSlots: clients that connect and never finish the
// handshake count toward MaxConnections, so they cannot pile up
// unbounded (a goroutine and a descriptor each, for HandshakeTimeout);
// the client that comes next is told to try later, and served once they
// are gone. (Before, the slot was taken only after the module name: any
// number of silent clients were accepted and the pull went through.)
func TestHandshakesHoldSlots(t *testing.T) {
	img := smallImage(t)
	s, addr := serveOpts(t, Options{Images: []Image{{Name: "img", Root: img}}, MaxConnections: 3, MaxPerIP: 3}, nil)
	release := holdSlots(t, addr, "", 3)
	pullRefused(t, addr, "max connections (3) reached")
	release()
	waitIdle(t, s)
	pullOK(t, addr)
}

// TestPerAddressLimit: one address holding its MaxPerIP slots is refused
// more, another address is served.
func TestPerAddressLimit(t *testing.T) {
	img := smallImage(t)
	s, addr := serveOpts(t, Options{Images: []Image{{Name: "img", Root: img}}, MaxConnections: 8, MaxPerIP: 2}, nil)
	release := holdSlots(t, addr, "127.0.0.1", 2)
	pullRefused(t, addr, "max connections from 127.0.0.1 (2) reached", "--address=127.0.0.1")
	pullOK(t, addr, "--address=127.0.0.2")
	release()
	waitIdle(t, s)
	pullOK(t, addr, "--address=127.0.0.1")
}

// TestAllowList: a client from a network not in the allow-list is
// refused before the handshake; one from an allowed network is served.
func TestAllowList(t *testing.T) {
	img := smallImage(t)
	allow, err := ParseAllow([]string{"127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := serveOpts(t, Options{Images: []Image{{Name: "img", Root: img}}, Allow: allow}, nil)
	pullRefused(t, addr, "127.0.0.1:", "--address=127.0.0.1")
	pullRefused(t, addr, "not in the export's allow-list", "--address=127.0.0.1")
	pullOK(t, addr, "--address=127.0.0.2")
}

func TestParseAllow(t *testing.T) {
	got, err := ParseAllow([]string{"10.1.0.0/16", " 192.168.1.7 ", "fd00::/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	want := "[10.1.0.0/16 192.168.1.7/32 fd00::/8 ::1/128]"
	if fmt.Sprint(got) != want {
		t.Errorf("ParseAllow = %v, want %s", got, want)
	}
	for _, bad := range []string{"10.1.2.3/16", "example.com", "10.0.0.0/33", ""} {
		if _, err := ParseAllow([]string{bad}); err == nil {
			t.Errorf("ParseAllow(%q) accepted", bad)
		}
	}
	s := &Server{allow: DefaultAllow}
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "10.9.8.7": true, "172.31.0.1": true, "192.168.0.10": true, "::1": true, "fd12::1": true,
		"::ffff:10.0.0.1": true, "8.8.8.8": false, "172.32.0.1": false, "2001:db8::1": false, "100.64.0.1": false,
	} {
		if got := s.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("default allow-list: Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestDescriptorExhaustion runs the server in a process with few
// descriptors and connects more clients than it has: accept fails with
// EMFILE, and the server must back off and go on, not exit. Once the
// clients leave, a real pull is served. (Before, Serve returned "accept:
// too many open files" and goldsync serve exited.)
func TestDescriptorExhaustion(t *testing.T) {
	needRsync(t)
	img := smallImage(t)
	cfg, err := json.Marshal(serveHelperConfig{Root: img, NoFile: 40, MaxConnections: 500})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), serveHelperEnv+"="+string(cfg))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := watchLines(stderr)
	exited := make(chan struct{})
	var exitErr error
	go func() {
		<-logs.done
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		<-exited
	})
	checkRunning := func() {
		t.Helper()
		select {
		case <-exited:
			t.Fatalf("server exited under descriptor exhaustion: %v\n%s", exitErr, logs)
		default:
		}
	}
	addrLine, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper server did not start: %v\n%s", err, logs)
	}
	addr := strings.TrimSpace(addrLine)

	// More connections than the helper has descriptors; the kernel's
	// backlog takes those it does not accept.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 100 && !logs.has("accept failed"); i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			break // backlog full
		}
		conns = append(conns, c)
	}
	for deadline := time.Now().Add(time.Minute); !logs.has("accept failed"); time.Sleep(10 * time.Millisecond) {
		checkRunning()
		if time.Now().After(deadline) {
			t.Fatalf("%d connections and no failed accept: the test did not exhaust descriptors\n%s", len(conns), logs)
		}
	}
	if !logs.has("too many open files") {
		t.Errorf("accept failed, but not for lack of descriptors:\n%s", logs)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil

	// The server must still serve: retry while it is backing off and the
	// closed connections drain.
	var out string
	code := -1
	for i := 0; i < 100 && code != 0; i++ {
		checkRunning()
		dst := filepath.Join(t.TempDir(), "dst")
		out, code = rsyncRun(t, "-a", "rsync://"+addr+"/img/", dst+"/")
		if code == 0 {
			if b, err := os.ReadFile(filepath.Join(dst, "etc", "motd")); err != nil || !bytes.Equal(b, []byte("hello\n")) {
				t.Fatalf("pulled etc/motd = %q, %v", b, err)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 0 {
		t.Fatalf("no pull served after the clients left; last rsync exit %d:\n%s\nserver:\n%s", code, out, logs)
	}
}

// rootOnlyImage is an image with the files the export withholds by
// default and their neighbours it serves, and returns the names of the
// withheld files (each holds secretMarker).
func rootOnlyImage(t *testing.T) (img string, withheld []string) {
	t.Helper()
	img = mkImage(t, "img")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc/ssh", "root", "home/alice"} {
		must(os.MkdirAll(filepath.Join(img, d), 0o755))
	}
	must(os.Chmod(filepath.Join(img, "root"), 0o700))
	files := []struct {
		name     string
		mode     os.FileMode
		uid, gid int
		withheld bool
	}{
		{"etc/motd", 0o644, 0, 0, false},
		{"etc/shadow", 0o000, 0, 0, true},   // Red Hat
		{"etc/gshadow", 0o640, 0, 42, true}, // Debian: root:shadow
		{"etc/ssh/ssh_host_ed25519_key", 0o600, 0, 0, true},
		{"etc/ssh/ssh_host_rsa_key", 0o640, 0, 998, true}, // Red Hat: root:ssh_keys
		{"etc/ssh/ssh_host_ed25519_key.pub", 0o644, 0, 0, false},
		{"etc/sudoers", 0o440, 0, 0, true},
		{"root/.bashrc", 0o644, 0, 0, false},            // in a 0700 dir, but readable
		{"home/alice/.netrc", 0o600, 1000, 1000, false}, // not root's
	}
	for _, f := range files {
		p := filepath.Join(img, f.name)
		content := "public " + f.name + "\n"
		if f.withheld {
			content = secretMarker + " " + f.name + "\n"
			withheld = append(withheld, f.name)
		}
		must(os.WriteFile(p, []byte(content), 0o600))
		must(os.Chown(p, f.uid, f.gid))
		must(os.Chmod(p, f.mode))
	}
	return img, withheld
}

// TestRootOnlyWithheld pulls an image holding root-only files (shadow,
// host keys) with stock rsync: by default their contents do not leave
// the server, whatever the client asks (the whole image, --checksum, the
// file itself, requests it sends before the file list arrives), the
// client is told which and exits 23, and --delete deletes nothing; with
// ServeRootOnly the pull is complete. (Before, every file was served.)
func TestRootOnlyWithheld(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to make root-owned files")
	}
	img, withheld := rootOnlyImage(t)
	_, addr := serve(t, []Image{{Name: "img", Root: img}}, nil)
	checkNoSecret := func(t *testing.T, dst string) {
		t.Helper()
		filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secretMarker)) {
					t.Errorf("withheld content arrived: %s", p)
				}
			}
			return nil
		})
	}
	for _, opts := range [][]string{{"-a"}, {"-a", "--numeric-ids", "-H"}, {"-ac"}, {"-a", "--whole-file"}, {"-a", "--no-whole-file"}} {
		t.Run(strings.Join(opts, " "), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			out, code := rsyncRun(t, append(opts, "rsync://"+addr+"/img/", dst+"/")...)
			if code != 23 || !strings.Contains(out, "root-only") || !strings.Contains(out, "etc/shadow") {
				t.Errorf("rsync exit %d, want 23 after naming the root-only files:\n%s", code, out)
			}
			checkNoSecret(t, dst)
			for _, f := range []string{"etc/motd", "etc/ssh/ssh_host_ed25519_key.pub", "root/.bashrc", "home/alice/.netrc"} {
				if b, err := os.ReadFile(filepath.Join(dst, f)); err != nil || string(b) != "public "+f+"\n" {
					t.Errorf("%s = %q, %v; want it served", f, b, err)
				}
			}
		})
	}
	t.Run("dry run", func(t *testing.T) {
		// Requests carry no checksums then: the request filter must
		// not wait for them.
		dst := filepath.Join(t.TempDir(), "dst")
		out, code := rsyncRun(t, "-an", "--itemize-changes", "rsync://"+addr+"/img/", dst+"/")
		if code != 23 || !strings.Contains(out, "etc/motd") || !strings.Contains(out, "root-only") {
			t.Errorf("rsync -an exit %d, want 23, the files listed and the root-only ones named:\n%s", code, out)
		}
	})
	t.Run("the file itself", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "dst")
		out, code := rsyncRun(t, "-a", "rsync://"+addr+"/img/etc/shadow", dst+"/")
		if code == 0 {
			t.Errorf("rsync exit 0 for a withheld file:\n%s", out)
		}
		checkNoSecret(t, dst)
	})
	t.Run("delete skipped", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "dst")
		if err := os.MkdirAll(filepath.Join(dst, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, "etc", "shadow"), []byte("replica's own\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, "extra"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := rsyncRun(t, "-a", "--delete", "rsync://"+addr+"/img/", dst+"/")
		if code != 23 {
			t.Errorf("rsync exit %d, want 23:\n%s", code, out)
		}
		if b, err := os.ReadFile(filepath.Join(dst, "etc", "shadow")); err != nil || string(b) != "replica's own\n" {
			t.Errorf("replica's etc/shadow = %q, %v; want it untouched", b, err)
		}
		if _, err := os.Stat(filepath.Join(dst, "extra")); err != nil {
			t.Errorf("--delete deleted after files were withheld: %v", err)
		}
	})
	t.Run("requests sent early", func(t *testing.T) {
		// A client that asks for every index before it has the file
		// list, hoping its requests pass before the withheld indices
		// are known.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var msg bytes.Buffer
		msg.WriteString("@RSYNCD: 27.0\nimg\n--server\n--sender\n-r\n.\nimg/\n\n")
		le := func(v int32) { msg.Write([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}) }
		le(0) // empty filter list
		for i := range int32(32) {
			le(i)
			le(0) // no sums: send the whole file
			le(700)
			le(16)
			le(0)
		}
		le(-1)
		le(-1)
		le(-1)
		if _, err := c.Write(msg.Bytes()); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Minute))
		got, _ := io.ReadAll(c)
		if bytes.Contains(got, []byte(secretMarker)) {
			t.Errorf("withheld content sent to an early-requesting client")
		}
		if !bytes.Contains(got, []byte("public etc/motd")) {
			t.Errorf("the early-requesting client got no file at all (the test proves nothing): %q", got)
		}
	})
	t.Run("served with ServeRootOnly", func(t *testing.T) {
		_, addr := serve(t, []Image{{Name: "img", Root: img}}, serveRootOnly)
		dst := filepath.Join(t.TempDir(), "dst")
		out, code := rsyncRun(t, "-a", "rsync://"+addr+"/img/", dst+"/")
		if code != 0 {
			t.Fatalf("rsync exit %d:\n%s", code, out)
		}
		for _, f := range withheld {
			if b, err := os.ReadFile(filepath.Join(dst, f)); err != nil || string(b) != secretMarker+" "+f+"\n" {
				t.Errorf("%s = %q, %v; want it served with ServeRootOnly", f, b, err)
			}
		}
	})
}
