package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// netns is a private network and mount namespace held open by a sleeping
// process; commands run in it through nsenter. Its loopback is what QEMU's
// user-mode network shows a guest as 10.0.2.2.
type netns struct {
	holder *exec.Cmd
	pid    int
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	// A private /run, /var/lib/nfs and /var/run/ganesha: rpcbind and ganesha
	// keep their state there, and nothing of the host's is touched.
	script := `set -e
ip link set lo up
mount -t tmpfs tmpfs /run
mkdir -p /run/rpcbind /run/ganesha /var/lib/nfs
mount -t tmpfs tmpfs /var/lib/nfs
mkdir -p /var/lib/nfs/ganesha
echo ready
exec sleep 100000`
	cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("namespace setup failed: %q", line)
	}
	n := &netns{holder: cmd, pid: cmd.Process.Pid}
	t.Cleanup(func() {
		n.holder.Process.Kill()
		n.holder.Wait()
	})
	return n
}

// command returns a command running in the namespace.
func (n *netns) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	a := append([]string{"-t", strconv.Itoa(n.pid), "-n", "-m", "--", name}, args...)
	return exec.CommandContext(ctx, "nsenter", a...)
}

// startNFS runs rpcbind and nfs-ganesha in the namespace with conf,
// logging to dir/ganesha.log, until the test ends or the returned
// function stops them.
func (n *netns) startNFS(t *testing.T, dir, conf string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rpc := n.command(ctx, "rpcbind", "-f", "-w")
	rpc.Stdout, rpc.Stderr = os.Stderr, os.Stderr
	if err := rpc.Start(); err != nil {
		t.Fatalf("rpcbind: %v", err)
	}
	waitPort(t, n, "127.0.0.1:111")
	logf := filepath.Join(dir, "ganesha.log")
	g := n.command(ctx, "ganesha.nfsd", "-F", "-f", conf, "-L", logf, "-p", filepath.Join(dir, "ganesha.pid"), "-N", "NIV_EVENT")
	g.Stdout, g.Stderr = os.Stderr, os.Stderr
	if err := g.Start(); err != nil {
		t.Fatalf("ganesha: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			g.Wait()
			rpc.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			if b, err := os.ReadFile(logf); err == nil {
				t.Logf("ganesha.log:\n%s", tail(b, 3000))
			}
		}
	})
	if err := waitPortErr(n, "127.0.0.1:2049", 60*time.Second); err != nil {
		b, _ := os.ReadFile(logf)
		t.Fatalf("ganesha did not listen: %v\n%s", err, tail(b, 3000))
	}
	// showmount through the namespace's rpcbind: the exports are served.
	out, err := n.command(context.Background(), "sh", "-c", "command -v showmount >/dev/null && showmount -e 127.0.0.1 || true").CombinedOutput()
	t.Logf("nfs-ganesha up; exports: %s (%v)", strings.TrimSpace(string(out)), err)
	return stop
}

func waitPort(t *testing.T, n *netns, addr string) {
	t.Helper()
	if err := waitPortErr(n, addr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitPortErr waits until something accepts TCP connections on addr in the
// namespace.
func waitPortErr(n *netns, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	host, port, _ := net.SplitHostPort(addr)
	for time.Now().Before(deadline) {
		err := n.command(context.Background(), "sh", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port)).Run()
		if err == nil {
			return nil
		}
		// sh may lack /dev/tcp: fall back to bash.
		if err := n.command(context.Background(), "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port)).Run(); err == nil {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s in the namespace after %s", addr, d)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
