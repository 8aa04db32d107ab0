package reliability

// A hostile golden node: a sender speaking the real protocol (proto.Serve)
// over a scripted imaging.Source that breaks the receiver's policy on
// purpose. It reaches the real goldsync binary two ways:
//
//   - goldsync pull -e FAKE_RSH: the remote shell is this test binary run as
//     the "hostile-agent" helper, which serves the scenario named in
//     $GOLDSYNC_HOSTILE on its stdin and stdout;
//   - goldsync receive --stdio: the test starts the binary with pipes and
//     serves the scenario on them itself.

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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/proto"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/stdio"
)

// envHostile names the scenario the hostile-agent helper serves.
const envHostile = "GOLDSYNC_HOSTILE"

// hostileSource is an in-memory imaging.Source that sends whatever its
// scenario says, in the order and with the sizes it says.
type hostileSource struct {
	full    []*tree.Entry // a full scan
	partial []*tree.Entry // a scan with Since set
	scope   []tree.Scope  // the partial scan's declared scope
	files   map[string][]byte
	// fetch, when set, answers every fetch request instead of the files.
	fetch func(ctx context.Context, r *imaging.FetchRequest, sink imaging.ContentSink) error
	// scan, when set, replaces the scan.
	scan func(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error)
}

func (h *hostileSource) Scan(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
	if h.scan != nil {
		return h.scan(ctx, req, fn)
	}
	list, scope := h.full, tree.FullScope
	if req.Since != "" && h.partial != nil {
		list, scope = h.partial, h.scope
	}
	for _, e := range list {
		if err := fn(e.Clone()); err != nil {
			return imaging.ScanResult{}, err
		}
	}
	return imaging.ScanResult{Scope: scope, Token: "hostile-token", Entries: len(list)}, nil
}

func (h *hostileSource) Fetch(ctx context.Context, reqs []*imaging.FetchRequest, open func(*imaging.FetchRequest) (imaging.ContentSink, error)) error {
	for _, r := range reqs {
		sink, err := open(r)
		if err != nil {
			return err
		}
		if h.fetch != nil {
			if err := h.fetch(ctx, r, sink); err != nil {
				return err
			}
			continue
		}
		b := h.files[r.Entry.Path]
		if len(b) > 0 {
			if err := sink.Data(0, b); err != nil {
				return err
			}
		}
		if err := sink.Finish(imaging.FetchResult{Size: int64(len(b)), Hash: xxhash.Sum64(b), Mtime: r.Entry.Mtime}); err != nil {
			return err
		}
	}
	return nil
}

func (h *hostileSource) Close() error { return nil }

// hostileTree builds entries: dirs end in "/", "name=content" is a file,
// "name@rdev" a char device, "name->target" a symlink.
func hostileTree(specs ...string) ([]*tree.Entry, map[string][]byte) {
	files := map[string][]byte{}
	out := []*tree.Entry{{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755, Mtime: 1_700_000_000_000_000_000}}
	for _, s := range specs {
		e := &tree.Entry{Mode: 0o644, Mtime: 1_700_000_000_000_000_000}
		switch {
		case strings.HasSuffix(s, "/"):
			e.Path, e.Type, e.Mode = strings.TrimSuffix(s, "/"), tree.TypeDir, 0o755
		case strings.Contains(s, "->"):
			p, t, _ := strings.Cut(s, "->")
			e.Path, e.Type, e.Target, e.Mode = p, tree.TypeSymlink, t, 0o777
		case strings.Contains(s, "@"):
			p, _, _ := strings.Cut(s, "@")
			e.Path, e.Type, e.Mode, e.Rdev = p, tree.TypeCharDev, 0o666, 0x101 // 1:1, /dev/mem
		default:
			p, c, _ := strings.Cut(s, "=")
			e.Path, e.Type, e.Size = p, tree.TypeRegular, int64(len(c))
			e.SetHash(xxhash.Sum64([]byte(c)))
			files[p] = []byte(c)
		}
		out = append(out, e)
	}
	return out, files
}

// hostileScenarios are the senders the helper can play, by name.
var hostileScenarios = map[string]func() *hostileSource{
	// plant: entries under the receiver's excludes (/dev/*, host keys,
	// /proc/*, /sys/*), including one whose excluded ancestor is left out.
	"plant": func() *hostileSource {
		es, files := hostileTree("dev/", "dev/mem@", "etc/", "etc/hostname=golden\n", "etc/ssh/",
			"etc/ssh/ssh_host_ed25519_key=attacker key\n", "proc/", "proc/sysrq-trigger=b\n",
			"sys/", "sys/kernel/", "sys/kernel/x=1\n")
		return &hostileSource{full: es, files: files}
	},
}

func init() {
	// vanish: a full scan with a 1,000-file usr/lib; asked for changes, it
	// declares the scope {usr/lib, Tree: false} and sends no usr/lib.
	// vanish-symlink: the same, with usr/lib now a symlink.
	vanish := func(last string) func() *hostileSource {
		return func() *hostileSource {
			specs := []string{"etc/", "etc/hostname=golden\n", "usr/", "usr/lib/"}
			for i := range vanishFiles {
				specs = append(specs, fmt.Sprintf("usr/lib/f%04d=%d\n", i, i))
			}
			es, files := hostileTree(specs...)
			partSpecs := []string{"usr/"}
			if last != "" {
				partSpecs = append(partSpecs, last)
			}
			part, _ := hostileTree(partSpecs...)
			return &hostileSource{full: es, files: files, partial: part,
				scope: []tree.Scope{{Path: tree.Root}, {Path: "usr"}, {Path: "usr/lib"}}}
		}
	}
	hostileScenarios["vanish"] = vanish("")
	hostileScenarios["vanish-symlink"] = vanish("usr/lib->/etc")
}

