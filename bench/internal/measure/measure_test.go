package measure

import (
	"os/exec"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name     string
		script   string
		exit     int
		minCPU   bool
		minTree  int64
		childMem bool
	}{
		{name: "exit code", script: "exit 3", exit: 3},
		{name: "cpu of a reaped child counts", script: "sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'", minCPU: true},
		{name: "tree memory sums the children", script: "sleep 0.5 & sleep 0.5 & wait", minTree: 3 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := Run(exec.Command("/bin/sh", "-c", tc.script), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if u.ExitCode != tc.exit {
				t.Errorf("exit %d, want %d", u.ExitCode, tc.exit)
			}
			if tc.minCPU && u.CPU() <= 0 {
				t.Errorf("CPU %v, want > 0", u.CPU())
			}
			if u.MaxRSS <= 0 || u.TreeRSS <= 0 {
				t.Errorf("MaxRSS %d, TreeRSS %d: want both > 0", u.MaxRSS, u.TreeRSS)
			}
			if u.TreeRSS < tc.minTree {
				t.Errorf("TreeRSS %d, want at least %d (shell + two sleeps)", u.TreeRSS, tc.minTree)
			}
		})
	}
	if _, err := Run(exec.Command("/nonexistent/binary"), Options{}); err == nil {
		t.Error("starting a missing binary: no error")
	}
}

func TestRunSkipTree(t *testing.T) {
	script := "sleep 0.6 & sleep 0.6 & wait"
	all, err := Run(exec.Command("/bin/sh", "-c", script), Options{})
	if err != nil {
		t.Fatal(err)
	}
	some, err := Run(exec.Command("/bin/sh", "-c", script), Options{SkipTree: []string{"sleep"}})
	if err != nil {
		t.Fatal(err)
	}
	if some.TreeRSS >= all.TreeRSS {
		t.Errorf("TreeRSS without the sleeps %d, with them %d: want less", some.TreeRSS, all.TreeRSS)
	}
}

// TestSkippedProcessForgetsEarlierSample: a process sampled under another
// name (before its exec) and skipped once it has its own counts nothing.
func TestSkippedProcessForgetsEarlierSample(t *testing.T) {
	cmd := exec.Command("sh", "-c", "exec sleep 5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	for i := 0; comm(pid) != "sleep"; i++ {
		if i > 500 {
			t.Fatalf("never exec'd sleep: comm %q", comm(pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	hwm := map[int]int64{pid: 1 << 40} // as sampled before the exec
	sampleTree(pid, []string{"sleep"}, hwm)
	if v, ok := hwm[pid]; ok {
		t.Errorf("skipped process still counts %d bytes", v)
	}
}
