package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/treetest"
)

// The cluster tests run goldsync and goldsync-agent built into a directory
// of their own beside TestMain's goldsync (TestMain removes it), so a local
// source is served by a real agent child, as under cron.
var (
	clusterBinsOnce sync.Once
	clusterBinsDir  string
	clusterBinsErr  error
)

func clusterBins(t *testing.T) string {
	t.Helper()
	clusterBinsOnce.Do(func() {
		clusterBinsDir = filepath.Join(filepath.Dir(goldsyncBin), "cluster")
		out, err := exec.Command("go", "build", "-o", clusterBinsDir+"/", ".", "../goldsync-agent").CombinedOutput()
		if err != nil {
			clusterBinsErr = fmt.Errorf("go build goldsync goldsync-agent: %v\n%s", err, out)
		}
	})
	if clusterBinsErr != nil {
		t.Fatal(clusterBinsErr)
	}
	return filepath.Join(clusterBinsDir, "goldsync")
}

// gs runs the cluster goldsync binary with pipes for stdout and stderr (so
// not on a terminal, as under cron).
func gs(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(clusterBins(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("goldsync %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// testSite is a small site: a golden tree, an image server layout, a nodes
// file and a config naming them.
type testSite struct {
	base, golden, diskless, root, stateDir, snapDir, tftpboot, nodes, config string
}

// goldenKernel is the kernel the golden tree's /boot holds.
const goldenKernel = "5.14.0-427.el9"

func newCluster(t *testing.T, tricky bool) *testSite {
	t.Helper()
	base := t.TempDir()
	c := &testSite{
		base:     base,
		golden:   filepath.Join(base, "golden"),
		diskless: filepath.Join(base, "diskless", "rhel9"),
		tftpboot: filepath.Join(base, "tftpboot"),
		nodes:    filepath.Join(base, "etc", "nodes"),
		config:   filepath.Join(base, "etc", "goldsync.toml"),
	}
	c.root = filepath.Join(c.diskless, "root")
	c.stateDir = filepath.Join(c.diskless, ".root.goldsync")
	c.snapDir = filepath.Join(c.diskless, "snapshot")
	for _, d := range []string{c.golden, c.diskless, filepath.Dir(c.nodes)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if tricky {
		treetest.MakeTricky(t, c.golden, treetest.TrickyOptions{})
	}
	for p, content := range map[string]string{
		"boot/vmlinuz-" + goldenKernel:            "kernel " + goldenKernel,
		"boot/initramfs-" + goldenKernel + ".img": "initramfs " + goldenKernel,
		"etc/hostname":                 "node004\n",
		"etc/ssh/ssh_host_ed25519_key": "secret\n",
		"etc/passwd":                   "root:x:0:0:root:/root:/bin/bash\n",
		"var/log/messages":             "boot\n",
		"usr/bin/tool":                 strings.Repeat("tool ", 1000),
		"proc/1/status":                "excluded\n",
		"tmp/scratch":                  "excluded\n",
		"home/alice/.bashrc":           "excluded by the config\n",
	} {
		writeFile(t, filepath.Join(c.golden, p), content)
	}
	writeFile(t, c.nodes, "# IP hostname\n10.8.136.1 node001\n10.8.136.2 node002 00:21:5e:40:64:5c\n")
	c.writeConfig(t, "")
	return c
}

// writeConfig writes the config with extra appended.
func (c *testSite) writeConfig(t *testing.T, extra string) {
	t.Helper()
	writeFile(t, c.config, fmt.Sprintf(`# test cluster
[cluster]
name = "test"
tftpboot = %q
nodes = %q
nfs_server = "10.8.0.2"

[netboot]
ramdisk_size = 28753
append = "console=ttyS0,115200n8r"

[[image]]
name = "rhel9"
source = %q
root = %q
excludes = ["/home/*"]
default_excludes = true # a local tree standing for a golden node's root
os = "rhel9compute"
%s`, c.tftpboot, c.nodes, c.golden, c.root, extra))
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// sync runs goldsync sync and wants exit 0.
func (c *testSite) sync(t *testing.T, args ...string) (string, string) {
	t.Helper()
	out, errs, code := gs(t, append([]string{"--config", c.config, "sync"}, args...)...)
	if code != 0 {
		t.Fatalf("goldsync sync %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out, errs
}

func needRootForCluster(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the image keeps owners, devices and xattrs of the golden tree")
	}
}

// TestSyncEndToEnd runs the cron job on a local golden tree: the image is
// an exact copy but for the excludes, every node gets its snapshot and boot
// files, the run is silent, and status reports it.
func TestSyncEndToEnd(t *testing.T) {
	needRootForCluster(t)
	c := newCluster(t, true)

	out, errs, code := gs(t, "--config", c.config, "--json", "sync")
	if code != 0 {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errs)
	}
	var rep cluster.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if !rep.OK || len(rep.Images) != 1 {
		t.Fatalf("report: %s", out)
	}
	r := rep.Images[0]
	golden := treetest.Scan(t, c.golden)
	// Everything but proc/1, proc/1/status, tmp/scratch, home/alice and
	// home/alice/.bashrc; the root was there.
	if r.Result != "ok" || r.Pull == nil || r.Pull.Entries != len(golden)-5 || r.Pull.Created+r.Pull.Linked != r.Pull.Entries-1 || r.Pull.Deleted != 0 {
		t.Errorf("pull report: result %s, pull %+v; the golden tree has %d entries", r.Result, r.Pull, len(golden))
	}
	if len(r.Snapshots) != 1 || r.Snapshots[0].Nodes != 2 || r.Snapshots[0].Totals.Created == 0 || r.Snapshots[0].Totals.Failed != 0 {
		t.Errorf("snapshot report: %+v", r.Snapshots)
	}
	if len(r.Netboot) != 1 || r.Netboot[0].Kernel != goldenKernel || r.Netboot[0].Nodes != 2 {
		t.Errorf("netboot report: %+v", r.Netboot)
	}

	// The image is the golden tree, excludes left out (their directories
	// kept).
	excluded := func(p string) bool {
		return p == "proc/1" || strings.HasPrefix(p, "proc/1/") || p == "tmp/scratch" ||
			p == "home/alice" || strings.HasPrefix(p, "home/alice/")
	}
	treetest.Equal(t, golden, treetest.Scan(t, c.root), treetest.DiffOptions{IgnorePaths: excluded, IgnoreDirMtime: true})

	// Snapshots: the default files list, copied for each node.
	if _, err := os.Stat(filepath.Join(c.snapDir, "files")); err != nil {
		t.Errorf("default files list not written: %v", err)
	}
	for _, n := range []string{"node001", "node002"} {
		// The golden node's host key is its own identity: never copied.
		if got, err := os.ReadFile(filepath.Join(c.snapDir, n, "etc/ssh/ssh_host_ed25519_key")); err == nil && string(got) == "secret\n" {
			t.Errorf("%s snapshot: the golden node's etc/ssh key was copied", n)
		}
		if got := readFile(t, filepath.Join(c.snapDir, n, "etc/hostname")); got != n+"\n" {
			t.Errorf("%s snapshot: etc/hostname = %q", n, got)
		}
		if got := readFile(t, filepath.Join(c.snapDir, n, "var/log/messages")); got != "boot\n" {
			t.Errorf("%s snapshot: var/log/messages = %q", n, got)
		}
	}

	// Boot files: kernel and initrd, one pxelinux config per node.
	li := filepath.Join(c.tftpboot, "linux-install")
	if got := readFile(t, filepath.Join(li, "rhel9compute/vmlinuz")); got != "kernel "+goldenKernel {
		t.Errorf("vmlinuz = %q", got)
	}
	cfg := readFile(t, filepath.Join(li, "pxelinux.cfg/0A088802"))
	for _, want := range []string{"kernel rhel9compute/vmlinuz", "NFSROOT=10.8.0.2:" + c.diskless, "SNAPSHOT=node002",
		"ramdisk_size=28753", "console=ttyS0,115200n8r"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("pxelinux.cfg/0A088802 lacks %q:\n%s", want, cfg)
		}
	}

	// A second run, as cron runs it, changes nothing and says nothing.
	writeFile(t, filepath.Join(c.golden, "etc/motd"), "welcome\n")
	out, errs = c.sync(t)
	if out != "" || errs != "" {
		t.Errorf("a successful run off a terminal printed:\nstdout: %q\nstderr: %q", out, errs)
	}
	if got := readFile(t, filepath.Join(c.root, "etc/motd")); got != "welcome\n" {
		t.Errorf("second run did not pull etc/motd: %q", got)
	}

	// Status: the last run, its changes, no node behind.
	out, _, code = gs(t, "--config", c.config, "--json", "status")
	var st []cluster.StatusReport
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	if len(st) != 1 || !st[0].Synced || st[0].Result != "ok" || st[0].Changes.Created != 1 ||
		st[0].Nodes != 2 || st[0].SnapshotsBehind != 0 || time.Since(st[0].LastSync) > time.Hour {
		t.Errorf("status: %+v", st)
	}
	// A node added to the inventory has no snapshot yet: it is behind.
	writeFile(t, c.nodes, readFile(t, c.nodes)+"10.8.136.3 node003\n")
	out, _, code = gs(t, "--config", c.config, "status")
	if code != 0 || !strings.Contains(out, "rhel9") || !strings.Contains(out, "3 nodes, 1 behind (node003)") || !strings.Contains(out, " ok ") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

// TestSyncLocked holds the image's lock as a running pull would: sync
// refuses with exit 16, names the lock and its holder, and leaves the last
// status alone.
func TestSyncLocked(t *testing.T) {
	c := newCluster(t, false)
	c.sync(t)
	before := readFile(t, filepath.Join(c.stateDir, cluster.StatusName))

	unlock, err := imaging.Lock(c.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	out, errs, code := gs(t, "--config", c.config, "sync")
	if code != exitcode.Locked {
		t.Fatalf("sync with the image locked: exit %d, want %d\n%s\n%s", code, exitcode.Locked, out, errs)
	}
	for _, want := range []string{"image rhel9", imaging.State(c.stateDir).Lock, fmt.Sprintf("held by pid %d", os.Getpid()), "started "} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if after := readFile(t, filepath.Join(c.stateDir, cluster.StatusName)); after != before {
		t.Errorf("a refused run rewrote the status:\n%s", after)
	}
	// status shows the holder as a run in progress.
	out, _, _ = gs(t, "--config", c.config, "status")
	if !strings.Contains(out, fmt.Sprintf("running now: pid %d", os.Getpid())) {
		t.Errorf("status does not show the running holder:\n%s", out)
	}
}

// TestSyncDryRunWritesNothing compares the whole site before and after a
// dry run, on a fresh site and on one already synced with changes pending.
func TestSyncDryRunWritesNothing(t *testing.T) {
	c := newCluster(t, false)
	check := func(name string) string {
		before := treetest.Scan(t, c.base)
		out, errs := c.sync(t, "--dry-run")
		treetest.Equal(t, before, treetest.Scan(t, c.base), treetest.DiffOptions{})
		if t.Failed() {
			t.Fatalf("%s: dry run changed the site\n%s\n%s", name, out, errs)
		}
		return out
	}
	out := check("fresh site")
	if !strings.Contains(out, ">f+++++++++ etc/hostname") || !strings.Contains(out, "after the first pull") {
		t.Errorf("fresh dry run output:\n%s", out)
	}
	c.sync(t)
	// Pending: a change on the golden node, and a file a node lost (a dry
	// run's snapshots are planned from the image as it is now).
	writeFile(t, filepath.Join(c.golden, "etc/hostname"), "renamed\n")
	if err := os.Remove(filepath.Join(c.snapDir, "node001/var/log/messages")); err != nil {
		t.Fatal(err)
	}
	out = check("synced site")
	for _, want := range []string{"etc/hostname\n", "node001 >f+++++++++ var/log/messages", "would install OS rhel9compute"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}

	// --json carries the counts of what would change.
	jout, errs, code := gs(t, "--config", c.config, "--json", "sync", "-n")
	var rep cluster.Report
	if err := json.Unmarshal([]byte(jout), &rep); err != nil || code != 0 {
		t.Fatalf("--json --dry-run: exit %d, %v\n%s\n%s", code, err, jout, errs)
	}
	r := rep.Images[0]
	if !rep.DryRun || r.Pull == nil || r.Pull.Actions != 1 || r.Planned["fetch"] != 1 || r.Snapshots[0].Totals.Created != 1 {
		t.Errorf("dry run JSON: %s", jout)
	}
}

// TestSyncFailureReported: one image whose source is gone fails with the
// pull's exit code and a message on stderr, and is recorded as failed; the
// other image is still synced.
func TestSyncFailureReported(t *testing.T) {
	c := newCluster(t, false)
	other := filepath.Join(c.base, "other")
	c.writeConfig(t, fmt.Sprintf(`
[[image]]
name = "gone"
source = %q
root = %q
`, filepath.Join(c.base, "missing"), filepath.Join(other, "root")))
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	metrics := filepath.Join(c.base, "goldsync.prom")
	out, errs, code := gs(t, "--config", c.config, "sync", "--metrics-file", metrics)
	if code != exitcode.Select {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitcode.Select, out, errs)
	}
	if out != "" || !strings.Contains(errs, "image gone:") || strings.Contains(errs, "image rhel9:") {
		t.Errorf("output:\nstdout %q\nstderr %q", out, errs)
	}
	if _, err := os.Stat(filepath.Join(c.root, "etc/hostname")); err != nil {
		t.Errorf("the good image was not synced: %v", err)
	}
	st, err := cluster.LoadRecord(filepath.Join(other, ".root.goldsync"))
	if err != nil || st == nil || st.Result != "failed" || st.ExitCode != exitcode.Select {
		t.Errorf("status of the failed image: %+v, %v", st, err)
	}
	// Metrics: each family once, a sample per image.
	m := readFile(t, metrics)
	for _, want := range []string{
		"goldsync_last_run_success{image=\"rhel9\"} 1", "goldsync_last_run_success{image=\"gone\"} 0",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	if n := strings.Count(m, "# TYPE goldsync_last_run_success gauge"); n != 1 {
		t.Errorf("TYPE line of last_run_success %d times:\n%s", n, m)
	}
}

// TestVerify flips, changes, removes and adds paths in a synced image:
// verify exits 40 and names each, and 0 on the untouched image.
func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, root string)
		kind   string
		path   string
	}{
		{name: "clean"},
		{name: "byte flipped, size and mtime kept", kind: cluster.DriftContent, path: "usr/bin/tool",
			mutate: func(t *testing.T, root string) {
				p := filepath.Join(root, "usr/bin/tool")
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				data := []byte(readFile(t, p))
				data[2500] ^= 0x20
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "mode changed", kind: cluster.DriftMetadata, path: "etc/passwd",
			mutate: func(t *testing.T, root string) {
				if err := os.Chmod(filepath.Join(root, "etc/passwd"), 0o600); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "file removed", kind: cluster.DriftMissing, path: "var/log/messages",
			mutate: func(t *testing.T, root string) {
				if err := os.Remove(filepath.Join(root, "var/log/messages")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "file added", kind: cluster.DriftExtra, path: "etc/planted",
			mutate: func(t *testing.T, root string) { writeFile(t, filepath.Join(root, "etc/planted"), "x") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, false)
			c.sync(t)
			if tt.mutate != nil {
				tt.mutate(t, c.root)
			}
			out, errs, code := gs(t, "--config", c.config, "--json", "verify", "rhel9")
			var rep cluster.VerifyReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("verify --json: %v\n%s\n%s", err, out, errs)
			}
			if tt.kind == "" {
				if code != 0 || !rep.Clean || len(rep.Drift) != 0 {
					t.Fatalf("verify of an untouched image: exit %d\n%s\n%s", code, out, errs)
				}
				// By path, with the state dir named.
				out, _, code = gs(t, "verify", "--state-dir", c.stateDir, c.root)
				if code != 0 || !strings.Contains(out, "is clean") {
					t.Errorf("verify ROOT: exit %d\n%s", code, out)
				}
				return
			}
			if code != exitcode.Drift || rep.Clean || rep.Counts[tt.kind] != 1 {
				t.Fatalf("verify: exit %d, want %d\n%s\n%s", code, exitcode.Drift, out, errs)
			}
			found := false
			for _, d := range rep.Drift {
				if d.Kind == tt.kind && d.Path == tt.path {
					found = true
				}
			}
			if !found {
				t.Errorf("drift %s %s not reported: %+v", tt.kind, tt.path, rep.Drift)
			}
			// Text output, and the golden node sees the same path differ.
			out, _, code = gs(t, "--config", c.config, "verify", "--against", c.golden, "rhel9")
			if code != exitcode.Drift || !strings.Contains(out, tt.kind) || !strings.Contains(out, "golden") || !strings.Contains(out, tt.path) {
				t.Errorf("verify --against: exit %d\n%s", code, out)
			}
		})
	}
}

func TestVerifyWithoutManifest(t *testing.T) {
	dir := t.TempDir()
	_, errs, code := gs(t, "verify", dir)
	if code != exitcode.Select || !strings.Contains(errs, "no manifest in "+imaging.DefaultStateDir(dir)) {
		t.Errorf("verify of a never-synced dir: exit %d\n%s", code, errs)
	}
}

// TestConfigErrorsCLI: config problems stop every command with exit 1 and
// file:line messages.
func TestConfigErrorsCLI(t *testing.T) {
	c := newCluster(t, false)
	c.writeConfig(t, "streamz = 2\nretention = \"1 day\"\n")
	for _, cmd := range [][]string{{"sync"}, {"status"}, {"verify", "rhel9"}} {
		_, errs, code := gs(t, append([]string{"--config", c.config}, cmd...)...)
		if code != exitcode.Usage || !strings.Contains(errs, c.config+":19: unknown key streamz in [[image]] (did you mean streams?)") {
			t.Errorf("%s with an unknown key: exit %d\n%s", cmd[0], code, errs)
		}
	}
	c.writeConfig(t, "retention = \"1 day\"\nstate_dir = \"state\"\n")
	_, errs, code := gs(t, "--config", c.config, "sync")
	if code != exitcode.Usage || !strings.Contains(errs, c.config+`:19: image rhel9: retention "1 day"`) ||
		!strings.Contains(errs, c.config+`:20: state_dir "state" is relative`) {
		t.Errorf("bad values: exit %d\n%s", code, errs)
	}
	_, errs, code = gs(t, "--config", filepath.Join(c.base, "none.toml"), "sync")
	if code != exitcode.Usage || !strings.Contains(errs, "no config file") {
		t.Errorf("missing config: exit %d\n%s", code, errs)
	}
	c.writeConfig(t, "")
	_, errs, code = gs(t, "--config", c.config, "sync", "nosuch")
	if code != exitcode.Usage || !strings.Contains(errs, `no image "nosuch"`) {
		t.Errorf("unknown image: exit %d\n%s", code, errs)
	}
}

// TestPullProgressOnTerminal runs goldsync pull in a tmux pane, a real
// terminal: the progress line is drawn there. With pipes it is not.
func TestPullProgressOnTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("needs tmux (scripts/ci-deps.sh installs it) for a pseudo-terminal")
	}
	bin := clusterBins(t)
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	for i := range 20 {
		writeFile(t, filepath.Join(src, fmt.Sprintf("d/f%02d", i)), strings.Repeat("x", 1000*i))
	}

	// Piped: no progress, no terminal control sequences.
	out, errs, code := gs(t, "pull", src, dst)
	if code != 0 || errs != "" || out != "" {
		t.Fatalf("piped pull: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// On a terminal. The pane's command waits for "go" (so nothing is
	// missed), runs the pull into a fresh destination, prints its exit
	// status and signals "done"; the test then reads the screen.
	sock := fmt.Sprintf("goldsync-test-%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hung tmux must not hang the suite
	defer cancel()
	tm := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	defer exec.Command(tmux, "-L", sock, "kill-server").Run()
	shell := fmt.Sprintf("%s -L %s wait-for go; %s pull %s %s; echo EXIT=$?; %s -L %s wait-for -S done; sleep 600",
		tmux, sock, bin, src, filepath.Join(dir, "dst2"), tmux, sock)
	tm("new-session", "-d", "-s", "pull", "-x", "200", "-y", "50", shell)
	raw := filepath.Join(dir, "raw")
	tm("pipe-pane", "-t", "pull", "cat > "+raw)
	tm("wait-for", "-S", "go")
	tm("wait-for", "done")
	screen := tm("capture-pane", "-p", "-t", "pull")
	var lines []string
	for l := range strings.Lines(screen) {
		if l = strings.TrimRight(l, " \n"); l != "" {
			lines = append(lines, l)
		}
	}
	// The status line is redrawn in place ("\r\033[K") and cleared at the
	// end, so the screen shows only the summary above the exit status.
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "goldsync: pulled ") || lines[1] != "EXIT=0" {
		t.Errorf("screen after a pull on a terminal:\n%s", screen)
	}
	// What the pull wrote to the terminal: each phase drawn over the last
	// at the start of the line. pipe-pane's copy lags the screen: wait for
	// the exit status to reach it.
	var rawOut []byte
	for ctx.Err() == nil {
		rawOut, _ = os.ReadFile(raw)
		if bytes.Contains(rawOut, []byte("EXIT=")) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{"\r\033[Kscan", "\r\033[Kplan", "\r\033[Ktransfer", "\r\033[Kfinish"} {
		if !bytes.Contains(rawOut, []byte(want)) {
			t.Errorf("terminal output lacks %q: %q", want, rawOut)
		}
	}
	treetest.Equal(t, treetest.Scan(t, dst), treetest.Scan(t, filepath.Join(dir, "dst2")), treetest.DiffOptions{IgnoreRootMtime: true})
}

// sync's --progress-timeout takes seconds as pull's does (rsync's
// --timeout is seconds), or a duration.
func TestSyncProgressTimeoutSeconds(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	for _, v := range []string{"600", "10m"} {
		_, errs, code := run(t, "--config", missing, "sync", "--progress-timeout", v)
		if code != exitcode.Usage || strings.Contains(errs, "--progress-timeout") || !strings.Contains(errs, "no config file") {
			t.Errorf("sync --progress-timeout %s: exit %d: %s (want the flag taken and the missing config reported)", v, code, errs)
		}
	}
}
