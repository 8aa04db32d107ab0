//go:build linux

package sshtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// run runs the ssh command cmd and returns its stdout, stderr and exit code
// (-1 if it did not exit normally).
func run(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("%s: %v", cmd, err)
	}
	return o.String(), e.String(), code
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStartRunsCommands(t *testing.T) {
	s := Start(t, Options{})
	ctx := testContext(t)

	out, errOut, code := run(t, s.Command(ctx, "true"))
	if code != 0 || out != "" {
		t.Fatalf("ssh true: exit %d, stdout %q, stderr %q; want exit 0, no output", code, out, errOut)
	}
	out, errOut, code = run(t, s.Command(ctx, "id -un; exit 7"))
	if code != 7 || out != s.User+"\n" {
		t.Errorf("ssh 'id -un; exit 7': exit %d, stdout %q, stderr %q; want exit 7, stdout %q", code, out, errOut, s.User+"\n")
	}
	if !strings.Contains(s.Log(), "Accepted publickey for "+s.User) {
		t.Errorf("sshd log lacks %q:\n%s", "Accepted publickey for "+s.User, s.Log())
	}
	if s.Port <= 0 || s.Port > 65535 {
		t.Errorf("Port = %d, want a TCP port", s.Port)
	}
	if got, want := s.Target("/srv/x"), s.User+"@127.0.0.1:/srv/x"; got != want {
		t.Errorf("Target(/srv/x) = %q, want %q", got, want)
	}
}

// TestRsyncPull pulls a small tree with stock rsync through RshCommand and
// checks that it arrived intact.
func TestRsyncPull(t *testing.T) {
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		t.Skip("sshtest: rsync not installed; run make test, which installs it")
	}
	s := Start(t, Options{})

	src := t.TempDir()
	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	files := []struct {
		path string
		mode fs.FileMode
		data []byte
	}{
		{path: "a.txt", mode: 0o644, data: []byte("hello\n")},
		{path: "dir with space/b.bin", mode: 0o600, data: big},
		{path: "dir with space/empty", mode: 0o640, data: nil},
	}
	for _, f := range files {
		p := filepath.Join(src, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(t.TempDir(), "dst")
	cmd := exec.CommandContext(testContext(t), rsync, "-a", "-e", s.RshCommand(), s.Target(src+"/"), dst+"/")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}

	if got, want := listTree(t, dst), listTree(t, src); got != want {
		t.Errorf("pulled tree differs\ngot:\n%s\nwant:\n%s", got, want)
	}
}

// listTree describes a tree, one line an entry: path, mode, and content or
// link target.
func listTree(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v", rel, fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %d bytes %x", len(data), data[:min(len(data), 16)])
			if len(data) > 16 {
				fmt.Fprintf(&b, " sum %d", sum(data))
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " -> %s", target)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", root, err)
	}
	return b.String()
}

func sum(data []byte) uint64 {
	var h uint64 = 14695981039346656037 // FNV-1a
	for _, c := range data {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// withKnownHosts returns args with its UserKnownHostsFile replaced by file.
func withKnownHosts(t *testing.T, args []string, file string) []string {
	t.Helper()
	out := append([]string(nil), args...)
	for i, a := range out {
		if strings.HasPrefix(a, "UserKnownHostsFile=") {
			out[i] = "UserKnownHostsFile=" + file
			return out
		}
	}
	t.Fatalf("no UserKnownHostsFile in %q", args)
	return nil
}

func TestHostKeyIsChecked(t *testing.T) {
	s := Start(t, Options{})
	right, err := os.ReadFile(s.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(t.TempDir(), "other")
	if err := genKey("ssh-keygen", otherKey); err != nil {
		t.Fatal(err)
	}
	otherPub, err := os.ReadFile(otherKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		knownHosts string
		wantCode   int
		wantStderr string // substring
	}{
		{name: "matching key", knownHosts: string(right), wantCode: 0},
		{
			name:       "changed key",
			knownHosts: fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, otherPub),
			wantCode:   255,
			wantStderr: "REMOTE HOST IDENTIFICATION HAS CHANGED",
		},
		{
			name:       "unknown host",
			knownHosts: "",
			wantCode:   255,
			wantStderr: "Host key verification failed",
		},
		{
			name:       "right key for another port",
			knownHosts: strings.Replace(string(right), fmt.Sprintf(":%d ", s.Port), fmt.Sprintf(":%d ", s.Port+1), 1),
			wantCode:   255,
			wantStderr: "Host key verification failed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(kh, []byte(tc.knownHosts), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append(withKnownHosts(t, s.SSHArgs(), kh), s.UserHost(), "echo reached")
			_, errOut, code := run(t, exec.CommandContext(testContext(t), args[0], args[1:]...))
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantStderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d, stderr containing %q", code, errOut, tc.wantCode, tc.wantStderr)
			}
		})
	}
}

