package main

// The admin's first hour (issue #16): each test runs the built binary as a
// new admin would, and each fails on the code before the fix.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/sshtest"
)

// needRoot skips a test that mounts or chroots.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespace, procfs, chroot)")
	}
}

// chrootGoldsync prepares root to run goldsync inside it: the binary and
// the dynamic loader and libraries it needs under root/tmp (a default
// exclude), and returns the command line that runs it there.
func chrootGoldsync(t *testing.T, root string) []string {
	t.Helper()
	lib := filepath.Join(root, "tmp/lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, goldsyncBin, filepath.Join(root, "tmp/goldsync"), 0o755)
	out, err := exec.Command("ldd", goldsyncBin).Output()
	if err != nil {
		// A static binary needs nothing else.
		return []string{"/tmp/goldsync"}
	}
	var loader string
	for _, m := range regexp.MustCompile(`(/\S+\.so[.\d]*)`).FindAllString(string(out), -1) {
		copyFile(t, m, filepath.Join(lib, filepath.Base(m)), 0o755)
		if strings.Contains(filepath.Base(m), "ld-linux") {
			loader = "/tmp/lib/" + filepath.Base(m)
		}
	}
	if loader == "" {
		t.Fatalf("no dynamic loader in ldd's output:\n%s", out)
	}
	return []string{loader, "--library-path", "/tmp/lib", "/tmp/goldsync"}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPullRootDefaultExcludes pulls a golden root that has a real procfs
// mounted on /proc (in a private mount namespace, the root being a chroot):
// a bare `pull -n -i / DEST` plans no /proc, /sys, /dev, /run or /tmp
// contents (their directories stay), and --no-default-excludes plans them.
func TestPullRootDefaultExcludes(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	for _, d := range []string{"proc", "sys/kernel", "dev/pts", "run/lock", "var/tmp/x", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	put(t, filepath.Join(root, "etc/hostname"), "golden\n")
	put(t, filepath.Join(root, "run/lock/pid"), "1\n")
	put(t, filepath.Join(root, "var/tmp/x/scratch"), "tmp\n")
	put(t, filepath.Join(root, "sys/kernel/flag"), "1\n")
	gs := chrootGoldsync(t, root)
	pull := func(extra ...string) (string, string) {
		t.Helper()
		// Mount procfs on ROOT/proc in a private mount namespace, then
		// run goldsync chrooted into ROOT, so its source is "/".
		script := `mount -t proc proc "$0/proc" && exec chroot "$0" "$@"`
		args := append([]string{"--mount", "--propagation", "private", "sh", "-c", script, root}, gs...)
		args = append(args, "pull", "-n", "-i")
		args = append(args, extra...)
		args = append(args, "/", "/tmp/image")
		cmd := exec.Command("unshare", args...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("pull %v: %v\nstdout:\n%.2000s\nstderr:\n%s", extra, err, o.String(), e.String())
		}
		return o.String(), e.String()
	}
	out, _ := pull()
	var planned []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(line, "goldsync:") {
			continue
		}
		p := f[len(f)-1]
		for _, d := range []string{"proc/", "sys/", "dev/", "run/", "tmp/", "var/tmp/"} {
			if strings.HasPrefix(p, d) && p != d {
				planned = append(planned, line)
			}
		}
	}
	if len(planned) > 0 {
		t.Errorf("%d entries of default excludes planned, the first: %q", len(planned), planned[:min(5, len(planned))])
	}
	for _, want := range []string{" etc/hostname", " proc/", " sys/", " var/tmp/"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	// The admin's choice wins: everything is planned, /proc's contents too.
	out, _ = pull("--no-default-excludes", "--exclude", "/proc/[0-9]*/", "--exclude", "/tmp/*")
	for _, want := range []string{" proc/cpuinfo\n", " sys/kernel/flag\n", " run/lock/pid\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("--no-default-excludes plan lacks %q", want)
		}
	}
}

// TestPullExitCodesAndNothingLeftBehind: every source or destination
// selection error exits 3, a bad pattern exits 1 naming where it came
// from, and none of them creates DEST or its state dir.
func TestPullExitCodesAndNothingLeftBehind(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	put(t, filepath.Join(src, "etc/hostname"), "golden\n")
	put(t, filepath.Join(dir, "afile"), "x")
	put(t, filepath.Join(dir, "excludes"), "/proc/*\n\n# comment\n/var/[cache\n")
	dest := filepath.Join(dir, "image")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{name: "missing source", args: []string{filepath.Join(dir, "nope"), dest}, code: exitcode.Select, stderr: "no such file or directory"},
		{name: "file as source", args: []string{filepath.Join(dir, "afile"), dest}, code: exitcode.Select, stderr: "is not a directory"},
		{name: "file as DEST", args: []string{src, filepath.Join(dir, "afile")}, code: exitcode.Select, stderr: "destination " + filepath.Join(dir, "afile") + " is not a directory"},
		{name: "DEST's parent missing", args: []string{src, filepath.Join(dir, "no/such/image")}, code: exitcode.Select, stderr: "no such file or directory"},
		{name: "bad --exclude", args: []string{"--exclude", "/var/[x", src, dest}, code: exitcode.Usage, stderr: `--exclude #1: bad exclude pattern "/var/[x"`},
		{name: "bad --exclude-from line", args: []string{"--exclude-from", filepath.Join(dir, "excludes"), src, dest}, code: exitcode.Usage,
			stderr: filepath.Join(dir, "excludes") + `:4: bad exclude pattern "/var/[cache"`},
		{name: "bad --timeout", args: []string{"--timeout", "soon", src, dest}, code: exitcode.Usage},
		{name: "--delete with --no-delete", args: []string{"--delete", "--no-delete", src, dest}, code: exitcode.Usage},
		{name: "DEST inside SRC", args: []string{src, filepath.Join(src, "img")}, code: exitcode.Select, stderr: "is inside SRC " + src + ": the pull would copy the image into itself"},
		{name: "SRC inside DEST", args: []string{src, dir}, code: exitcode.Select, stderr: "is inside DEST"},
		{name: "SRC as DEST", args: []string{src + "/", src}, code: exitcode.Select, stderr: "is SRC itself"},
		{name: "-c is not rsync's --checksum nor a config", args: []string{"-c", "-n", src, dest}, code: exitcode.Usage, stderr: "unknown shorthand flag: 'c'"},
		{name: "missing remote path", args: []string{"-e", fakeSSH(t), "--agent-path", agentBin(t), "golden:" + filepath.Join(dir, "nope"), dest},
			code: exitcode.Select, stderr: "source: open " + filepath.Join(dir, "nope")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := run(t, append([]string{"pull"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errs)
			}
			if !strings.Contains(errs, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, errs)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if n := e.Name(); n != "src" && n != "afile" && n != "excludes" && n != "bin" {
					t.Errorf("left behind: %s", n)
				}
			}
			if ents, _ := os.ReadDir(src); len(ents) != 1 {
				t.Errorf("left behind in SRC: %v", ents)
			}
		})
	}
}

