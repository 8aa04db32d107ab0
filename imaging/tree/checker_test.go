package tree

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckerMaxBytes(t *testing.T) {
	c := Checker{MaxBytes: 3 * (entryOverhead + 10)}
	for i, p := range []string{".", "aaaaaaaaaa", "bbbbbbbbbb"} {
		e := &Entry{Path: p, Type: TypeDir}
		if err := c.Add(e); err != nil {
			t.Fatalf("entry %d (%d bytes, within the bound): %v", i, EntryCost(e), err)
		}
	}
	if err := c.Add(&Entry{Path: "c", Type: TypeDir}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("past the bound: %v, want ErrTooLarge", err)
	}
	unbounded := Checker{MaxBytes: -1}
	if err := unbounded.Add(&Entry{Path: ".", Type: TypeDir}); err != nil {
		t.Errorf("MaxBytes -1: %v", err)
	}
}

// TestCheckerStream checks parents and hard-link targets, which the
// checker tracks with the open ancestors and a set of regular files rather
// than a map of every path.
func TestCheckerStream(t *testing.T) {
	d := func(p string) *Entry { return &Entry{Path: p, Type: TypeDir} }
	f := func(p string) *Entry { return &Entry{Path: p, Type: TypeRegular} }
	l := func(p, to string) *Entry { return &Entry{Path: p, Type: TypeRegular, LinkTo: to} }
	s := func(p string) *Entry { return &Entry{Path: p, Type: TypeSymlink, Target: "x"} }
	for _, tc := range []struct {
		name    string
		partial bool
		es      []*Entry
		want    string // "" for accepted
	}{
		{name: "tree", es: []*Entry{d("."), d("a"), d("a/b"), f("a/b/c"), f("a/d"), d("b"), f("b/e")}},
		{name: "link into a closed subtree", es: []*Entry{d("."), d("a"), f("a/f"), d("b"), l("b/g", "a/f")}},
		{name: "link to a directory", es: []*Entry{d("."), d("a"), l("b", "a")}, want: "not an earlier regular file"},
		{name: "link to a symlink", es: []*Entry{d("."), s("a"), l("b", "a")}, want: "not an earlier regular file"},
		{name: "link to a later file", es: []*Entry{d("."), l("a", "b"), f("b")}, want: "hard link"},
		{name: "parent closed", es: []*Entry{d("."), d("a"), f("a/x"), d("b"), f("a/y")}, want: "out of order"},
		{name: "parent not sent", es: []*Entry{d("."), d("a"), f("a/b/c")}, want: "parent not sent"},
		{name: "partial: parent not sent", partial: true, es: []*Entry{d("."), d("a"), f("a/b/c"), f("a/d")}},
		{name: "partial: parent is a file", partial: true, es: []*Entry{f("a"), f("a/b")}, want: "parent is a file"},
		{name: "partial: grandparent is a file", partial: true, es: []*Entry{f("a"), f("a/b/c")}, want: ""},
		{name: "symlink parent", es: []*Entry{d("."), s("a"), f("a/b")}, want: "parent is a symlink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Checker{Partial: tc.partial}
			var err error
			for _, e := range tc.es {
				if err = c.Add(e); err != nil {
					break
				}
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}
