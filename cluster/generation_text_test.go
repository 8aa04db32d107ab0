package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/goldsync/goldsync/imaging"
)

// TestWriteGenerationsMetadataColumn: a generation whose only change was
// a chmod shows it (the table had +, ~ and - only, and such a
// generation read "0 0 0").
func TestWriteGenerationsMetadataColumn(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	var b strings.Builder
	err := WriteGenerations(&b, "/srv/img", []imaging.Generation{
		{ID: 7, Time: now.Add(-time.Hour), Created: 1, Updated: 2, MetaOnly: 3, Deleted: 4, Source: "golden:/"},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %q", b.String())
	}
	head, row := strings.Fields(lines[1]), strings.Fields(lines[2])
	want := map[string]string{"+": "1", "~": "2", "M": "3", "-": "4", "SOURCE": "golden:/"}
	for i, h := range head {
		if w, ok := want[h]; ok && (i >= len(row) || row[i] != w) {
			t.Errorf("column %s: row %q, want %s", h, lines[2], w)
		}
		delete(want, h)
	}
	if len(want) != 0 {
		t.Errorf("header %q lacks %v", lines[1], want)
	}
}
