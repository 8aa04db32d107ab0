package tree

import (
	"slices"
)

// keySet is a set of 64-bit keys held in sorted runs of decreasing size
// (merged like the digits of a binary counter) behind a short unsorted
// tail: 8 bytes a key, where a map held 25-30 once its growth is counted.
// Adding is amortized O(log n); a lookup is a binary search per run (at
// most log n runs) and a scan of the tail.
type keySet struct {
	runs [][]uint64
	tail []uint64
}

const keyTail = 256

func (s *keySet) add(k uint64) {
	s.tail = append(s.tail, k)
	if len(s.tail) < keyTail {
		return
	}
	run := slices.Clone(s.tail)
	slices.Sort(run)
	s.tail = s.tail[:0]
	for len(s.runs) > 0 && len(s.runs[len(s.runs)-1]) <= len(run) {
		last := s.runs[len(s.runs)-1]
		s.runs = s.runs[:len(s.runs)-1]
		run = mergeKeys(last, run)
	}
	s.runs = append(s.runs, run)
}

func (s *keySet) has(k uint64) bool {
	if slices.Contains(s.tail, k) {
		return true
	}
	for _, r := range s.runs {
		if _, ok := slices.BinarySearch(r, k); ok {
			return true
		}
	}
	return false
}

// mergeKeys merges two sorted runs into a new one.
func mergeKeys(a, b []uint64) []uint64 {
	out := make([]uint64, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] <= b[j] {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}
