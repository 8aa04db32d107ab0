// Package rsh runs commands on other hosts through the system's remote
// shell, as rsync's -e does: it parses rsync-style specs
// ([user@]host:/path), splits and quotes remote shell command lines, starts
// the command with its stdin and stdout as one stream, and turns on
// OpenSSH connection sharing. It is what both sides need of ssh (the image
// server's pulls, the golden node's pushes) and nothing more: no SFTP, no
// protocol, so the agent links it without package remote's upload.
package rsh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goldsync/goldsync/internal/stdio"
)

// ErrSSH: the remote shell failed (unreachable host, authentication, host
// key verification).
var ErrSSH = errors.New("remote shell failed")

// Spec is a parsed source: Host is empty for a local path.
type Spec struct {
	User, Host, Path string
}

// ParseSpec splits an rsync-style source: "host:path" and "user@host:path"
// are remote (a colon before any slash); anything else is a local path.
func ParseSpec(s string) (Spec, error) {
	colon := strings.IndexByte(s, ':')
	slash := strings.IndexByte(s, '/')
	if colon <= 0 || (slash >= 0 && slash < colon) {
		if s == "" {
			return Spec{}, errors.New("empty source")
		}
		return Spec{Path: s}, nil
	}
	host, path := s[:colon], s[colon+1:]
	sp := Spec{Host: host, Path: path}
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		sp.User, sp.Host = host[:at], host[at+1:]
	}
	if sp.Host == "" || strings.ContainsAny(sp.Host, " \t\n'\"`$;&|<>") || strings.HasPrefix(sp.Host, "-") {
		return Spec{}, fmt.Errorf("bad host in %q", s)
	}
	if sp.Path == "" {
		sp.Path = "."
	}
	return sp, nil
}

// Dest is the remote shell's destination argument: [user@]host.
func (s Spec) Dest() string {
	if s.User != "" {
		return s.User + "@" + s.Host
	}
	return s.Host
}

// SplitRsh splits a remote shell command like rsync's -e: on blanks, with
// single and double quotes grouping words.
func SplitRsh(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("remote shell %q: unterminated quote", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, errors.New("empty remote shell command")
	}
	return words, nil
}

// ShellQuote quotes s for a remote POSIX shell.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=+:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Command runs command on the host of spec through the remote shell rsh
// ("ssh" when empty) and returns its stdin and stdout as one stream. Close
// ends it; Stderr says what it printed there (the last 8 KiB).
func Command(ctx context.Context, rsh string, spec Spec, command string, log *slog.Logger) (*Process, error) {
	if rsh == "" {
		rsh = "ssh"
	}
	words, err := SplitRsh(rsh)
	if err != nil {
		return nil, err
	}
	args := append(append([]string(nil), words[1:]...), spec.Dest(), command)
	p, err := Start(ctx, words[0], args, log)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSSH, err)
	}
	return p, nil
}

// Process is a child whose stdin and stdout form one stream: a remote
// command through the remote shell (Command), or a local one (Start).
type Process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *tailBuffer
	once   sync.Once
	err    error
	done   chan struct{} // closed when the child has been waited for
	state  *os.ProcessState
}

// Start runs bin with args as a Process in its own process group, killed
// when ctx is done. log (nil: silent) gets the command line at debug level.
func Start(ctx context.Context, bin string, args []string, log *slog.Logger) (*Process, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{cmd: cmd, stderr: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if p.stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	// A pull's content arrives on stdout, a push's leaves on stdin: a
	// default 64 KiB pipe wakes each side for every 64 KiB.
	for _, f := range []any{p.stdin, p.stdout} {
		if f, ok := f.(syscall.Conn); ok {
			stdio.GrowPipe(f)
		}
	}
	cmd.Stderr = p.stderr
	// An ssh ControlPersist master started by this command may keep its
	// stderr open for minutes (older OpenSSH, or -v): stop waiting for that
	// pipe soon after the command itself exits.
	cmd.WaitDelay = 2 * time.Second
	log.Debug("starting", "cmd", cmd.String())
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	stop := context.AfterFunc(ctx, func() { p.kill() })
	go func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
		stop()
	}()
	return p, nil
}

// Read reads the command's stdout.
func (p *Process) Read(b []byte) (int, error) { return p.stdout.Read(b) }

// Write writes the command's stdin.
func (p *Process) Write(b []byte) (int, error) { return p.stdin.Write(b) }

func (p *Process) kill() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Close closes the child's stdin and waits a moment for it to exit, then
// kills it.
func (p *Process) Close() error {
	p.once.Do(func() {
		p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.kill()
			<-p.done
		}
	})
	return p.err
}

// CloseWait closes the child's stdin and waits for it to exit, killing
// it only once ctx is done: for a remote command with work of its own
// left after its session (goldsync receive --image updates the image's
// replicas after confirming a push). It reports whether the child exited
// before ctx was done (false: it was killed, or Close came first). Close
// after it does nothing.
func (p *Process) CloseWait(ctx context.Context) bool {
	exited := false
	p.once.Do(func() {
		p.stdin.Close()
		select {
		case <-p.done:
			exited = true
		case <-ctx.Done():
			p.kill()
			<-p.done
		}
	})
	return exited
}

// ExitCode waits briefly for the child to exit and returns its code, or -1.
func (p *Process) ExitCode() int {
	select {
	case <-p.done:
		return p.state.ExitCode()
	case <-time.After(2 * time.Second):
		return -1
	}
}

// Stderr returns the end of what the command printed on stderr (the last
// 8 KiB).
func (p *Process) Stderr() string { return p.stderr.String() }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}