func init() {
	// petabyte, terabytes: a file declared 1 PiB (more than ext4 or XFS
	// would hold... ext4's limit is 16 TiB) or 8 TiB (which ext4 holds),
	// finished without a byte of content, beside an ordinary file.
	declared := func(size int64) func() *hostileSource {
		return func() *hostileSource {
			es, files := hostileTree("etc/", "etc/hostname=golden\n", "var/", "var/big=")
			big := es[len(es)-1]
			big.Size = size
			big.SetHash(0x1234)
			delete(files, "var/big")
			h := &hostileSource{full: es, files: files}
			h.fetch = func(ctx context.Context, r *imaging.FetchRequest, sink imaging.ContentSink) error {
				if r.Entry.Path == "var/big" {
					return sink.Finish(imaging.FetchResult{Size: size, Hash: 0x1234, Mtime: r.Entry.Mtime})
				}
				b := files[r.Entry.Path]
				if err := sink.Data(0, b); err != nil {
					return err
				}
				return sink.Finish(imaging.FetchResult{Size: int64(len(b)), Hash: xxhash.Sum64(b), Mtime: r.Entry.Mtime})
			}
			return h
		}
	}
	hostileScenarios["petabyte"] = declared(1 << 50)
	hostileScenarios["terabytes"] = declared(8 << 40)
}

// evilText is peer text that would drive a terminal: set its title, clear
// it, return the cursor to forge a line, reverse the text direction.
const evilText = "\x1b]0;pwned\x07\x1b[2J\x1b[H\rgoldsync: all good\u202e\x00"

func init() {
	// ansi-scan: the scan fails with evilText. ansi-file: a file's fetch
	// fails with it.
	hostileScenarios["ansi-scan"] = func() *hostileSource {
		return &hostileSource{scan: func(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
			return imaging.ScanResult{}, errors.New(evilText)
		}}
	}
	hostileScenarios["ansi-file"] = func() *hostileSource {
		es, files := hostileTree("etc/", "etc/motd=hello\n")
		h := &hostileSource{full: es, files: files}
		h.fetch = func(ctx context.Context, r *imaging.FetchRequest, sink imaging.ContentSink) error {
			sink.Abort(&imaging.FileError{Op: "read\x1b[2J", Path: r.Entry.Path, Err: errors.New(evilText)})
			return nil
		}
		return h
	}
}

func init() {
	// stall-scan: the scan never sends an entry; stall-fetch: the scan is
	// fine, the fetch never sends a byte. Either way the server's
	// keepalives go on (every 200 ms), so the connection never looks idle.
	hostileScenarios["stall-scan"] = func() *hostileSource {
		return &hostileSource{scan: func(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
			<-ctx.Done()
			return imaging.ScanResult{}, ctx.Err()
		}}
	}
	hostileScenarios["stall-fetch"] = func() *hostileSource {
		es, files := hostileTree("etc/", "etc/motd=hello\n")
		h := &hostileSource{full: es, files: files}
		h.fetch = func(ctx context.Context, r *imaging.FetchRequest, sink imaging.ContentSink) error {
			<-ctx.Done()
			return ctx.Err()
		}
		return h
	}
}

func init() {
	// benign: a small, correct tree.
	hostileScenarios["benign"] = func() *hostileSource {
		es, files := hostileTree("etc/", "etc/hostname=golden\n")
		return &hostileSource{full: es, files: files}
	}
}

// setidTool is the content of the image's home/user/tool, the file the
// setid scenarios make root-owned 04755 in place.
const setidTool = "#!/bin/sh\necho tool\n"

// setidSource sends home/user/tool with the content the image already has
// but root's owner and mode 04755 (an in-place metadata change), and
// zz/slow, a fetch; before answering that fetch it calls pause.
func setidSource(pause func()) *hostileSource {
	es, files := hostileTree("home/", "home/user/", "home/user/tool="+setidTool, "zz/", "zz/slow=slow\n")
	for _, e := range es {
		switch e.Path {
		case "home/user":
			e.UID, e.GID = 1000, 1000
		case "home/user/tool":
			e.Mode = 0o4755
		}
	}
	h := &hostileSource{full: es, files: files}
	h.fetch = func(ctx context.Context, r *imaging.FetchRequest, sink imaging.ContentSink) error {
		if r.Entry.Path == "zz/slow" && pause != nil {
			pause()
		}
		b := files[r.Entry.Path]
		if err := sink.Data(0, b); err != nil {
			return err
		}
		return sink.Finish(imaging.FetchResult{Size: int64(len(b)), Hash: xxhash.Sum64(b), Mtime: r.Entry.Mtime})
	}
	return h
}

func init() {
	hostileScenarios["setid"] = func() *hostileSource { return setidSource(nil) }
}

func init() {
	// ssh-symlink: etc/ssh, a directory in the image holding excluded host
	// keys, arrives as a symlink.
	hostileScenarios["ssh-symlink"] = func() *hostileSource {
		es, files := hostileTree("etc/", "etc/hostname=golden\n", "etc/ssh->/tmp")
		return &hostileSource{full: es, files: files}
	}
}

// vanishFiles is how many files the vanish scenarios put in usr/lib.
const vanishFiles = 1000

// runHostileAgent serves the scenario named in $GOLDSYNC_HOSTILE on stdin
// and stdout, as goldsync-agent serve --stdio would.
func runHostileAgent() error {
	name := os.Getenv(envHostile)
	mk := hostileScenarios[name]
	if mk == nil {
		return fmt.Errorf("unknown scenario %q", name)
	}
	src := mk()
	return proto.Serve(context.Background(), stdio.New(), func(context.Context, string) (imaging.Source, error) {
		return src, nil
	}, proto.ServeOptions{Software: agent.Software(), Keepalive: 200 * time.Millisecond})
}

