package imaging

import (
	"errors"
	"fmt"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestLinkCheckHoldsOpenGroups: the plan's check of the source's hard
// links holds the groups whose leader it has met and whose members it has
// not all met yet, not every leader of the stream (the old set of leaders
// met held all 10,000 here, ~50 B each beside the plan's own maps), and it
// still refuses a link to a leader not met as a regular file before it.
func TestLinkCheckHoldsOpenGroups(t *testing.T) {
	const groups = 10_000
	leaders := map[string]uint64{}
	for i := range groups {
		leaders[fmt.Sprintf("d%05d/a", i)] = 2
	}
	c := linkCheck{leaders: leaders}
	maxOpen := 0
	for i := range groups {
		d := fmt.Sprintf("d%05d", i)
		for _, e := range []*tree.Entry{
			{Path: d, Type: tree.TypeDir},
			{Path: d + "/a", Type: tree.TypeRegular},
			{Path: d + "/b", Type: tree.TypeRegular, LinkTo: d + "/a"},
			{Path: d + "/c", Type: tree.TypeRegular, LinkTo: d + "/a"},
		} {
			if err := c.add(e); err != nil {
				t.Fatal(err)
			}
			maxOpen = max(maxOpen, len(c.open))
		}
	}
	if len(c.open) != 0 || maxOpen != 1 {
		t.Errorf("%d groups held at the end, at most %d at once; want 0 and 1", len(c.open), maxOpen)
	}

	for _, bad := range [][]*tree.Entry{
		{{Path: "x", Type: tree.TypeRegular, LinkTo: "a"}},                                              // the leader comes later
		{{Path: "a", Type: tree.TypeSymlink}, {Path: "b", Type: tree.TypeRegular, LinkTo: "a"}},         // not a regular file
		{{Path: "a", Type: tree.TypeRegular}, {Path: "b", Type: tree.TypeRegular, LinkTo: "elsewhere"}}, // never met
	} {
		c := linkCheck{leaders: map[string]uint64{"a": 1, "elsewhere": 1}}
		var err error
		for _, e := range bad {
			if err = c.add(e); err != nil {
				break
			}
		}
		if !errors.Is(err, ErrBadSource) {
			t.Errorf("%s -> %s: err %v, want ErrBadSource", bad[len(bad)-1].Path, bad[len(bad)-1].LinkTo, err)
		}
	}
}
