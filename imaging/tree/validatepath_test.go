package tree

import (
	"errors"
	"strings"
	"testing"
)

// TestValidatePath: the rules a path of any stream must pass, each with
// its reason.
func TestValidatePath(t *testing.T) {
	long := strings.Repeat("n", MaxNameLen)
	for _, c := range []struct {
		p, why string // why == "": valid
	}{
		{p: Root},
		{p: "a"},
		{p: "a/b/c.d"},
		{p: "..a/b..", why: ""},
		{p: long + "/" + long},
		{p: "", why: "empty"},
		{p: "/a", why: "absolute"},
		{p: "a/", why: "empty component"},
		{p: "a//b", why: "empty component"},
		{p: "./a", why: "contains . component"},
		{p: "a/.", why: "contains . component"},
		{p: "a/../b", why: "contains .. component"},
		{p: "..", why: "contains .. component"},
		{p: "a\x00b", why: "contains NUL"},
		{p: long + "n", why: "component longer than"},
		{p: "a/" + long + "n/b", why: "component longer than"},
		{p: strings.Repeat("a/", MaxPathLen/2) + "ab", why: "longer than 4095 bytes"},
	} {
		err := ValidatePath(c.p)
		switch {
		case c.why == "" && err != nil:
			t.Errorf("%.40q: %v, want valid", c.p, err)
		case c.why != "" && (err == nil || !errors.Is(err, ErrBadPath) || !strings.Contains(err.Error(), c.why)):
			t.Errorf("%.40q: %v, want %q", c.p, err, c.why)
		}
	}
}