// hostilePull is a pull from the named scenario through -e FAKE_RSH.
func hostilePull(t *testing.T, base, scenario string, args ...string) pullCmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rsh := "env " + envHelper + "=hostile-agent " + envHostile + "=" + scenario + " " + self
	pl := newPull(base, "golden:/")
	pl.args = append([]string{"-e", rsh, "--agent-path", "/usr/bin/goldsync-agent"}, args...)
	return pl
}

// receiveRun is one goldsync receive --stdio run against a source served
// by the test.
type receiveRun struct {
	code   int
	stderr string
	served error // what Serve returned
	maxRSS int64 // the receiver's peak resident set, bytes
	sent   int64 // bytes the sender wrote
}

// hostileReceive runs goldsync receive --stdio with args (flags and DEST)
// and serves src on its stdin and stdout.
func hostileReceive(t *testing.T, src imaging.Source, args ...string) receiveRun {
	t.Helper()
	cmd := exec.Command(goldsync, append([]string{"receive", "--stdio"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), pullTimeout)
	defer cancel()
	rw := &pipeRW{r: out, w: in}
	var wg sync.WaitGroup
	var served error
	wg.Go(func() {
		served = proto.Serve(ctx, rw, func(context.Context, string) (imaging.Source, error) { return src, nil },
			proto.ServeOptions{Software: agent.Software(), Keepalive: 200 * time.Millisecond})
		rw.Close()
	})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-time.After(pullTimeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		werr = <-done
		t.Errorf("goldsync receive did not return within %v", pullTimeout)
	}
	rw.Close()
	wg.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
	} else if werr != nil {
		t.Fatalf("goldsync receive: %v", werr)
	}
	r := receiveRun{code: code, stderr: stderr.String(), served: served, sent: rw.sent.Load()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss << 10
	}
	return r
}

type pipeRW struct {
	r    io.ReadCloser
	w    io.WriteCloser
	once sync.Once
	sent atomic.Int64
}

func (p *pipeRW) Read(b []byte) (int, error) { return p.r.Read(b) }
func (p *pipeRW) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.sent.Add(int64(n))
	return n, err
}
func (p *pipeRW) Close() error {
	p.once.Do(func() { p.w.Close(); p.r.Close() })
	return nil
}

// writeFile writes content at rel beneath dir, making parents.
func writeFile(t *testing.T, dir, rel, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// receiverExcludes are the seed procedure's excludes plus the host keys.
var receiverExcludes = []string{"--exclude", "/dev/*", "--exclude", "/etc/ssh/ssh_host_*", "--exclude", "/proc/*", "--exclude", "/sys/*"}

// TestHostileSenderIgnoresExcludes: a golden node sends entries the
// receiver excludes (a /dev/mem device, a replacement ssh host key, files
// under /proc and /sys). Through pull -e and receive --stdio, none of them
// is written and the image's own host key stays.
func TestHostileSenderIgnoresExcludes(t *testing.T) {
	needRoot(t, "the sender plants a device node")
	check := func(t *testing.T, dest string) {
		t.Helper()
		for _, p := range []string{"dev/mem", "proc/sysrq-trigger", "sys/kernel", "sys/kernel/x"} {
			if _, err := os.Lstat(filepath.Join(dest, p)); err == nil {
				t.Errorf("%s: written, though the receiver excludes it", p)
			}
		}
		if b, err := os.ReadFile(filepath.Join(dest, "etc/ssh/ssh_host_ed25519_key")); err != nil || string(b) != "real key\n" {
			t.Errorf("host key: %q, %v; want the image's own key kept", b, err)
		}
	}
	seed := func(t *testing.T, dest string) {
		writeFile(t, dest, "etc/ssh/ssh_host_ed25519_key", "real key\n", 0o600)
		os.MkdirAll(filepath.Join(dest, "dev"), 0o755)
		os.MkdirAll(filepath.Join(dest, "proc"), 0o555)
	}
	t.Run("pull", func(t *testing.T) {
		base := t.TempDir()
		pl := hostilePull(t, base, "plant", receiverExcludes...)
		seed(t, pl.dest)
		code, stderr := pl.run(t)
		t.Logf("exit %d: %s", code, lastLine(stderr))
		check(t, pl.dest)
		if code == 0 {
			t.Errorf("pull succeeded; want it refused (the sender broke the receiver's excludes)")
		}
	})
	t.Run("receive", func(t *testing.T) {
		base := t.TempDir()
		dest := filepath.Join(base, "image")
		seed(t, dest)
		r := hostileReceive(t, hostileScenarios["plant"](),
			append(append([]string{"--state-dir", filepath.Join(base, "state")}, receiverExcludes...), dest)...)
		t.Logf("exit %d: %s", r.code, lastLine(r.stderr))
		check(t, dest)
		if r.code == 0 {
			t.Errorf("receive succeeded; want it refused")
		}
	})
}

// countFiles counts the entries beneath dir (0 when it is missing).
func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			n++
		}
		return nil
	})
	return n
}

// pullDeleted runs a pull with --json and returns its exit code, the
// deletes it reported and its stderr.
func pullDeleted(t *testing.T, pl pullCmd) (int, int, string) {
	t.Helper()
	pl.args = append([]string{"--json"}, pl.args...)
	pr := pl.start(t)
	code := pr.wait(t)
	var sum struct {
		Deleted     int `json:"deleted"`
		WouldDelete int `json:"planned_deletes"`
	}
	json.Unmarshal(pr.stdout.Bytes(), &sum)
	return code, max(sum.Deleted, sum.WouldDelete), pr.stderr.String()
}

// verifyClean runs goldsync verify on an image and fails the test on drift.
func verifyClean(t *testing.T, state, dest string) {
	t.Helper()
	out, err := exec.Command(goldsync, "verify", "--state-dir", state, dest).CombinedOutput()
	if err != nil {
		t.Errorf("goldsync verify after the run: %v\n%s", err, out)
	}
}

