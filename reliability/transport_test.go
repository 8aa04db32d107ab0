package reliability

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goldsync/goldsync/internal/sshtest"
	"github.com/goldsync/goldsync/internal/treetest"
)

// Exit codes of the CLI for a broken stream and a stalled peer.
const (
	exitStream  = 12
	exitTimeout = 30
)

// remoteAgent writes an agent command for the golden node side of the
// sshd: the test's agent with its state in a directory whose path also
// marks its processes (procsMatching(marker) finds exactly them).
func remoteAgent(t *testing.T, base string) (path, marker string) {
	t.Helper()
	marker = filepath.Join(base, "remote-agent-state")
	path = filepath.Join(base, "remote-agent.sh")
	script := "#!/bin/sh\nexec " + shellQuote(agentBin) + " --state-dir " + shellQuote(marker) + " \"$@\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, marker
}

// sshChildren lists the ssh processes a goldsync process started.
func sshChildren(pid int) []int {
	var out []int
	for _, c := range childrenOf(pid) {
		if b, err := os.ReadFile("/proc/" + itoa(c) + "/comm"); err == nil && strings.TrimSpace(string(b)) == "ssh" {
			out = append(out, c)
		}
	}
	return out
}

// TestBrokenTransport pulls through a real sshd and breaks the transport in
// the middle of the transfer: the ssh process killed, the agent killed, the
// agent stopped (SIGSTOP) with a 5 s --timeout. Each pull must return
// (within a bounded wait) with a non-zero exit and a message on stderr,
// leave every file whole (old or new), and the re-run must converge.
func TestBrokenTransport(t *testing.T) {
	needRoot(t, "the tree has owners")
	srv := sshtest.Start(t, sshtest.Options{})
	base := t.TempDir()
	spec := treeSpec{dirs: pick(8, 16), files: pick(12, 20), big: pick(4, 9), seed: 31}
	srcA, srcB := filepath.Join(base, "golden-a"), filepath.Join(base, "golden-b")
	mA := makeTree(t, srcA, spec)
	mB := makeNewTree(t, srcB, spec)
	agentPath, marker := remoteAgent(t, base)
	pl := newPull(base, srv.Target(srcA))
	pl.args = []string{"-e", srv.RshCommand(), "--agent-path", agentPath}
	// The faulty runs time a stalled peer out after 5 s. (The idle timer
	// also runs while ssh logs in, so a much shorter one fails healthy
	// pulls on a loaded machine.)
	faulty := pl
	faulty.args = append(append([]string(nil), pl.args...), "--timeout", "5s")
	pl.mustRun(t)
	// Warm the agent's hash cache for B, and count an incremental run's
	// changes in each direction.
	pl.src = srv.Target(srcB)
	pl.mustRun(t)
	pl.src = srv.Target(srcA)
	changes, _ := calibrate(t, pl)
	if !equal(t, mA, treetest.Scan(t, pl.dest)) {
		t.Fatal("calibration runs did not copy exactly")
	}
	t.Logf("an incremental pull through ssh: %d changes", changes)

	type fault struct {
		name   string
		inject func(pid int) // pid: the goldsync process
		says   []string      // stderr must say one of these
		code   int           // the exit code the CLI should give
	}
	faults := []fault{
		{name: "ssh killed", code: exitStream, says: []string{"closed the connection", "protocol error", "connection to the source lost"}, inject: func(pid int) {
			for _, c := range sshChildren(pid) {
				syscall.Kill(c, syscall.SIGKILL)
			}
		}},
		{name: "agent killed", code: exitStream, says: []string{"closed the connection", "protocol error", "connection to the source lost"}, inject: func(int) {
			for _, p := range procsMatching(marker) {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}},
		{name: "agent stalled", code: exitTimeout, says: []string{"stalled"}, inject: func(int) {
			for _, p := range procsMatching(marker) {
				syscall.Kill(p, syscall.SIGSTOP)
			}
		}},
	}
	rounds := pick(1, 20)
	deadline := time.Now().Add(budget())
	cur, other := mA, mB
	curSrc, otherSrc := srcA, srcB
	tried, failedClean, finishedFirst := 0, 0, 0
	codes := map[string][]int{}
	for r := 0; r < rounds && time.Now().Before(deadline); r++ {
		for _, f := range faults {
			pl.src = srv.Target(otherSrc)
			faulty.src = pl.src
			pr := faulty.start(t)
			pid := pr.cmd.Process.Pid
			// Early in the transfer, so most of it is still to come. The
			// agent sends faster than the image is written, and what it
			// sent before dying still arrives: stop it at one of the first
			// changes (the directories are made before any content is
			// asked for). ssh's buffers die with it: kill it anywhere in
			// the first quarter.
			k := 1 + int64(r)%3
			if f.name == "ssh killed" {
				k = 1 + int64(r*7)%max(changes/4, 1)
			}
			w := watchTree(t, pl.dest, k, func() { f.inject(pid) })
			start := time.Now()
			code := pr.wait(t)
			took := time.Since(start)
			w.close()
			// Nothing of this pull's agent may live on, stopped or not.
			for _, p := range procsMatching(marker) {
				syscall.Kill(p, syscall.SIGKILL)
			}
			waitGone(marker, 5*time.Second)
			tried++
			codes[f.name] = append(codes[f.name], code)
			stderr := strings.TrimSpace(pr.stderr.String())
			switch {
			case code == 0:
				finishedFirst++
				t.Logf("%s: the pull finished before the fault (round %d)", f.name, r)
			case stderr == "":
				t.Errorf("%s: exit %d with nothing on stderr", f.name, code)
			default:
				failedClean++
				if !slices.ContainsFunc(f.says, func(s string) bool { return strings.Contains(stderr, s) }) {
					t.Errorf("%s: the error does not say the connection was lost or the peer stalled (imaging/proto: errors writing to or reading from a closed stream reach the user raw, as \"write |1: broken pipe\" or \"read |0: file already closed\"):\n%s", f.name, stderr)
				}
				if code != f.code {
					t.Errorf("%s: exit %d, want %d (cmd/goldsync: classifySync tests remote.ErrStalled/ErrProtocol, but a failure during the sync carries proto's errors, so the error reaches exitCode unclassified, which returns 20, \"interrupted\", from its ctx/context.Canceled branch; no signal was sent)", f.name, code, f.code)
				}
				if r == 0 {
					t.Logf("%s: exit %d after %v: %s", f.name, code, took.Round(time.Millisecond), lastLine(stderr))
				}
			}
			st := checkWhole(t, treetest.Scan(t, pl.dest), cur, other)
			if r == 0 {
				t.Logf("%s: after the failure %d files old, %d new, %d temps", f.name, st.Old, st.New, st.Temps)
			}
			pl.mustRun(t)
			equal(t, other, treetest.Scan(t, pl.dest))
			checkNoLitter(t, pl.dest, pl.state)
			cur, other = other, cur
			curSrc, otherSrc = otherSrc, curSrc
		}
	}
	if failedClean == 0 {
		t.Errorf("no fault landed mid-transfer")
	}
	t.Logf("figures: broken transport: %d faults injected mid-transfer (ssh killed, agent killed, agent stalled): %d failed with a clear error and converged on the re-run, %d finished before the fault; exit codes %v", tried, failedClean, finishedFirst, codes)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
