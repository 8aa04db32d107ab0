//go:build linux

package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/goldsync/goldsync/internal/sshtest"
)

// The lab's addresses.
const (
	// PrimaryAddr is the primary image server's address: the program
	// itself, on the bridge.
	PrimaryAddr = "10.77.0.1"
	// GoldenAddr is the golden node's address.
	GoldenAddr = "10.77.0.10"
	// Prefix is the length of the lab's network prefix.
	Prefix = 24
	// MaxReplicas is the most replicas a lab holds (10.77.0.11–18).
	MaxReplicas = 8
)

// ReplicaAddr returns the address of replica i, counted from 1.
func ReplicaAddr(i int) string { return "10.77.0." + strconv.Itoa(10+i) }

// bridge is the lab's bridge in the program's namespace.
const bridge = "lab0"

// envInside marks the child Enter started in the private namespace.
const envInside = "GOLDSYNC_NETLAB_NETNS"

// connectTimeout bounds an ssh connection to an unplugged host.
const connectTimeout = 5 * time.Second

// ErrUnavailable is wrapped by Enter and Start when the lab cannot be built
// here (not root, a tool or a kernel feature missing).
var ErrUnavailable = errors.New("network lab unavailable")

var (
	// entered is set in the child Enter started; errNoLab says why Enter
	// failed, for New's skip message.
	entered  bool
	errNoLab error = errors.New("netlab.Enter was not called (TestMain must call it)")

	// busy admits one lab at a time: the addresses are fixed.
	busy = make(chan struct{}, 1)
)

// Enter moves the program into a private network namespace in which the lab
// is built. In the original process it starts the program again (same
// arguments, standard streams and environment, plus a marker) in a new
// network namespace, forwards SIGINT, SIGTERM, SIGQUIT and SIGHUP to it,
// and exits with its status: it returns only in the child, with nil, after
// bringing its loopback up. When the namespace cannot be made (not root,
// ip missing) it returns an error wrapping ErrUnavailable without starting
// anything, and the program goes on where it is (New then skips).
func Enter() error {
	if os.Getenv(envInside) != "" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			errNoLab = fmt.Errorf("bring loopback up: %w: %s", err, out)
			return errNoLab
		}
		entered, errNoLab = true, nil
		return nil
	}
	if err := checkTools(); err != nil {
		errNoLab = err
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		errNoLab = fmt.Errorf("%w: find own executable: %v", ErrUnavailable, err)
		return errNoLab
	}
	// The child dies with this thread: keep it.
	runtime.LockOSThread()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envInside+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		signal.Stop(sigs)
		runtime.UnlockOSThread()
		errNoLab = fmt.Errorf("%w: start in a new network namespace: %v", ErrUnavailable, err)
		return errNoLab
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		os.Exit(ee.ExitCode())
	}
	fmt.Fprintf(os.Stderr, "netlab: the program in the lab's namespace: %v\n", err)
	os.Exit(2)
	return nil
}

// checkTools says why a lab cannot be built here, or nil.
func checkTools() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root (network namespaces, veth and bridge links need it)", ErrUnavailable)
	}
	for _, c := range []string{"ip", "nsenter", "sleep", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%w: %s not found", ErrUnavailable, c)
		}
	}
	if _, err := os.Stat(sshtest.SSHDPath); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, sshtest.SSHDPath, err)
	}
	return nil
}

// Options configures a lab.
type Options struct {
	// Replicas is the number of replica hosts, 0 to MaxReplicas.
	Replicas int
	// NoGolden leaves out the golden host.
	NoGolden bool
}

// Lab is a running lab. Its fields are read-only.
type Lab struct {
	// Dir holds every host's directory, the client key and known_hosts.
	Dir string
	// Primary is the program itself (no sshd, no namespace of its own).
	Primary *Host
	// Golden is the golden node; nil with Options.NoGolden.
	Golden *Host
	// Replicas are the replica image servers, replica i at index i-1.
	Replicas []*Host

	mu         sync.Mutex
	all        []*Host // every host with a namespace, for Close
	clientKey  string
	knownHosts string
	closeOnce  sync.Once
	closeErr   error
}

