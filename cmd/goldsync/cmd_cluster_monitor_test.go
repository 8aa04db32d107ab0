package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/internal/exitcode"
)

// The monitoring tests: what an admin's cron mail, status check and
// node_exporter see. Each fails on the code before the cluster package.

// conflict makes node001 and the golden node both change var/log/messages
// after a first sync, so the next sync keeps the node's version: a
// snapshot conflict.
func (c *testSite) conflict(t *testing.T) {
	t.Helper()
	c.sync(t)
	writeFile(t, filepath.Join(c.snapDir, "node001/var/log/messages"), "the node's own\n")
	writeFile(t, filepath.Join(c.golden, "var/log/messages"), "the golden node's\n")
}

// TestSyncCronShowsConflicts: under cron (stdout a pipe) a successful run
// with a snapshot conflict prints the conflict, so cron mails it.
func TestSyncCronShowsConflicts(t *testing.T) {
	needRootForCluster(t)
	c := newCluster(t, false)
	c.conflict(t)
	out, errs := c.sync(t)
	if !strings.Contains(out, "node001: /var/log/messages") || !strings.Contains(out, "conflicts 1") {
		t.Errorf("cron output of a run with a conflict:\nstdout:\n%s\nstderr:\n%s", out, errs)
	}
}

// TestStatusShowsConflicts: the last run's conflicts are listed by status,
// in the table and in --json.
func TestStatusShowsConflicts(t *testing.T) {
	needRootForCluster(t)
	c := newCluster(t, false)
	c.conflict(t)
	c.sync(t)
	out, errs, code := gs(t, "--config", c.config, "status")
	if code != 0 || !strings.Contains(out, "1 conflicts") || !strings.Contains(out, "snapshot conflict (the node's version is kept): node001: /var/log/messages") {
		t.Errorf("status: exit %d\n%s\n%s", code, out, errs)
	}
	jout, _, code := gs(t, "--config", c.config, "--json", "status")
	var st []struct {
		Conflicts []string `json:"conflicts"`
	}
	if err := json.Unmarshal([]byte(jout), &st); err != nil || code != 0 || len(st) != 1 ||
		len(st[0].Conflicts) != 1 || !strings.HasPrefix(st[0].Conflicts[0], "node001: /var/log/messages: ") {
		t.Errorf("status --json: exit %d, %v\n%s", code, err, jout)
	}
}

// TestStatusExitAndLastError: status exits with a failed run's code, says
// the last error in the table and JSON even after a later success, and
// exits 30 past --max-age.
func TestStatusExitAndLastError(t *testing.T) {
	needRootForCluster(t)
	c := newCluster(t, false)
	c.sync(t)
	// The golden tree is emptied: the guard refuses (25).
	if err := os.Rename(c.golden, c.golden+".saved"); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(c.golden, 0o755)
	if _, _, code := gs(t, "--config", c.config, "sync"); code != exitcode.MaxDelete {
		t.Fatalf("sync of an empty source: exit %d, want %d", code, exitcode.MaxDelete)
	}
	out, errs, code := gs(t, "--config", c.config, "status")
	if code != exitcode.MaxDelete || !strings.Contains(out, "last error: ") {
		t.Errorf("status after a failed run: exit %d, want %d\n%s\n%s", code, exitcode.MaxDelete, out, errs)
	}
	jout, _, code := gs(t, "--config", c.config, "--json", "status")
	if code != exitcode.MaxDelete || !strings.Contains(jout, `"result": "failed"`) {
		t.Errorf("status --json after a failed run: exit %d\n%s", code, jout)
	}

	// Fixed: the next run succeeds; the failure is still told, with when.
	os.RemoveAll(c.golden)
	if err := os.Rename(c.golden+".saved", c.golden); err != nil {
		t.Fatal(err)
	}
	c.sync(t)
	out, errs, code = gs(t, "--config", c.config, "status")
	if code != 0 || !regexp.MustCompile(`rhel9: last error \(.* ago\): .*empty`).MatchString(out) {
		t.Errorf("status after a failure then a success: exit %d\n%s\n%s", code, out, errs)
	}
	jout, _, _ = gs(t, "--config", c.config, "--json", "status")
	var st []struct {
		LastError   string `json:"last_error"`
		LastFailure string `json:"last_failure"`
	}
	if err := json.Unmarshal([]byte(jout), &st); err != nil || len(st) != 1 || st[0].LastError == "" || st[0].LastFailure == "" {
		t.Errorf("status --json lacks the last error: %v\n%s", err, jout)
	}

	// Too old: --max-age.
	if out, errs, code := gs(t, "--config", c.config, "status", "--max-age", "1h"); code != 0 {
		t.Errorf("status --max-age 1h right after a sync: exit %d\n%s\n%s", code, out, errs)
	}
	out, errs, code = gs(t, "--config", c.config, "status", "--max-age", "1ns")
	if code != exitcode.Timeout || !strings.Contains(out, "ok (stale)") || !strings.Contains(errs, "no sync ended in the last 1ns: rhel9") {
		t.Errorf("status --max-age 1ns: exit %d, want %d\n%s\n%s", code, exitcode.Timeout, out, errs)
	}
}

// TestSyncMetricsKeepLastSuccess: a failed run leaves the last success's
// time in the metrics file.
func TestSyncMetricsKeepLastSuccess(t *testing.T) {
	needRootForCluster(t)
	c := newCluster(t, false)
	prom := filepath.Join(c.base, "goldsync.prom")
	c.sync(t, "--metrics-file", prom)
	sample := regexp.MustCompile(`(?m)^goldsync_last_success_timestamp_seconds\{image="rhel9"\} \d+$`)
	first := sample.FindString(readFile(t, prom))
	if first == "" {
		t.Fatalf("no last success after a successful run:\n%s", readFile(t, prom))
	}
	os.RemoveAll(c.golden)
	os.MkdirAll(c.golden, 0o755)
	if _, _, code := gs(t, "--config", c.config, "sync", "--metrics-file", prom); code != exitcode.MaxDelete {
		t.Fatalf("sync of an empty source: exit %d", code)
	}
	data := readFile(t, prom)
	if got := sample.FindString(data); got != first || !strings.Contains(data, `goldsync_last_run_success{image="rhel9"} 0`) {
		t.Errorf("metrics after a failed run: last success %q, want %q\n%s", got, first, data)
	}
}

// TestJSONOnEveryFailure: with --json, stdout holds a result object
// whatever fails, here before any image ran (exit 1 and 3).
func TestJSONOnEveryFailure(t *testing.T) {
	c := newCluster(t, false)
	os.Remove(c.nodes)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"sync of an unknown image", []string{"sync", "sles"}, exitcode.Usage},
		{"sync without its nodes file", []string{"sync"}, exitcode.Select},
		{"status of an unknown image", []string{"status", "sles"}, exitcode.Usage},
		{"verify of an image never synced", []string{"verify", "rhel9"}, exitcode.Select},
		{"sync without a config", []string{"--config", filepath.Join(c.base, "none.toml"), "sync"}, exitcode.Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := gs(t, append([]string{"--config", c.config, "--json"}, tt.args...)...)
			var res struct {
				OK       *bool  `json:"ok"`
				Error    string `json:"error"`
				ExitCode int    `json:"exit_code"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil || res.OK == nil || *res.OK || res.Error == "" || res.ExitCode != tt.code || code != tt.code {
				t.Errorf("exit %d (want %d), stdout not a failure object (%v):\n%s\nstderr:\n%s", code, tt.code, err, out, errs)
			}
		})
	}
}
