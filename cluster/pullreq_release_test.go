package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/imaging"
)

// lockedBuffer is a log's text, written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

// TestPullAgentEndsBeforeTheRecord: once a pull's content is in, the
// agent is told goodbye (and saves its hash cache) while the image's last
// steps run, not after the whole sync (issue 14). The pull's finish phase
// (after the apply, before the manifest) waits until the agent, served
// in-process here, has said goodbye: with the goodbye at the end the
// wait only ends at its deadline, and the test fails.
func TestPullAgentEndsBeforeTheRecord(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin") // no goldsync-agent: served in-process
	base := t.TempDir()
	src, dest := filepath.Join(base, "golden"), filepath.Join(base, "image")
	for i := range 20 {
		d := filepath.Join(src, fmt.Sprintf("d%d", i%3))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), []byte(strings.Repeat("x", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log lockedBuffer
	said := false
	progress := func(p imaging.Progress) {
		if p.Phase != imaging.PhaseFinish {
			return
		}
		deadline := time.Now().Add(time.Minute) // a deadlock breaker, not a measure
		for !log.has("client said goodbye") && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		said = log.has("client said goodbye")
	}
	r := cluster.PullRequest{Source: src, Dest: dest, Progress: progress,
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if _, err := r.Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !log.has("client connected") {
		t.Fatalf("the agent was not served in-process (no log of it):\n%s", log.b.String())
	}
	if !said {
		t.Errorf("the agent had not said goodbye when the pull's finish phase began")
	}
}
