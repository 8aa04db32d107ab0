package e2e

import (
	"bufio"
	"context"
	"errors"
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

// vmOptions describe one diskless node booted by QEMU.
type vmOptions struct {
	Name      string // for file names and logs
	MAC       string // the NIC's MAC address
	DHCPStart string // the address QEMU's DHCP hands out: the node's IP
	TFTP      string // TFTP root: goldsync's tftpboot directory
	Bootfile  string // DHCP filename, relative to TFTP
	UEFI      bool   // OVMF instead of SeaBIOS
	Memory    string // default 1024M
}

// vm is a QEMU guest with its console logged to a file and a command
// channel on its second serial port.
type vm struct {
	t       *testing.T
	opts    vmOptions
	cmd     *exec.Cmd
	dir     string
	console string
	sock    string

	bootMark int

	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
	seq  int
}

// startVM boots a node in the namespace n.
func startVM(t *testing.T, n *netns, dir string, o vmOptions) *vm {
	t.Helper()
	if o.Memory == "" {
		o.Memory = "1024M"
	}
	v := &vm{t: t, opts: o, dir: dir,
		console: filepath.Join(dir, o.Name+".console.log"),
		sock:    filepath.Join(dir, o.Name+".cmd.sock")}
	os.Remove(v.sock)
	args := []string{
		"-machine", "pc", "-accel", "tcg", "-m", o.Memory, "-smp", "1",
		"-display", "none", "-monitor", "none",
		"-netdev", fmt.Sprintf("user,id=n0,net=10.0.2.0/24,dhcpstart=%s,tftp=%s,bootfile=%s", o.DHCPStart, o.TFTP, o.Bootfile),
		"-device", "e1000,netdev=n0,mac=" + o.MAC,
		"-boot", "n",
		"-serial", "file:" + v.console,
		"-serial", "unix:" + v.sock + ",server=on,wait=off",
	}
	if o.UEFI {
		vars := filepath.Join(dir, o.Name+".OVMF_VARS.fd")
		run(t, "cp", "/usr/share/OVMF/OVMF_VARS_4M.fd", vars)
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
			"-drive", "if=pflash,format=raw,file="+vars)
	}
	v.cmd = n.command(context.Background(), "qemu-system-x86_64", args...)
	qlog, err := os.Create(filepath.Join(dir, o.Name+".qemu.log"))
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.Stdout, v.cmd.Stderr = qlog, qlog
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	t.Cleanup(func() {
		v.stop()
		qlog.Close()
		if t.Failed() {
			b, _ := os.ReadFile(v.console)
			t.Logf("%s console (last 6000 bytes):\n%s", o.Name, tail(b, 6000))
		}
	})
	return v
}

func (v *vm) stop() {
	v.mu.Lock()
	if v.conn != nil {
		v.conn.Close()
		v.conn = nil
	}
	v.mu.Unlock()
	if v.cmd != nil && v.cmd.Process != nil {
		v.cmd.Process.Kill()
		v.cmd.Wait()
		v.cmd = nil
	}
}

// consoleText returns what the node printed on its console so far.
func (v *vm) consoleText() string {
	b, _ := os.ReadFile(v.console)
	return string(b)
}

// markBoot notes where the console log stands, so that waitUp waits for
// a boot after this point (a reboot).
func (v *vm) markBoot() { v.bootMark = len(v.consoleText()) }

// waitUp waits until the node has booted to multi-user (the console's
// getty prompts for a login after the last markBoot) and its command
// channel answers, and returns how long it took. Nothing is sent on the
// channel before the login prompt: keys typed at a boot loader or
// firmware prompt would stop it.
func (v *vm) waitUp(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return time.Since(start), fmt.Errorf("%s did not come up: %w; console ends with:\n%s", v.opts.Name, err, tail([]byte(v.consoleText()), 3000))
		}
		text := v.consoleText()
		if len(text) < v.bootMark {
			v.bootMark = 0
		}
		text = text[v.bootMark:]
		if strings.Contains(text, "Kernel panic") {
			return time.Since(start), fmt.Errorf("%s: kernel panic:\n%s", v.opts.Name, tail([]byte(text), 3000))
		}
		if !strings.Contains(text, " login: ") {
			time.Sleep(time.Second)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, _, err := v.run(cctx, "echo up")
		cancel()
		if err == nil && strings.TrimSpace(out) == "up" {
			return time.Since(start), nil
		}
		time.Sleep(2 * time.Second)
	}
}

// connect (re)opens the command channel.
func (v *vm) connect() error {
	if v.conn != nil {
		return nil
	}
	c, err := net.Dial("unix", v.sock)
	if err != nil {
		return err
	}
	v.conn, v.r = c, bufio.NewReader(c)
	return nil
}

var errChannel = errors.New("command channel")

// run runs one shell line on the node and returns its output (stdout and
// stderr) and exit status.
func (v *vm) run(ctx context.Context, line string) (string, int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if strings.ContainsAny(line, "\n\r") {
		return "", -1, fmt.Errorf("%w: one line at a time", errChannel)
	}
	if err := v.connect(); err != nil {
		return "", -1, fmt.Errorf("%w: %v", errChannel, err)
	}
	v.seq++
	begin := fmt.Sprintf("@@B%d@@", v.seq)
	end := fmt.Sprintf("@@E%d ", v.seq)
	full := fmt.Sprintf("echo %s; { %s ; } 2>&1; echo \"%s$?@@\"\n", begin, line, end)
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(10 * time.Minute)
	}
	v.conn.SetDeadline(dl)
	if _, err := v.conn.Write([]byte(full)); err != nil {
		v.conn.Close()
		v.conn = nil
		return "", -1, fmt.Errorf("%w: %v", errChannel, err)
	}
	var out strings.Builder
	started := false
	for {
		l, err := v.r.ReadString('\n')
		if err != nil {
			v.conn.Close()
			v.conn = nil
			return out.String(), -1, fmt.Errorf("%w: %v", errChannel, err)
		}
		l = strings.TrimRight(l, "\r\n")
		if !started {
			if strings.HasSuffix(l, begin) {
				started = true
			}
			continue
		}
		if i := strings.Index(l, end); i >= 0 {
			out.WriteString(l[:i])
			rc, _ := strconv.Atoi(strings.TrimSuffix(l[i+len(end):], "@@"))
			return out.String(), rc, nil
		}
		out.WriteString(l)
		out.WriteByte('\n')
	}
}

// sh runs a line that must succeed and returns its trimmed output.
func (v *vm) sh(line string) string {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, rc, err := v.run(ctx, line)
	if err != nil || rc != 0 {
		v.t.Fatalf("%s: %q: exit %d, %v\n%s", v.opts.Name, line, rc, err, out)
	}
	return strings.TrimSpace(out)
}
