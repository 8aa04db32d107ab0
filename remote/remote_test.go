package remote_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/sshtest"
	"github.com/goldsync/goldsync/internal/testbin"
	"github.com/goldsync/goldsync/internal/treetest"
	"github.com/goldsync/goldsync/remote"
)

var agentBin string

func TestMain(m *testing.M) {
	testbin.Main(m, func(dir string) { agentBin = filepath.Join(dir, "goldsync-agent") }, testbin.Agent)
}

func pull(t *testing.T, spec, dst string, opts remote.Options) *imaging.Result {
	t.Helper()
	src, err := remote.Open(context.Background(), spec, opts)
	if err != nil {
		t.Fatalf("open %s: %v", spec, err)
	}
	defer src.Close()
	res, err := imaging.Sync(context.Background(), src, dst, imaging.Options{StateDir: dst + ".state"})
	if err != nil {
		t.Fatalf("sync: %v (%v)", err, res)
	}
	return res
}

func TestLocalPullThroughAgentProcess(t *testing.T) {
	base := t.TempDir()
	src, dst := filepath.Join(base, "golden"), filepath.Join(base, "image")
	os.Mkdir(src, 0o755)
	want := treetest.MakeTricky(t, src, treetest.TrickyOptions{})
	for _, tc := range []struct {
		name string
		opts remote.Options
	}{
		{"child process", remote.Options{LocalAgent: agentBin, StateDir: filepath.Join(base, "agent")}},
		{"in process, 2 streams", remote.Options{InProcess: true, Serve: agent.InProcess, Streams: 2, StateDir: filepath.Join(base, "agent2")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dst + "-" + strings.ReplaceAll(tc.name, " ", "_")
			pull(t, src, d, tc.opts)
			treetest.Equal(t, want, treetest.Scan(t, d), treetest.DiffOptions{CheckSparse: true})
		})
	}
}

// uploadedAgents lists the agents uploaded into the ssh user's cache.
func uploadedAgents(t *testing.T) []string {
	home, _ := os.UserHomeDir()
	m, _ := filepath.Glob(filepath.Join(home, remote.CacheDir, "goldsync-agent-*"))
	return m
}

func TestSSHPullUploadsAgentAndCopiesExactly(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	before := map[string]bool{}
	for _, p := range uploadedAgents(t) {
		before[p] = true
	}
	t.Cleanup(func() {
		for _, p := range uploadedAgents(t) {
			if !before[p] {
				os.Remove(p)
			}
		}
	})
	base := t.TempDir()
	src, dst := filepath.Join(base, "golden"), filepath.Join(base, "image")
	os.Mkdir(src, 0o755)
	want := treetest.MakeTricky(t, src, treetest.TrickyOptions{})
	opts := remote.Options{Rsh: strings.Join(srv.SSHArgs(), " "), LocalAgent: agentBin, Streams: 2}
	pull(t, srv.Target(src), dst, opts)
	treetest.Equal(t, want, treetest.Scan(t, dst), treetest.DiffOptions{CheckSparse: true})
	if len(uploadedAgents(t)) == len(before) {
		t.Log("agent already cached from an earlier run: upload path not exercised this time")
	}
	// A second pull finds the cached agent and moves almost nothing.
	res := pull(t, srv.Target(src), dst, opts)
	// Nothing may travel or be written. (A file whose hash the agent's
	// cache lost is re-checked by hash, which costs a read on the golden
	// node but no transfer.)
	if res.BytesReceived != 0 || res.Files != 0 || res.Created != 0 || res.MetaOnly != 0 {
		t.Errorf("re-pull with no change: received %d bytes, wrote %d files", res.BytesReceived, res.Files)
	}
	if n := res.Plan.Len(); n != 0 {
		t.Logf("re-pull with no change re-checked %d files by hash", n)
	}
}

