package imaging

import (
	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/imaging/tree"
)

// excludeGuard applies the receiver's excludes to the entries a source
// sends. The receiver asks the source to leave those paths out, so a
// correct source never sends one; a source that does (a hostile or broken
// golden node) must not get it written: an entry is refused when the
// receiver's rules exclude it or any directory above it (rsync's walker
// never descends into an excluded directory, so nothing beneath one is
// part of the transfer either).
//
// Entries arrive in tree.Compare order, so the judged ancestors of the last
// entry are kept on a stack: each directory is matched against the rules
// once per run of its subtree.
type excludeGuard struct {
	m     *exclude.Matcher
	stack []guardDir // ancestors of the last entry, outermost first
}

type guardDir struct {
	path     string
	excluded bool // the directory or one above it is excluded
}

// refuses reports whether the receiver's excludes cover e.
func (g *excludeGuard) refuses(e *tree.Entry) bool {
	if g == nil || g.m == nil || e.Path == tree.Root {
		return false
	}
	return g.dirExcluded(tree.Dir(e.Path)) || g.m.Excluded(e.Path, e.Type == tree.TypeDir)
}

// dirExcluded reports whether directory d or one above it is excluded.
func (g *excludeGuard) dirExcluded(d string) bool {
	if d == tree.Root {
		return false
	}
	for len(g.stack) > 0 && !tree.IsWithin(d, g.stack[len(g.stack)-1].path) {
		g.stack = g.stack[:len(g.stack)-1]
	}
	if n := len(g.stack); n > 0 && g.stack[n-1].path == d {
		return g.stack[n-1].excluded
	}
	// Judge the components of d below the top of the stack, outermost
	// first.
	start := 0
	excluded := false
	if n := len(g.stack); n > 0 {
		start = len(g.stack[n-1].path) + 1
		excluded = g.stack[n-1].excluded
	}
	for i := start; i <= len(d); i++ {
		if i < len(d) && d[i] != '/' {
			continue
		}
		p := d[:i]
		excluded = excluded || g.m.Excluded(p, true)
		g.stack = append(g.stack, guardDir{path: p, excluded: excluded})
	}
	return excluded
}
