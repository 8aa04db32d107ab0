package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cacheDir is where golden roots are kept between runs.
func cacheDir() string {
	if d := os.Getenv("GOLDSYNC_E2E_CACHE"); d != "" {
		return d
	}
	return "/var/cache/goldsync-e2e"
}

// goldenBase returns the cached pristine golden root of a flavour
// ("initramfs-tools" or "dracut"), building it with testdata/mkgolden.sh
// the first time. A flock serializes builders.
func goldenBase(t *testing.T, flavour string) string {
	t.Helper()
	script, err := filepath.Abs("testdata/mkgolden.sh")
	if err != nil {
		t.Fatal(err)
	}
	recipe, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	// The cache is keyed by the recipe: a changed mkgolden.sh builds anew.
	sum := sha256.Sum256(recipe)
	dir := filepath.Join(cacheDir(), fmt.Sprintf("bookworm-%s-%x", flavour, sum[:4]))
	if err := os.MkdirAll(cacheDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir(), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "boot")); err == nil {
		return dir
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	start := time.Now()
	out, err := exec.Command(script, flavour, tmp).CombinedOutput()
	if err != nil {
		tail := out
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		t.Fatalf("building the %s golden root (debootstrap; needs the Debian mirror): %v\n%s", flavour, err, tail)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the %s golden root in %s (cached in %s)", flavour, time.Since(start).Round(time.Second), dir)
	return dir
}

// newGolden copies the cached golden root of a flavour to dir and turns it
// into the test's golden node: its host name, the test's command channel
// on ttyS1, a long-running program for the live-update check, and
// goldsync's boot piece installed with its documented command.
func newGolden(t *testing.T, flavour, dir string) {
	t.Helper()
	base := goldenBase(t, flavour)
	run(t, "cp", "-a", "--reflink=auto", base, dir)
	write := func(rel, data string, mode os.FileMode) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	agent, err := os.ReadFile("testdata/e2e-agent")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("testdata/e2e-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	write("usr/local/sbin/e2e-agent", string(agent), 0o755)
	write("etc/systemd/system/e2e-agent.service", string(unit), 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "etc/systemd/system/multi-user.target.wants"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "etc/systemd/system/multi-user.target.wants/e2e-agent.service"))
	if err := os.Symlink("/etc/systemd/system/e2e-agent.service", filepath.Join(dir, "etc/systemd/system/multi-user.target.wants/e2e-agent.service")); err != nil {
		t.Fatal(err)
	}
	write("etc/hostname", "golden\n", 0o644)
	write("usr/share/e2e/probe", "version 1\n", 0o644)
	run(t, "cp", "/bin/sleep", filepath.Join(dir, "usr/local/bin/e2e-hold"))
	if flavour == "initramfs-tools" {
		// The test's golden node never boots from its own disk, so its
		// initramfs needs only what a network boot does: MODULES=netboot
		// (NIC drivers and NFS) builds in a fraction of MODULES=most's
		// time and transfers faster over TFTP. A real golden node keeps the
		// default, MODULES=most, which has all of that too.
		write("etc/initramfs-tools/conf.d/e2e-netboot", "MODULES=netboot\n", 0o644)
	}
	// The documented command: goldsync-agent boot install, here for a root
	// that is not "/" (the initramfs tool runs in a chroot of it).
	out := run(t, filepath.Join(binDir, "goldsync-agent"), "--root", dir, "boot", "install")
	t.Logf("goldsync-agent boot install:\n%s", out)
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