// agentBin builds goldsync-agent beside goldsync once.
func agentBin(t *testing.T) string {
	t.Helper()
	return filepath.Join(filepath.Dir(clusterBins(t)), "goldsync-agent")
}

// fakeSSH is an -e command that runs the remote command locally: the
// host argument is dropped.
func fakeSSH(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fakessh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nshift\nexec sh -c \"$*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPullRsyncMuscleMemory: an rsync command line works after renaming
// the command; --timeout takes seconds; --max-delete=0 deletes nothing
// and warns; --version answers.
func TestPullRsyncMuscleMemory(t *testing.T) {
	dir := t.TempDir()
	src, dest := filepath.Join(dir, "src"), filepath.Join(dir, "image")
	put(t, filepath.Join(src, "etc/hostname"), "golden\n")
	put(t, filepath.Join(src, "etc/gone"), "soon gone\n")
	mustRun(t, "pull", "-a", "-H", "-A", "-X", "-S", "--numeric-ids", "--delete", "-e", "ssh", "--timeout", "600",
		"--exclude=/proc/*", "--exclude=/sys/*", src+"/", dest+"/")
	mustRun(t, "pull", "-aHAXS", "--timeout=10m", src, dest)
	if err := os.Remove(filepath.Join(src, "etc/gone")); err != nil {
		t.Fatal(err)
	}
	_, errs := mustRun(t, "pull", "--max-delete=0", src, dest)
	if get(t, filepath.Join(dest, "etc/gone")) != "soon gone\n" {
		t.Error("--max-delete=0 deleted")
	}
	if !strings.Contains(errs, "goldsync: warning: --max-delete=0: nothing deleted") {
		t.Errorf("--max-delete=0 gave no warning: %q", errs)
	}
	mustRun(t, "pull", src, dest)
	if _, err := os.Lstat(filepath.Join(dest, "etc/gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a default pull kept the deleted file: %v", err)
	}
	help, _ := mustRun(t, "pull", "--help")
	for _, want := range []string{"half of the\nimage's entries, and never less than 100", "0: delete nothing", "--timeout seconds|duration", "(default 1m0s)",
		"--retention duration", "(default 24h0m0s)", "-a, --archive", "--numeric-ids", "--no-default-excludes"} {
		if !strings.Contains(help, want) {
			t.Errorf("pull --help lacks %q", want)
		}
	}
	out, _ := mustRun(t, "--version")
	if !regexp.MustCompile(`^goldsync \d+\.\d+\.\d+\S* \(.+\)\n$`).MatchString(out) {
		t.Errorf("goldsync --version: %q", out)
	}
}

// TestPullOutput: into a pipe, a forced --progress writes plain lines,
// no escape sequence; a dry run's summary comes after its itemized lines;
// warnings are the CLI's lines, not slog's.
func TestPullOutput(t *testing.T) {
	dir := t.TempDir()
	src, dest := filepath.Join(dir, "src"), filepath.Join(dir, "image")
	for i := range 5 {
		put(t, filepath.Join(src, fmt.Sprintf("d/f%d", i)), strings.Repeat("x", i*100))
	}
	out, errs := mustRun(t, "pull", "--progress", src, dest)
	if strings.ContainsAny(out+errs, "\r\033") {
		t.Errorf("escape sequences into a pipe: stdout %q stderr %q", out, errs)
	}
	if !strings.Contains(errs, "goldsync: transfer\n") {
		t.Errorf("forced progress into a pipe: %q", errs)
	}
	os.Remove(filepath.Join(src, "d/f1"))
	out, _ = mustRun(t, "pull", "-n", src, dest)
	itemized, summary, ok := strings.Cut(out, "goldsync: dry run of ")
	if !ok || !strings.Contains(itemized, "*deleting   d/f1\n") || strings.Contains(summary, "*deleting") {
		t.Errorf("dry run output (itemized lines, then the summary):\n%s", out)
	}
	// A warning from the engine: the state dir's manifest is unreadable.
	// Its text is the CLI's, never slog's key=value line.
	state := filepath.Join(dir, ".image.goldsync")
	if ents, err := os.ReadDir(state); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "manifest") {
				os.WriteFile(filepath.Join(state, e.Name()), []byte("garbage"), 0o600)
			}
		}
	}
	_, errs, _ = run(t, "pull", src, dest)
	if !strings.Contains(errs, "goldsync: warning: manifest unreadable") || strings.Contains(errs, "level=") || strings.Contains(errs, "time=") {
		t.Errorf("want the warning in the CLI's format, not slog's:\n%s", errs)
	}
}

