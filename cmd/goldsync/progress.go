package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
)

// progressDisplay draws one status line on a terminal: phase, files,
// bytes, rate and ETA. It stays silent when the output is not a terminal
// (cron, pipes) unless forced.
type progressDisplay struct {
	w       io.Writer
	on      bool
	mu      sync.Mutex
	last    time.Time
	start   time.Time
	drawn   bool
	current imaging.Progress
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func newProgressDisplay(f *os.File, force, never bool) *progressDisplay {
	return &progressDisplay{w: f, on: !never && (force || isTerminal(f)), start: time.Now()}
}

func (p *progressDisplay) update(pr imaging.Progress) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr.Phase != p.current.Phase || pr.Files >= p.current.Files {
		p.current = pr
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
		line += fmt.Sprintf(" files %d/%d  %s/%s  %s/s  ETA %s", c.Files, c.TotalFiles, human(c.Bytes), human(c.TotalBytes), human(int64(rate)), eta)
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

func (p *progressDisplay) done() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		p.draw(time.Now())
		fmt.Fprintln(p.w)
	}
}
