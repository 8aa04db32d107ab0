package tree

import (
	"math/rand/v2"
	"testing"
)

// TestKeySet checks the set against a map through several merges of its
// runs, asking for keys added and keys never added.
func TestKeySet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s keySet
	want := map[uint64]bool{}
	for i := range 20000 {
		k := r.Uint64() % 100000
		s.add(k)
		want[k] = true
		if i%97 == 0 {
			for range 20 {
				q := r.Uint64() % 100000
				if s.has(q) != want[q] {
					t.Fatalf("after %d adds: has(%d) = %v, want %v", i+1, q, s.has(q), want[q])
				}
			}
		}
	}
	if len(s.runs) > 20 {
		t.Errorf("%d runs for 20000 keys: the runs are not merged", len(s.runs))
	}
}
