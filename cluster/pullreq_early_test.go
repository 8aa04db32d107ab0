package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/treetest"
	"github.com/goldsync/goldsync/remote"
)

// TestPullFailedLoginChangesNothing: a pull into an image pulled before
// walks the image while the remote shell logs in (imaging.StartEarly);
// when the login fails, the pull fails as before (StepConnect, ErrSSH
// with ssh's message) and leaves the image and its state dir exactly as
// they were, down to a killed run's stale temp names there, which only a
// run whose source is connected removes; the next pull is not locked out.
func TestPullFailedLoginChangesNothing(t *testing.T) {
	base := t.TempDir()
	src, dest := filepath.Join(base, "golden"), filepath.Join(base, "image")
	for _, d := range []string{"a", "b/c"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, d, "f"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := (cluster.PullRequest{Source: src, Dest: dest}).Pull(context.Background()); err != nil {
		t.Fatal(err)
	}
	state := imaging.DefaultStateDir(dest)
	for _, stale := range []string{".manifest-stale", ".spool-stale"} {
		if err := os.WriteFile(filepath.Join(state, stale), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rsh := filepath.Join(base, "rsh")
	if err := os.WriteFile(rsh, []byte("#!/bin/sh\necho 'ssh: connect to host golden port 22: Connection refused' >&2\nexit 255\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := treetest.Stamps(t, dest, state)
	s, err := (cluster.PullRequest{Source: "golden:" + src, Dest: dest, Rsh: rsh}).Pull(context.Background())
	if s != nil || cluster.StepOf(err) != cluster.StepConnect || !errors.Is(err, remote.ErrSSH) {
		t.Fatalf("Pull over a failed login: %v, %v; want no summary and a StepConnect ErrSSH", s, err)
	}
	after := treetest.Stamps(t, dest, state)
	for p, st := range before {
		if after[p] != st {
			t.Errorf("%s changed: %q, now %q", p, st, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s was created", p)
		}
	}
	if _, err := (cluster.PullRequest{Source: src, Dest: dest}).Pull(context.Background()); err != nil {
		t.Fatalf("the pull after the failed login: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(state, ".spool-stale")); err == nil {
		t.Error("a pull with its source connected left a stale spool name")
	}
}