// Host is one machine of the lab.
type Host struct {
	// Name is "primary", "golden" or "r1".."r8".
	Name string
	// Addr is its IPv4 address.
	Addr string
	// Root is its own directory; its data (image copies, state) goes here.
	Root string
	// SSH is its sshd on Addr:22; nil for the primary.
	SSH *sshtest.Server

	lab     *Lab
	link    string    // the bridge side of its veth pair
	holder  *exec.Cmd // the process holding its namespace
	ns      string    // /proc/PID/ns/net of the holder
	nsID    string    // readlink of ns: "net:[inode]"
	stopSSH func()
}

// New starts a lab in a temporary directory of the test and closes it when
// the test ends. It skips the test, saying why, when no lab can be built
// here, and fails it when building one fails. One lab runs at a time: New
// waits for the previous test's lab to close.
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	if !entered {
		t.Skipf("SKIPPED: no network lab: %v", errNoLab)
	}
	l, err := Start(t.TempDir(), opts)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("SKIPPED: no network lab: %v", err)
	}
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range l.Hosts() {
				if h.SSH != nil {
					t.Logf("netlab: %s sshd log:\n%s", h.Name, tail(h.SSH.Log(), 800))
				}
			}
		}
		if err := l.Close(); err != nil {
			t.Errorf("netlab: close: %v", err)
		}
	})
	return l
}