// TestPullSIGTERMIsInterrupted: a pull stopped by SIGTERM says
// "interrupted" and exits 20, not "connection to the source lost".
func TestPullSIGTERMIsInterrupted(t *testing.T) {
	dir := t.TempDir()
	// A source that never answers: the agent is a shell that sleeps.
	rsh := filepath.Join(dir, "slowssh")
	if err := os.WriteFile(rsh, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goldsyncBin, "pull", "-e", rsh, "--agent-path", "/nonexistent", "golden:/", filepath.Join(dir, "image"))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	// Wait until goldsync has started its remote shell.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		if out, _ := exec.Command("pgrep", "-P", fmt.Sprint(cmd.Process.Pid)).Output(); len(out) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitcode.Signal {
		t.Errorf("exit %v, want %d", err, exitcode.Signal)
	}
	if got := errb.String(); got != "goldsync: interrupted by SIGTERM\n" {
		t.Errorf("stderr %q, want the interruption only", got)
	}
}

// TestNodeListKeepsTheMAC: `node list` prints a nodes file that still has
// the MACs node add was given, so it can be fed back.
func TestNodeListKeepsTheMAC(t *testing.T) {
	s := newSite(t)
	mustRun(t, "os", "add", "rhel5compute", "--image", s.image, "--tftpboot", s.tftp, "--nfs-server", "node002")
	mustRun(t, "node", "add", "--os", "rhel5compute", "--tftpboot", s.tftp, "--nodes", s.nodes, "--no-snapshot")
	out, _ := mustRun(t, "node", "list", "--tftpboot", s.tftp)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("node list:\n%s", out)
	}
	if f := strings.Fields(lines[0]); f[0] != "10.8.136.1" || f[1] != "node001" || f[2] != "#" {
		t.Errorf("node001 (no MAC): %q", lines[0])
	}
	if f := strings.Fields(lines[1]); f[0] != "10.8.226.73" || f[1] != "node003" || f[2] != "00:21:5e:40:64:5c" {
		t.Errorf("node003 lost its MAC: %q", lines[1])
	}
}

