package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
)

// TestPullRequestChecks checks that what a pull's command line can get
// wrong is refused, with the error the exit codes go by, before the source
// is contacted or DEST is made.
func TestPullRequestChecks(t *testing.T) {
	src := t.TempDir()
	full := t.TempDir() // a non-empty directory goldsync never pulled into
	for _, f := range []string{filepath.Join(src, "a"), filepath.Join(full, "precious")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(full, "precious")
	for _, tc := range []struct {
		name string
		r    cluster.PullRequest
		step cluster.Step
		is   error
	}{
		{name: "negative timeout", r: cluster.PullRequest{Timeout: -time.Second}, step: cluster.StepConfig},
		{name: "delete and no-delete", r: cluster.PullRequest{PullSettings: cluster.PullSettings{DeleteSet: true, NoDelete: true}}, step: cluster.StepConfig},
		{name: "bad exclude", r: cluster.PullRequest{Excludes: []string{"a[b"}}, step: cluster.StepExcludes},
		{name: "missing exclude-from", r: cluster.PullRequest{ExcludeFrom: []string{filepath.Join(src, "none")}}, step: cluster.StepExcludes},
		{name: "missing source", r: cluster.PullRequest{Source: filepath.Join(src, "none"), Dest: filepath.Join(t.TempDir(), "img")}, is: cluster.ErrSelection},
		{name: "file as DEST", r: cluster.PullRequest{Source: src, Dest: file}, is: cluster.ErrSelection},
		{name: "DEST inside SRC", r: cluster.PullRequest{Source: src, Dest: filepath.Join(src, "img")}, is: cluster.ErrSelection},
		{name: "first pull over a full DEST", r: cluster.PullRequest{Source: src, Dest: full}, is: imaging.ErrGuard},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.r.Pull(context.Background())
			if s != nil || err == nil {
				t.Fatalf("Pull: %v, %v; want no summary and an error", s, err)
			}
			if tc.step != "" && cluster.StepOf(err) != tc.step {
				t.Errorf("step %q (%v), want %q", cluster.StepOf(err), err, tc.step)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
	// A dry run over the full DEST goes on and warns; a receive into a
	// file is refused before the handshake.
	var warned string
	r := cluster.PullRequest{Source: src, Dest: full, PullSettings: cluster.PullSettings{DryRun: true}, Warn: func(w string) { warned = w }}
	if _, err := r.Pull(context.Background()); err != nil || warned == "" {
		t.Errorf("dry run over a full DEST: %v, warning %q; want none and a warning", err, warned)
	}
	if _, err := (cluster.PullRequest{Dest: file}).Receive(context.Background(), nil); !errors.Is(err, cluster.ErrSelection) {
		t.Errorf("Receive into a file: %v, want ErrSelection", err)
	}
}

func TestReceiveImage(t *testing.T) {
	cfg := &config.Config{Path: "goldsync.toml", Images: []config.Image{
		{Name: "compute", Root: "/srv/img/compute", Excludes: []string{"/proc/*"}, MaxDelete: 7},
		{Name: "kept", Root: "/srv/img/kept", Retention: time.Hour},
	}}
	r, err := cluster.ReceiveImage(cfg, "compute")
	if err != nil {
		t.Fatal(err)
	}
	if r.Dest != "/srv/img/compute" || r.MaxDelete != 7 || len(r.Excludes) != 1 || !r.ConfigExcludes ||
		r.Retention != cluster.DefaultRetention || r.Deadline != cluster.DefaultDeadline {
		t.Errorf("ReceiveImage(compute) = %+v", r)
	}
	if r, _ := cluster.ReceiveImage(cfg, "kept"); r.Retention != time.Hour {
		t.Errorf("retention %v, want the config's 1h", r.Retention)
	}
	if _, err := cluster.ReceiveImage(cfg, "nope"); !errors.Is(err, cluster.ErrNoImage) || cluster.StepOf(err) != cluster.StepConfig {
		t.Errorf("unknown image: %v, want a StepConfig ErrNoImage", err)
	}
}

// TestReceiveLineSaysCPU: goldsync receive's line (which the primary's
// replica report carries) ends with the CPU time and peak memory the
// receiver used, so an update's cost on the replica is known without a
// measuring wrapper in front of the receiver.
func TestReceiveLineSaysCPU(t *testing.T) {
	sum := 0
	for i := range 20_000_000 { // some CPU time, so the figure is not 0
		sum += i % 7
	}
	line := cluster.ReceiveLine("/img", &imaging.Result{Duration: time.Second})
	m := regexp.MustCompile(`, 1\.000s, cpu (\d+\.\d{3})s, peak (\d+\.\d) MiB$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("line %q does not end with the CPU time and peak memory (sum %d)", line, sum)
	}
	if cpu, _ := strconv.ParseFloat(m[1], 64); cpu <= 0 {
		t.Errorf("cpu %s s in %q, want > 0", m[1], line)
	}
	if peak, _ := strconv.ParseFloat(m[2], 64); peak < 1 {
		t.Errorf("peak %s MiB in %q, want at least 1", m[2], line)
	}
}