func TestWrapper(t *testing.T) {
	const noise = "Welcome to node004\n"
	tests := []struct {
		name     string
		opts     Options
		remote   string
		wantOut  string
		wantCode int
	}{
		{name: "noise before command", opts: Options{ShellNoise: noise}, remote: "echo hello", wantOut: noise + "hello\n"},
		{
			name:    "noise keeps the command's quoting",
			opts:    Options{ShellNoise: noise},
			remote:  `printf '%s|' 'a  b' "c'd" && exit 3`,
			wantOut: noise + "a  b|c'd|", wantCode: 3,
		},
		{name: "noise without newline", opts: Options{ShellNoise: "% 'quoted' $HOME"}, remote: "echo x", wantOut: "% 'quoted' $HOMEx\n"},
		{
			name:    "forced command sees original",
			opts:    Options{ForceCommand: `echo forced; echo "$SSH_ORIGINAL_COMMAND"`},
			remote:  "echo ignored",
			wantOut: "forced\necho ignored\n",
		},
		{
			name:    "noise then forced command",
			opts:    Options{ShellNoise: noise, ForceCommand: "echo forced"},
			remote:  "anything",
			wantOut: noise + "forced\n",
		},
		{
			// The readiness probe must not run the forced command.
			name:     "failing forced command",
			opts:     Options{ForceCommand: "exit 9"},
			remote:   "true",
			wantCode: 9,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each case has its own server; most of the time is spent waiting on ssh
			s := Start(t, tc.opts)
			out, errOut, code := run(t, s.Command(testContext(t), tc.remote))
			if out != tc.wantOut || code != tc.wantCode {
				t.Errorf("ssh %q: exit %d, stdout %q (stderr %q); want exit %d, stdout %q", tc.remote, code, out, errOut, tc.wantCode, tc.wantOut)
			}
		})
	}
}

func TestTwoServers(t *testing.T) {
	a := Start(t, Options{ShellNoise: "I am a\n"})
	b := Start(t, Options{ShellNoise: "I am b\n"})
	if a.Port == b.Port || a.Dir == b.Dir {
		t.Fatalf("servers share port or dir: a %d %s, b %d %s", a.Port, a.Dir, b.Port, b.Dir)
	}
	ctx := testContext(t)
	for _, tc := range []struct {
		name string
		s    *Server
		want string
	}{
		{name: "a", s: a, want: "I am a\n"},
		{name: "b", s: b, want: "I am b\n"},
	} {
		if out, errOut, code := run(t, tc.s.Command(ctx, "true")); out != tc.want || code != 0 {
			t.Errorf("server %s: exit %d, stdout %q (stderr %q); want exit 0, stdout %q", tc.name, code, out, errOut, tc.want)
		}
	}

	// a's client trusts only a's host key.
	args := append(withKnownHosts(t, b.SSHArgs(), a.KnownHostsFile()), b.UserHost(), "true")
	if _, errOut, code := run(t, exec.CommandContext(ctx, args[0], args[1:]...)); code != 255 || !strings.Contains(errOut, "Host key verification failed") {
		t.Errorf("b with a's known_hosts: exit %d, stderr:\n%s\nwant a host key failure", code, errOut)
	}
}