func TestSSHShellNoiseIsAClearError(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{ShellNoise: "Welcome to node004\n"})
	src := t.TempDir()
	_, err := remote.Open(context.Background(), srv.Target(src), remote.Options{
		Rsh: strings.Join(srv.SSHArgs(), " "), AgentPath: agentBin})
	if err == nil || !strings.Contains(err.Error(), "Welcome to node004") {
		t.Fatalf("err = %v, want it to quote the shell noise", err)
	}
	if !errors.Is(err, remote.ErrProtocol) {
		t.Errorf("err = %v, want ErrProtocol", err)
	}
}

func TestSSHUnreachableIsErrSSH(t *testing.T) {
	_, err := remote.Open(context.Background(), "127.0.0.1:/", remote.Options{
		Rsh: "ssh -F none -p 1 -o BatchMode=yes -o ConnectTimeout=2", AgentPath: agentBin})
	if !errors.Is(err, remote.ErrSSH) {
		t.Fatalf("err = %v, want ErrSSH", err)
	}
}

// wireBytes pulls and returns the bytes that crossed the ssh stream.
func wirePull(t *testing.T, spec, dst string, opts remote.Options) (int64, *imaging.Result) {
	t.Helper()
	src, err := remote.Open(context.Background(), spec, opts)
	if err != nil {
		t.Fatalf("open %s: %v", spec, err)
	}
	res, err := imaging.Sync(context.Background(), src, dst, imaging.Options{StateDir: dst + ".state", Incremental: true})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	ws := src.(interface{ WireBytes() (int64, int64) })
	src.Close()
	in, out := ws.WireBytes()
	return in + out, res
}

func TestSSHWireBytesFollowTheChange(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	base := t.TempDir()
	src, dst := filepath.Join(base, "golden"), filepath.Join(base, "image")
	rng := newRand()
	var total int64
	for i := range 1500 {
		n := 1024 + rng.IntN(15*1024)
		total += int64(n)
		writeRandom(t, filepath.Join(src, fmt.Sprintf("usr/lib/d%02d/f%04d", i%30, i)), n, rng)
	}
	opts := remote.Options{Rsh: strings.Join(srv.SSHArgs(), " "), AgentPath: agentBin, StateDir: filepath.Join(base, "agent")}
	full, _ := wirePull(t, srv.Target(src), dst, opts)
	none, _ := wirePull(t, srv.Target(src), dst, opts)
	t.Logf("content %d bytes; full pull %d bytes on the wire; no-change pull %d bytes (%.2f%%)", total, full, none, 100*float64(none)/float64(full))
	if full < total {
		t.Errorf("full pull moved %d bytes, less than the content (%d)", full, total)
	}
	if none*100 >= full {
		t.Errorf("no-change pull moved %d bytes, not under 1%% of the full pull's %d", none, full)
	}
	// A yum-like change: 60 new files, 5 modified, 3 deleted.
	var changed int64
	for i := range 60 {
		n := 4096 + rng.IntN(8192)
		changed += int64(n)
		writeRandom(t, filepath.Join(src, fmt.Sprintf("usr/share/dstat/f%02d", i)), n, rng)
	}
	for i := range 5 {
		p := filepath.Join(src, fmt.Sprintf("usr/lib/d%02d/f%04d", i, i))
		st, _ := os.Stat(p)
		changed += st.Size()
		writeRandom(t, p, int(st.Size()), rng)
	}
	for i := range 3 {
		os.Remove(filepath.Join(src, fmt.Sprintf("usr/lib/d%02d/f%04d", 10+i, 10+i)))
	}
	small, res := wirePull(t, srv.Target(src), dst, opts)
	t.Logf("yum-like change of %d bytes: %d bytes on the wire (%d created, %d updated, %d deleted)", changed, small, res.Created, res.Updated, res.Deleted)
	if small < changed || small > 2*changed+none {
		t.Errorf("yum-like change moved %d bytes on the wire, want roughly the %d changed bytes", small, changed)
	}
	treetest.Equal(t, treetest.Scan(t, src), treetest.Scan(t, dst), treetest.DiffOptions{})
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(7, 11)) }

func writeRandom(t *testing.T, p string, n int, rng *rand.Rand) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
