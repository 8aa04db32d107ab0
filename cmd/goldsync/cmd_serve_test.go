package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goldsync/goldsync/internal/exitcode"
)

// startServe starts "goldsync [global...] serve --rsync-listen
// 127.0.0.1:0 args..." and returns the address it serves on; the server
// is stopped with SIGTERM at cleanup, and must exit 0 then.
func startServe(t *testing.T, global []string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skipf("SKIPPED: stock rsync is not installed: %v", err)
	}
	argv := append(append(append([]string(nil), global...), "serve", "--rsync-listen", "127.0.0.1:0"), args...)
	cmd := exec.Command(goldsyncBin, argv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		go func() {
			for range lines {
			}
		}()
		if err := cmd.Wait(); err != nil {
			t.Errorf("goldsync serve after SIGTERM: %v", err)
		}
	})
	re := regexp.MustCompile(`rsync://(127\.0\.0\.1:\d+)/ read-only`)
	var seen []string
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("goldsync serve exited before serving:\n%s", strings.Join(seen, "\n"))
			}
			seen = append(seen, line)
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case <-timeout:
			t.Fatalf("goldsync serve did not say where it serves:\n%s", strings.Join(seen, "\n"))
		}
	}
}

func rsyncCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command("rsync", args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestServeImageFlag(t *testing.T) {
	img := t.TempDir()
	put(t, filepath.Join(img, "etc", "motd"), "hello from the image\n")
	addr := startServe(t, nil, "--image", "demo="+img)
	out, code := rsyncCmd(t, "rsync://"+addr+"/")
	if code != 0 || !strings.HasPrefix(out, "demo ") {
		t.Errorf("module list: exit %d\n%s", code, out)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if out, code := rsyncCmd(t, "-aH", "--numeric-ids", "rsync://"+addr+"/demo/", dst+"/"); code != 0 {
		t.Fatalf("pull: exit %d\n%s", code, out)
	}
	if got := get(t, filepath.Join(dst, "etc", "motd")); got != "hello from the image\n" {
		t.Errorf("pulled etc/motd = %q", got)
	}
	if out, code := rsyncCmd(t, filepath.Join(img, "etc", "motd"), "rsync://"+addr+"/demo/etc/"); code == 0 || !strings.Contains(out, "read-only") {
		t.Errorf("upload: exit %d\n%s", code, out)
	}
}

func TestServeFromConfig(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	put(t, filepath.Join(a, "which"), "a\n")
	put(t, filepath.Join(b, "which"), "b\n")
	cfg := filepath.Join(base, "goldsync.toml")
	put(t, cfg, fmt.Sprintf("[[image]]\nname = \"rhel9\"\nsource = \"golden:/\"\nroot = %q\n\n[[image]]\nname = \"rocky8\"\nsource = \"golden8:/\"\nroot = %q\n", a, b))
	for _, tc := range []struct {
		name    string
		args    []string
		modules []string
	}{
		{name: "all images", modules: []string{"rhel9", "rocky8"}},
		{name: "one image", args: []string{"rocky8"}, modules: []string{"rocky8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServe(t, []string{"--config", cfg}, tc.args...)
			out, code := rsyncCmd(t, "rsync://"+addr+"/")
			if code != 0 {
				t.Fatalf("module list: exit %d\n%s", code, out)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				got = append(got, strings.Fields(line)[0])
			}
			if strings.Join(got, " ") != strings.Join(tc.modules, " ") {
				t.Errorf("modules %v, want %v", got, tc.modules)
			}
			for _, m := range tc.modules {
				dst := filepath.Join(t.TempDir(), m)
				if out, code := rsyncCmd(t, "-a", "rsync://"+addr+"/"+m+"/which", dst+"/"); code != 0 {
					t.Fatalf("pull %s: exit %d\n%s", m, code, out)
				}
				want := map[string]string{"rhel9": "a\n", "rocky8": "b\n"}[m]
				if got := get(t, filepath.Join(dst, "which")); got != want {
					t.Errorf("%s/which = %q, want %q", m, got, want)
				}
			}
		})
	}
}

// TestServeExportPolicy: the config's [export] table sets the allow-list
// and root-only files are withheld; the flags override both.
func TestServeExportPolicy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to make a root-owned file")
	}
	base := t.TempDir()
	img := filepath.Join(base, "img")
	put(t, filepath.Join(img, "etc", "motd"), "motd\n")
	put(t, filepath.Join(img, "etc", "shadow"), "root:SECRET:1::::::\n")
	if err := os.Chmod(filepath.Join(img, "etc", "shadow"), 0o000); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(base, "goldsync.toml")
	put(t, cfg, fmt.Sprintf("[[image]]\nname = \"img\"\nsource = \"golden:/\"\nroot = %q\n\n[export]\nallow = [\"127.0.0.2\"]\n", img))
	pull := func(addr, from string) (string, int, string) {
		dst := filepath.Join(t.TempDir(), "dst")
		out, code := rsyncCmd(t, "-a", "--address="+from, "rsync://"+addr+"/img/", dst+"/")
		shadow, _ := os.ReadFile(filepath.Join(dst, "etc", "shadow"))
		return out, code, string(shadow)
	}
	addr := startServe(t, []string{"--config", cfg})
	if out, code, _ := pull(addr, "127.0.0.1"); code == 0 || !strings.Contains(out, "allow-list") {
		t.Errorf("pull from 127.0.0.1, not in the config's allow-list: exit %d\n%s", code, out)
	}
	if out, code, shadow := pull(addr, "127.0.0.2"); code != 23 || shadow != "" || !strings.Contains(out, "etc/shadow") {
		t.Errorf("pull from 127.0.0.2: exit %d, etc/shadow %q, want 23 and withheld:\n%s", code, shadow, out)
	}
	addr = startServe(t, []string{"--config", cfg}, "--allow", "127.0.0.1/32", "--serve-root-only")
	if out, code, shadow := pull(addr, "127.0.0.1"); code != 0 || !strings.Contains(shadow, "SECRET") {
		t.Errorf("pull with --allow and --serve-root-only: exit %d, etc/shadow %q:\n%s", code, shadow, out)
	}
}

