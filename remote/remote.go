// Package remote connects the image server to a golden node's agent: it
// parses rsync-style source specs ([user@]host:/path or a local path),
// starts goldsync-agent through the system ssh (like rsync's -e), uploads
// the agent over SFTP when it is missing or of another version, and returns
// an imaging.Source speaking package proto over the agent's stdio.
//
// A local path is served by the same protocol, by a goldsync-agent child
// process when one is found, else in-process over a pipe by the server
// the caller injects (Options.Serve: agent.InProcess), so this package does
// not depend on the agent's: tests and local pulls exercise the real
// sender and receiver either way.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/proto"
	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/internal/version"
	"github.com/goldsync/goldsync/remote/rsh"
)

// Errors callers branch on (the CLI maps them to exit codes).
var (
	// ErrSSH: the remote shell failed (unreachable host, authentication,
	// host key verification); it is rsh.ErrSSH.
	ErrSSH = rsh.ErrSSH
	// ErrVersion: the agent is of another version and could not be
	// replaced.
	ErrVersion = errors.New("agent version mismatch")
	// ErrProtocol: the peer did not speak the protocol (shell noise, a
	// broken or hostile peer). It is proto.ErrProtocol: one error for the
	// whole transport, whichever layer saw it.
	ErrProtocol = proto.ErrProtocol
	// ErrStalled: the peer sent nothing for longer than the idle timeout;
	// it is proto.ErrStalled.
	ErrStalled = proto.ErrStalled
)

// Options configure Open. The zero value uses "ssh", finds the agent, one
// stream, and the protocol's default idle timeout.
type Options struct {
	// Rsh is the remote shell command, split on spaces with shell-like
	// quoting; empty means "ssh".
	Rsh string
	// AgentPath is the agent's path on the golden node; empty means the
	// per-user cache path for this version, then $PATH, uploading when
	// needed.
	AgentPath string
	// LocalAgent is the goldsync-agent binary to run for local sources and
	// to upload; empty means goldsync-agent beside this executable, then
	// $PATH. For local sources, none found means in-process (Serve).
	LocalAgent string
	// InProcess serves a local source in-process (Serve) instead of by a
	// child.
	InProcess bool
	// Serve serves the agent's side of one stream of a local source in
	// this process and closes conn (agent.InProcess); nil means a local
	// source needs a goldsync-agent binary.
	Serve func(ctx context.Context, conn io.ReadWriteCloser, stateDir string, log *slog.Logger)
	// Streams is the number of parallel transfer connections; zero means 1.
	Streams int
	// StateDir is the agent's state dir for local sources (hash cache);
	// empty means the agent's default.
	StateDir string
	// IdleTimeout fails a connection that sends nothing for this long;
	// zero means the protocol default.
	IdleTimeout time.Duration
	// ProgressTimeout fails a connection that sends only keepalives for
	// this long while it owes an answer (see proto.ClientOptions); zero
	// means the protocol default.
	ProgressTimeout time.Duration
	// MaxListBytes bounds the memory of a scan's entries (see
	// proto.ClientOptions); zero means the default.
	MaxListBytes int64
	// Logger receives warnings and debug messages; nil is silent.
	Logger *slog.Logger
}

// Names of package rsh, kept here for callers of this package.
type (
	// Spec is a parsed source: Host is empty for a local path (rsh.Spec).
	Spec = rsh.Spec
	// Process is a remote command's stdio stream (rsh.Process).
	Process = rsh.Process
)

// ParseSpec splits an rsync-style source (rsh.ParseSpec).
func ParseSpec(s string) (Spec, error) { return rsh.ParseSpec(s) }

// SplitRsh splits a remote shell command like rsync's -e (rsh.SplitRsh).
func SplitRsh(s string) ([]string, error) { return rsh.SplitRsh(s) }

// ShellQuote quotes s for a remote POSIX shell (rsh.ShellQuote).
func ShellQuote(s string) string { return rsh.ShellQuote(s) }

// Command runs command on the host of spec through the remote shell
// (rsh.Command).
func Command(ctx context.Context, rshCmd string, spec Spec, command string, log *slog.Logger) (*Process, error) {
	return rsh.Command(ctx, rshCmd, spec, command, log)
}

// ShareConnection turns on OpenSSH connection sharing in a remote shell
// command (rsh.ShareConnection).
func ShareConnection(rshCmd, dir string, persist time.Duration) (string, error) {
	return rsh.ShareConnection(rshCmd, dir, persist)
}

