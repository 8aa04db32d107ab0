package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Image is one module of the export.
type Image struct {
	// Name is the module name clients ask for (rsync://host/NAME/):
	// letters, digits, '.', '_' and '-', not starting with '-' or '.'.
	Name string
	// Root is the image directory, an absolute path.
	Root string
}

// Options configure a Server. Images and ChildArgs are required.
type Options struct {
	// Images are the modules served, listed in this order.
	Images []Image
	// ChildArgs are the arguments (after the program name) that make a
	// new process of this very binary call RunChild, for example the name
	// of a hidden subcommand. The child is started as /proc/self/exe with
	// these arguments and an environment holding only the variable
	// IsChild checks, so a program may also test IsChild first thing in
	// main (or TestMain) and leave ChildArgs empty.
	ChildArgs []string
	// Unconfined serves even when the kernel lacks Landlock. As root the
	// children are still chrooted into the image in a private mount
	// namespace, as nobody; as another user nothing but the handshake's
	// path checks stands between a symlink in the image and the rest of
	// the filesystem. Without it, New fails with ErrNoLandlock there.
	Unconfined bool
	// MaxConnections bounds the connections served at once: handshakes in
	// progress (a client that connects and sends nothing holds a slot
	// until HandshakeTimeout) and transfers (one child process each).
	// Further clients are told to try again later. Zero means 16.
	MaxConnections int
	// MaxPerIP bounds the connections from one client address (IPv4
	// address, or IPv6 address), so one host cannot take every slot.
	// Zero means DefaultMaxPerIP; it is never more than MaxConnections.
	MaxPerIP int
	// Allow lists the client networks served; a client from any other
	// address is refused right after accept, before the handshake. Nil
	// means DefaultAllow (loopback and the private ranges); allow every
	// address with 0.0.0.0/0 and ::/0.
	Allow []netip.Prefix
	// ServeRootOnly serves the contents of root-only files (see
	// RootOnly: /etc/shadow, ssh host keys, private TLS keys...). Without
	// it their file list entries go out (name, size, mode, owner) but
	// their contents do not: the client reports "some files/attrs were
	// not transferred" (exit 23) after an error naming them, and skips
	// its deletions. A replica image server that must be complete opts
	// in.
	ServeRootOnly bool
	// IdleTimeout ends a transfer whose connection has seen no traffic
	// for this long (the child exits). Zero means 10 minutes.
	IdleTimeout time.Duration
	// Logger receives connection and transfer events, and the library's
	// own log lines at debug level. Nil means silent.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultMaxConnections = 16
	DefaultMaxPerIP       = 4
	DefaultIdleTimeout    = 10 * time.Minute
	// HandshakeTimeout bounds the text part of the daemon handshake.
	HandshakeTimeout = 30 * time.Second
)

