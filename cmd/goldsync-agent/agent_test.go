package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/internal/sshtest"
	"github.com/goldsync/goldsync/internal/testbin"
)

// bin holds the goldsync and goldsync-agent binaries TestMain builds.
var bin string

func TestMain(m *testing.M) {
	testbin.Main(m, func(dir string) { bin = dir }, testbin.Goldsync, testbin.Agent)
}

func runAgent(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "goldsync-agent"), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), err
}

func put(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPushLeavesProcOut pushes a golden root with a real procfs mounted on
// its /proc (in a private mount namespace) the way the package-manager
// hooks run it, `goldsync-agent push --to server:/image`: the image gets
// /proc and /sys as empty directories, nothing of their contents; with
// --no-default-excludes the admin gets /sys's contents too.
func TestPushLeavesProcOut(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespace, procfs)")
	}
	srv := sshtest.Start(t, sshtest.Options{})
	base := t.TempDir()
	golden, image, state := filepath.Join(base, "golden"), filepath.Join(base, "image"), filepath.Join(base, "agent-state")
	put(t, filepath.Join(golden, "etc/hostname"), "golden\n")
	put(t, filepath.Join(golden, "sys/kernel/flag"), "1\n")
	put(t, filepath.Join(golden, "run/lock/pid"), "1\n")
	if err := os.MkdirAll(filepath.Join(golden, "proc"), 0o555); err != nil {
		t.Fatal(err)
	}
	push := func(to string, extra ...string) {
		t.Helper()
		script := `mount -t proc proc "$0/proc" && exec "$@"`
		args := []string{"--mount", "--propagation", "private", "sh", "-c", script, golden,
			filepath.Join(bin, "goldsync-agent"), "--root", golden, "--state-dir", state,
			"push", "--to", srv.Target(to), "-e", srv.RshCommand(), "--receiver-path", filepath.Join(bin, "goldsync")}
		cmd := exec.Command("unshare", append(args, extra...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("push: %v\n%s", err, out)
		}
	}
	push(image)
	if _, err := os.Stat(filepath.Join(image, "etc/hostname")); err != nil {
		t.Fatalf("the push did not arrive: %v", err)
	}
	for _, d := range []string{"proc", "sys", "run"} {
		ents, err := os.ReadDir(filepath.Join(image, d))
		if err != nil {
			t.Errorf("image lacks the mount point /%s: %v", d, err)
		}
		if len(ents) > 0 {
			t.Errorf("image /%s holds %d entries (%s...): a default exclude was copied", d, len(ents), ents[0].Name())
		}
	}
	all := filepath.Join(base, "image-all")
	// /proc stays out by the admin's own pattern (reading /proc/kmsg
	// would block).
	push(all, "--no-default-excludes", "--receive-arg=--exclude=/proc/*")
	if _, err := os.Stat(filepath.Join(all, "sys/kernel/flag")); err != nil {
		t.Errorf("--no-default-excludes: %v", err)
	}
}

// TestAgentVersion: goldsync-agent --version answers in goldsync's form.
func TestAgentVersion(t *testing.T) {
	out, _, err := runAgent(t, "--version")
	if err != nil || !regexp.MustCompile(`^goldsync-agent \d+\.\d+\.\d+\S* \(.+\)\n$`).MatchString(out) {
		t.Errorf("goldsync-agent --version: %q, %v", out, err)
	}
}

// TestBootInstallWithoutTheTool: `boot install --initramfs dracut` into a
// root without dracut is an error that says so and writes nothing; with
// --no-regenerate it writes the module and warns.
func TestBootInstallWithoutTheTool(t *testing.T) {
	root := t.TempDir()
	put(t, filepath.Join(root, "usr/sbin/mkinitramfs"), "#!/bin/sh\n")
	_, errs, err := runAgent(t, "--root", root, "boot", "install", "--initramfs", "dracut")
	if err == nil || !strings.Contains(errs, "dracut is not installed in "+root) {
		t.Errorf("boot install --initramfs dracut without dracut: %v\n%s", err, errs)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/lib/dracut")); err == nil {
		t.Error("the failed install wrote the dracut module")
	}
	_, errs, err = runAgent(t, "--root", root, "boot", "install", "--initramfs", "dracut", "--no-regenerate")
	if err != nil || !strings.Contains(errs, "goldsync-agent: warning: dracut is not installed in "+root) {
		t.Errorf("boot install --no-regenerate: %v\n%s", err, errs)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/lib/dracut/modules.d/95goldsync")); err != nil {
		t.Errorf("--no-regenerate wrote no module: %v", err)
	}
}

// TestPushSSHFailureExits255: a remote shell that fails is exit 255, as
// ssh's and goldsync's own (every failure was 1, newcomer trial).
func TestPushSSHFailureExits255(t *testing.T) {
	dir := t.TempDir()
	rsh := filepath.Join(dir, "rsh")
	if err := os.WriteFile(rsh, []byte("#!/bin/sh\necho 'ssh: connect to host server port 22: Connection refused' >&2\nexit 255\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, errs, err := runAgent(t, "--root", dir, "--state-dir", filepath.Join(dir, "state"), "push", "--to", "server:/image", "-e", rsh)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 255 {
		t.Errorf("push over a failing remote shell: %v, want exit 255:\n%s", err, errs)
	}
	if n := strings.Count(errs, "Connection refused"); n != 1 {
		t.Errorf("ssh's message printed %d times, want once:\n%s", n, errs)
	}
	// A message with a terminal escape: printed once, inert.
	if err := os.WriteFile(rsh, []byte("#!/bin/sh\nprintf 'ssh: evil \\033[2J here\\n' >&2\nexit 255\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errs, _ := runAgent(t, "--root", dir, "--state-dir", filepath.Join(dir, "state"), "push", "--to", "server:/image", "-e", rsh); strings.Count(errs, "evil") != 1 || strings.ContainsRune(errs, 0x1b) {
		t.Errorf("ssh's escaped message: want it once and inert:\n%q", errs)
	}
	// A bad argument is still 1.
	if _, errs, err := runAgent(t, "--root", filepath.Join(dir, "none"), "push", "--to", "server:/image", "-e", rsh); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("push with a missing root: %v, want exit 1:\n%s", err, errs)
	}
}