// Open connects to the source named by spec.
func Open(ctx context.Context, spec string, opts Options) (imaging.Source, error) {
	sp, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Streams <= 0 {
		opts.Streams = 1
	}
	if sp.Host == "" {
		return openLocal(ctx, sp.Path, opts)
	}
	return openSSH(ctx, sp, opts)
}

func clientOptions(opts Options) proto.ClientOptions {
	return proto.ClientOptions{Software: version.ServerPrefix + version.Stamp(), IdleTimeout: opts.IdleTimeout, ProgressTimeout: opts.ProgressTimeout, MaxListBytes: opts.MaxListBytes, Logger: opts.Logger}
}

// client wraps a proto.Client with the processes behind its streams.
type client struct {
	*proto.Client
	conns []io.Closer
}

func (c *client) Close() error {
	err := c.Client.Close()
	for _, cc := range c.conns {
		if cerr := cc.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// WireBytes reports the bytes read from and written to the peer.
func (c *client) WireBytes() (in, out int64) {
	st := c.Client.Stats()
	return st.BytesIn, st.BytesOut
}

func openLocal(ctx context.Context, path string, opts Options) (imaging.Source, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("source %s is not a directory", abs)
	}
	bin := ""
	if !opts.InProcess {
		bin = findLocalAgent(opts.LocalAgent)
	}
	if bin == "" && opts.Serve == nil {
		return nil, fmt.Errorf("%w: no goldsync-agent to serve the local source %s (install it beside goldsync or in $PATH)", ErrProtocol, abs)
	}
	c := &client{}
	for i := range opts.Streams {
		var rwc io.ReadWriteCloser
		if bin != "" {
			args := []string{"serve", "--stdio"}
			if opts.StateDir != "" {
				args = append(args, "--state-dir", opts.StateDir)
			}
			p, err := rsh.Start(ctx, bin, args, opts.Logger)
			if err != nil {
				c.closeAll()
				return nil, err
			}
			rwc = p
			c.conns = append(c.conns, p)
		} else {
			cl, sv := proto.Pipe()
			go opts.Serve(ctx, sv, opts.StateDir, opts.Logger)
			rwc = cl
		}
		if err := c.attach(ctx, i, rwc, abs, opts); err != nil {
			c.closeAll()
			return nil, err
		}
	}
	return c, nil
}

func (c *client) attach(ctx context.Context, i int, rwc io.ReadWriteCloser, root string, opts Options) error {
	if i == 0 {
		cl, err := proto.NewClient(ctx, rwc, root, clientOptions(opts))
		if err != nil {
			rwc.Close()
			return classify(err, rwc)
		}
		c.Client = cl
		return nil
	}
	if err := c.Client.AddStream(rwc); err != nil {
		rwc.Close()
		return classify(err, rwc)
	}
	return nil
}

func (c *client) closeAll() {
	if c.Client != nil {
		c.Client.Close()
	}
	for _, cc := range c.conns {
		cc.Close()
	}
}

func findLocalAgent(explicit string) string {
	if explicit != "" {
		return explicit
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "goldsync-agent")
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("goldsync-agent"); err == nil {
		return p
	}
	return ""
}

// classify turns a handshake failure into one of the package's errors,
// adding what the remote printed on stderr.
func classify(err error, rwc io.ReadWriteCloser) error {
	p, _ := rwc.(*rsh.Process)
	stderr := ""
	code := -1
	if p != nil {
		code = p.ExitCode()
		stderr = wire.InertLines(p.Stderr())
	}
	msg := err.Error()
	if stderr != "" {
		msg += "; remote stderr: " + stderr
	}
	switch {
	case code == 255 && stderr != "":
		// ssh's own message is the cause: it leads.
		return fmt.Errorf("%s (%w: %s)", strings.TrimSpace(stderr), ErrSSH, err)
	case code == 255:
		return fmt.Errorf("%w: %s", ErrSSH, msg)
	case code == 126 || code == 127:
		return fmt.Errorf("%w: agent not found or not executable (exit %d): %s", errAgentMissing, code, msg)
	case errors.Is(err, wire.ErrVersion):
		return fmt.Errorf("%w: %s", ErrVersion, msg)
	case errors.Is(err, ErrStalled), errors.Is(err, ErrProtocol):
		if stderr == "" {
			return err
		}
		return fmt.Errorf("%w; remote stderr: %s", err, stderr)
	}
	if stderr != "" {
		err = fmt.Errorf("%w; remote stderr: %s", err, stderr)
	}
	return fmt.Errorf("%w: %w", ErrProtocol, err)
}

var errAgentMissing = errors.New("agent missing")