// DefaultAllow is the allow-list when Options.Allow is nil: loopback,
// the private IPv4 ranges (RFC 1918), IPv6 unique local addresses and
// link-local addresses of both families: the networks a cluster's image
// servers and nodes sit on, never the internet.
var DefaultAllow = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// ParseAllow parses an allow-list: CIDR prefixes ("10.1.0.0/16") or
// single addresses ("10.1.2.3", a /32 or /128), as an admin writes them.
func ParseAllow(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, v := range list {
		v = strings.TrimSpace(v)
		if p, err := netip.ParsePrefix(v); err == nil {
			if p != p.Masked() {
				return nil, fmt.Errorf("allow %q: host bits set (did you mean %s?)", v, p.Masked())
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("allow %q: neither a CIDR prefix nor an address", v)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// landlockVersion is landlockABI; tests replace it to play a kernel
// without Landlock.
var landlockVersion = landlockABI

// ErrNoLandlock is returned by New when the kernel does not offer Landlock
// and Options.Unconfined is not set.
var ErrNoLandlock = errors.New("the kernel does not offer Landlock, so the rsync export cannot be confined to the images")

// ErrConfinement is returned by Serve and SelfTest when a confined child
// could read something outside its image, or could not read its image.
var ErrConfinement = errors.New("confinement self-test failed")

// Server serves images over the rsync daemon protocol. It is safe for
// concurrent use; Serve may be called for several listeners.
type Server struct {
	opts     Options
	log      *slog.Logger
	images   []Image
	byName   map[string]Image
	abi      int  // Landlock ABI version, 0 when absent
	root     bool // euid 0: mount namespace, chroot, nobody
	landlock bool
	exec     []string // files the child needs to execute: binary, ELF interpreter, libraries
	sem      chan struct{}
	allow    []netip.Prefix
	perIP    int
	refusing chan struct{} // bounds the goroutines telling refused clients why

	mu   sync.Mutex
	byIP map[netip.Addr]int // connections held per client address

	// Test hooks that switch off one layer, to show the others hold.
	noPathCheck bool // the parent lets ".." and foreign paths through
	noArgCheck  bool // the parent lets any command line through (uploads too)
	noChroot    bool // the child does not chroot into the image
}

// New checks the images and the kernel's confinement features and returns
// a Server. The image roots must be existing directories; symlinks in a
// root's path are resolved once, here.
func New(opts Options) (*Server, error) {
	if len(opts.Images) == 0 {
		return nil, errors.New("no images to export")
	}
	s := &Server{opts: opts, log: opts.Logger, byName: map[string]Image{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, img := range opts.Images {
		if err := checkName(img.Name); err != nil {
			return nil, fmt.Errorf("image name %q: %w", img.Name, err)
		}
		if _, dup := s.byName[img.Name]; dup {
			return nil, fmt.Errorf("image name %q: given twice", img.Name)
		}
		if !filepath.IsAbs(img.Root) {
			return nil, fmt.Errorf("image %s: root %q is not an absolute path", img.Name, img.Root)
		}
		root, err := filepath.EvalSymlinks(img.Root)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		fi, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("image %s: %s is not a directory", img.Name, root)
		}
		if root == "/" {
			return nil, fmt.Errorf("image %s: refusing to export the whole filesystem", img.Name)
		}
		img.Root = root
		s.images = append(s.images, img)
		s.byName[img.Name] = img
	}
	s.root = os.Geteuid() == 0
	s.abi = landlockVersion()
	s.landlock = s.abi > 0
	if !s.landlock && !opts.Unconfined {
		return nil, ErrNoLandlock
	}
	if s.landlock {
		files, err := execFiles()
		if err != nil {
			return nil, fmt.Errorf("find the files the child executes: %w", err)
		}
		s.exec = files
	}
	n := opts.MaxConnections
	if n <= 0 {
		n = DefaultMaxConnections
	}
	s.sem = make(chan struct{}, n)
	s.perIP = opts.MaxPerIP
	if s.perIP <= 0 {
		s.perIP = DefaultMaxPerIP
	}
	s.perIP = min(s.perIP, n)
	s.allow = opts.Allow
	if s.allow == nil {
		s.allow = DefaultAllow
	}
	s.byIP = map[netip.Addr]int{}
	s.refusing = make(chan struct{}, 64)
	return s, nil
}

func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New("must be 1 to 64 bytes long")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errors.New("only letters, digits, '.', '_' and '-' are allowed")
		}
	}
	if name[0] == '-' || name[0] == '.' {
		return errors.New("must not start with '-' or '.'")
	}
	return nil
}

// Images returns the served images, roots resolved.
func (s *Server) Images() []Image { return append([]Image(nil), s.images...) }

// Confinement describes, in one line, how the children serving a
// connection are confined on this machine.
func (s *Server) Confinement() string {
	var parts []string
	if s.landlock {
		parts = append(parts, fmt.Sprintf("Landlock ABI %d (reads limited to the image)", s.abi))
	}
	if s.root {
		parts = append(parts, "private mount namespace (image read-only, nodev, nosuid, noexec, no submounts)",
			"chroot into the image", "uid/gid nobody with CAP_DAC_READ_SEARCH")
	}
	if !s.landlock {
		parts = append(parts, "NO Landlock")
		if !s.root {
			return "UNCONFINED: no Landlock and not root; only the handshake's path checks stand between a symlink in an image and the whole filesystem"
		}
	}
	return strings.Join(parts, ", ")
}

// Serve accepts rsync clients on ln until ctx is cancelled, then closes ln,
// ends the transfers in progress and returns nil. It first runs SelfTest
// (unless the Server is unconfined) and refuses to serve when it fails.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.landlock {
		if err := s.SelfTest(ctx); err != nil {
			ln.Close()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	} else {
		s.log.Warn("rsync export runs WITHOUT Landlock", "confinement", s.Confinement())
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of descriptors (EMFILE, ENFILE), of buffers, a
			// connection reset before it was accepted: none of it is the
			// listener's end. Wait, longer each time, and try again; the
			// connections in the backlog stay there meanwhile.
			delay = min(max(2*delay, 5*time.Millisecond), maxAcceptDelay)
			s.log.Warn("rsync accept failed; retrying", "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		release, msg := s.admit(conn)
		if release == nil {
			s.refuse(&wg, conn, msg)
			continue
		}
		wg.Go(func() {
			defer release()
			defer conn.Close()
			s.handle(ctx, conn)
		})
	}
}

// maxAcceptDelay is the longest Serve waits after a failed accept.
const maxAcceptDelay = time.Second

// clientAddr returns the address of conn's peer, IPv4-mapped IPv6
// addresses unmapped; false when it has none (not TCP).
func clientAddr(conn net.Conn) (netip.Addr, bool) {
	ta, ok := conn.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ta.IP)
	return a.Unmap(), ok
}

// Allowed reports whether a client at addr may connect: whether the
// allow-list holds it.
func (s *Server) Allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range s.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// admit decides, right after accept, whether conn is served: its address
// must be allowed, and a connection slot and one of its address's slots
// free. It returns the function that gives the slots back, or nil and the
// error line for the client.
func (s *Server) admit(conn net.Conn) (release func(), msg string) {
	addr, ok := clientAddr(conn)
	if !ok || !s.Allowed(addr) {
		s.log.Warn("rsync client refused: not in the allow-list", "client", conn.RemoteAddr().String())
		return nil, fmt.Sprintf("@ERROR: access denied: %s is not in the export's allow-list", conn.RemoteAddr())
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.log.Warn("rsync client refused: max connections reached", "client", conn.RemoteAddr().String(), "max", cap(s.sem))
		return nil, fmt.Sprintf("@ERROR: max connections (%d) reached -- try again later", cap(s.sem))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byIP[addr] >= s.perIP {
		<-s.sem
		s.log.Warn("rsync client refused: max connections per address reached", "client", conn.RemoteAddr().String(), "max", s.perIP)
		return nil, fmt.Sprintf("@ERROR: max connections from %s (%d) reached -- try again later", addr, s.perIP)
	}
	s.byIP[addr]++
	return func() {
		s.mu.Lock()
		if s.byIP[addr]--; s.byIP[addr] <= 0 {
			delete(s.byIP, addr)
		}
		s.mu.Unlock()
		<-s.sem
	}, ""
}

// refuse tells a client that was not admitted why, as rsyncd does when a
// module is full: the greeting, then the error line a stock client prints
// (exit status 5). It then reads what the client sends until it closes,
// for a second at most, so that the client reads the line rather than a
// reset. When many refusals are in flight already, conn is just closed.
// The goroutine doing it is counted in wg.
func (s *Server) refuse(wg *sync.WaitGroup, conn net.Conn, msg string) {
	select {
	case s.refusing <- struct{}{}:
	default:
		conn.Close()
		return
	}
	wg.Go(func() {
		defer func() { <-s.refusing }()
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := io.WriteString(conn, greeting+msg+"\n"); err != nil {
			return
		}
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(conn, maxHandshake))
	})
}

// handle runs one connection: handshake here, transfer in a child.
func (s *Server) handle(ctx context.Context, conn net.Conn) {
	client := conn.RemoteAddr().String()
	log := s.log.With("client", client)
	conn.SetDeadline(time.Now().Add(HandshakeTimeout))
	req, err := s.handshake(conn)
	if err != nil {
		if errors.Is(err, errListed) {
			log.Info("rsync module list sent")
		} else {
			log.Warn("rsync request refused", "err", err)
		}
		return
	}
	conn.SetDeadline(time.Time{})
	log = log.With("image", req.module, "paths", req.paths)
	log.Info("rsync transfer starting")
	f, err := connFile(conn)
	if err != nil {
		log.Error("rsync transfer", "err", err)
		return
	}
	defer f.Close()
	img := s.byName[req.module]
	cfg := childConfig{
		Mode: modeServe, Module: img.Name, Root: img.Root, Replay: req.replay, Args: req.args,
		Remote: client, Idle: s.idleTimeout(), NoChroot: s.noChroot || !s.root,
		ArgsEnd: req.argsEnd, ServeRootOnly: s.opts.ServeRootOnly,
	}
	start := time.Now()
	lastErr, err := s.runChild(ctx, cfg, f, func(line string) { log.Debug("rsync child", "line", line) })
	if err != nil {
		if lastErr != "" {
			err = fmt.Errorf("%w: %s", err, lastErr)
		}
		log.Warn("rsync transfer failed", "err", err, "seconds", time.Since(start).Seconds())
		return
	}
	log.Info("rsync transfer done", "seconds", time.Since(start).Seconds())
}

func (s *Server) idleTimeout() time.Duration {
	if s.opts.IdleTimeout > 0 {
		return s.opts.IdleTimeout
	}
	return DefaultIdleTimeout
}

// connFile returns a duplicate of the connection's descriptor for the child.
func connFile(conn net.Conn) (*os.File, error) {
	fc, ok := conn.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("connection %T has no file descriptor", conn)
	}
	f, err := fc.File()
	if err != nil {
		return nil, fmt.Errorf("connection descriptor: %w", err)
	}
	return f, nil
}

// runChild starts a child with cfg and conn (nil in probe mode), relays
// its stderr lines to logLine, and waits for it. It returns the child's
// last "error:" line and an error when the child failed.
func (s *Server) runChild(ctx context.Context, cfg childConfig, conn *os.File, logLine func(string)) (string, error) {
	ch, err := s.start(ctx, cfg, conn)
	if err != nil {
		return "", err
	}
	var lastErr string
	sc := bufio.NewScanner(ch.stderr)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if msg, ok := strings.CutPrefix(line, childErrorPrefix); ok {
			lastErr = msg
		}
		logLine(line)
	}
	io.Copy(io.Discard, ch.stderr) // a line longer than the buffer
	ch.stderr.Close()
	err = ch.cmd.Wait()
	if err != nil {
		var ee interface{ Sys() any }
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Exited() && ws.ExitStatus() == exitIdle {
				return lastErr, errors.New("idle timeout")
			}
		}
		return lastErr, fmt.Errorf("rsync child: %w", err)
	}
	return lastErr, nil
}