// TestHostileScopedDeleteCounted: a journal-driven pull or push whose
// scope {usr/lib, Tree: false} comes without usr/lib (or with usr/lib now a
// symlink) removes a 1,000-file subtree. Every entry removed must count
// toward --max-delete (so the default and a small limit refuse the run),
// and with no limit the run reports every entry it deleted and the
// manifest matches the disk (verify is clean).
func TestHostileScopedDeleteCounted(t *testing.T) {
	for _, scenario := range []string{"vanish", "vanish-symlink"} {
		t.Run(scenario+"/pull", func(t *testing.T) {
			base := t.TempDir()
			pl := hostilePull(t, base, scenario)
			pl.mustRun(t) // full: the image gets usr/lib with its files
			if n := countFiles(filepath.Join(pl.dest, "usr/lib")); n != vanishFiles {
				t.Fatalf("after the full pull usr/lib holds %d entries, want %d", n, vanishFiles)
			}
			limited := pl
			limited.args = append(append([]string(nil), pl.args...), "--max-delete", "100")
			code, deleted, stderr := pullDeleted(t, limited)
			t.Logf("--max-delete 100: exit %d, %d deletes: %s", code, deleted, lastLine(stderr))
			if n := countFiles(filepath.Join(pl.dest, "usr/lib")); n != vanishFiles || code != exitMaxDelete {
				t.Errorf("--max-delete 100: exit %d, usr/lib holds %d of %d entries; want the run refused (exit %d) and nothing deleted",
					code, n, vanishFiles, exitMaxDelete)
			}
			unlimited := pl
			unlimited.args = append(append([]string(nil), pl.args...), "--max-delete", "-1")
			code, deleted, stderr = pullDeleted(t, unlimited)
			t.Logf("--max-delete -1: exit %d, %d deletes: %s", code, deleted, lastLine(stderr))
			if code != 0 {
				t.Fatalf("--max-delete -1: exit %d: %s", code, stderr)
			}
			if want := removedEntries(scenario); deleted != want {
				t.Errorf("reported %d deletes; %d entries were removed", deleted, want)
			}
			verifyClean(t, pl.state, pl.dest)
		})
		t.Run(scenario+"/receive", func(t *testing.T) {
			base := t.TempDir()
			dest, state := filepath.Join(base, "image"), filepath.Join(base, "state")
			src := hostileScenarios[scenario]()
			if r := hostileReceive(t, src, "--state-dir", state, dest); r.code != 0 {
				t.Fatalf("full receive: exit %d: %s", r.code, r.stderr)
			}
			r := hostileReceive(t, src, "--state-dir", state, dest)
			t.Logf("default --max-delete: exit %d: %s", r.code, lastLine(r.stderr))
			if n := countFiles(filepath.Join(dest, "usr/lib")); n != vanishFiles || r.code != exitMaxDelete {
				t.Errorf("default --max-delete: exit %d, usr/lib holds %d of %d entries; want the run refused (exit %d)",
					r.code, n, vanishFiles, exitMaxDelete)
			}
			r = hostileReceive(t, src, "--state-dir", state, "--max-delete", "-1", dest)
			t.Logf("--max-delete -1: exit %d: %s", r.code, lastLine(r.stderr))
			if r.code != 0 {
				t.Fatalf("--max-delete -1: exit %d: %s", r.code, r.stderr)
			}
			if want := removedEntries(scenario); !strings.Contains(r.stderr, fmt.Sprintf(" %d deleted", want)) {
				t.Errorf("receive summary %q; want %d deleted", lastLine(r.stderr), want)
			}
			verifyClean(t, state, dest)
		})
	}
}

// removedEntries is how many entries the second run of a vanish scenario
// deletes: usr/lib's files, and usr/lib itself unless a symlink replaces it.
func removedEntries(scenario string) int {
	if scenario == "vanish-symlink" {
		return vanishFiles
	}
	return vanishFiles + 1
}

// exitMaxDelete is the CLI's exit code when the safety guard refuses a run.
const exitMaxDelete = 25

// entryBomb is a sender whose scan is n entries with paths near PATH_MAX
// that share all but their last few bytes, so prefix compression sends
// each in a few bytes; then the scan fails (so a receiver that swallows it
// all stops there instead of creating the files).
func entryBomb(n int) *hostileSource {
	return &hostileSource{scan: func(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
		const mtime = 1_700_000_000_000_000_000
		if err := fn(&tree.Entry{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755, Mtime: mtime}); err != nil {
			return imaging.ScanResult{}, err
		}
		dir := ""
		for range 15 {
			dir = tree.Join(dir, strings.Repeat("d", 255))
			if err := fn(&tree.Entry{Path: dir, Type: tree.TypeDir, Mode: 0o755, Mtime: mtime}); err != nil {
				return imaging.ScanResult{}, err
			}
		}
		prefix := dir + "/" + strings.Repeat("f", tree.MaxPathLen-len(dir)-1-8)
		for i := range n {
			if err := ctx.Err(); err != nil {
				return imaging.ScanResult{}, err
			}
			if err := fn(&tree.Entry{Path: fmt.Sprintf("%s%08d", prefix, i), Type: tree.TypeFIFO, Mode: 0o644, Mtime: mtime}); err != nil {
				return imaging.ScanResult{}, err
			}
		}
		return imaging.ScanResult{}, errors.New("the bomb is over")
	}}
}

