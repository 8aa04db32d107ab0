package tree

import "iter"

// Merge walks two entry lists sorted in Compare order side by side and
// yields, for each path either holds, the entry of a and of b at that path
// (nil where one list lacks it), in Compare order. It holds nothing beyond
// the two current entries, so it works as well on streams (see MergeSeq)
// as on slices; it is the one merge of two sorted lists that planning,
// manifests, verification and tests build on.
//
// Each list must be sorted and free of duplicates; Merge does not check
// (tree.Checker does, on everything a peer sends).
func Merge(a, b []*Entry) iter.Seq2[*Entry, *Entry] {
	return func(yield func(*Entry, *Entry) bool) {
		i, j := 0, 0
		for i < len(a) || j < len(b) {
			var x, y *Entry
			switch {
			case j >= len(b):
				x = a[i]
			case i >= len(a):
				y = b[j]
			default:
				switch c := Compare(a[i].Path, b[j].Path); {
				case c < 0:
					x = a[i]
				case c > 0:
					y = b[j]
				default:
					x, y = a[i], b[j]
				}
			}
			if x != nil {
				i++
			}
			if y != nil {
				j++
			}
			if !yield(x, y) {
				return
			}
		}
	}
}

// MergeSeq is Merge over two streams of entries, each sorted in Compare
// order: the form that lets a receiver compare a source's scan with its
// own walk or manifest without holding either list.
func MergeSeq(a, b iter.Seq[*Entry]) iter.Seq2[*Entry, *Entry] {
	return func(yield func(*Entry, *Entry) bool) {
		na, stopA := iter.Pull(a)
		defer stopA()
		nb, stopB := iter.Pull(b)
		defer stopB()
		x, okx := na()
		y, oky := nb()
		for okx || oky {
			var ox, oy *Entry
			switch {
			case !oky:
				ox = x
			case !okx:
				oy = y
			default:
				switch c := Compare(x.Path, y.Path); {
				case c < 0:
					ox = x
				case c > 0:
					oy = y
				default:
					ox, oy = x, y
				}
			}
			if !yield(ox, oy) {
				return
			}
			if ox != nil {
				x, okx = na()
			}
			if oy != nil {
				y, oky = nb()
			}
		}
	}
}
