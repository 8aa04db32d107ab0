// Package term is what goldsync's commands show on a terminal and in logs:
// the progress line of a pull (drawn in place on a terminal, one plain
// line a phase elsewhere, never an escape sequence into a pipe), a
// counter line for snapshot builds, and an slog handler printing the
// libraries' records in the CLI's own format. It writes only to the
// writers its caller gives.
package term

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/units"
)

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Progress shows a run's progress. On a terminal it draws
// one status line in place (phase, files, bytes, rate, ETA) and clears it
// when the run ends, so the summary that follows stands alone. Elsewhere
// (cron, pipes, files) it is silent unless forced, and
// then writes one plain line a phase: no escape sequence ever goes into a
// pipe.
type Progress struct {
	w       io.Writer
	on      bool
	tty     bool
	mu      sync.Mutex
	last    time.Time
	start   time.Time
	drawn   bool
	shownAt bool
	current imaging.Progress
}

// NewProgress returns the progress display of f: on when f is a
// terminal or force is set, never when never is set.
func NewProgress(f *os.File, force, never bool) *Progress {
	tty := IsTerminal(f)
	return &Progress{w: f, tty: tty, on: !never && (force || tty), start: time.Now()}
}

// Update shows pr (imaging.Options.Progress).
func (p *Progress) Update(pr imaging.Progress) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	newPhase := pr.Phase != p.current.Phase
	if newPhase || pr.Files >= p.current.Files {
		p.current = pr
	}
	if !p.tty {
		if newPhase {
			fmt.Fprintf(p.w, "goldsync: %s\n", pr.Phase)
			p.shownAt = true
		}
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 200*time.Millisecond && pr.Path != "" {
		return
	}
	p.last = now
	p.draw(now)
}

func (p *Progress) draw(now time.Time) {
	c := p.current
	el := now.Sub(p.start).Seconds()
	line := fmt.Sprintf("%-8s", c.Phase)
	if c.Phase == imaging.PhaseTransfer && c.TotalFiles > 0 {
		rate := float64(c.Bytes) / max(el, 0.001)
		eta := "--"
		if rate > 0 && c.TotalBytes > c.Bytes {
			eta = (time.Duration(float64(c.TotalBytes-c.Bytes)/rate) * time.Second).Round(time.Second).String()
		}
		line += fmt.Sprintf(" files %d/%d  %s/%s  %s/s  ETA %s", c.Files, c.TotalFiles, units.Bytes(c.Bytes), units.Bytes(c.TotalBytes), units.Bytes(int64(rate)), eta)
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
	p.shownAt = true
}

// Done clears the status line.
func (p *Progress) Done() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// Shown says whether progress was shown: then a summary line follows.
func (p *Progress) Shown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shownAt
}

// Counter draws a line of counts in place on a terminal ("snapshot 3/8
// nodes"), at most five times a second and always the last, and ends it
// with a newline; off, it draws nothing.
type Counter struct {
	w     io.Writer
	on    bool
	mu    sync.Mutex
	last  time.Time
	drawn bool
}

// NewCounter returns a counter line on w, drawn when on.
func NewCounter(w io.Writer, on bool) *Counter { return &Counter{w: w, on: on} }

// Update draws line; final says it is the last one, drawn whatever the
// time since the one before.
func (p *Counter) Update(line string, final bool) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond || final {
		p.last = now
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
	}
}

// Done ends the line.
func (p *Counter) Done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// LockedWriter is an io.Writer safe for concurrent use (a logger's
// buffer written by several goroutines).
type LockedWriter struct {
	mu sync.Mutex
	W  io.Writer
}

// Write writes p to W under the lock.
func (l *LockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.W.Write(p)
}