// TestHostileEntryBomb sends goldsync receive --stdio 400,000 entries of
// 4 KiB paths in a few MiB of prefix-compressed frames (1.6 GiB of paths
// once decoded). The receiver must refuse the list as its memory passes
// the bound and keep its peak RSS (getrusage of the real binary) well
// under what the decoded list would take.
func TestHostileEntryBomb(t *testing.T) {
	const n = 400_000
	base := t.TempDir()
	r := hostileReceive(t, entryBomb(n), "--state-dir", filepath.Join(base, "state"), filepath.Join(base, "image"))
	t.Logf("figures: entry bomb: %d entries of %d-byte paths (%d MiB decoded) in %.1f MiB on the wire: receiver exit %d, peak RSS %d MiB: %s",
		n, tree.MaxPathLen, int64(n)*tree.MaxPathLen>>20, float64(r.sent)/(1<<20), r.code, r.maxRSS>>20, lastLine(r.stderr))
	if r.code == 0 {
		t.Errorf("receive accepted the bomb")
	}
	// Generous: the default list bound is 256 MiB; the decoded bomb is
	// 1.6 GiB.
	if limit := int64(768 << 20); r.maxRSS > limit {
		t.Errorf("receiver peak RSS %d MiB, want under %d MiB", r.maxRSS>>20, limit>>20)
	}
	if !strings.Contains(r.stderr, "too large") {
		t.Errorf("receiver did not say the list was too large: %s", lastLine(r.stderr))
	}
}

// TestHostileScopeBomb ends a scan with 2^20 scope paths of 4 KiB, each
// sent as a 1-byte suffix of the one before (4 GiB once decoded, 3 MiB on
// the wire). The receiver must refuse the ScanEnd before building the
// paths and keep its peak RSS well under that.
func TestHostileScopeBomb(t *testing.T) {
	long := strings.Repeat(strings.Repeat("s", 199)+"/", 20) // 4000 bytes
	long += strings.Repeat("x", tree.MaxPathLen-1-len(long))
	a, b := long+"a", long+"b"
	src := &hostileSource{scan: func(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
		if err := fn(&tree.Entry{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755}); err != nil {
			return imaging.ScanResult{}, err
		}
		scope := make([]tree.Scope, 1<<20)
		for i := range scope {
			scope[i].Path = a
			if i%2 == 1 {
				scope[i].Path = b
			}
		}
		return imaging.ScanResult{Scope: scope, Token: "t"}, nil
	}}
	base := t.TempDir()
	r := hostileReceive(t, src, "--state-dir", filepath.Join(base, "state"), filepath.Join(base, "image"))
	t.Logf("figures: scope bomb: 2^20 scopes of %d bytes (%d MiB decoded) in %.1f MiB on the wire: receiver exit %d, peak RSS %d MiB: %s",
		tree.MaxPathLen, int64(1<<20)*tree.MaxPathLen>>20, float64(r.sent)/(1<<20), r.code, r.maxRSS>>20, lastLine(r.stderr))
	if r.code == 0 {
		t.Errorf("receive accepted the scope bomb")
	}
	if limit := int64(512 << 20); r.maxRSS > limit {
		t.Errorf("receiver peak RSS %d MiB, want under %d MiB", r.maxRSS>>20, limit>>20)
	}
}

// waitWithin waits up to d for a started goldsync and returns its exit code,
// or kills its process group and returns -1.
func waitWithin(t *testing.T, pr *proc, d time.Duration) int {
	t.Helper()
	select {
	case <-pr.done:
	case <-time.After(d):
		syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
		<-pr.done
		return -1
	}
	var ee *exec.ExitError
	if errors.As(pr.err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// TestHostileDeclaredSize: the sender declares a 1 PiB file (more than the
// image's filesystem holds) or an 8 TiB one, and finishes it without
// sending a byte. The pull must refuse that file at once, without hashing
// terabytes of zeros, apply the rest and report a partial transfer.
func TestHostileDeclaredSize(t *testing.T) {
	for _, scenario := range []string{"petabyte", "terabytes"} {
		t.Run(scenario, func(t *testing.T) {
			base := t.TempDir()
			pl := hostilePull(t, base, scenario)
			pr := pl.start(t)
			// A hang guard, not a timing threshold: the old receiver
			// hashed zeros for hours here.
			code := waitWithin(t, pr, time.Minute)
			t.Logf("exit %d: %s", code, strings.TrimSpace(pr.stderr.String()))
			if code == -1 {
				t.Fatalf("the pull was still verifying the declared size after a minute")
			}
			if code != exitPartial {
				t.Errorf("exit %d, want %d (a partial transfer)", code, exitPartial)
			}
			if _, err := os.Lstat(filepath.Join(pl.dest, "var/big")); err == nil {
				t.Errorf("var/big was placed in the image")
			}
			if b, err := os.ReadFile(filepath.Join(pl.dest, "etc/hostname")); err != nil || string(b) != "golden\n" {
				t.Errorf("etc/hostname: %q, %v; the rest of the pull must go on", b, err)
			}
		})
	}
}

// exitPartial is the CLI's exit code for a partial transfer.
const exitPartial = 23

// controlBytes returns the control characters (other than newline and tab)
// and direction overrides in s.
func controlBytes(s string) []rune {
	var out []rune
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' {
			out = append(out, r)
		}
	}
	return out
}

// TestHostilePeerTextInert: a sender's error strings (a failed scan, a file
// it could not read) carry terminal escapes. What goldsync pull and receive
// print must hold none of them raw.
func TestHostilePeerTextInert(t *testing.T) {
	for _, scenario := range []string{"ansi-scan", "ansi-file"} {
		t.Run(scenario+"/pull", func(t *testing.T) {
			base := t.TempDir()
			code, stderr := hostilePull(t, base, scenario).run(t)
			t.Logf("exit %d: %s", code, stderr)
			if code == 0 {
				t.Errorf("pull succeeded")
			}
			if c := controlBytes(stderr); len(c) > 0 {
				t.Errorf("stderr holds raw control characters %q", c)
			}
			if !strings.Contains(stderr, "pwned") {
				t.Errorf("the sender's message is not shown at all")
			}
		})
	}
	t.Run("ansi-scan/receive", func(t *testing.T) {
		base := t.TempDir()
		r := hostileReceive(t, hostileScenarios["ansi-scan"](), "--state-dir", filepath.Join(base, "state"), filepath.Join(base, "image"))
		t.Logf("exit %d: %s", r.code, r.stderr)
		if c := controlBytes(r.stderr); len(c) > 0 {
			t.Errorf("stderr holds raw control characters %q", c)
		}
	})
}

