package snapshot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckImage(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckImage(dir); err != nil {
		t.Errorf("CheckImage(dir): %v", err)
	}
	if err := CheckImage(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CheckImage(missing): %v, want fs.ErrNotExist", err)
	}
	if err := CheckImage(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("CheckImage(file): %v, want 'not a directory'", err)
	}
}

func TestBuildResultText(t *testing.T) {
	r := &BuildResult{
		Nodes: []NodeResult{
			{Node: "node001", Counts: Counts{Created: 3, Identity: 4}},
			{Node: "node002", Counts: Counts{Conflicts: 1, Failed: 1}, Error: "disk full"},
		},
		Totals:       Counts{Created: 3, Conflicts: 1, Failed: 1, Bytes: 2048, Identity: 4},
		Conflicts:    []Conflict{{Node: "node002", Path: "/etc/motd", Why: "both changed"}},
		Problems:     []string{"node002 /var/log: read-only"},
		ImageEntries: 42,
		DryRun:       true,
		Duration:     1500 * time.Millisecond,
	}
	var b strings.Builder
	if err := r.WriteSummary(&b, "/img", "/snap", false); err != nil {
		t.Fatal(err)
	}
	want := "goldsync: dry run of 2 snapshots in /snap from /img in 1.50s (42 image entries each)\n" +
		"  created 3, updated 0, kept node changes 0, conflicts 1, listed paths not in the image 0, failed 1, copied 2.0 KiB\n" +
		"  identity files to create 4 (hostname, machine-id, fstab, ssh host keys)\n"
	if b.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := r.WriteSummary(&b, "/img", "/snap", true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "  node002: created 0, updated 0, kept 0, conflicts 1, failed 1, identity files 0\n") {
		t.Errorf("per-node summary lacks node002's line:\n%s", b.String())
	}
	b.Reset()
	if err := r.WriteTrouble(&b, "x: "); err != nil {
		t.Fatal(err)
	}
	want = "x: conflict: node002 /etc/motd: both changed\nx: not applied: node002 /var/log: read-only\nx: node002: disk full\n"
	if b.String() != want {
		t.Errorf("trouble:\n%s\nwant:\n%s", b.String(), want)
	}
}
