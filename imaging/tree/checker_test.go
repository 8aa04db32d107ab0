package tree

import (
	"errors"
	"fmt"
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
		name       string
		partial    bool
		deferLinks bool
		es         []*Entry
		want       string // "" for accepted
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
		{name: "deferred: link to a directory is the caller's to refuse", deferLinks: true, es: []*Entry{d("."), d("a"), l("b", "a")}},
		{name: "deferred: link to a later file", deferLinks: true, es: []*Entry{d("."), l("a", "b"), f("b")}, want: "hard link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Checker{Partial: tc.partial, DeferLinks: tc.deferLinks}
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

// TestCheckerDeferLinksHoldsNothing: with DeferLinks the checker keeps no
// set of the stream's regular files (8 bytes a file, in each of a
// receiver's two checkers, at 1M entries 17 MB of the image server's live
// heap).
func TestCheckerDeferLinksHoldsNothing(t *testing.T) {
	for _, deferLinks := range []bool{false, true} {
		c := Checker{DeferLinks: deferLinks}
		if err := c.Add(&Entry{Path: ".", Type: TypeDir}); err != nil {
			t.Fatal(err)
		}
		for i := range 10_000 {
			if err := c.Add(&Entry{Path: fmt.Sprintf("f%06d", i), Type: TypeRegular}); err != nil {
				t.Fatal(err)
			}
		}
		held := len(c.regular.tail)
		for _, r := range c.regular.runs {
			held += len(r)
		}
		if want := map[bool]int{false: 10_000, true: 0}[deferLinks]; held != want {
			t.Errorf("DeferLinks %v: %d regular files held, want %d", deferLinks, held, want)
		}
	}
}

// TestCheckerValidatedChecksPlaceOnly: a checker told its entries were
// validated where they entered (the wire's decoder) does not check their
// fields again, but still their place in the stream and the bounds.
func TestCheckerValidatedChecksPlaceOnly(t *testing.T) {
	badMode := &Entry{Path: "a", Type: TypeRegular, Mode: 0o100644}
	var plain Checker
	if err := plain.Add(&Entry{Path: Root, Type: TypeDir}); err != nil {
		t.Fatal(err)
	}
	if err := plain.Add(badMode); err == nil {
		t.Error("a checker that validates accepted mode 0100644")
	}
	v := Checker{Validated: true, MaxEntries: 3}
	for _, e := range []*Entry{{Path: Root, Type: TypeDir}, badMode} {
		if err := v.Add(e); err != nil {
			t.Fatalf("Validated: %q refused: %v", e.Path, err)
		}
	}
	if err := v.Add(&Entry{Path: "0", Type: TypeRegular}); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Errorf("Validated, out of order: %v", err)
	}
	if err := v.Add(&Entry{Path: "b/c", Type: TypeRegular}); err == nil || !strings.Contains(err.Error(), "parent not sent") {
		t.Errorf("Validated, parent not sent: %v", err)
	}
	if err := v.Add(&Entry{Path: "c", Type: TypeRegular}); err != nil {
		t.Fatal(err)
	}
	if err := v.Add(&Entry{Path: "d", Type: TypeRegular}); err == nil {
		t.Error("Validated: a fourth entry passed MaxEntries 3")
	}
}
