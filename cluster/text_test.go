package cluster

import (
	"strings"
	"testing"

	"github.com/goldsync/goldsync/snapshot"
)

func TestImageReportText(t *testing.T) {
	r := &ImageReport{Image: "rhel9", Result: ResultOK, DryRun: true, Rollback: 3, Seconds: 1.5,
		Pull: &PullSummary{Entries: 10, Created: 2, BytesReceived: 2048},
		Snapshots: []SnapshotReport{{OS: "rhel9compute", Nodes: 2, Conflicts: 1, Totals: snapshot.Counts{Kept: 1},
			ConflictList: []string{"node001: /etc/motd: both changed"}}},
		Netboot: []NetbootReport{{OS: "rhel9compute", Nodes: 2, Kernel: "5.14.0-427.el9", Warnings: []string{"no client piece"}}},
		Notes:   []string{"OS other: no node boots it"},
	}
	if !r.HasConflicts() {
		t.Error("HasConflicts = false")
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"goldsync: dry run of rollback to generation 3 of rhel9: ok in 1.50s\n",
		"  rollback: entries 10; nothing changed (dry run): the changes are the itemized lines",
		"    conflict (the node's version is kept): node001: /etc/motd: both changed\n",
		"  netboot: would install OS rhel9compute's kernel 5.14.0-427.el9 and write the boot files of 2 nodes\n",
		"  warning: no client piece\n",
		"  note: OS other: no node boots it\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestImageReportPullCounts: a run that was not a dry run counts what
// its pull did; a dry run says nothing was done (sync -n said "created 0"
// beside the itemized lines, newcomer trial).
func TestImageReportPullCounts(t *testing.T) {
	r := &ImageReport{Image: "rhel9", Result: ResultOK, Seconds: 1.5, Pull: &PullSummary{Entries: 10, Created: 2, BytesReceived: 2048}}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if want := "  pull: entries 10, created 2, updated 0, metadata only 0, hard links 0, deleted 0 (planned deletes 0), received 2.0 KiB\n"; !strings.Contains(b.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, b.String())
	}
}

func TestPullSummaryText(t *testing.T) {
	s := PullSummary{Source: "node004:/", Dest: "/img", OK: true, Seconds: 2, Entries: 5, Actions: 7, Deleted: 1, WireBytesIn: 4096, WireBytesOut: 10}
	var b strings.Builder
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"goldsync: pulled node004:/ -> /img in 2.00s\n", "deleted 1 (planned deletes 0)", "  bytes on the wire: in 4.0 KiB, out 10 B\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	// the plan's step count is not a total of the counts beside it
	// (newcomer trial: "actions 22: created 14, ..." adding up to 16)
	if strings.Contains(b.String(), "actions") {
		t.Errorf("summary prints the plan's step count:\n%s", b.String())
	}
	// A dry run did nothing: no row of zero counts beside the itemized
	// lines, but what the plan holds.
	dry := PullSummary{Source: "node004:/", Dest: "/img", DryRun: true, OK: true, Seconds: 2, Entries: 5, Actions: 7, WouldDelete: 2, WouldFetch: 2048}
	b.Reset()
	if err := dry.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"goldsync: dry run of node004:/ -> /img in 2.00s\n", "nothing changed (dry run)", "2 of them deletes, at most 2.0 KiB of content to fetch"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("dry-run summary lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "created 0") {
		t.Errorf("dry-run summary counts what was done (nothing):\n%s", b.String())
	}
	s.OK = false
	if got := s.Line(); !strings.HasPrefix(got, "goldsync: failed pull of node004:/ -> /img in 2.00s: 0 created") {
		t.Errorf("Line = %q", got)
	}
}
