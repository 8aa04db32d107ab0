package reliability

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binaries built once by TestMain.
var (
	binDir   string // holds goldsync, goldsync-agent (a wrapper) and goldsync-agent.real
	goldsync string // the CLI
	agentBin string // the real agent binary
)

// envAgentState names the agent state dir for the wrapper beside goldsync, so
// local pulls keep their hash caches in the test's temp dir instead of
// /var/lib/goldsync.
const envAgentState = "GOLDSYNC_TEST_AGENT_STATE"

// envHelper switches the test binary into a helper program (see helpers).
const envHelper = "GOLDSYNC_RELIABILITY_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(envHelper); h != "" {
		os.Exit(runHelper(h))
	}
	dir, err := os.MkdirTemp("", "goldsync-reliability-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	goldsync = filepath.Join(dir, "goldsync")
	agentBin = filepath.Join(dir, "goldsync-agent.real")
	// GOLDSYNC_RELIABILITY_BINS names a directory holding goldsync and
	// goldsync-agent already built (to test released binaries, or to
	// iterate while the commands do not build).
	prebuilt := os.Getenv("GOLDSYNC_RELIABILITY_BINS")
	for _, b := range []struct{ out, name, pkg string }{
		{goldsync, "goldsync", "github.com/goldsync/goldsync/cmd/goldsync"},
		{agentBin, "goldsync-agent", "github.com/goldsync/goldsync/cmd/goldsync-agent"},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		if prebuilt != "" {
			cmd = exec.Command("cp", filepath.Join(prebuilt, b.name), b.out)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	// The CLI runs the goldsync-agent found beside it for local sources:
	// make that one keep its state where the test says.
	wrapper := "#!/bin/sh\nexec " + shellQuote(agentBin) + " --state-dir \"${" + envAgentState + ":-" + filepath.Join(dir, "agent-state") + "}\" \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "goldsync-agent"), []byte(wrapper), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// needRoot skips a test that needs root, saying why.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}

// stress reports whether the long forms run (GOLDSYNC_STRESS=1).
func stress() bool { return os.Getenv("GOLDSYNC_STRESS") == "1" }

// budget is how long a long form may run: GOLDSYNC_STRESS_BUDGET, default 2m.
// Quick forms are bounded by their counts; their budget is a backstop.
func budget() time.Duration {
	if !stress() {
		return 90 * time.Second
	}
	if d, err := time.ParseDuration(os.Getenv("GOLDSYNC_STRESS_BUDGET")); err == nil && d > 0 {
		return d
	}
	return 2 * time.Minute
}

// pick returns quick or long depending on the mode.
func pick(quick, long int) int {
	if stress() {
		return long
	}
	return quick
}

// pullCmd is one `goldsync pull` run.
type pullCmd struct {
	src, dest, state string
	agentState       string   // local agent's state dir
	args             []string // extra flags
	umask            int      // -1: inherit
}

// proc is a started goldsync process.
type proc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	stdout bytes.Buffer
	done   chan struct{}
	err    error
}

// pullTimeout bounds every goldsync run a test starts: a hung pull fails
// the test instead of hanging it.
const pullTimeout = 2 * time.Minute

func (p pullCmd) argv() []string {
	args := []string{"pull", "--no-progress"}
	if p.state != "" {
		args = append(args, "--state-dir", p.state)
	}
	args = append(args, p.args...)
	return append(args, p.src, p.dest)
}

// start starts the pull in its own process group.
func (p pullCmd) start(t *testing.T) *proc {
	t.Helper()
	argv := p.argv()
	bin := goldsync
	if p.umask >= 0 && p.umask != 0o22 {
		argv = append([]string{"-c", fmt.Sprintf("umask %03o; exec \"$0\" \"$@\"", p.umask), goldsync}, argv...)
		bin = "/bin/sh"
	}
	cmd := exec.Command(bin, argv...)
	cmd.Env = append(os.Environ(), envAgentState+"="+p.agentState)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr := &proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &pr.stdout
	cmd.Stderr = &pr.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start goldsync: %v", err)
	}
	go func() {
		pr.err = cmd.Wait()
		close(pr.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-pr.done
	})
	return pr
}

// wait waits for the process, killing it after pullTimeout, and returns
// its exit code (-1 when killed by a signal).
func (pr *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-pr.done:
	case <-time.After(pullTimeout):
		syscall.Kill(pr.cmd.Process.Pid, syscall.SIGKILL)
		<-pr.done
		t.Fatalf("goldsync did not return within %v; stderr:\n%s", pullTimeout, pr.stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(pr.err, &ee) {
		return ee.ExitCode()
	}
	if pr.err != nil {
		t.Fatalf("goldsync: %v", pr.err)
	}
	return 0
}

// run runs the pull to its end and returns its exit code and stderr.
func (p pullCmd) run(t *testing.T) (int, string) {
	t.Helper()
	pr := p.start(t)
	code := pr.wait(t)
	return code, pr.stderr.String()
}

// mustRun runs the pull and fails the test unless it succeeds.
func (p pullCmd) mustRun(t *testing.T) {
	t.Helper()
	if code, stderr := p.run(t); code != 0 {
		t.Fatalf("goldsync %s: exit %d\n%s", strings.Join(p.argv(), " "), code, stderr)
	}
}

// newPull returns a pull of src into base/image with its state beside it,
// without a umask change.
func newPull(base, src string) pullCmd {
	return pullCmd{src: src, dest: filepath.Join(base, "image"), state: filepath.Join(base, "state"),
		agentState: filepath.Join(base, "agent-state"), umask: -1}
}

// procsMatching lists the pids whose command line contains s.
func procsMatching(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// childrenOf lists the pids whose parent is pid.
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

// waitGone waits (bounded) until no process's command line contains s and
// reports whether that happened; stragglers are killed by pid.
func waitGone(s string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if len(procsMatching(s)) == 0 {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, pid := range procsMatching(s) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return false
}

func itoa(i int) string { return strconv.Itoa(i) }
