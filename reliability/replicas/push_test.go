package replicas

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/internal/sshtest"
)

// TestPushReachesReplicas is the scale-out issue's "the agent's push path
// propagates" in the lab: the golden node's agent pushes through the
// primary's own sshd, whose authorized_keys line forces "goldsync receive
// --stdio --image rhel9" (as agent/hooks/README.md sets it up), and the
// receive brings every replica to the push's generation, exact; a push
// that changes nothing logs in to no replica; an unplugged replica is
// reported while the push stands and the other replica is updated, and the
// next push, with nothing new, catches it up.
func TestPushReachesReplicas(t *testing.T) {
	s := newSiteWith(t, 2)
	reps := s.lab.Replicas
	s.sync(t, 0) // the replicas hold the first generation
	srv := sshtest.Start(t, sshtest.Options{ForceCommand: filepath.Join(bin, "goldsync") + " --config " + s.config + " receive --stdio --image rhel9"})
	agentState := t.TempDir()
	push := func(t *testing.T) string {
		t.Helper()
		// The path the agent names is not used: the forced command's
		// image is.
		cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "goldsync-agent"), "--root", s.golden, "--state-dir", agentState,
			"push", "--to", srv.Target("/ignored"), "-e", srv.RshCommand())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("goldsync-agent push: %v\n%s", err, out)
		}
		return string(out)
	}
	attempts := func() map[string]time.Time {
		m := map[string]time.Time{}
		for _, r := range reps {
			st, err := cluster.LoadReplicaState(s.cfg(t).Images[0].StateDir, r.Name)
			if err != nil || st == nil {
				t.Fatalf("replica %s state: %+v, %v", r.Name, st, err)
			}
			m[r.Name] = st.LastAttempt
		}
		return m
	}
	upToDate := func(t *testing.T) {
		t.Helper()
		st := s.status(t)
		for _, rs := range st.Replicas {
			if rs.Down || rs.Behind != 0 || rs.Generation != st.Generation {
				t.Errorf("status of %s: %+v, want up to date at generation %d", rs.Replica, rs, st.Generation)
			}
		}
	}

	s.yum(t, 1, 4096)
	out := push(t)
	t.Logf("push:\n%s", out)
	for _, r := range reps {
		if !strings.Contains(out, "replica "+r.Name+" ") || !strings.Contains(out, "ok, generation") {
			t.Errorf("the push's output does not report replica %s updated:\n%s", r.Name, out)
		}
	}
	s.exact(t, reps...)
	upToDate(t)

	before := attempts()
	if out := push(t); strings.Contains(out, "replica ") {
		t.Errorf("a push that changed nothing updated replicas:\n%s", out)
	}
	if after := attempts(); !equalTimes(before, after) {
		t.Errorf("a push that changed nothing tried the replicas: %v, then %v", before, after)
	}

	victim := reps[1]
	if err := victim.Down(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Up() })
	s.yum(t, 2, 4096)
	out = push(t) // exits 0: the push itself stands
	t.Logf("push, %s unplugged:\n%s", victim.Name, out)
	if !strings.Contains(out, "replica "+victim.Name+" ") || !strings.Contains(out, "failed") {
		t.Errorf("the push's output does not report %s failed:\n%s", victim.Name, out)
	}
	s.exact(t, reps[0])
	if rs := s.replicaStatus(t, victim.Name); !rs.Down || rs.Behind != 1 {
		t.Errorf("status of %s while unplugged: %+v, want down, one generation behind", victim.Name, rs)
	}

	if err := victim.Up(); err != nil {
		t.Fatal(err)
	}
	out = push(t) // nothing new on the golden node
	t.Logf("push, %s back:\n%s", victim.Name, out)
	if !strings.Contains(out, "replica "+victim.Name+" ") || !strings.Contains(out, "full compare") || strings.Contains(out, "replica "+reps[0].Name+" ") {
		t.Errorf("the next push does not catch %s up by a full compare alone:\n%s", victim.Name, out)
	}
	s.exact(t, reps...)
	upToDate(t)
}

func equalTimes(a, b map[string]time.Time) bool {
	for k, v := range a {
		if !b[k].Equal(v) {
			return false
		}
	}
	return len(a) == len(b)
}

// TestPushLeavesSlowReplicasToTheReceiver: the agent waits for the
// replicas at most --replica-wait. Replicas whose update outlasts it (their
// receivers start 3 s and 6 s late) are left to the image server's
// receive: the push exits 0 and says the replicas are pending, with the
// prompt replica's line (each is printed as it is done) but not the slow
// ones'. The receive, whose session the agent dropped, still brings both
// slow replicas to the push's generation, exact: it prints the first slow
// one's line to the gone session before the second is done, which would
// end it on SIGPIPE if it did not ignore it.
func TestPushLeavesSlowReplicasToTheReceiver(t *testing.T) {
	s := newSiteWith(t, 3)
	reps := s.lab.Replicas
	prompt, slow := reps[0], reps[1:]
	s.sync(t, 0)
	s.receiver = map[string]string{}
	for i, r := range slow {
		late := filepath.Join(t.TempDir(), "late-goldsync")
		put(t, late, fmt.Sprintf("#!/bin/sh\nsleep %d\nexec %s \"$@\"\n", 3*(i+1), filepath.Join(bin, "goldsync")))
		if err := os.Chmod(late, 0o755); err != nil {
			t.Fatal(err)
		}
		s.receiver[r.Name] = late
	}
	s.writeConfig(t, nil)
	srv := sshtest.Start(t, sshtest.Options{ForceCommand: filepath.Join(bin, "goldsync") + " --config " + s.config + " receive --stdio --image rhel9"})

	s.yum(t, 1, 4096)
	cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "goldsync-agent"), "--root", s.golden, "--state-dir", t.TempDir(),
		"push", "--to", srv.Target("/ignored"), "-e", srv.RshCommand(), "--replica-wait", "1s")
	b, err := cmd.CombinedOutput()
	out := string(b)
	t.Logf("push:\n%s", out)
	if err != nil {
		t.Fatalf("goldsync-agent push: %v", err)
	}
	if !strings.Contains(out, "still updating the image's replicas") {
		t.Errorf("the push does not say the replicas are pending:\n%s", out)
	}
	for _, r := range slow {
		if strings.Contains(out, "replica "+r.Name+" ") {
			t.Errorf("the push waited for the slow replica %s:\n%s", r.Name, out)
		}
	}
	if !strings.Contains(out, "replica "+prompt.Name+" ") {
		t.Errorf("the push does not report the prompt replica %s:\n%s", prompt.Name, out)
	}

	// The receive goes on alone: the slow replicas reach the push's
	// generation (each update's own deadline is far off; a minute is
	// ample for a 6 s start).
	want := s.status(t).Generation
	deadline := time.Now().Add(time.Minute)
	for _, r := range slow {
		for {
			rs := s.replicaStatus(t, r.Name)
			if rs.Generation == want && !rs.Down {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after the agent left: %+v, want generation %d", r.Name, rs, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	s.exact(t, reps...)
}