// TestHostileKeepaliveStall: a sender that stops making progress but keeps
// pinging (in the scan, or in the fetch) must not hold the image's lock
// for ever: the no-progress timeout ends the pull, and so does the overall
// deadline with the no-progress timeout off; receive --stdio the same.
// Each ends with the timeout exit code and leaves the image unlocked.
func TestHostileKeepaliveStall(t *testing.T) {
	cases := []struct {
		name, scenario string
		args           []string
	}{
		{name: "scan/progress-timeout", scenario: "stall-scan", args: []string{"--progress-timeout", "2s", "--deadline", "0"}},
		{name: "fetch/progress-timeout", scenario: "stall-fetch", args: []string{"--progress-timeout", "2s", "--deadline", "0"}},
		{name: "scan/deadline", scenario: "stall-scan", args: []string{"--progress-timeout", "-1s", "--deadline", "3s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/pull", func(t *testing.T) {
			base := t.TempDir()
			pl := hostilePull(t, base, tc.scenario, append([]string{"--timeout", "1s"}, tc.args...)...)
			pr := pl.start(t)
			code := waitWithin(t, pr, time.Minute) // a hang guard
			t.Logf("exit %d: %s", code, lastLine(pr.stderr.String()))
			if code != exitTimeout {
				t.Errorf("exit %d, want %d (the peer made no progress)", code, exitTimeout)
			}
			if unlock, err := imaging.Lock(pl.state); err != nil {
				t.Errorf("the image is still locked: %v", err)
			} else {
				unlock()
			}
		})
	}
	t.Run("scan/progress-timeout/receive", func(t *testing.T) {
		base := t.TempDir()
		r := hostileReceive(t, hostileScenarios["stall-scan"](), "--timeout", "1s", "--progress-timeout", "2s",
			"--state-dir", filepath.Join(base, "state"), filepath.Join(base, "image"))
		t.Logf("exit %d: %s", r.code, lastLine(r.stderr))
		if r.code != exitTimeout {
			t.Errorf("exit %d, want %d", r.code, exitTimeout)
		}
	})
}

// TestUntrustedStateDir: the state dir is trusted only after checks. A pull
// is refused, and nothing outside the state dir is touched, when the state
// dir is group- or world-accessible, owned by another user, reached through
// a symlink into the image, or when its retention dir or lock file is a
// symlink (planted by whoever could write there) to a victim.
func TestUntrustedStateDir(t *testing.T) {
	needRoot(t, "the state dir is handed to another owner")
	cases := []struct {
		name  string
		setup func(t *testing.T, base, state string) (stateArg string, check func(t *testing.T))
	}{
		{name: "mode 0755", setup: func(t *testing.T, base, state string) (string, func(*testing.T)) {
			os.Mkdir(state, 0o755)
			os.Chmod(state, 0o755)
			return state, nil
		}},
		{name: "owned by another user", setup: func(t *testing.T, base, state string) (string, func(*testing.T)) {
			os.Mkdir(state, 0o700)
			os.Chown(state, 1000, 1000)
			return state, nil
		}},
		{name: "symlink into the image", setup: func(t *testing.T, base, state string) (string, func(*testing.T)) {
			inside := filepath.Join(base, "image", ".state")
			os.MkdirAll(inside, 0o700)
			link := filepath.Join(base, "state-link")
			os.Symlink(inside, link)
			return link, nil
		}},
		{name: "retention symlink", setup: func(t *testing.T, base, state string) (string, func(*testing.T)) {
			victim := filepath.Join(base, "victim")
			writeFile(t, victim, "1.precious", "keep me\n", 0o644) // an old retention name
			os.Mkdir(state, 0o700)
			os.Symlink(victim, filepath.Join(state, "retention"))
			return state, func(t *testing.T) {
				if _, err := os.Stat(filepath.Join(victim, "1.precious")); err != nil {
					t.Errorf("the victim's file is gone: %v", err)
				}
			}
		}},
		{name: "lock symlink", setup: func(t *testing.T, base, state string) (string, func(*testing.T)) {
			target := filepath.Join(base, "victim-nologin")
			os.Mkdir(state, 0o700)
			os.Symlink(target, filepath.Join(state, "lock"))
			return state, func(t *testing.T) {
				if _, err := os.Lstat(target); err == nil {
					t.Errorf("the lock symlink's target %s was created", target)
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			pl := hostilePull(t, base, "benign")
			stateArg, check := tc.setup(t, base, pl.state)
			pl.state = stateArg
			code, stderr := pl.run(t)
			t.Logf("exit %d: %s", code, lastLine(stderr))
			if code == 0 {
				t.Errorf("the pull ran with this state dir")
			}
			if _, err := os.Lstat(filepath.Join(pl.dest, "etc/hostname")); err == nil {
				t.Errorf("the image was written")
			}
			if check != nil {
				check(t)
			}
		})
	}
}

// setidImage seeds an image where uid 1000 owns home/user and its tool, and
// gives that user a copy of the tool outside the image, on the same
// filesystem. It returns the image and the outside copy.
func setidImage(t *testing.T, base string) (dest, outside string) {
	dest = filepath.Join(base, "image")
	writeFile(t, dest, "home/user/tool", setidTool, 0o755)
	outside = filepath.Join(base, "outside", "tool")
	writeFile(t, filepath.Dir(outside), "tool", setidTool, 0o755)
	for _, p := range []string{filepath.Join(dest, "home/user"), filepath.Join(dest, "home/user/tool"), outside} {
		if err := os.Chown(p, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	return dest, outside
}

// checkNotSetid fails when the user's outside copy became root's or set-id.
func checkNotSetid(t *testing.T, outside string) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(outside, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Mode&0o7000 != 0 {
		t.Errorf("the user's own copy outside the image is now uid %d mode %#o (want uid 1000, no set-id bits)", st.Uid, st.Mode&0o7777)
	}
}

// TestMetadataToWalkedInode: an in-place chown/chmod (root, 04755) must
// reach only the inode the walk found. A local user who owns a directory
// in the image swaps the file for a hard link to their own copy between the
// walk and the metadata change (receive --stdio: the sender holds a fetch
// while the swap happens), or had the link in place before the run (pull
// -e): either way the copy outside the image must not become root's 04755.
func TestMetadataToWalkedInode(t *testing.T) {
	needRoot(t, "the image holds another user's files")
	t.Run("swapped after the walk/receive", func(t *testing.T) {
		base := t.TempDir()
		dest, outside := setidImage(t, base)
		src := setidSource(func() {
			// The local user, while the receiver waits for content.
			tool := filepath.Join(dest, "home/user/tool")
			if err := os.Remove(tool); err != nil {
				t.Error(err)
			}
			if err := os.Link(outside, tool); err != nil {
				t.Error(err)
			}
		})
		r := hostileReceive(t, src, "--state-dir", filepath.Join(base, "state"), dest)
		t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
		checkNotSetid(t, outside)
	})
	t.Run("linked before the run/pull", func(t *testing.T) {
		base := t.TempDir()
		pl := hostilePull(t, base, "setid")
		_, outside := setidImage(t, base)
		tool := filepath.Join(pl.dest, "home/user/tool")
		os.Remove(tool)
		if err := os.Link(outside, tool); err != nil {
			t.Fatal(err)
		}
		code, stderr := pl.run(t)
		t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
		checkNotSetid(t, outside)
	})
}

// TestManifestVouchesOnlyForWrites: a run dies (the sender drops the
// connection) while a new setuid-root file is being fetched, and meanwhile
// a local user who owns the directory plants a same-size file of their own
// at its path. The manifest must not record the source's hash for the
// planted file: the next run must read it afresh and replace it, not take
// it as the golden content and make it root's 04755.
func TestManifestVouchesOnlyForWrites(t *testing.T) {
	needRoot(t, "the image holds another user's directory")
	base := t.TempDir()
	dest, state := filepath.Join(base, "image"), filepath.Join(base, "state")
	if err := os.MkdirAll(filepath.Join(dest, "home/user"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(dest, "home/user"), 1000, 1000)
	planted := strings.Replace(setidTool, "echo tool", "rm -rf /.", 1) // the same size
	mk := func(drop bool) *hostileSource {
		es, files := hostileTree("home/", "home/user/", "home/user/tool="+setidTool)
		for _, e := range es {
			switch e.Path {
			case "home/user":
				e.UID, e.GID = 1000, 1000
			case "home/user/tool":
				e.Mode = 0o4755
			}
		}
		h := &hostileSource{full: es, files: files}
		h.fetch = func(ctx context.Context, r *imaging.FetchRequest, sink imaging.ContentSink) error {
			if drop {
				// The local user plants the file; the sender vanishes.
				p := filepath.Join(dest, "home/user/tool")
				if err := os.WriteFile(p, []byte(planted), 0o755); err != nil {
					t.Error(err)
				}
				os.Chown(p, 1000, 1000)
				return errors.New("connection dropped")
			}
			b := files[r.Entry.Path]
			if err := sink.Data(0, b); err != nil {
				return err
			}
			return sink.Finish(imaging.FetchResult{Size: int64(len(b)), Hash: xxhash.Sum64(b), Mtime: r.Entry.Mtime})
		}
		return h
	}
	r := hostileReceive(t, mk(true), "--state-dir", state, dest)
	t.Logf("aborted run: exit %d: %s", r.code, lastLine(r.stderr))
	r = hostileReceive(t, mk(false), "--state-dir", state, "--progress-timeout", "10s", dest)
	t.Logf("next run: exit %d: %s", r.code, lastLine(r.stderr))
	b, err := os.ReadFile(filepath.Join(dest, "home/user/tool"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != setidTool {
		var st syscall.Stat_t
		syscall.Stat(filepath.Join(dest, "home/user/tool"), &st)
		t.Errorf("after the next run the image holds the planted file (%q, uid %d, mode %#o), not the golden one", b, st.Uid, st.Mode&0o7777)
	}
	verifyClean(t, state, dest)
}

// TestSyncStalledImageDoesNotStallOthers: in goldsync sync, the first
// image's golden node stalls in the fetch (pings, no bytes); the
// no-progress timeout ends that image with exit 30 and the next image is
// still pulled.
func TestSyncStalledImageDoesNotStallOthers(t *testing.T) {
	base := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join(base, "golden")
	writeFile(t, golden, "etc/hostname", "good\n", 0o644)
	rsh := "env " + envHelper + "=hostile-agent " + envHostile + "=stall-fetch " + self
	os.MkdirAll(filepath.Join(base, "images"), 0o755)
	stalled, good := filepath.Join(base, "images", "stalled"), filepath.Join(base, "images", "good")
	conf := "[[image]]\nname = \"stalled\"\nsource = \"golden:/\"\nroot = \"" + stalled + "\"\nrsh = \"" + rsh +
		"\"\nagent_path = \"/usr/bin/goldsync-agent\"\ntimeout = \"1s\"\n\n" +
		"[[image]]\nname = \"good\"\nsource = \"" + golden + "\"\nroot = \"" + good + "\"\n"
	cfg := filepath.Join(base, "goldsync.toml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goldsync, "--config", cfg, "sync", "--progress-timeout", "2s")
	cmd.Env = append(os.Environ(), envAgentState+"="+filepath.Join(base, "agent-state"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-time.After(time.Minute): // a hang guard
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("goldsync sync still running after a minute:\n%s", out.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
	}
	t.Logf("exit %d:\n%s", code, out.String())
	if code != exitTimeout {
		t.Errorf("exit %d, want %d (the stalled image)", code, exitTimeout)
	}
	if b, err := os.ReadFile(filepath.Join(good, "etc/hostname")); err != nil || string(b) != "good\n" {
		t.Errorf("the image after the stalled one was not pulled: %q, %v", b, err)
	}
}

// TestCreatedDirMetadataStaysOurs: a directory the run creates (0700 until
// its metadata is set, last) sits in a directory a local user owns; while
// the sender holds a fetch, the user swaps it for a directory of their own.
// Setting the new directory's metadata must not make the user's directory
// root's (set-gid, as the source says).
func TestCreatedDirMetadataStaysOurs(t *testing.T) {
	needRoot(t, "the image holds another user's directory")
	base := t.TempDir()
	dest := filepath.Join(base, "image")
	if err := os.MkdirAll(filepath.Join(dest, "home/user"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(dest, "home/user"), 1000, 1000)
	mine := filepath.Join(dest, "home/user/newdir")
	es, files := hostileTree("home/", "home/user/", "home/user/newdir/", "zz/", "zz/slow=slow\n")
	for _, e := range es {
		switch e.Path {
		case "home/user":
			e.UID, e.GID = 1000, 1000
		case "home/user/newdir":
			e.Mode = 0o2755
		}
	}
	src := &hostileSource{full: es, files: files}
	src.fetch = func(ctx context.Context, r *imaging.FetchRequest, sink imaging.ContentSink) error {
		// The local user, while the receiver waits for content.
		if err := os.Rename(mine, filepath.Join(dest, "home/user/theirs-now")); err != nil {
			t.Error(err)
		}
		if err := os.Mkdir(mine, 0o755); err != nil {
			t.Error(err)
		}
		os.Chown(mine, 1000, 1000)
		b := files[r.Entry.Path]
		if err := sink.Data(0, b); err != nil {
			return err
		}
		return sink.Finish(imaging.FetchResult{Size: int64(len(b)), Hash: xxhash.Sum64(b), Mtime: r.Entry.Mtime})
	}
	r := hostileReceive(t, src, "--state-dir", filepath.Join(base, "state"), dest)
	t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	var st syscall.Stat_t
	if err := syscall.Stat(mine, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Mode&0o7000 != 0 {
		t.Errorf("the user's directory is now uid %d mode %#o; want it left as theirs (uid 1000, no set-id)", st.Uid, st.Mode&0o7777)
	}
}

// TestExcludedSurviveTypeChange: the image's etc/ssh holds host keys the
// receiver excludes; the sender replaces etc/ssh by a symlink. The keys
// must stay (the replacement is refused), as they would against a delete.
func TestExcludedSurviveTypeChange(t *testing.T) {
	base := t.TempDir()
	// --delete: the image holds files before its first pull.
	pl := hostilePull(t, base, "ssh-symlink", "--delete", "--exclude", "/etc/ssh/ssh_host_*")
	writeFile(t, pl.dest, "etc/ssh/ssh_host_ed25519_key", "real key\n", 0o600)
	writeFile(t, pl.dest, "etc/ssh/sshd_config", "Port 22\n", 0o644)
	code, stderr := pl.run(t)
	t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
	if b, err := os.ReadFile(filepath.Join(pl.dest, "etc/ssh/ssh_host_ed25519_key")); err != nil || string(b) != "real key\n" {
		t.Errorf("host key: %q, %v; want the image's own key kept", b, err)
	}
	if code != exitPartial {
		t.Errorf("exit %d, want %d (etc/ssh not replaced)", code, exitPartial)
	}
}

// TestChangedDirMetadataStaysOurs: an existing image directory whose
// entries change (a new file) gets its metadata set again at the end, to
// restore its mtime. A local user owning its parent swaps it for a
// directory of their own while the sender holds a later fetch; theirs must
// not become root's set-gid directory.
func TestChangedDirMetadataStaysOurs(t *testing.T) {
	needRoot(t, "the image holds another user's directory")
	base := t.TempDir()
	dest := filepath.Join(base, "image")
	shared := filepath.Join(dest, "home/user/shared")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(dest, "home/user"), 1000, 1000)
	syscall.Chmod(shared, 0o2775) // os.Chmod would drop the set-gid bit
	es, files := hostileTree("home/", "home/user/", "home/user/shared/", "home/user/shared/new=new\n", "zz/", "zz/slow=slow\n")
	for _, e := range es {
		switch e.Path {
		case "home/user":
			e.UID, e.GID = 1000, 1000
		case "home/user/shared":
			e.Mode = 0o2775
		}
	}
	mtime := time.Unix(0, es[0].Mtime)
	os.Chtimes(shared, mtime, mtime)
	src := &hostileSource{full: es, files: files}
	src.fetch = func(ctx context.Context, r *imaging.FetchRequest, sink imaging.ContentSink) error {
		if r.Entry.Path == "zz/slow" {
			// The local user, while the receiver waits for content, once
			// the new file is in place.
			for i := 0; i < 1000; i++ {
				if _, err := os.Lstat(filepath.Join(shared, "new")); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := os.Rename(shared, filepath.Join(dest, "home/user/old")); err != nil {
				t.Error(err)
			}
			if err := os.Mkdir(shared, 0o755); err != nil {
				t.Error(err)
			}
			os.Chown(shared, 1000, 1000)
		}
		b := files[r.Entry.Path]
		if err := sink.Data(0, b); err != nil {
			return err
		}
		return sink.Finish(imaging.FetchResult{Size: int64(len(b)), Hash: xxhash.Sum64(b), Mtime: r.Entry.Mtime})
	}
	r := hostileReceive(t, src, "--state-dir", filepath.Join(base, "state"), dest)
	t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	var st syscall.Stat_t
	if err := syscall.Stat(shared, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Mode&0o7000 != 0 {
		t.Errorf("the user's directory is now uid %d mode %#o; want it left as theirs (uid 1000, no set-id)", st.Uid, st.Mode&0o7777)
	}
}