// TestRenderAndConfigAsOnTheCommandLine: --config names the config and render
// reads it; --first-export-id 0 is refused, not turned into 1; a trailing
// slash on a config's source means what it means on the command line.
func TestRenderAndConfigAsOnTheCommandLine(t *testing.T) {
	c := newCluster(t, false)
	out, _ := mustRun(t, "--config", c.config, "render", "exports")
	if !strings.Contains(out, c.root+" *(ro,") {
		t.Errorf("render exports --config:\n%s", out)
	}
	_, errs, code := run(t, "--config", c.config, "render", "ganesha", "--first-export-id", "0")
	if code != exitcode.Usage || !strings.Contains(errs, "--first-export-id 0: want 1 to 65535") {
		t.Errorf("--first-export-id 0: exit %d, %s", code, errs)
	}
	cfg := get(t, c.config)
	slashed := strings.Replace(cfg, fmt.Sprintf("source = %q", c.golden), fmt.Sprintf("source = %q", c.golden+"/"), 1)
	if slashed == cfg {
		t.Fatal("no source line in the test config")
	}
	put(t, c.config, slashed)
	os.Chmod(c.config, 0o600)
	out, errs, code = run(t, "--config", c.config, "sync", "-n")
	if code != 0 || !strings.Contains(out, "etc/hostname") {
		t.Errorf("sync -n with source %s/: exit %d\n%s\n%s", c.golden, code, out, errs)
	}
	// -q: only errors, in a dry run too (as rsync -nq); -i still lists.
	if out, errs, code = run(t, "-q", "--config", c.config, "sync", "-n"); code != 0 || out != "" {
		t.Errorf("-q sync -n: exit %d, printed:\n%s%s", code, out, errs)
	}
	if out, _, _ = run(t, "-q", "--config", c.config, "sync", "-n", "-i"); !strings.Contains(out, "etc/hostname") {
		t.Errorf("-q sync -n -i: no itemized changes:\n%s", out)
	}
}

