package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/snapshot"
)

// site is a golden tree and a config pulling it into an image; with an
// OS, a nodes file and a TFTP root too.
type site struct {
	base, golden, root, stateDir, snapDir, tftp, nodes string
}

func newSite(t testing.TB, files map[string]string) *site {
	t.Helper()
	base := t.TempDir()
	s := &site{base: base, golden: filepath.Join(base, "golden"), root: filepath.Join(base, "images", "rhel9", "root"),
		snapDir: filepath.Join(base, "images", "rhel9", "snapshot"), tftp: filepath.Join(base, "tftpboot"),
		nodes: filepath.Join(base, "nodes")}
	s.stateDir = imaging.DefaultStateDir(s.root)
	for p, content := range files {
		put(t, filepath.Join(s.golden, p), content)
	}
	put(t, s.nodes, "10.8.136.1 node001\n10.8.136.2 node002\n")
	if err := os.MkdirAll(filepath.Dir(s.root), 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// config returns the site's config; withOS adds an OS booting the image.
func (s *site) config(t testing.TB, withOS bool, extra string) *config.Config {
	t.Helper()
	text := fmt.Sprintf("[cluster]\ntftpboot = %q\nnodes = %q\nnfs_server = \"10.8.0.2\"\n\n[[image]]\nname = \"rhel9\"\nsource = %q\nroot = %q\n%s",
		s.tftp, s.nodes, s.golden, s.root, extra)
	if withOS {
		text += "os = \"rhel9compute\"\n"
	}
	c, err := config.Parse(filepath.Join(s.base, "goldsync.toml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var golden = map[string]string{
	"boot/vmlinuz-5.14.0-427.el9":       "kernel",
	"boot/initramfs-5.14.0-427.el9.img": "initramfs",
	"etc/hostname":                      "golden\n",
	"etc/ssh/ssh_host_ed25519_key":      "secret\n",
	"var/log/messages":                  "boot\n",
	"usr/bin/tool":                      strings.Repeat("tool ", 100),
}

// TestRun runs the job on a table of sites and checks the result, the
// step and library error it fails with, and what it leaves behind.
func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		withOS  bool
		extra   string
		opts    cluster.Options
		prepare func(t *testing.T, s *site)
		result  string       // of the image; "" when Run fails before
		step    cluster.Step // of the error; "" when none
		is      error        // the error wraps this
		check   func(t *testing.T, s *site, r *cluster.Report)
	}{
		{name: "pull only", result: cluster.ResultOK, check: func(t *testing.T, s *site, r *cluster.Report) {
			if _, err := os.Stat(filepath.Join(s.root, "usr/bin/tool")); err != nil {
				t.Error(err)
			}
			rec, err := cluster.LoadRecord(s.stateDir)
			if err != nil || rec == nil || rec.Result != cluster.ResultOK || rec.LastSuccess.IsZero() {
				t.Errorf("status record %+v, %v; want ok with a last success", rec, err)
			}
		}},
		{name: "pull, snapshots and netboot", withOS: true, result: cluster.ResultOK, check: func(t *testing.T, s *site, r *cluster.Report) {
			ir := r.Images[0]
			if len(ir.Snapshots) != 1 || ir.Snapshots[0].Nodes != 2 || len(ir.Snapshots[0].Failed) != 0 {
				t.Errorf("snapshots %+v", ir.Snapshots)
			}
			if len(ir.Netboot) != 1 || ir.Netboot[0].Kernel != "5.14.0-427.el9" {
				t.Errorf("netboot %+v", ir.Netboot)
			}
			if _, err := os.Stat(filepath.Join(s.snapDir, "node001", "var/log/messages")); err != nil {
				t.Error(err)
			}
		}},
		{name: "dry run writes nothing", withOS: true, opts: cluster.Options{DryRun: true}, result: cluster.ResultOK,
			check: func(t *testing.T, s *site, r *cluster.Report) {
				for _, p := range []string{s.root, s.stateDir, s.snapDir, s.tftp} {
					if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("dry run left %s: %v", p, err)
					}
				}
				if n := r.Images[0].Notes; len(n) != 1 || !strings.Contains(n[0], "does not exist yet") {
					t.Errorf("notes %q", n)
				}
			}},
		{name: "unknown image", opts: cluster.Options{Images: []string{"sles"}}, step: cluster.StepConfig, is: cluster.ErrNoImage},
		{name: "bad nodes file", withOS: true, step: cluster.StepNodes, is: snapshot.ErrNodes,
			prepare: func(t *testing.T, s *site) { put(t, s.nodes, "not-an-ip node001\n") }},
		{name: "missing source", result: cluster.ResultFailed, step: cluster.StepConnect, is: fs.ErrNotExist,
			prepare: func(t *testing.T, s *site) { os.RemoveAll(s.golden) }},
		{name: "locked by a pull", result: cluster.ResultLocked, step: cluster.StepPull, is: imaging.ErrLocked,
			prepare: func(t *testing.T, s *site) {
				unlock, err := imaging.Lock(s.stateDir)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(unlock)
			}},
		{name: "locked by a run", result: cluster.ResultLocked, step: cluster.StepLock, is: imaging.ErrLocked,
			prepare: func(t *testing.T, s *site) {
				unlock, err := cluster.TakeRunLock(s.stateDir)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(unlock)
			}},
		{name: "guard refuses an empty source", result: cluster.ResultFailed, step: cluster.StepPull, is: imaging.ErrGuard,
			prepare: func(t *testing.T, s *site) {
				if _, err := cluster.Run(context.Background(), s.config(t, false, ""), cluster.Options{}); err != nil {
					t.Fatal(err)
				}
				os.RemoveAll(s.golden)
				os.MkdirAll(s.golden, 0o755)
			}},
		{name: "bad files list", withOS: true, result: cluster.ResultFailed, step: cluster.StepLists, is: snapshot.ErrLists,
			prepare: func(t *testing.T, s *site) { put(t, filepath.Join(s.snapDir, "files"), "relative/path\n") }},
		{name: "rollback to a generation that is not there", opts: cluster.Options{RollbackTo: 7},
			step: cluster.StepRollback, is: imaging.ErrNoGeneration,
			prepare: func(t *testing.T, s *site) {
				if _, err := cluster.Run(context.Background(), s.config(t, false, ""), cluster.Options{}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "deadline", opts: cluster.Options{Deadline: time.Nanosecond}, result: cluster.ResultFailed, is: cluster.ErrDeadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t, golden)
			if tt.prepare != nil {
				tt.prepare(t, s)
			}
			rep, err := cluster.Run(context.Background(), s.config(t, tt.withOS, tt.extra), tt.opts)
			if tt.is == nil && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("Run: %v, want an error wrapping %v", err, tt.is)
			}
			if got := cluster.StepOf(err); tt.step != "" && got != tt.step {
				t.Errorf("step %q, want %q (%v)", got, tt.step, err)
			}
			if tt.result == "" {
				if rep != nil {
					t.Errorf("report %+v, want none", rep)
				}
				// Refused before any image ran: the status is as it was.
				if rec, _ := cluster.LoadRecord(s.stateDir); rec != nil && rec.Result != cluster.ResultOK {
					t.Errorf("status record %+v after a refused run", rec)
				}
				return
			}
			if rep == nil || len(rep.Images) != 1 {
				t.Fatalf("report %+v, want one image", rep)
			}
			ir := rep.Images[0]
			if ir.Result != tt.result {
				t.Errorf("result %q, want %q (%v)", ir.Result, tt.result, ir.Err)
			}
			if rep.OK != (tt.result == cluster.ResultOK) {
				t.Errorf("report OK %v with result %s", rep.OK, ir.Result)
			}
			if tt.check != nil {
				tt.check(t, s, rep)
			}
		})
	}
}

