//go:build linux

package sshtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SSHDPath is where the harness expects the OpenSSH server. sshd refuses to
// run unless started by an absolute path (it re-executes itself).
const SSHDPath = "/usr/sbin/sshd"

// sftpServerPath is Debian's sftp-server; when absent, sshd's built-in
// internal-sftp serves the sftp subsystem instead.
const sftpServerPath = "/usr/lib/openssh/sftp-server"

// privsepDir is the privilege-separation directory Debian's sshd insists on.
const privsepDir = "/run/sshd"

// probeCommand is the remote command of the readiness probe. The wrapper that
// implements Options.ForceCommand and Options.ShellNoise answers it with a bare
// exit 0, so the probe works whatever command a test forces.
const probeCommand = "__sshtest_probe__"

// Bounds of the start-up wait. They only limit how long a broken setup takes
// to fail; a healthy sshd is up in milliseconds.
const (
	listenTimeout = 10 * time.Second
	probeTimeout  = 15 * time.Second
	stopTimeout   = 5 * time.Second
	startAttempts = 5 // against another process taking the free port first
)

// Options configures a Server. The zero value is a plain server that runs
// whatever command the client asks for.
type Options struct {
	// ForceCommand, if set, is run by the login shell instead of the command
	// the client asked for, as sshd_config's ForceCommand does; the client's
	// command is in $SSH_ORIGINAL_COMMAND. Use this rather than a
	// ForceCommand line in ExtraConfig, so the readiness probe still works.
	ForceCommand string

	// ShellNoise, if set, is printed on stdout verbatim before every command
	// runs (include the trailing newline if you want one), like the banner a
	// chatty .bashrc prints on a golden node. Subsystems (sftp) get the noise
	// too, as they do from a real noisy shell.
	ShellNoise string

	// ExtraConfig holds sshd_config lines. They are written before the
	// harness's defaults, so they override them (sshd keeps the first value of
	// a keyword); from the first "Match" line on they are written at the end.
	ExtraConfig []string

	// Address is the IPv4 address sshd listens on; default 127.0.0.1. The
	// caller must be able to reach it (the readiness probe connects to it).
	Address string

	// Port is the TCP port sshd listens on; 0 picks a free one (on Address,
	// in the caller's network namespace). Required with NetNS.
	Port int

	// NetNS, if set, is a network namespace file (/proc/PID/ns/net,
	// /run/netns/NAME) that sshd runs in: it is started through nsenter(1),
	// which needs root.
	NetNS string
}

// Server is a running sshd. Its fields are read-only.
type Server struct {
	// Port is the TCP port sshd listens on.
	Port int
	// Address is the IPv4 address sshd listens on: Options.Address, or
	// 127.0.0.1.
	Address string
	// Dir is the server's private directory: keys, config, known_hosts, log.
	Dir string
	// User is the account clients log in as: the user running the test.
	User string

	sshPath        string
	clientKey      string
	knownHostsFile string
	logFile        string

	wrapped bool     // the ForceCommand wrapper is installed
	netns   string   // Options.NetNS
	proc    *process // the running sshd, nil before start
}

// process is one sshd run.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when sshd has exited
	err  error         // how it exited; set before done is closed
}

// Start starts an sshd on a free port of 127.0.0.1 and waits until an ssh
// round-trip through it works. The server is stopped when the test ends. It
// skips the test when sshd or ssh is not installed and fails it, with sshd's
// log, when the server does not come up.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, stop, err := StartServer(t.TempDir(), opts)
	if errors.Is(err, ErrNotInstalled) {
		t.Skip("sshtest: " + err.Error() + "; run make test, which installs openssh-server and openssh-client")
	}
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("sshtest: sshd log (%s):\n%s", s.logFile, s.Log())
		}
	})
	return s
}

// SSHArgs returns the argv of an ssh command that reaches the server, without
// the destination: append UserHost() and the remote command. The command reads
// no ssh_config, uses only the server's client key, never prompts and
// verifies the host key against the server's own known_hosts.
func (s *Server) SSHArgs() []string {
	return []string{
		s.sshPath,
		"-F", "none",
		"-p", strconv.Itoa(s.Port),
		"-i", s.clientKey,
		"-o", "UserKnownHostsFile=" + s.knownHostsFile,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "LogLevel=ERROR",
	}
}

// RshCommand returns SSHArgs as one quoted string, as rsync's -e (--rsh)
// expects. Arguments that need it are single-quoted; the result splits the
// same way in sh and in rsync.
func (s *Server) RshCommand() string {
	args := s.SSHArgs()
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = ShellQuote(a)
	}
	return strings.Join(quoted, " ")
}

// UserHost returns the ssh destination of the server, "user@address"
// ("user@127.0.0.1" by default).
func (s *Server) UserHost() string {
	return s.User + "@" + s.Address
}

