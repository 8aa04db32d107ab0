package wire

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestDecodeEntryLocalNext: a list decoded in turn with
// DecodeEntryLocalNext (with and without a path buffer) gives what
// DecodeEntryLocal gives, and every path that fails Validate in the part
// it does not share with the entry before is still refused. The part it
// shares is taken as checked (the work saved): with a prev that breaks the
// contract (an unchecked "../" prefix) it is not looked at again, where
// DecodeEntryLocal refuses the path.
func TestDecodeEntryLocalNext(t *testing.T) {
	es := sampleEntries()
	var raw []byte
	var prev *tree.Entry
	for _, e := range es {
		var err error
		if raw, err = AppendEntryLocal(raw, prev, e); err != nil {
			t.Fatal(err)
		}
		prev = e
	}
	for _, scratch := range []bool{false, true} {
		var paths [2][]byte
		b := raw
		var prev *tree.Entry
		var two [2]tree.Entry
		for i, want := range es {
			var path *[]byte
			if scratch {
				path = &paths[i%2]
			}
			e := &two[i%2]
			var err error
			if b, err = DecodeEntryLocalNext(b, prev, e, path); err != nil {
				t.Fatalf("scratch %v, entry %d: %v", scratch, i, err)
			}
			if d := cmp.Diff(want, e); d != "" {
				t.Errorf("scratch %v, entry %d (-want +got):\n%s", scratch, i, d)
			}
			prev = e
		}
		if len(b) != 0 {
			t.Errorf("scratch %v: %d bytes left", scratch, len(b))
		}
	}

	valid := &tree.Entry{Path: "usr/bin", Type: tree.TypeDir}
	for _, c := range []struct {
		name   string
		shared int
		suffix string
		want   string
	}{
		{"dotdot after the shared part", 4, "..", ".. component"},
		{"dot after the shared part", 4, ".", ". component"},
		{"empty component", 4, "a//b", "empty component"},
		{"nul", 4, "a\x00b", "NUL"},
		{"long name", 4, strings.Repeat("n", 300), "component longer"},
		{"absolute", 0, "/etc/passwd", "absolute"},
		{"nothing shared", 0, "../x", ".. component"},
	} {
		var e tree.Entry
		_, err := DecodeEntryLocalNext(rawEntry(0, c.shared, c.suffix, tree.TypeRegular), valid, &e, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: decoded %q, err %v, want an error containing %q", c.name, e.Path, err, c.want)
		}
	}
	if _, err := DecodeEntryLocalNext(rawEntry(0, 0, "../x", tree.TypeRegular), nil, new(tree.Entry), nil); err == nil {
		t.Error("the first entry of a list (no prev) was not checked")
	}

	bad := &tree.Entry{Path: "../bin", Type: tree.TypeDir} // not from the list: breaks the contract
	in := rawEntry(0, 3, "x", tree.TypeRegular)
	if _, err := DecodeEntryLocal(in, bad, new(tree.Entry)); err == nil {
		t.Fatal(`DecodeEntryLocal accepted "../x"`)
	}
	var e tree.Entry
	if _, err := DecodeEntryLocalNext(in, bad, &e, nil); err != nil || e.Path != "../x" {
		t.Errorf("DecodeEntryLocalNext checked the shared part again (%q, %v): want it taken as checked", e.Path, err)
	}
}
