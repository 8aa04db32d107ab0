package term

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/imaging"
)

func TestLogger(t *testing.T) {
	var b bytes.Buffer
	log := Logger(&b, "goldsync", 0, false, false)
	log.Info("not shown")
	log.Warn("disk almost full", "dir", "/diskless/root", "free", "1 GiB")
	log.WithGroup("agent").Error("gone\x1b[2J", "code", 12)
	want := "goldsync: warning: disk almost full (dir=/diskless/root, free=\"1 GiB\")\n" +
		"goldsync: error: gone\\x1b[2J (agent.code=12)\n"
	if got := b.String(); got != want {
		t.Errorf("log lines:\n%q\nwant\n%q", got, want)
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Errorf("an escape sequence reached the log: %q", b.String())
	}
	b.Reset()
	Logger(&b, "goldsync", 0, true, false).Warn("quiet")
	Logger(&b, "goldsync", 2, false, true).Debug("json", "k", 1)
	if got := b.String(); !strings.HasPrefix(got, `{"time":`) || !strings.Contains(got, `"msg":"json","k":1}`) {
		t.Errorf("quiet, then debug as JSON: %q", got)
	}
}

// TestProgressIntoAPipe: into a pipe the progress display is silent
// unless forced, and then writes one plain line a phase, no escape
// sequence.
func TestProgressIntoAPipe(t *testing.T) {
	for _, force := range []bool{false, true} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		p := NewProgress(w, force, false)
		for _, ph := range []imaging.Phase{imaging.PhaseScan, imaging.PhaseScan, imaging.PhaseTransfer} {
			p.Update(imaging.Progress{Phase: ph, Path: "etc/passwd", Files: 1, TotalFiles: 2})
		}
		p.Done()
		w.Close()
		out, _ := io.ReadAll(r)
		r.Close()
		want := ""
		if force {
			want = "goldsync: scan\ngoldsync: transfer\n"
		}
		if string(out) != want || p.Shown() != force {
			t.Errorf("force %v: wrote %q, shown %v; want %q", force, out, p.Shown(), want)
		}
	}
}

func TestCounter(t *testing.T) {
	var b bytes.Buffer
	NewCounter(&b, false).Update("snapshot 1/2 nodes", true)
	c := NewCounter(&b, true)
	c.Update("snapshot 1/2 nodes", false)
	c.Update("snapshot 2/2 nodes", true)
	c.Done()
	if got, want := b.String(), "\r\x1b[Ksnapshot 1/2 nodes\r\x1b[Ksnapshot 2/2 nodes\n"; got != want {
		t.Errorf("counter wrote %q, want %q", got, want)
	}
}