// TestPullPrunesOldAgents: when a pull uploads its agent to the golden
// node, agents of other builds that have not been touched for an hour go;
// a fresh one (another image server's, maybe running) stays.
func TestPullPrunesOldAgents(t *testing.T) {
	// The golden node's user has a home of its own: the test's agents
	// and prunes stay out of the real ~/.cache/goldsync, which other
	// packages' pulls, run at the same time, use.
	home := t.TempDir()
	srv := sshtest.Start(t, sshtest.Options{ForceCommand: "HOME='" + home + "'; export HOME; cd \"$HOME\" || exit 1\nexec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n"})
	bin := clusterBins(t)
	cache := filepath.Join(home, ".cache/goldsync")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	sum, err := exec.Command("sha256sum", agentBin(t)).Output()
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(cache, "goldsync-agent-0.0.1-0123456789ab")
	fresh := filepath.Join(cache, "goldsync-agent-0.0.2-ba9876543210")
	for _, p := range []string{old, fresh} {
		put(t, p, "#!/bin/sh\nexit 1\n")
		t.Cleanup(func() { os.Remove(p) })
	}
	twoDays := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(old, twoDays, twoDays); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "golden")
	put(t, filepath.Join(src, "etc/hostname"), "golden\n")
	cmd := exec.Command(bin, "pull", "-v", "-e", srv.RshCommand(), srv.Target(src), filepath.Join(dir, "image"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an agent of an old build is still cached: %v\n%s", err, out)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh agent of another build was removed: %v", err)
	}
	if now, _ := filepath.Glob(filepath.Join(cache, "goldsync-agent-*-"+string(sum[:12]))); len(now) != 1 {
		t.Errorf("this build's agent not cached once: %v\n%s", now, out)
	}
}

