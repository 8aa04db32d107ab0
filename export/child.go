package export

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gokrazy/rsync/rsyncd"
)

// childEnv is the environment variable that marks a child process.
const childEnv = "GOLDSYNC_RSYNC_EXPORT_CHILD"

// The child's descriptors besides stdin (config), stdout (probe results)
// and stderr (log lines).
const connFD = 3

// childErrorPrefix starts the child's final stderr line when it fails.
const childErrorPrefix = "error: "

// exitIdle is the child's exit status after Options.IdleTimeout.
const exitIdle = 3

const (
	modeServe = "serve"
	modeProbe = "probe"
)

// childConfig is what the parent tells a child, as JSON on its stdin.
type childConfig struct {
	Mode     string
	Module   string
	Root     string
	Replay   []byte        // handshake bytes the parent read from the client
	Args     []string      // the client's server-side command line, as checked
	Remote   string        // the client's address, for logs
	Idle     time.Duration // exit after this long without traffic
	NoChroot bool          // serve Root without chrooting into it
	Probe    []probeOp     // modeProbe: what to try
	// ArgsEnd is where the text part of the handshake ends in Replay.
	ArgsEnd int
	// ServeRootOnly serves the contents of RootOnly files too.
	ServeRootOnly bool
}

// probeOp is one access a probe child attempts.
type probeOp struct {
	Op   string // "read" (open and read a byte or a directory entry), "stat", "write" (create a file) or "connect" (TCP, Path is host:port)
	Path string
}

// probeResult is the outcome of one probeOp; Err is empty on success.
type probeResult struct {
	Op   string
	Path string
	Err  string
}

// IsChild reports whether this process was started by a Server to serve
// one connection (or to self-test); if so the program must call RunChild
// and exit.
func IsChild() bool { return os.Getenv(childEnv) == "1" }

// RunChild is the child's whole life: it reads its config from stdin and
// serves the one connection it was handed (descriptor 3) from its image
// with gokrazy/rsync's sender, or runs the probes of a self-test and
// writes their results to stdout. It is already confined when it starts
// (Landlock and the mount namespace are inherited from the thread that
// started it); as root it chroots into the image first. The program
// should exit with status 1 when it returns an error, after printing it to
// stderr prefixed with "error: " (ChildMain does all of that).
func RunChild(ctx context.Context) error {
	var cfg childConfig
	if err := json.NewDecoder(io.LimitReader(os.Stdin, 1<<20)).Decode(&cfg); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	switch cfg.Mode {
	case modeProbe:
		return runProbe(cfg)
	case modeServe:
		return serveConn(ctx, cfg)
	}
	return fmt.Errorf("unknown mode %q", cfg.Mode)
}