// TestSFTPSubsystem checks that the sftp subsystem answers, and that shell
// noise breaks it the way a noisy .bashrc breaks real sftp.
func TestSFTPSubsystem(t *testing.T) {
	sftp, err := exec.LookPath("sftp")
	if err != nil {
		t.Skip("sshtest: sftp not installed; run make test, which installs openssh-client")
	}
	tests := []struct {
		name       string
		opts       Options
		wantCode   int
		wantOutput string // substring of stdout+stderr
	}{
		{name: "plain", wantCode: 0, wantOutput: "/etc/hostname"},
		{name: "noisy shell", opts: Options{ShellNoise: "Welcome to node004\n"}, wantCode: 255, wantOutput: "Received message too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Start(t, tc.opts)
			cmd := exec.CommandContext(testContext(t), sftp, "-b", "-", "-F", "none", "-P", fmt.Sprint(s.Port),
				"-i", s.ClientKey(), "-o", "UserKnownHostsFile="+s.KnownHostsFile(), "-o", "BatchMode=yes", s.UserHost())
			cmd.Stdin = strings.NewReader("ls /etc/hostname\n")
			out, errOut, code := run(t, cmd)
			if code != tc.wantCode || !strings.Contains(out+errOut, tc.wantOutput) {
				t.Errorf("sftp: exit %d, output:\n%s%s\nwant exit %d, output containing %q", code, out, errOut, tc.wantCode, tc.wantOutput)
			}
		})
	}
}

// fatalTB records the first Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartFailureShowsLog(t *testing.T) {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f, Options{ExtraConfig: []string{"NoSuchKeyword yes"}})
	}()
	<-done
	for _, want := range []string{"sshtest: start sshd", "sshd log", "NoSuchKeyword"} {
		if !strings.Contains(f.msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, f.msg)
		}
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain path", in: "/tmp/x-1_2.key", want: "/tmp/x-1_2.key"},
		{name: "option", in: "UserKnownHostsFile=/a/b", want: "UserKnownHostsFile=/a/b"},
		{name: "empty", in: "", want: "''"},
		{name: "space", in: "a b", want: "'a b'"},
		{name: "dollar", in: "$HOME", want: "'$HOME'"},
		{name: "single quote", in: "it's", want: `'it'"'"'s'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ShellQuote(tc.in)
			if got != tc.want {
				t.Errorf("ShellQuote(%q) = %s, want %s", tc.in, got, tc.want)
			}
			out, err := exec.Command("/bin/sh", "-c", "printf %s "+got).Output()
			if err != nil || string(out) != tc.in {
				t.Errorf("sh reads %s as %q (%v), want %q", got, out, err, tc.in)
			}
		})
	}
}

func TestSSHDConfigExtraOrder(t *testing.T) {
	cfg := sshdConfig(configParams{
		port:         2222,
		dir:          "/d",
		hostKey:      "/d/host key",
		forceCommand: "/d/w.sh",
		extra:        []string{"LogLevel DEBUG3", "Match User nobody", "  ForceCommand /bin/false"},
	})
	lines := strings.Split(cfg, "\n")
	index := func(line string) int {
		for i, l := range lines {
			if l == line {
				return i
			}
		}
		t.Fatalf("config lacks line %q:\n%s", line, cfg)
		return -1
	}
	for _, tc := range []struct {
		name, before, after string
	}{
		{name: "extra overrides defaults", before: "LogLevel DEBUG3", after: "LogLevel VERBOSE"},
		{name: "match blocks come last", before: "ForceCommand /d/w.sh", after: "Match User nobody"},
		{name: "match block kept whole", before: "Match User nobody", after: "  ForceCommand /bin/false"},
		{name: "paths with spaces quoted", before: "Port 2222", after: `HostKey "/d/host key"`},
	} {
		if index(tc.before) > index(tc.after) {
			t.Errorf("%s: %q comes after %q:\n%s", tc.name, tc.before, tc.after, cfg)
		}
	}
}