// TestPullDestInsideExcludedSrc: a DEST inside SRC is fine when the
// excludes leave it and its state dir out.
func TestPullDestInsideExcludedSrc(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	put(t, filepath.Join(src, "etc/hostname"), "golden\n")
	if err := os.MkdirAll(filepath.Join(src, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(src, "srv/img")
	if _, errs, code := run(t, "pull", "--exclude", "/srv/img", src, dest); code != exitcode.Select || !strings.Contains(errs, "the state dir") {
		t.Errorf("image excluded but its state dir not: exit %d, want %d:\n%s", code, exitcode.Select, errs)
	}
	mustRun(t, "pull", "--exclude", "/srv/*", src, dest)
	if _, err := os.Stat(filepath.Join(dest, "etc/hostname")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(dest, "srv/img")); err == nil {
		t.Error("the image holds a copy of itself")
	}
}

// TestGenerationsOfMissingImage: a typo'd image directory is a selection
// error, not an empty table.
func TestGenerationsOfMissingImage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	for _, args := range [][]string{{"generations", missing}, {"rollback", missing, "1"}, {"diff", missing, "1"}} {
		if _, errs, code := run(t, args...); code != exitcode.Select || !strings.Contains(errs, "no such file or directory") {
			t.Errorf("goldsync %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, exitcode.Select, errs)
		}
	}
	if _, err := os.Stat(filepath.Dir(missing)); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(missing)); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

// TestGenerationsOfPlainDirectory: a directory goldsync never pulled into
// is "not an image", not an empty table or "no such generation".
func TestGenerationsOfPlainDirectory(t *testing.T) {
	plain := t.TempDir()
	for _, args := range [][]string{{"generations", plain}, {"rollback", plain, "1"}, {"diff", plain, "1"}} {
		if _, errs, code := run(t, args...); code != exitcode.Select || !strings.Contains(errs, "is not an image") {
			t.Errorf("goldsync %s: exit %d, want %d and \"is not an image\":\n%s", strings.Join(args, " "), code, exitcode.Select, errs)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(plain)); len(ents) != 1 {
		t.Errorf("left behind beside the directory: %v", ents)
	}
}

// TestRsyncLineWithoutCommand: an rsync line with only the command renamed
// is told to put pull first.
func TestRsyncLineWithoutCommand(t *testing.T) {
	_, errs, code := run(t, "-aHAXS", "--numeric-ids", "--delete", "src/", "dst/")
	if code != exitcode.Usage || !strings.Contains(errs, "goldsync pull -aHAXS --numeric-ids --delete src/ dst/") {
		t.Errorf("exit %d, want %d, and a hint to put pull first:\n%s", code, exitcode.Usage, errs)
	}
}

// TestPullJSONOnFailure: a pull that fails before it has a result still
// prints a --json result object, with its exit code.
func TestPullJSONOnFailure(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{filepath.Join(dir, "nope"), filepath.Join(dir, "img")}, exitcode.Select},
		{[]string{"--exclude", "/[x", dir, filepath.Join(dir, "img")}, exitcode.Usage},
	} {
		out, _, code := run(t, append([]string{"pull", "--json"}, tt.args...)...)
		var r struct {
			OK       bool   `json:"ok"`
			Error    string `json:"error"`
			ExitCode int    `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.OK || r.Error == "" || r.ExitCode != tt.code || code != tt.code {
			t.Errorf("pull --json %v: exit %d, stdout %q (%v); want a result object with exit_code %d", tt.args, code, out, err, tt.code)
		}
	}
}

// TestVersionIsTheCommit: --version of a binary built in a git checkout
// names the commit (the go command's VCS stamp), and says "modified" when
// the tree had uncommitted changes; not the executable's hash. The
// checkout is a copy of this tree's files, committed in a temp repo.
func TestVersionIsTheCommit(t *testing.T) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	files, err := exec.Command("git", "-C", strings.TrimSpace(string(top)), "ls-files", "-z", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		from := filepath.Join(strings.TrimSpace(string(top)), f)
		st, err := os.Lstat(from)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(repo, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		copyFile(t, from, filepath.Join(repo, f), st.Mode().Perm())
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "t")
	rev := git("rev-parse", "HEAD")
	version := func() string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "goldsync")
		build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/goldsync")
		build.Dir = repo
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, "--version").Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	if got := version(); !strings.HasPrefix(got, "goldsync ") || !strings.HasSuffix(got, " (commit "+rev+")\n") {
		t.Errorf("--version = %q, want commit %s", got, rev)
	}
	if err := os.WriteFile(filepath.Join(repo, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := version(); !strings.HasSuffix(got, " (commit "+rev+", modified)\n") {
		t.Errorf("--version of a modified tree = %q, want commit %s, modified", got, rev)
	}
}

// TestPullIntoForeignDirRefused: a first pull into a directory that holds
// files but was never pulled into (no state dir) would delete them all;
// it is refused (exit 25, nothing changed, no state dir made) unless
// --delete says so, as rsync. -n goes on and warns. Once the directory is
// an image, pulls delete as usual.
func TestPullIntoForeignDirRefused(t *testing.T) {
	base := t.TempDir()
	src, dest := filepath.Join(base, "golden"), filepath.Join(base, "home")
	put(t, filepath.Join(src, "etc/hostname"), "golden\n")
	put(t, filepath.Join(dest, "precious/thesis.tex"), "years of work\n")
	state := filepath.Join(base, ".home.goldsync")

	_, errs, code := run(t, "pull", src, dest)
	if code != exitcode.MaxDelete || !strings.Contains(errs, "--delete") || !strings.Contains(errs, "precious") {
		t.Errorf("pull into a foreign dir: exit %d, want %d and a message naming --delete and what is there:\n%s", code, exitcode.MaxDelete, errs)
	}
	if get(t, filepath.Join(dest, "precious/thesis.tex")) != "years of work\n" {
		t.Error("the refused pull changed the directory")
	}
	if _, err := os.Lstat(state); err == nil {
		t.Error("the refused pull made a state dir")
	}

	out, errs, code := run(t, "pull", "-n", src, dest)
	if code != 0 || !strings.Contains(errs, "needs --delete") || !strings.Contains(out, "precious") {
		t.Errorf("pull -n: exit %d; want 0, a warning and the planned deletes:\n%s\n%s", code, out, errs)
	}

	mustRun(t, "pull", "--delete", src, dest)
	if _, err := os.Lstat(filepath.Join(dest, "precious")); err == nil {
		t.Error("pull --delete kept what the source lacks")
	}
	put(t, filepath.Join(dest, "stray"), "x")
	mustRun(t, "pull", src, dest)
	if _, err := os.Lstat(filepath.Join(dest, "stray")); err == nil {
		t.Error("a pull into an image kept what the source lacks")
	}
}