// Target returns "user@address:path", the remote path syntax of rsync and
// scp.
func (s *Server) Target(path string) string {
	return s.UserHost() + ":" + path
}

// Command returns an ssh command that runs remote (a command line for the
// login shell) on the server. Its stdio is unset, as exec.Command leaves it.
func (s *Server) Command(ctx context.Context, remote string) *exec.Cmd {
	args := append(s.SSHArgs(), s.UserHost(), remote)
	return exec.CommandContext(ctx, args[0], args[1:]...)
}

// KnownHostsFile returns the known_hosts file SSHArgs trusts.
func (s *Server) KnownHostsFile() string { return s.knownHostsFile }

// ClientKey returns the private key file SSHArgs authenticates with; its
// public half is in authorized_keys.
func (s *Server) ClientKey() string { return s.clientKey }

// Log returns what sshd has logged so far (LogLevel VERBOSE), or a note
// saying why it cannot be read.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return fmt.Sprintf("(cannot read sshd log: %v)", err)
	}
	return string(b)
}

// ShellQuote quotes arg for sh (and for rsync's -e splitting) if it needs
// quoting. A single quote inside is written as '"'"', which both read as a
// literal quote.
func ShellQuote(arg string) string {
	if arg != "" && strings.IndexFunc(arg, needsQuote) < 0 {
		return arg
	}
	return "'" + strings.ReplaceAll(arg, "'", `'"'"'`) + "'"
}

func needsQuote(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("-_./=:,+@%", r)
}

// ensurePrivsepDir creates /run/sshd when it is missing and we may create it.
// Without it sshd refuses to start; that failure, with its log, is clearer
// than a guess here, so a non-root caller just goes on.
func ensurePrivsepDir() error {
	if _, err := os.Stat(privsepDir); err == nil || os.Geteuid() != 0 {
		return nil
	}
	if err := os.Mkdir(privsepDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create privilege separation dir: %w", err)
	}
	// Mkdir's mode is filtered by the umask; sshd wants exactly root:root 0755.
	if err := os.Chmod(privsepDir, 0o755); err != nil {
		return fmt.Errorf("chmod privilege separation dir: %w", err)
	}
	return nil
}

func genKey(keygen, path string) error {
	out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "sshtest", "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("generate key %s: %w: %s", path, err, out)
	}
	return nil
}

// freePort returns a TCP port of addr that was free a moment ago.
func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp4", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type configParams struct {
	address        string
	port           int
	dir            string
	hostKey        string
	authorizedKeys string
	forceCommand   string // already shell-quoted; "" for none
	extra          []string
}

// sshdConfig renders the server's sshd_config.
func sshdConfig(p configParams) string {
	var b strings.Builder
	var matchBlocks []string
	for i, line := range p.extra {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "Match") {
			matchBlocks = p.extra[i:]
			break
		}
		b.WriteString(line + "\n")
	}
	q := configQuote
	sftp := "internal-sftp"
	if st, err := os.Stat(sftpServerPath); err == nil && st.Mode()&0o111 != 0 {
		sftp = sftpServerPath
	}
	fmt.Fprintf(&b, `# Written by goldsync's internal/sshtest.
ListenAddress %s
AddressFamily inet
Port %d
HostKey %s
PidFile %s
AuthorizedKeysFile %s
Subsystem sftp %s
LogLevel VERBOSE
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
GSSAPIAuthentication no
PermitUserEnvironment no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 100
# Classic ECDH: the post-quantum default costs ~100 ms of CPU per connection,
# which adds up over a test suite; nothing above the transport changes.
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
`, p.address, p.port, q(p.hostKey), q(filepath.Join(p.dir, "sshd.pid")), q(p.authorizedKeys), q(sftp))
	if p.forceCommand != "" {
		// ForceCommand takes the rest of the line and hands it to the
		// login shell, so it is shell-quoted, not config-quoted.
		fmt.Fprintf(&b, "ForceCommand %s\n", p.forceCommand)
	}
	for _, line := range matchBlocks {
		b.WriteString(line + "\n")
	}
	return b.String()
}

// configQuote quotes a path for sshd_config, which splits arguments on
// whitespace and honours double quotes.
func configQuote(s string) string {
	if strings.ContainsAny(s, " \t\"'#") {
		return strconv.Quote(s)
	}
	return s
}

