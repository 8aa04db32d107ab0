package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/internal/exitcode"
)

// The newcomer trial's last findings, each through the built binary.

// TestRollbackWithoutGen: rollback DIR without GEN names what is missing
// and where to find it, with the usage code.
func TestRollbackWithoutGen(t *testing.T) {
	dir := t.TempDir()
	_, errs, code := run(t, "rollback", dir)
	if code != exitcode.Usage || !strings.Contains(errs, "GEN") || !strings.Contains(errs, "goldsync generations "+dir) {
		t.Errorf("rollback DIR: exit %d, want %d, a message naming GEN and goldsync generations %s:\n%s", code, exitcode.Usage, dir, errs)
	}
}

// TestStatusNeverSynced: an image no sync ever completed is "never
// synced" in the table and fails the check, without --max-age too.
func TestStatusNeverSynced(t *testing.T) {
	c := newCluster(t, false)
	out, errs, code := gs(t, "--config", c.config, "status")
	if code != exitcode.Timeout || !strings.Contains(out, "never synced") || !strings.Contains(errs, "rhel9") {
		t.Errorf("status of an image never synced: exit %d, want %d and \"never synced\"\nstdout:\n%s\nstderr:\n%s", code, exitcode.Timeout, out, errs)
	}
}

// TestStatusOfDirectory: status DIR shows the config's image whose root
// DIR is; a directory of no config image is told so, not looked up as a
// name.
func TestStatusOfDirectory(t *testing.T) {
	c := newCluster(t, false)
	if err := os.MkdirAll(c.root, 0o755); err != nil {
		t.Fatal(err)
	}
	out, errs, _ := gs(t, "--config", c.config, "status", c.root)
	if !strings.HasPrefix(strings.SplitN(out, "\n", 2)[min(1, strings.Count(out, "\n"))], "rhel9 ") {
		t.Errorf("status %s: want the row of image rhel9\nstdout:\n%s\nstderr:\n%s", c.root, out, errs)
	}
	plain := t.TempDir()
	_, errs, code := gs(t, "--config", c.config, "status", plain)
	if code != exitcode.Select || !strings.Contains(errs, "is not an image") || strings.Contains(errs, "no image \""+plain) {
		t.Errorf("status of a plain directory: exit %d, want %d and \"is not an image\":\n%s", code, exitcode.Select, errs)
	}
}

// TestRenderHintsOnlyWhereTheyApply: render's "(or give --nodes)" and
// "(or give --image ...)" come only when the config is missing, not when
// it is wrong or --replica needs it.
func TestRenderHintsOnlyWhereTheyApply(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.toml")
	if err := os.WriteFile(broken, []byte("[cluster\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.toml")
	for _, c := range []struct {
		args []string
		hint bool
	}{
		{args: []string{"--config", missing, "render", "dhcpd"}, hint: true},
		{args: []string{"--config", broken, "render", "dhcpd"}},
		{args: []string{"--config", missing, "render", "exports"}, hint: true},
		{args: []string{"--config", broken, "render", "exports"}},
		{args: []string{"--config", missing, "render", "exports", "--replica", "rack2"}},
		{args: []string{"--config", broken, "render", "ganesha"}},
	} {
		_, errs, code := run(t, c.args...)
		if code != exitcode.Usage || strings.Contains(errs, "(or give") != c.hint {
			t.Errorf("goldsync %s: exit %d, want %d, hint %v:\n%s", strings.Join(c.args, " "), code, exitcode.Usage, c.hint, errs)
		}
	}
}

// TestWrongArgumentCountShowsUsage: a missing or extra argument names the
// command's usage line, not only cobra's "accepts 2 arg(s)" (newcomer
// trial), and keeps the usage exit code.
func TestWrongArgumentCountShowsUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pull", "/nonexistent"}, "usage: goldsync pull [flags] SRC DEST"},
		{[]string{"verify", "a", "b"}, "usage: goldsync verify [flags] IMAGE"},
		// cobra's help command exits 0 for a topic that is no command.
		{[]string{"help", "frobnicate"}, `no help topic "frobnicate"`},
		{[]string{"--log-format", "xml", "status"}, `--log-format "xml": want text or json`},
		{[]string{"receive", "--stdio", "--streams", "4", "/nonexistent/d"}, "receive: --streams is pull's"},
	} {
		_, errs, code := run(t, tc.args...)
		if code != exitcode.Usage || !strings.Contains(errs, tc.want) {
			t.Errorf("goldsync %s: exit %d, want %d and %q:\n%s", strings.Join(tc.args, " "), code, exitcode.Usage, tc.want, errs)
		}
	}
}

// TestPullTimeoutZeroAndNegative: --timeout 0 means no timeout, as
// rsync's (it silently meant the protocol's 60 s default), and a negative
// one is a usage error before anything is made (it was accepted silently),
// as is a --streams out of 0 (1) to 64.
func TestPullTimeoutZeroAndNegative(t *testing.T) {
	dir := t.TempDir()
	src, dest := filepath.Join(dir, "src"), filepath.Join(dir, "dest")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := run(t, "pull", "--timeout", "-5", src, dest)
	if code != exitcode.Usage || !strings.Contains(errs, "--timeout") {
		t.Errorf("--timeout -5: exit %d, want %d and a message naming --timeout:\n%s", code, exitcode.Usage, errs)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Errorf("--timeout -5 made %s: %v", dest, err)
	}
	for _, n := range []string{"-1", "65"} { // were accepted silently
		_, errs, code := run(t, "pull", "--streams", n, src, dest)
		if code != exitcode.Usage || !strings.Contains(errs, "--streams "+n+": want 1 to 64") {
			t.Errorf("--streams %s: exit %d, want %d and a message naming --streams:\n%s", n, code, exitcode.Usage, errs)
		}
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Errorf("a bad --streams made %s: %v", dest, err)
	}
	if _, errs, code := run(t, "pull", "--no-progress", "--timeout", "0", src, dest); code != 0 {
		t.Errorf("--timeout 0: exit %d:\n%s", code, errs)
	}
}

// TestBadNumberFlag: a flag wanting a number says so, not strconv's
// "parsing "abc": invalid syntax" (newcomer trial).
func TestBadNumberFlag(t *testing.T) {
	_, errs, code := run(t, "pull", "--max-delete", "abc", "/nonexistent/src", "/nonexistent/dest")
	if code != exitcode.Usage || !strings.Contains(errs, `"--max-delete"`) || !strings.Contains(errs, "want a number") || strings.Contains(errs, "strconv") {
		t.Errorf("--max-delete abc: exit %d, want %d and \"want a number\" without strconv:\n%s", code, exitcode.Usage, errs)
	}
}

// TestMissingImageSaysSo: an image directory that is not there is named
// as such (newcomer trial: os add said the derived location "/" was not
// a path below /, verify that there was no manifest in /.NAME.goldsync).
func TestMissingImageSaysSo(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent")
	for _, args := range [][]string{
		{"os", "add", "x", "--image", missing, "--nfs-server", "10.8.0.2", "--tftpboot", t.TempDir()},
		{"verify", missing},
	} {
		_, errs, code := run(t, args...)
		if code != exitcode.Select || !strings.Contains(errs, "stat "+missing+": no such file or directory") {
			t.Errorf("goldsync %s: exit %d, want %d and the missing image named:\n%s", strings.Join(args, " "), code, exitcode.Select, errs)
		}
	}
}
