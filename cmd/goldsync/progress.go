package main

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

// progressDisplay shows a run's progress on stderr. On a terminal it draws
// one status line in place (phase, files, bytes, rate, ETA) and clears it
// when the run ends, so the summary that follows stands alone. Elsewhere
// (cron, pipes, files) it is silent unless forced with --progress, and
// then writes one plain line a phase: no escape sequence ever goes into a
// pipe.
type progressDisplay struct {
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

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func newProgressDisplay(f *os.File, force, never bool) *progressDisplay {
	tty := isTerminal(f)
	return &progressDisplay{w: f, tty: tty, on: !never && (force || tty), start: time.Now()}
}

func (p *progressDisplay) update(pr imaging.Progress) {
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

func (p *progressDisplay) draw(now time.Time) {
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

// done clears the status line.
func (p *progressDisplay) done() {
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

// shown says whether progress was shown: then a summary line follows.
func (p *progressDisplay) shown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shownAt
}
