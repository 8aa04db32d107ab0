package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestWriteStatus(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	reports := []StatusReport{
		{Image: "rhel9", Synced: true, LastSync: now.Add(-3 * time.Hour), AgeSeconds: 3 * 3600, Result: ResultPartial,
			Error: "2 paths not applied\nmore", Changes: Changes{Created: 2, Updated: 1, BytesReceived: 2048, SnapshotConflicts: 3},
			Conflicts: []string{"node001: /etc/motd: both changed"}, Nodes: 4, SnapshotsBehind: 1, Behind: []string{"node004"},
			Generations: 5, GenerationBytes: 1 << 20,
			Replicas: []ReplicaStatus{{Replica: "rack2", Address: "10.0.2.1", Generation: 40, Behind: 1, LagSeconds: 600, Down: true}}},
		{Image: "debian12", Stale: true},
	}
	var b strings.Builder
	if err := WriteStatus(&b, reports, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"IMAGE     LAST SYNC",
		"  3h0m  partial ", "  +2 ~1 -0, 2.0 KiB  ", "  4 nodes, 1 behind (node004), 3 conflicts  ", "  5, 1.0 MiB\n",
		"debian12  never                -     never synced  -  ",
		"rhel9: snapshot conflict (the node's version is kept): node001: /etc/motd: both changed\n",
		"rhel9: and 2 more snapshot conflicts\n",
		"rhel9: last error: 2 paths not applied ...\n",
		"rhel9: replica rack2 (10.0.2.1): generation 40, 1 behind for 10m; down: its nodes boot from the primary\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}
