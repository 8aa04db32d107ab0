package snapshot

import (
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/goldsync/goldsync/imaging/tree"
)

// emptyHash is the content hash of an empty file.
var emptyHash = xxhash.Sum64(nil)

// Scopes returns the parts of an image a build scans for these items, and
// of each node's snapshot it walks: a Tree scope for KindFiles and KindDirs
// items, the path alone for KindEmpty items, and every item's ancestors
// alone, so that parents are created with the image's owner and mode.
// Scopes lying inside another item's Tree scope are left out (the outer
// scope covers them). The result is sorted in tree.Compare order.
func Scopes(items []Item) []tree.Scope {
	set := make(map[string]bool) // path -> Tree
	for _, it := range items {
		set[it.Path] = set[it.Path] || it.Kind == KindFiles || it.Kind == KindDirs
		for p := tree.Dir(it.Path); p != tree.Root && p != ""; p = tree.Dir(p) {
			if _, ok := set[p]; !ok {
				set[p] = false
			}
		}
	}
	var out []tree.Scope
	for p, t := range set {
		covered := false
		for q := tree.Dir(p); q != tree.Root && q != ""; q = tree.Dir(q) {
			if set[q] {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, tree.Scope{Path: p, Tree: t})
		}
	}
	slices.SortFunc(out, func(a, b tree.Scope) int { return tree.Compare(a.Path, b.Path) })
	return out
}

// Want turns the entries of an image scanned with Scopes(items) into what
// every node's snapshot should hold, applying each entry's item kind (the
// deepest item containing a path decides): KindFiles keeps everything,
// KindDirs keeps directories only, KindEmpty keeps the path itself, a
// regular file made empty. Ancestors are kept when they are directories
// with a kept item beneath them. Entries are fresh copies (the scan's are
// not modified), in tree.Compare order, hard links kept only between kept,
// unmodified files.
//
// Listed paths the image lacks are skipped with a notice (as Red Hat's
// scripts did), as are entries the image could not read and KindDirs items
// that are not directories. A directory the image could not read is kept
// with its Problem set, so that ThreeWay does not take its unseen contents
// for removed ones. skipped counts the listed paths skipped.
func Want(items []Item, image []*tree.Entry) (want []*tree.Entry, notices []string, skipped int) {
	byPath := make(map[string]Item, len(items))
	for _, it := range items {
		byPath[it.Path] = it
	}
	img := make(map[string]*tree.Entry, len(image))
	for _, e := range image {
		img[e.Path] = e
	}
	// Items the image does not have, or has in a form the kind refuses.
	present := make(map[string]bool, len(items))
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(a, b Item) int { return tree.Compare(a.Path, b.Path) })
	for _, it := range sorted {
		e := img[it.Path]
		switch {
		case e == nil:
			notices = append(notices, fmt.Sprintf("%s: %s: not in the image; skipped", it.Source, short(it.Abs())))
			skipped++
			continue
		case it.Kind == KindDirs && e.Type != tree.TypeDir:
			notices = append(notices, fmt.Sprintf("%s: %s: listed as dirs but is a %s in the image; skipped", it.Source, short(it.Abs()), e.Type))
			skipped++
			continue
		case it.Dir && e.Type != tree.TypeDir:
			notices = append(notices, fmt.Sprintf("%s: %s: listed as a directory but is a %s in the image; copied as a %s", it.Source, short(it.Abs()), e.Type, e.Type))
		}
		present[it.Path] = true
	}
	// Ancestors needed: directories above a present item.
	needed := make(map[string]bool)
	for p := range present {
		for a := tree.Dir(p); a != tree.Root && a != ""; a = tree.Dir(a) {
			needed[a] = true
		}
	}

	changed := make(map[string]bool) // kept entries whose content was changed
	kept := make(map[string]*tree.Entry, len(image))
	for _, e := range image {
		it, ok := owner(byPath, e.Path)
		var w *tree.Entry
		switch {
		case !ok || !present[it.Path]:
			// An ancestor only (or beneath a skipped item).
			if !ok && needed[e.Path] && e.Type == tree.TypeDir {
				w = e.Clone()
			}
		case e.Problem != "" && e.Type != tree.TypeDir:
			notices = append(notices, fmt.Sprintf("%s: /%s: unreadable in the image (%s); skipped", it.Source, short(e.Path), e.Problem))
		case it.Kind == KindFiles:
			w = e.Clone()
		case it.Kind == KindDirs:
			if e.Type == tree.TypeDir {
				w = e.Clone()
			}
		case it.Kind == KindEmpty:
			if e.Path == it.Path {
				w = e.Clone()
				if w.Type == tree.TypeRegular {
					w.Size = 0
					w.SetHash(emptyHash)
					w.LinkTo = ""
					changed[w.Path] = true
				}
			}
		}
		if w == nil {
			continue
		}
		if w.Type == tree.TypeDir && w.Problem != "" {
			// Kept, Problem and all: ThreeWay then knows that what lies
			// beneath was not seen, rather than removed.
			notices = append(notices, fmt.Sprintf("/%s: directory unreadable in the image (%s): its contents are skipped", short(w.Path), w.Problem))
		}
		kept[w.Path] = w
		want = append(want, w)
	}
	slices.SortFunc(want, func(a, b *tree.Entry) int { return tree.Compare(a.Path, b.Path) })
	for _, w := range want {
		if w.LinkTo == "" {
			continue
		}
		if l := kept[w.LinkTo]; l == nil || changed[w.LinkTo] || l.Type != tree.TypeRegular {
			w.LinkTo = ""
		}
	}
	return want, notices, skipped
}

// owner returns the deepest item containing p.
func owner(items map[string]Item, p string) (Item, bool) {
	for q := p; q != tree.Root && q != ""; q = tree.Dir(q) {
		if it, ok := items[q]; ok {
			return it, true
		}
	}
	return Item{}, false
}