func TestServeUsage(t *testing.T) {
	img := t.TempDir()
	missing := filepath.Join(t.TempDir(), "none.toml")
	for _, tc := range []struct {
		name string
		args []string
		code int
		say  string
	}{
		{name: "no listener", args: []string{"serve", "--image", "a=" + img}, code: exitcode.Usage, say: "--rsync-listen"},
		{name: "bad port", args: []string{"serve", "--rsync-listen", "127.0.0.1:99999", "--image", "a=" + img}, code: exitcode.Usage, say: "want a number from 0 to 65535"},
		{name: "no port", args: []string{"serve", "--rsync-listen", "127.0.0.1", "--image", "a=" + img}, code: exitcode.Usage, say: "want host:port"},
		{name: "bad image flag", args: []string{"serve", "--rsync-listen", "127.0.0.1:0", "--image", img}, code: exitcode.Usage, say: "NAME=PATH"},
		{name: "bad image name", args: []string{"serve", "--rsync-listen", "127.0.0.1:0", "--image", "-x=" + img}, code: exitcode.Select, say: "must not start"},
		{name: "missing image dir", args: []string{"serve", "--rsync-listen", "127.0.0.1:0", "--image", "a=" + img + "/nope"}, code: exitcode.Select, say: "no such file"},
		{name: "no config", args: []string{"--config", missing, "serve", "--rsync-listen", "127.0.0.1:0"}, code: exitcode.Usage, say: "no config file"},
		{name: "both image kinds", args: []string{"serve", "--rsync-listen", "127.0.0.1:0", "--image", "a=" + img, "b"}, code: exitcode.Usage, say: "not both"},
		{name: "bad allow", args: []string{"serve", "--rsync-listen", "127.0.0.1:0", "--image", "a=" + img, "--allow", "10.0.0.1/8"}, code: exitcode.Usage, say: "host bits"},
		{name: "child by hand", args: []string{rsyncChildCmd}, code: exitcode.Usage, say: "not by hand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := run(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.say) {
				t.Errorf("goldsync %s: exit %d, want %d saying %q:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.say, errs)
			}
		})
	}
}