// TestStatusAfterFailure: a failed run's error stays in the status after
// a later success, and MaxAge marks an old or missing sync stale.
func TestStatusAfterFailure(t *testing.T) {
	s := newSite(t, golden)
	cfg := s.config(t, false, "")
	if _, err := cluster.Run(context.Background(), cfg, cluster.Options{}); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(s.golden)
	os.MkdirAll(s.golden, 0o755)
	if _, err := cluster.Run(context.Background(), cfg, cluster.Options{ExitCode: func(error) int { return 25 }}); !errors.Is(err, imaging.ErrGuard) {
		t.Fatalf("Run from an empty source: %v, want ErrGuard", err)
	}
	st, err := cluster.Status(cfg, cluster.StatusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := st[0]; r.Result != cluster.ResultFailed || r.ExitCode != 25 || !strings.Contains(r.Error, "empty") || r.Healthy() {
		t.Errorf("status after a failed run: %+v", r)
	}
	for p, c := range golden {
		put(t, filepath.Join(s.golden, p), c)
	}
	if _, err := cluster.Run(context.Background(), cfg, cluster.Options{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    cluster.StatusOptions
		stale   bool
		healthy bool
	}{
		{name: "fresh", opts: cluster.StatusOptions{MaxAge: time.Hour}, healthy: true},
		{name: "no limit", opts: cluster.StatusOptions{Now: time.Now().Add(1000 * time.Hour)}, healthy: true},
		{name: "older than max age", opts: cluster.StatusOptions{MaxAge: time.Hour, Now: time.Now().Add(2 * time.Hour)}, stale: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := cluster.Status(cfg, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			r := st[0]
			if r.Result != cluster.ResultOK || r.Stale != tt.stale || r.Healthy() != tt.healthy {
				t.Errorf("result %s stale %v healthy %v, want ok, %v, %v", r.Result, r.Stale, r.Healthy(), tt.stale, tt.healthy)
			}
			if !strings.Contains(r.LastError, "empty") || r.LastFailure.IsZero() {
				t.Errorf("last error %q at %v: the failed run's is lost", r.LastError, r.LastFailure)
			}
		})
	}
	never := newSite(t, golden)
	st, err = cluster.Status(never.config(t, false, ""), cluster.StatusOptions{MaxAge: time.Hour})
	if err != nil || st[0].Synced || !st[0].Stale {
		t.Errorf("never synced with a max age: %+v, %v; want stale", st, err)
	}
}

// TestWriteMetricsKeepsLastSuccess: a failed run keeps the time of the
// last success, from the status record or from the file it replaces; a
// successful one writes its status record's time.
func TestWriteMetricsKeepsLastSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "goldsync.prom")
	t0 := time.Unix(1700000000, 0)
	fail := errors.New("boom")
	steps := []struct {
		runs []cluster.ImageMetrics
		want []string
		not  []string
	}{
		{runs: []cluster.ImageMetrics{{Image: "a"}, {Image: "b", Err: fail}},
			want: []string{`goldsync_last_success_timestamp_seconds{image="a"} 1700000000`, `goldsync_last_run_success{image="b"} 0`},
			not:  []string{`goldsync_last_success_timestamp_seconds{image="b"}`}},
		{runs: []cluster.ImageMetrics{{Image: "a", Err: fail}, {Image: "b", Err: fail, LastSuccess: time.Unix(1600000000, 0)}},
			want: []string{`goldsync_last_success_timestamp_seconds{image="a"} 1700000000`, `goldsync_last_success_timestamp_seconds{image="b"} 1600000000`,
				`goldsync_last_run_success{image="a"} 0`}},
		// a success takes its status record's time, which may be a second
		// before the file is written: the next failure must not move it
		{runs: []cluster.ImageMetrics{{Image: "a", LastSuccess: time.Unix(1699999999, 0)}},
			want: []string{`goldsync_last_success_timestamp_seconds{image="a"} 1699999999`, `goldsync_last_run_success{image="a"} 1`}},
	}
	for i, st := range steps {
		if err := cluster.WriteMetrics(path, st.runs, t0.Add(time.Duration(i)*time.Hour*0)); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		for _, w := range st.want {
			if !strings.Contains(string(data), w+"\n") {
				t.Errorf("step %d: metrics lack %q:\n%s", i, w, data)
			}
		}
		for _, w := range st.not {
			if strings.Contains(string(data), w) {
				t.Errorf("step %d: metrics hold %q:\n%s", i, w, data)
			}
		}
		if n := strings.Count(string(data), "# TYPE goldsync_last_success_timestamp_seconds"); n != 1 {
			t.Errorf("step %d: %d TYPE lines for last_success", i, n)
		}
	}
}
