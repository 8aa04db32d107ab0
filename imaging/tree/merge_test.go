package tree

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pairs renders a merge as "a|b" lines, "-" for a missing side.
func pairs(seq func(func(*Entry, *Entry) bool)) []string {
	var out []string
	for x, y := range seq {
		s := func(e *Entry) string {
			if e == nil {
				return "-"
			}
			return e.Path
		}
		out = append(out, s(x)+"|"+s(y))
	}
	return out
}

func entries(ps ...string) []*Entry {
	out := make([]*Entry, len(ps))
	for i, p := range ps {
		out[i] = &Entry{Path: p}
	}
	return out
}

func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []string
		want []string
	}{
		{name: "both empty"},
		{name: "only a", a: []string{".", "x"}, want: []string{".|-", "x|-"}},
		{name: "only b", b: []string{".", "x"}, want: []string{"-|.", "-|x"}},
		{name: "same", a: []string{".", "a", "a/b"}, b: []string{".", "a", "a/b"}, want: []string{".|.", "a|a", "a/b|a/b"}},
		{
			// A directory sorts right before its subtree: "a/z" before "a-b".
			name: "tree order",
			a:    []string{".", "a", "a/z", "a-b"},
			b:    []string{".", "a", "a-b", "b"},
			want: []string{".|.", "a|a", "a/z|-", "a-b|a-b", "-|b"},
		},
		{name: "disjoint tails", a: []string{".", "c"}, b: []string{".", "a", "b"}, want: []string{".|.", "-|a", "-|b", "c|-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := entries(tc.a...), entries(tc.b...)
			if d := cmp.Diff(tc.want, pairs(Merge(a, b))); d != "" {
				t.Errorf("Merge (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.want, pairs(MergeSeq(slices.Values(a), slices.Values(b)))); d != "" {
				t.Errorf("MergeSeq (-want +got):\n%s", d)
			}
		})
	}
}

// TestMergeRandom checks both forms against a reference built from a set
// of paths, on random trees, and that stopping early stops.
func TestMergeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var all []string
		for i := range r.IntN(40) {
			p := fmt.Sprintf("d%d", r.IntN(4))
			for range r.IntN(3) {
				p += fmt.Sprintf("/%c%d", 'a'+rune(r.IntN(3)), i%3)
			}
			all = append(all, p)
		}
		slices.SortFunc(all, Compare)
		all = slices.Compact(all)
		var a, b []string
		var want []string
		for _, p := range all {
			inA, inB := r.IntN(3) > 0, r.IntN(3) > 0
			switch {
			case inA && inB:
				a, b = append(a, p), append(b, p)
				want = append(want, p+"|"+p)
			case inA:
				a = append(a, p)
				want = append(want, p+"|-")
			case inB:
				b = append(b, p)
				want = append(want, "-|"+p)
			}
		}
		ea, eb := entries(a...), entries(b...)
		if d := cmp.Diff(want, pairs(Merge(ea, eb))); d != "" {
			t.Fatalf("round %d: Merge (-want +got):\n%s", round, d)
		}
		if d := cmp.Diff(want, pairs(MergeSeq(slices.Values(ea), slices.Values(eb)))); d != "" {
			t.Fatalf("round %d: MergeSeq (-want +got):\n%s", round, d)
		}
		if len(want) > 1 {
			n := 0
			for range MergeSeq(slices.Values(ea), slices.Values(eb)) {
				n++
				if n == 1 {
					break
				}
			}
			if n != 1 {
				t.Fatalf("round %d: the merge went on after break", round)
			}
		}
	}
}
