package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/internal/sshtest"
)

// TestReplicaRunSharesOneLogin: a sync's two sessions to a replica (the
// push, then the build of its nodes' snapshots) share one ssh login, over
// a master that belongs to the run: after the replica's sshd is stopped
// and another started on the same port, the next sync logs in to the new
// one (never through a master left over from the old one), and no run
// leaves its socket directory behind. Before, each session logged in.
func TestReplicaRunSharesOneLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two sshds")
	}
	s := newReplicaSite(t, "r1")
	logins := func() int { return strings.Count(s.srv["r1"].Log(), "Accepted publickey for ") }
	socketDirs := func() []string {
		m, _ := filepath.Glob(filepath.Join(os.TempDir(), "goldsync-ssh-*"))
		return m
	}
	before := socketDirs()
	sync := func(what string) {
		t.Helper()
		n := logins()
		rep, err := cluster.Run(context.Background(), s.config(t), cluster.Options{})
		if err != nil {
			t.Fatalf("%s: Run: %v", what, err)
		}
		r := replicaReport(t, rep.Images[0], "r1")
		if r.Result != cluster.ResultOK || r.Build == nil {
			t.Fatalf("%s: replica r1: %+v, want pushed and built", what, r)
		}
		if got := logins() - n; got != 1 {
			t.Errorf("%s: %d ssh logins to the replica for its push and its build, want 1 (shared)", what, got)
		}
		for _, d := range socketDirs() {
			if !slices.Contains(before, d) {
				t.Errorf("%s: the run left its ssh socket directory %s", what, d)
			}
		}
	}
	sync("first sync")
	yum(t, s, 1)
	sync("second sync")

	// The replica's sshd is replaced by another on the same port (new
	// host and client keys, a new log).
	port := s.srv["r1"].Port
	s.stop["r1"]()
	srv, stop, err := sshtest.StartServer(filepath.Join(s.base, "sshd-r1"), sshtest.Options{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	s.srv["r1"], s.stop["r1"] = srv, stop
	yum(t, s, 2)
	sync("sync after the sshd was replaced")
	s.exact(t, "r1")
}
