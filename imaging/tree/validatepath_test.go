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

// sharedPrefix is how many bytes a and b share at their start.
func sharedPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// checkShared fails unless ValidatePathShared(p, n) returns what
// ValidatePath(p) returns for every n up to the prefix p shares with v, a
// valid path.
func checkShared(t *testing.T, v, p string) {
	t.Helper()
	if ValidatePath(v) != nil {
		return
	}
	want := ValidatePath(p)
	for n := range sharedPrefix(v, p) + 1 {
		got := ValidatePathShared(p, n)
		if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
			t.Fatalf("ValidatePathShared(%.60q, %d) after %.60q: %v, ValidatePath: %v", p, n, v, got, want)
		}
	}
}

// TestValidatePathShared: a path checked past the prefix it shares with a
// valid one (as the wire's decoder does) is refused exactly when
// ValidatePath refuses it, with its error.
func TestValidatePathShared(t *testing.T) {
	long := strings.Repeat("n", MaxNameLen)
	valid := []string{Root, "a", "a/b", "a/b/c.d", "ab/cd/ef", long + "/" + long, "a/" + long, "..a/b.."}
	tails := []string{"", "/", "//", "/.", "/..", "/./x", "/../x", "/x", "/x/", "x", ".", "..", "\x00", "/x\x00y",
		"/" + long, "/" + long + "n", "n", "/a/b/c", strings.Repeat("/abcdefgh", MaxPathLen/9+1)}
	for _, v := range valid {
		for k := 0; k <= len(v); k++ {
			if len(v) > 20 && k > 3 && k < len(v)-3 && v[k-1] != '/' && v[k] != '/' {
				continue // long names: their ends and slashes
			}
			for _, tail := range tails {
				checkShared(t, v, v[:k]+tail)
			}
		}
	}
	// What it saves: the vouched components are not looked at again (a
	// caller that breaks the contract gets no check of them).
	if err := ValidatePathShared("a/../b", 5); err != nil {
		t.Errorf("the components of the vouched prefix were checked again: %v", err)
	}
	if err := ValidatePathShared("a/../b", 0); err == nil {
		t.Error("with nothing vouched for, a/../b passed")
	}
}

// FuzzValidatePathShared: for any valid v and any p, ValidatePathShared(p,
// n) is ValidatePath(p) for every n up to their shared prefix.
func FuzzValidatePathShared(f *testing.F) {
	f.Add("a/b/c", "a/b/d")
	f.Add("a/b", "a/b/../c")
	f.Add("usr/lib", "usr/lib64/x")
	f.Add("a/bb", "a/b/")
	f.Add(".", "./x")
	f.Fuzz(func(t *testing.T, v, p string) {
		checkShared(t, v, p)
	})
}