// Start builds a lab with its files in dir (created if missing) and returns
// it; the caller must Close it. The program must have called Enter. A dir of
// an earlier lab may be reused: the hosts' directories (Host.Root) keep
// their contents, the keys are made anew.
func Start(dir string, opts Options) (l *Lab, err error) {
	if !entered {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, errNoLab)
	}
	if opts.Replicas < 0 || opts.Replicas > MaxReplicas {
		return nil, fmt.Errorf("netlab: %d replicas: want 0 to %d", opts.Replicas, MaxReplicas)
	}
	busy <- struct{}{}
	dir, err = filepath.Abs(dir)
	if err != nil {
		<-busy
		return nil, err
	}
	l = &Lab{Dir: dir, clientKey: filepath.Join(dir, "id_ed25519"), knownHosts: filepath.Join(dir, "known_hosts")}
	lab := l // a failing return sets l to nil before this runs
	defer func() {
		if err != nil {
			lab.Close()
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		<-busy
		return nil, err
	}
	// From here Close releases busy.
	if err := ip("link", "add", bridge, "type", "bridge"); err != nil {
		if errors.Is(err, errExists) {
			err = fmt.Errorf("%s exists: another lab runs in this namespace, or a crashed one left it", bridge)
		}
		return nil, fmt.Errorf("%w: create bridge: %v", ErrUnavailable, err)
	}
	l.Primary = &Host{Name: "primary", Addr: PrimaryAddr, Root: filepath.Join(dir, "primary"), lab: l}
	if err := os.MkdirAll(l.Primary.Root, 0o755); err != nil {
		return nil, err
	}
	if err := ip("addr", "add", PrimaryAddr+"/"+strconv.Itoa(Prefix), "dev", bridge); err != nil {
		return nil, fmt.Errorf("bridge address: %w", err)
	}
	if err := ip("link", "set", bridge, "up"); err != nil {
		return nil, fmt.Errorf("bridge up: %w", err)
	}
	// ssh-keygen asks before overwriting a key (a reused dir).
	os.Remove(l.clientKey)
	os.Remove(l.clientKey + ".pub")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "netlab", "-f", l.clientKey).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("client key: %w: %s", err, out)
	}
	// The hosts start in parallel: most of a start is key generation and
	// the first logins.
	names, addrs := []string{}, []string{}
	if !opts.NoGolden {
		names, addrs = append(names, "golden"), append(addrs, GoldenAddr)
	}
	for i := 1; i <= opts.Replicas; i++ {
		names, addrs = append(names, "r"+strconv.Itoa(i)), append(addrs, ReplicaAddr(i))
	}
	hosts := make([]*Host, len(names))
	var g errgroup.Group
	for i := range names {
		g.Go(func() error {
			h, err := l.addHost(names[i], addrs[i])
			hosts[i] = h
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if !opts.NoGolden {
		l.Golden, hosts = hosts[0], hosts[1:]
	}
	l.Replicas = hosts
	if err := l.writeKnownHosts(); err != nil {
		return nil, err
	}
	for _, h := range l.Hosts() {
		if err := h.probe(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Hosts returns every host with an sshd: the golden node, then the replicas.
func (l *Lab) Hosts() []*Host {
	var hs []*Host
	if l.Golden != nil {
		hs = append(hs, l.Golden)
	}
	return append(hs, l.Replicas...)
}

// addHost makes a namespace for a host, plugs it into the bridge with addr
// and starts its sshd.
func (l *Lab) addHost(name, addr string) (*Host, error) {
	h := &Host{Name: name, Addr: addr, Root: filepath.Join(l.Dir, name, "root"), lab: l, link: "lab-" + name}
	if err := os.MkdirAll(h.Root, 0o755); err != nil {
		return nil, err
	}
	h.holder = exec.Command("sleep", "infinity")
	h.holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := h.holder.Start(); err != nil {
		return nil, fmt.Errorf("%w: %s: new network namespace: %v", ErrUnavailable, name, err)
	}
	// Registered before anything else can fail, so Close stops it.
	l.mu.Lock()
	l.all = append(l.all, h)
	l.mu.Unlock()
	pid := strconv.Itoa(h.holder.Process.Pid)
	h.ns = "/proc/" + pid + "/ns/net"
	id, err := os.Readlink(h.ns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	h.nsID = id
	if err := ip("link", "add", h.link, "type", "veth", "peer", "name", "eth0", "netns", pid); err != nil {
		return nil, fmt.Errorf("%w: %s: veth pair: %v", ErrUnavailable, name, err)
	}
	if err := ip("link", "set", h.link, "master", bridge, "up"); err != nil {
		return nil, fmt.Errorf("%s: plug into %s: %w", name, bridge, err)
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", addr + "/" + strconv.Itoa(Prefix), "dev", "eth0"},
		{"link", "set", "eth0", "up"},
	} {
		if err := h.ip(args...); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	// Sessions get the host's own directory as HOME, so the login shell
	// reads no startup files of the machine's user (a slow .bashrc would
	// cost every connection seconds under load, and be timed by benchmarks).
	srv, stop, err := sshtest.StartServer(filepath.Join(l.Dir, name, "sshd"), sshtest.Options{
		Address: addr, Port: 22, NetNS: h.ns,
		ExtraConfig: []string{"SetEnv HOME=" + filepath.Join(l.Dir, name)},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	h.SSH, h.stopSSH = srv, stop
	// The lab's client key logs in too: sshd reads authorized_keys at
	// each login.
	pub, err := os.ReadFile(l.clientKey + ".pub")
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(srv.Dir, "authorized_keys"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(pub)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: authorize the lab's key: %w", name, err)
	}
	return h, nil
}

// writeKnownHosts joins the hosts' known_hosts lines into the lab's file.
func (l *Lab) writeKnownHosts() error {
	var b bytes.Buffer
	for _, h := range l.Hosts() {
		kh, err := os.ReadFile(h.SSH.KnownHostsFile())
		if err != nil {
			return err
		}
		b.Write(kh)
		if len(kh) > 0 && kh[len(kh)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return os.WriteFile(l.knownHosts, b.Bytes(), 0o600)
}

// SSHArgs returns the argv of an ssh command that reaches every host of the
// lab with the lab's key, without the destination: append Host.UserHost()
// and the remote command. It reads no ssh_config, never prompts, checks host
// keys strictly and gives up connecting to an unplugged host after a few
// seconds.
func (l *Lab) SSHArgs() []string {
	return []string{
		"ssh",
		"-F", "none",
		"-i", l.clientKey,
		"-o", "UserKnownHostsFile=" + l.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "LogLevel=ERROR",
		"-o", "ConnectTimeout=" + strconv.Itoa(int(connectTimeout/time.Second)),
		"-o", "KexAlgorithms=curve25519-sha256",
	}
}

// Rsh returns SSHArgs as one command line, for rsync's -e and goldsync's
// rsh settings.
func (l *Lab) Rsh() string {
	args := l.SSHArgs()
	for i, a := range args {
		args[i] = sshtest.ShellQuote(a)
	}
	return strings.Join(args, " ")
}

// Close stops every host and removes the lab's links. It is safe to call
// more than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		l.mu.Lock()
		all := l.all
		l.mu.Unlock()
		for _, h := range all {
			if h.stopSSH != nil {
				h.stopSSH()
			}
			if h.holder != nil && h.holder.Process != nil {
				// Whatever still runs in the host (sessions) goes too.
				for _, pid := range h.pids() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				_ = h.holder.Process.Kill()
				_ = h.holder.Wait()
			}
			if h.link != "" {
				// The pair goes with the holder's namespace; this is for
				// a holder that died first.
				_ = ip("link", "del", h.link)
			}
		}
		if err := ip("link", "del", bridge); err != nil && !errors.Is(err, errNotFound) {
			errs = append(errs, err)
		}
		l.closeErr = errors.Join(errs...)
		<-busy
	})
	return l.closeErr
}

// UserHost returns the ssh destination of the host, "root@addr".
func (h *Host) UserHost() string {
	if h.SSH != nil {
		return h.SSH.User + "@" + h.Addr
	}
	return "root@" + h.Addr
}

// Target returns "user@addr:path", the remote path syntax of rsync and
// goldsync.
func (h *Host) Target(path string) string { return h.UserHost() + ":" + path }

// Down unplugs the host: its bridge port goes down, so packets to it are
// dropped and new connections time out (Lab.SSHArgs gives up after a few
// seconds); open connections stall. Up plugs it back.
func (h *Host) Down() error {
	if h.link == "" {
		return fmt.Errorf("%s has no link to unplug", h.Name)
	}
	return ip("link", "set", h.link, "down")
}

// Up plugs the host back in after Down.
func (h *Host) Up() error {
	if h.link == "" {
		return fmt.Errorf("%s has no link to plug", h.Name)
	}
	return ip("link", "set", h.link, "up")
}

// Throttle limits what the host receives to kbit kilobits a second (a
// token bucket on its bridge port, tc-tbf(8)), as a slow link would; 0
// removes the limit. It needs tc.
func (h *Host) Throttle(kbit int) error {
	if h.link == "" {
		return fmt.Errorf("%s has no link to throttle", h.Name)
	}
	if kbit <= 0 {
		if err := run("tc", "qdisc", "del", "dev", h.link, "root"); err != nil && !strings.Contains(err.Error(), "No such file") &&
			!strings.Contains(err.Error(), "Cannot delete qdisc with handle of zero") {
			return err
		}
		return nil
	}
	rate := strconv.Itoa(kbit) + "kbit"
	return run("tc", "qdisc", "replace", "dev", h.link, "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "1s")
}

// Sessions returns the processes running on the host other than its sshd
// listener and the namespace's holder: the ssh sessions and what they run.
func (h *Host) Sessions() []Process {
	var ps []Process
	keep := h.keepPIDs()
	for _, pid := range h.pids() {
		if keep[pid] {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			continue
		}
		ps = append(ps, Process{PID: pid, Cmdline: strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")})
	}
	return ps
}

// Process is one process running on a host.
type Process struct {
	PID     int
	Cmdline string // its arguments joined by spaces
}

// KillSessions kills (SIGKILL) every process running on the host but its
// sshd listener, as a crash of the host's receiver would, and returns how
// many it killed. The sshd stays up: the next connection works.
func (h *Host) KillSessions() int {
	n := 0
	for _, p := range h.Sessions() {
		if syscall.Kill(p.PID, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// keepPIDs are the holder and the sshd listener.
func (h *Host) keepPIDs() map[int]bool {
	keep := map[int]bool{}
	if h.holder != nil && h.holder.Process != nil {
		keep[h.holder.Process.Pid] = true
	}
	if h.SSH != nil {
		if b, err := os.ReadFile(filepath.Join(h.SSH.Dir, "sshd.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				keep[pid] = true
			}
		}
	}
	return keep
}

// pids lists the processes in the host's network namespace.
func (h *Host) pids() []int {
	if h.nsID == "" {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if id, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err == nil && id == h.nsID {
			pids = append(pids, pid)
		}
	}
	return pids
}

// probe runs one command on the host with the lab's ssh client.
func (h *Host) probe() error {
	args := append(h.lab.SSHArgs(), h.UserHost(), "true")
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: ssh with the lab's key: %w: %s", h.Name, err, out)
	}
	return nil
}

// ip runs ip(8) in the host's namespace.
func (h *Host) ip(args ...string) error {
	return run("nsenter", append([]string{"--net=" + h.ns, "ip"}, args...)...)
}

var (
	errExists   = errors.New("exists")
	errNotFound = errors.New("not found")
)

// ip runs ip(8) in the program's namespace.
func ip(args ...string) error { return run("ip", args...) }

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(string(out))
	switch {
	case strings.Contains(msg, "File exists"):
		err = fmt.Errorf("%w: %v", errExists, err)
	case strings.Contains(msg, "Cannot find device"):
		err = fmt.Errorf("%w: %v", errNotFound, err)
	}
	return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
