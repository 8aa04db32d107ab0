//go:build linux

package netlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if err := Enter(); err != nil {
		fmt.Fprintln(os.Stderr, "netlab: tests that need the lab will skip:", err)
	}
	os.Exit(m.Run())
}

// sshRun runs remote on h with the lab's client and returns its output.
func sshRun(ctx context.Context, l *Lab, h *Host, remote string) (string, error) {
	args := append(l.SSHArgs(), h.UserHost(), remote)
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

func TestLabHostsHaveTheirAddresses(t *testing.T) {
	l := New(t, Options{Replicas: MaxReplicas})
	if got := len(l.Hosts()); got != 1+MaxReplicas {
		t.Fatalf("%d hosts, want %d", got, 1+MaxReplicas)
	}
	seen := map[string]bool{}
	for _, h := range l.Hosts() {
		if seen[h.Addr] {
			t.Fatalf("address %s twice", h.Addr)
		}
		seen[h.Addr] = true
		// The host sees its own address on eth0 and nothing else but
		// loopback, and the connection comes from the primary.
		out, err := sshRun(context.Background(), l, h, "ip -4 -o addr show; echo \"$HOME\"; echo \"$SSH_CONNECTION\"")
		if err != nil {
			t.Fatalf("%s: %v: %s", h.Name, err, out)
		}
		if !strings.Contains(out, "eth0    inet "+h.Addr+"/24") && !strings.Contains(out, "inet "+h.Addr+"/24") {
			t.Errorf("%s: addresses:\n%s\nwant %s on eth0", h.Name, out, h.Addr)
		}
		if n := strings.Count(out, " inet "); n != 2 {
			t.Errorf("%s: %d IPv4 addresses, want loopback and its own:\n%s", h.Name, n, out)
		}
		if !strings.Contains(out, "\n"+filepath.Dir(h.Root)+"\n") {
			t.Errorf("%s: HOME is not the host's directory %s:\n%s", h.Name, filepath.Dir(h.Root), out)
		}
		if !strings.HasPrefix(strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]), PrimaryAddr+" ") {
			t.Errorf("%s: SSH_CONNECTION does not come from the primary %s:\n%s", h.Name, PrimaryAddr, out)
		}
	}
	if l.Golden.Addr != GoldenAddr || l.Replicas[0].Addr != "10.77.0.11" || l.Replicas[7].Addr != "10.77.0.18" {
		t.Errorf("addresses: golden %s, r1 %s, r8 %s", l.Golden.Addr, l.Replicas[0].Addr, l.Replicas[7].Addr)
	}
	// Each host has its own directory.
	for _, h := range l.Hosts() {
		if fi, err := os.Stat(h.Root); err != nil || !fi.IsDir() {
			t.Errorf("%s: root %s: %v", h.Name, h.Root, err)
		}
	}
}

func TestHostDownIsUnreachableUntilUp(t *testing.T) {
	l := New(t, Options{Replicas: 2, NoGolden: true})
	r1, r2 := l.Replicas[0], l.Replicas[1]
	if err := r1.Down(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := sshRun(ctx, l, r1, "true"); err == nil {
		t.Fatalf("ssh to an unplugged host worked: %s", out)
	}
	// The other host is not affected.
	if out, err := sshRun(ctx, l, r2, "true"); err != nil {
		t.Fatalf("r2 while r1 is down: %v: %s", err, out)
	}
	if err := r1.Up(); err != nil {
		t.Fatal(err)
	}
	var out string
	var err error
	// A few tries: the port comes back through the bridge's learning.
	for i := 0; i < 5; i++ {
		if out, err = sshRun(ctx, l, r1, "true"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("r1 after Up: %v: %s", err, out)
	}
}

func TestKillSessionsKillsARunningCommand(t *testing.T) {
	l := New(t, Options{Replicas: 1, NoGolden: true})
	r1 := l.Replicas[0]
	marker := filepath.Join(r1.Root, "started")
	args := append(l.SSHArgs(), r1.UserHost(), "touch "+marker+"; exec sleep 600")
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the remote command did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The marker exists once touch ran; the shell's exec of sleep comes
	// after it: wait for it in the listing (a CI run looked too early).
	for {
		var sleeping bool
		for _, p := range r1.Sessions() {
			if p.Cmdline == "sleep 600" {
				sleeping = true
			}
		}
		if sleeping {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("sessions do not list the remote command: %+v", r1.Sessions())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := r1.KillSessions(); n == 0 {
		t.Fatal("KillSessions killed nothing")
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the ssh command succeeded after its remote side was killed")
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the ssh command did not end after its remote side was killed")
	}
	// The host's sshd is still up.
	if out, err := sshRun(context.Background(), l, r1, "true"); err != nil {
		t.Fatalf("ssh after KillSessions: %v: %s", err, out)
	}
}

func TestCloseRemovesTheLab(t *testing.T) {
	if !entered {
		t.Skipf("SKIPPED: no network lab: %v", errNoLab)
	}
	l, err := Start(t.TempDir(), Options{Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	holders := []int{}
	for _, h := range l.Hosts() {
		holders = append(holders, h.holder.Process.Pid)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if strings.Contains(string(out), bridge) || strings.Contains(string(out), "lab-") {
		t.Errorf("links left after Close:\n%s", out)
	}
	for _, pid := range holders {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("holder %d still runs", pid)
		}
	}
	// A second lab starts after the first closed.
	l2, err := Start(t.TempDir(), Options{Replicas: 1, NoGolden: true})
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
}

func TestThrottleSlowsTheHostDown(t *testing.T) {
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("SKIPPED: tc not found")
	}
	l := New(t, Options{Replicas: 1, NoGolden: true})
	r1 := l.Replicas[0]
	// 2 MiB at 2 Mbit/s takes at least 8 s; unthrottled, well under that
	// even on a loaded machine. The check is on bytes and rate, not on a
	// wall-clock bound of the fast case.
	send := func() time.Duration {
		t.Helper()
		args := append(l.SSHArgs(), r1.UserHost(), "cat > /dev/null")
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdin = strings.NewReader(strings.Repeat("x", 2<<20))
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ssh: %v: %s", err, out)
		}
		return time.Since(start)
	}
	if err := r1.Throttle(2000); err != nil {
		t.Fatal(err)
	}
	if d := send(); d < 7*time.Second {
		t.Errorf("2 MiB through a 2 Mbit/s link took %v", d)
	}
	if err := r1.Throttle(0); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("tc", "qdisc", "show", "dev", r1.link).CombinedOutput()
	if strings.Contains(string(out), "tbf") {
		t.Errorf("the limit is still there: %s", out)
	}
}