// ChildMain runs RunChild and exits the process: status 0, or 1 after
// printing the error to stderr for the parent's log.
func ChildMain(ctx context.Context) {
	if err := RunChild(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s%v\n", childErrorPrefix, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// chroot confines path resolution to root: "..", absolute paths and
// symlink targets then all resolve inside the image, as rsyncd's "use
// chroot" does.
func chroot(root string) error {
	if err := syscall.Chroot(root); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("chdir / in the chroot: %w", err)
	}
	return nil
}

func runProbe(cfg childConfig) error {
	if !cfg.NoChroot {
		if err := chroot(cfg.Root); err != nil {
			return err
		}
	}
	var out []probeResult
	for _, op := range cfg.Probe {
		r := probeResult{Op: op.Op, Path: op.Path}
		if err := probe(op); err != nil {
			r.Err = err.Error()
		}
		out = append(out, r)
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func probe(op probeOp) error {
	switch op.Op {
	case "stat":
		_, err := os.Lstat(op.Path)
		return err
	case "write":
		f, err := os.OpenFile(op.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		f.Close()
		return os.Remove(op.Path)
	case "connect":
		c, err := net.DialTimeout("tcp", op.Path, 5*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	case "read":
		f, err := os.OpenFile(op.Path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.IsDir() {
			_, err = f.ReadDir(1)
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return err
		}
		_, err = f.Read(make([]byte, 1))
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return err
	}
	return fmt.Errorf("unknown probe %q", op.Op)
}

// serveConn serves the connection on connFD with the library.
func serveConn(ctx context.Context, cfg childConfig) (err error) {
	conn := os.NewFile(connFD, "rsync connection")
	if conn == nil {
		return errors.New("no connection descriptor")
	}
	defer conn.Close()
	root := cfg.Root
	if !cfg.NoChroot {
		if err := chroot(cfg.Root); err != nil {
			return err
		}
		// Not "/": the library computes the prefix it strips from walked
		// paths as root+"/", which for "/" is "//" and matches nothing, so
		// every name would go out absolute. ".." from the working
		// directory "/" is the chroot's root itself, and strips as "../".
		root = ".."
	}
	act := &activity{rw: conn}
	act.touch()
	go act.watch(cfg.Idle)

	srv, err := rsyncd.NewServer([]rsyncd.Module{{Name: cfg.Module, Path: root}},
		rsyncd.WithLogger(libraryLogger{}))
	if err != nil {
		return fmt.Errorf("rsync server: %w", err)
	}
	if len(cfg.Args) == 0 || cfg.Args[len(cfg.Args)-2] != "." {
		return errors.New("config: no single requested path")
	}
	req := cfg.Args[len(cfg.Args)-1]
	opts := parseFlistOpts(cfg.Args)
	opts.withhold = !cfg.ServeRootOnly
	fx := &fixer{w: act, opts: opts, stat: requestStat(cfg.Module, root, req), sent: make(chan struct{})}
	sw := &swallow{w: fx, prefix: []byte(libraryPrefix)}
	if cfg.ArgsEnd < 0 || cfg.ArgsEnd > len(cfg.Replay) {
		return errors.New("config: handshake end out of range")
	}
	var in io.Reader = io.MultiReader(bytes.NewReader(cfg.Replay[cfg.ArgsEnd:]), act)
	if opts.withhold {
		in = filterRequests(in, opts.dryRun, fx.sent, fx.withheldIndex)
	}
	rw := struct {
		io.Reader
		io.Writer
	}{io.MultiReader(bytes.NewReader(cfg.Replay[:cfg.ArgsEnd]), in), sw}
	defer func() {
		// The library panics on some requests (wildcard filter rules); tell
		// the client instead of dropping the connection without a word.
		if p := recover(); p != nil {
			err = fmt.Errorf("rsync library panic: %v", p)
			if sw.done() && fx.muxed() {
				msg := fmt.Sprintf("goldsync rsync export: %v (unsupported request?)\n", p)
				b := binary.LittleEndian.AppendUint32(nil, muxHeader(muxError, len(msg)))
				act.Write(append(b, msg...))
			}
		}
	}()
	if err := srv.HandleDaemonConn(ctx, rw, remoteAddr(cfg.Remote)); err != nil {
		return fmt.Errorf("rsync: %w", err)
	}
	return nil
}

// remoteAddr is the client's address as the parent saw it.
type remoteAddr string

func (a remoteAddr) Network() string { return "tcp" }
func (a remoteAddr) String() string  { return string(a) }

var _ net.Addr = remoteAddr("")

// libraryLogger turns the library's log lines into stderr lines for the
// parent, which logs them at debug level.
type libraryLogger struct{}

var logMu sync.Mutex

func (libraryLogger) Printf(format string, a ...any) {
	libraryLogger{}.Output(2, fmt.Sprintf(format, a...))
}

func (libraryLogger) Output(_ int, s string) error {
	logMu.Lock()
	defer logMu.Unlock()
	_, err := fmt.Fprintln(os.Stderr, "rsync:", s)
	return err
}

// swallow drops the library's copy of the handshake lines the parent
// already sent (prefix), checking they are exactly what is expected, and
// passes everything after them through.
type swallow struct {
	w      io.Writer
	prefix []byte
	mu     sync.Mutex
}

func (s *swallow) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if len(s.prefix) > 0 {
		k := min(len(p), len(s.prefix))
		if !bytes.Equal(p[:k], s.prefix[:k]) {
			return 0, fmt.Errorf("library wrote %q where %q was expected", p[:k], s.prefix[:k])
		}
		s.prefix = s.prefix[k:]
		p = p[k:]
		n = k
	}
	if len(p) == 0 {
		return n, nil
	}
	m, err := s.w.Write(p)
	return n + m, err
}

func (s *swallow) done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.prefix) == 0
}

// activity records when the connection last moved data; watch ends the
// process when it has not for too long (a stalled client, or a library
// stuck on a fifo it opened).
type activity struct {
	rw   io.ReadWriter
	last atomic.Int64
}

func (a *activity) touch() { a.last.Store(time.Now().UnixNano()) }

func (a *activity) Read(p []byte) (int, error) {
	n, err := a.rw.Read(p)
	a.touch()
	return n, err
}

func (a *activity) Write(p []byte) (int, error) {
	n, err := a.rw.Write(p)
	a.touch()
	return n, err
}

func (a *activity) watch(idle time.Duration) {
	if idle <= 0 {
		return
	}
	tick := time.NewTicker(min(idle/4, time.Minute))
	defer tick.Stop()
	for range tick.C {
		if time.Since(time.Unix(0, a.last.Load())) > idle {
			fmt.Fprintf(os.Stderr, "%sno traffic for %s\n", childErrorPrefix, idle)
			os.Exit(exitIdle)
		}
	}
}