// wrapperScript is the ForceCommand that prints Options.ShellNoise and then
// runs Options.ForceCommand or the client's command.
func wrapperScript(opts Options) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Written by goldsync's internal/sshtest.\n")
	fmt.Fprintf(&b, "if [ \"$SSH_ORIGINAL_COMMAND\" = %s ]; then exit 0; fi\n", probeCommand)
	if opts.ShellNoise != "" {
		fmt.Fprintf(&b, "printf '%%s' %s\n", ShellQuote(opts.ShellNoise))
	}
	switch {
	case opts.ForceCommand != "":
		fmt.Fprintf(&b, "exec /bin/sh -c %s\n", ShellQuote(opts.ForceCommand))
	default:
		// No command (an interactive login) gets a plain shell. A
		// subsystem request arrives as the subsystem's configured
		// command, so sftp-server runs after the noise, as it would
		// behind a real noisy .bashrc.
		b.WriteString("if [ -z \"${SSH_ORIGINAL_COMMAND+x}\" ]; then exec /bin/sh; fi\n")
		b.WriteString("exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n")
	}
	return b.String()
}

// start starts sshd in the foreground of its own process group, logging to
// the log file. The child gets SIGKILL if the thread that started it dies, so
// a test binary killed by -timeout leaves no sshd behind; the starting
// goroutine therefore keeps its OS thread until sshd has exited.
func (s *Server) start(cfgFile string) error {
	logf, err := os.Create(s.logFile)
	if err != nil {
		return fmt.Errorf("create log: %w", err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", cfgFile)
	if s.netns != "" {
		// nsenter joins the namespace and execs sshd in the same process
		// (by its absolute path, as sshd wants).
		cmd = exec.Command("nsenter", "--net="+s.netns, SSHDPath, "-D", "-e", "-f", cfgFile)
	}
	cmd.Dir = s.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &process{cmd: cmd, done: make(chan struct{})}
	s.proc = p
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			p.err = err
			close(p.done)
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("run %s: %w", SSHDPath, err)
	}
	return nil
}

// exited reports whether sshd has exited, and how.
func (s *Server) exited() (bool, error) {
	select {
	case <-s.proc.done:
		return true, s.proc.err
	default:
		return false, nil
	}
}

// waitListening waits until the port accepts connections.
func (s *Server) waitListening() error {
	addr := net.JoinHostPort(s.Address, strconv.Itoa(s.Port))
	deadline := time.Now().Add(listenTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if done, err := s.exited(); done {
			return fmt.Errorf("sshd exited before listening: %v", err)
		}
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %d not accepting connections after %v: %w", s.Port, listenTimeout, err)
		}
		time.Sleep(delay)
	}
}

// probe runs one command through ssh and checks that it worked.
func (s *Server) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	remote := "true"
	if s.wrapped {
		remote = probeCommand
	}
	cmd := s.Command(ctx, remote)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (gave up after %v)", err, probeTimeout)
		}
		return fmt.Errorf("ssh %s %s: %w\nssh output:\n%s", s.UserHost(), remote, err, out.Bytes())
	}
	return nil
}

// stop ends sshd: first the per-connection processes it forked (they run in
// sessions of their own, out of reach of the process-group signal), then the
// listener's process group. It waits for the listener to exit.
func (s *Server) stop() {
	if s.proc == nil {
		return
	}
	if done, _ := s.exited(); done {
		return
	}
	pid := s.proc.cmd.Process.Pid
	children := childPIDs(pid)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGTERM)
	}
	select {
	case <-s.proc.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.proc.done
	}
}

// Connections returns the process ids of the connections the listening
// sshd accepted and that are still up (its children), and of every
// process below them (privilege separation, sessions).
func (s *Server) Connections() []int {
	if s.proc == nil {
		return nil
	}
	if done, _ := s.exited(); done {
		return nil
	}
	var all []int
	for next := childPIDs(s.proc.cmd.Process.Pid); len(next) > 0; {
		all = append(all, next...)
		var below []int
		for _, p := range next {
			below = append(below, childPIDs(p)...)
		}
		next = below
	}
	return all
}

// StopListener ends only the listening sshd, as a restart of sshd does:
// the connections it accepted (each in a session of its own) stay up, and
// another sshd can listen on the port. It returns their process ids; the
// caller ends them (the server's stop function no longer does, since the
// listener is gone).
func (s *Server) StopListener() []int {
	if s.proc == nil {
		return nil
	}
	if done, _ := s.exited(); done {
		return nil
	}
	pid := s.proc.cmd.Process.Pid
	children := childPIDs(pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-s.proc.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-s.proc.done
	}
	return children
}

// knownHostsName is how known_hosts names addr:port: the bare address for
// port 22, "[addr]:port" otherwise, as ssh looks it up.
func knownHostsName(addr string, port int) string {
	if port == 22 {
		return addr
	}
	return fmt.Sprintf("[%s]:%d", addr, port)
}

// childPIDs lists the processes whose parent is pid, from /proc.
func childPIDs(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses and may
		// contain anything: state, ppid, ...
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, p)
		}
	}
	return kids
}
