package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the module's root, where the Makefile is.
func repoRoot(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestMakeInstall runs `make install` into a DESTDIR: every path a unit's
// ExecStart names is installed, the package-manager hooks are where their
// tools read them, and the man pages have their own titles, real
// defaults, EXIT STATUS and FILES sections, goldsync.toml(5) and
// goldsync-agent(1) included.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("needs make")
	}
	dest := t.TempDir()
	bin := t.TempDir()
	cmd := exec.Command("make", "-C", repoRoot(t), "install", "DESTDIR="+dest, "BIN="+bin, "HOOKS=all", "PREFIX=/opt/gs")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	exists := func(p string) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	units, _ := filepath.Glob(filepath.Join(dest, "opt/gs/lib/systemd/system/*"))
	if len(units) != 5 {
		t.Errorf("units installed: %v, want 5", units)
	}
	execRE := regexp.MustCompile(`(/[\w/.-]*goldsync[\w-]*)\b`)
	for _, u := range units {
		for _, line := range strings.Split(get(t, u), "\n") {
			if !strings.HasPrefix(line, "ExecStart") {
				continue
			}
			for _, m := range execRE.FindAllString(line, -1) {
				if strings.HasPrefix(m, "/run/") || strings.HasPrefix(m, "/etc/") {
					continue
				}
				if !strings.HasPrefix(m, "/opt/gs/bin/") {
					t.Errorf("%s: %s names %s, not under PREFIX/bin", filepath.Base(u), line, m)
				}
				exists(m)
			}
		}
	}
	for _, p := range []string{"etc/apt/apt.conf.d/99goldsync", "etc/dnf/plugins/post-transaction-actions.d/goldsync.action",
		"usr/lib/yum-plugins/goldsync.py", "etc/yum/pluginconf.d/goldsync.conf", "opt/gs/share/man/man5/goldsync.toml.5",
		"opt/gs/share/man/man1/goldsync-agent.1", "opt/gs/share/man/man1/goldsync-agent-push.1"} {
		exists(p)
	}
	man := filepath.Join(dest, "opt/gs/share/man/man1")
	page := get(t, filepath.Join(man, "goldsync-pull.1"))
	for _, want := range []string{`.TH "GOLDSYNC-PULL" 1`, ".SH EXIT STATUS", ".SH FILES", `\fB\-\-retention\fP \fIduration\fP`, "(default 24h0m0s)",
		`/proc/*`, `\fB23\fP`, "goldsync.toml(5)"} {
		if !strings.Contains(page, want) {
			t.Errorf("goldsync-pull.1 lacks %q", want)
		}
	}
	if strings.Contains(get(t, filepath.Join(man, "goldsync-sync.1")), `.TH "GOLDSYNC" `) {
		t.Error("goldsync-sync.1 is titled GOLDSYNC")
	}
	// A plain make install (an image server, a PREFIX trial) installs no
	// package-manager hook: those belong on the golden node.
	plain := t.TempDir()
	cmd = exec.Command("make", "-C", repoRoot(t), "install", "DESTDIR="+plain, "BIN="+bin, "PREFIX=/opt/gs")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, p := range []string{"etc/apt", "etc/dnf", "etc/yum", "usr/lib/yum-plugins"} {
		if _, err := os.Stat(filepath.Join(plain, p)); err == nil {
			t.Errorf("a plain make install installed %s", p)
		}
	}
	if _, err := exec.LookPath("man"); err == nil {
		for _, p := range []string{filepath.Join(man, "goldsync.1"), filepath.Join(man, "goldsync-agent-push.1"), filepath.Join(dest, "opt/gs/share/man/man5/goldsync.toml.5")} {
			c := exec.Command("man", "--warnings", "-l", p)
			c.Env = append(os.Environ(), "LC_ALL=C", "MANWIDTH=80")
			var e bytes.Buffer
			c.Stderr = &e
			if err := c.Run(); err != nil || e.Len() > 0 {
				t.Errorf("man %s: %v\n%s", filepath.Base(p), err, e.String())
			}
		}
	}
}

// TestMakeToolchainCheck: with a Go older than go.mod's, make says which
// Go is needed and where to get it, instead of go's parse error.
func TestMakeToolchainCheck(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("needs make")
	}
	old := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(old, []byte("#!/bin/sh\n[ \"$1 $2\" = 'env GOVERSION' ] && echo go1.19.8 && exit 0\n[ \"$1\" = version ] && echo 'go version go1.19.8 linux/amd64' && exit 0\necho 'go: errors parsing go.mod' >&2; exit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-C", repoRoot(t), "build", "GO="+old, "BIN="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("make build with Go 1.19 succeeded:\n%s", out)
	}
	for _, want := range []string{"goldsync needs Go 1.", "is Go 1.19.8", "https://go.dev/dl/", "Debian 12"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make's message lacks %q:\n%s", want, out)
		}
	}
}

// TestMakeInstallSysconfdir: the example config goes under PREFIX/etc
// for a PREFIX of its own (a trial writes nothing outside DESTDIR+PREFIX),
// to /etc for the system's prefixes, always beneath DESTDIR.
func TestMakeInstallSysconfdir(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("needs make")
	}
	bin := t.TempDir()
	for _, c := range []struct{ prefix, want, notWant string }{
		{prefix: "/opt/gs", want: "opt/gs/etc/goldsync/goldsync.toml.example", notWant: "etc"},
		{prefix: "/usr/local", want: "etc/goldsync/goldsync.toml.example", notWant: "usr/local/etc"},
	} {
		dest := t.TempDir()
		cmd := exec.Command("make", "-C", repoRoot(t), "install", "DESTDIR="+dest, "BIN="+bin, "PREFIX="+c.prefix)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make install PREFIX=%s: %v\n%s", c.prefix, err, out)
		}
		if _, err := os.Stat(filepath.Join(dest, c.want)); err != nil {
			t.Errorf("PREFIX=%s: example config not at DESTDIR/%s: %v", c.prefix, c.want, err)
		}
		if _, err := os.Stat(filepath.Join(dest, c.notWant)); err == nil {
			t.Errorf("PREFIX=%s: installed DESTDIR/%s", c.prefix, c.notWant)
		}
	}
}
