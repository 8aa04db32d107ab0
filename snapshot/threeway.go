package snapshot

import (
	"fmt"
	"slices"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
)

// Decision is what a refresh does with one path of a node's snapshot.
type Decision uint8

// The decisions of the three-way refresh. The image entry is "want", the
// node's current entry "node", and the record of what goldsync last copied
// there (or found equal to the image) "base".
const (
	// InSync: the node has what the image has; nothing to do.
	InSync Decision = iota
	// CopyNew: the node lacks the path; it is copied from the image.
	CopyNew
	// FollowImage: the node has not changed the path since goldsync copied it,
	// and the image has; the image's version replaces it.
	FollowImage
	// Adopt: the node has what the image has, but the record says
	// otherwise (or has nothing); only the record changes.
	Adopt
	// KeepNode: the node changed the path since goldsync copied it and the
	// image did not; the node's version stays.
	KeepNode
	// Conflicted: the node changed the path and so did the image (or
	// goldsync has no record of it and the two differ); the node's version
	// stays and the conflict is reported.
	Conflicted
	// Gone: the image no longer has a path goldsync copied; the node keeps
	// it (nothing is ever deleted from a snapshot), goldsync forgets it,
	// and a notice says so.
	Gone
	// Blocked: a parent on the node is not a directory where the image has
	// one (the node's version was kept), so nothing beneath it is touched.
	Blocked
)

var decisionNames = [...]string{"in-sync", "create", "update", "adopt", "keep", "conflict", "gone", "blocked"}

// String returns a short lower-case name.
func (d Decision) String() string {
	if int(d) < len(decisionNames) {
		return decisionNames[d]
	}
	return fmt.Sprintf("decision(%d)", uint8(d))
}

// Same reports whether two entries of a snapshot are the same for the
// refresh: same type, owner, mode, xattrs, symlink target, device number,
// content (regular files: equal sizes and known, equal hashes) and mtime.
// Directory mtimes are not compared: they change whenever a node adds a
// file, which is not a change of the directory. Hard-link structure and
// local identity (device, inode, ctime) are not compared either. Nil equals
// only nil.
func Same(a, b *tree.Entry) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Type != b.Type || a.UID != b.UID || a.GID != b.GID || a.Target != b.Target || a.Rdev != b.Rdev {
		return false
	}
	if a.Type != tree.TypeSymlink && a.Mode != b.Mode {
		return false
	}
	if a.Type != tree.TypeDir && a.Mtime != b.Mtime {
		return false
	}
	if a.Type == tree.TypeRegular && !tree.SameContent(a, b) {
		return false
	}
	return tree.XattrsEqual(a.Xattrs, b.Xattrs)
}

// Decide is the three-way rule for one path: want is the image's entry
// (nil: the image lacks it), node the node's current one (nil: absent),
// base the record of what goldsync last made the node hold there (nil: no
// record). It returns the decision and, for Conflicted and Gone, why.
//
// Node data is never lost: the image's version replaces the node's only
// when the node's still equals the record. A node directory is never
// replaced by a non-directory (it may hold the node's own files).
func Decide(want, node, base *tree.Entry) (Decision, string) {
	switch {
	case want == nil && node != nil && base != nil:
		return Gone, "removed from the image since the last build; kept on the node, no longer refreshed"
	case want == nil:
		return InSync, ""
	case node == nil:
		return CopyNew, ""
	case Same(node, want):
		if Same(node, base) {
			return InSync, ""
		}
		return Adopt, ""
	case base == nil:
		return Conflicted, fmt.Sprintf("the node's %s differs from the image's %s and goldsync has no record of copying it (made before goldsync?); kept the node's version", node.Type, want.Type)
	case !Same(node, base):
		if Same(want, base) {
			return KeepNode, ""
		}
		return Conflicted, fmt.Sprintf("changed on the node (%s) and in the image (%s) since the last build; kept the node's version", whatChanged(base, node), whatChanged(base, want))
	case node.Type == tree.TypeDir && want.Type != tree.TypeDir:
		return Conflicted, fmt.Sprintf("the image replaced this directory with a %s; kept the node's directory, which may hold the node's files", want.Type)
	default:
		return FollowImage, ""
	}
}

// whatChanged names the attributes that differ between two entries of a
// path, for conflict reports.
func whatChanged(a, b *tree.Entry) string {
	if a.Type != b.Type {
		return fmt.Sprintf("now a %s", b.Type)
	}
	var what []string
	if a.Type == tree.TypeRegular && !tree.SameContent(a, b) {
		what = append(what, "content")
	}
	if a.Target != b.Target || a.Rdev != b.Rdev {
		what = append(what, "target")
	}
	if a.Type != tree.TypeSymlink && a.Mode != b.Mode {
		what = append(what, "mode")
	}
	if a.UID != b.UID || a.GID != b.GID {
		what = append(what, "owner")
	}
	if a.Type != tree.TypeDir && a.Mtime != b.Mtime {
		what = append(what, "mtime")
	}
	if !tree.XattrsEqual(a.Xattrs, b.Xattrs) {
		what = append(what, "xattrs")
	}
	if len(what) == 0 {
		return "unchanged"
	}
	s := what[0]
	for _, w := range what[1:] {
		s += "+" + w
	}
	return s
}

// PathConflict is a path whose node version was kept although the image's
// differs, with why.
type PathConflict struct {
	Path string
	Why  string
}

// Refresh is the three-way plan of one node's snapshot.
type Refresh struct {
	// Plan is what Apply does: only creations and replacements, never a
	// delete.
	Plan *imaging.Plan
	// Final lists, for Apply, the entries the planned paths and the
	// directories above them end up as: the image's for what the plan
	// writes, the node's for directories it keeps.
	Final []*tree.Entry
	// Decisions holds the decision of every path considered, in
	// tree.Compare order of the paths (see Paths).
	Decisions map[string]Decision
	// Conflicts and Gone list the paths reported, in path order.
	Conflicts []PathConflict
	Gone      []PathConflict
	// Writes maps each path the plan writes to the image entry written.
	Writes map[string]*tree.Entry
	// Base is the new record for every path not written by the plan (a
	// written path's record is the entry written, once Apply succeeds).
	Base map[string]*tree.Entry
	// Created, Updated, Kept and Adopted count decisions.
	Created, Updated, Kept, Adopted int
}

// ThreeWay plans the refresh of one node's snapshot. want is what the image
// says the snapshot should hold (see Want), node what the snapshot holds now
// (a walk with the same scopes), base the record of the last build; all in
// tree.Compare order. It is a pure function: it touches no disk.
//
// Every path of want and node is decided by Decide. The plan creates what
// the node lacks and updates what only the image changed; it never deletes:
// a replaced object is renamed over, and a node's directory is never
// replaced. Beneath a path where the node keeps a non-directory and the image
// has a directory, nothing is planned (Blocked); a conflict says how many
// image paths that leaves out unless the path is already reported.
// Hard links of the image are made between paths the plan writes; a member
// whose leader is not written gets its own copy.
func ThreeWay(want, node, base []*tree.Entry) *Refresh {
	r := &Refresh{
		Plan:      &imaging.Plan{},
		Decisions: make(map[string]Decision, len(want)),
		Writes:    make(map[string]*tree.Entry),
		Base:      make(map[string]*tree.Entry, len(base)),
	}
	baseIdx := make(map[string]*tree.Entry, len(base))
	for _, b := range base {
		baseIdx[b.Path] = b
	}
	var dirMeta []imaging.Action
	var blocked []string // paths beneath which nothing is planned
	var unseen []string  // image directories that could not be read
	isUnseen := func(p string) bool {
		for _, u := range unseen {
			if tree.IsWithin(p, u) && p != u {
				return true
			}
		}
		return false
	}
	blockedBy := make(map[string]int)
	reported := make(map[string]bool)
	isBlocked := func(p string) (string, bool) {
		for _, b := range blocked {
			if tree.IsWithin(p, b) && p != b {
				return b, true
			}
		}
		return "", false
	}

	i, j := 0, 0
	for i < len(want) || j < len(node) {
		var w, n *tree.Entry
		switch {
		case j >= len(node):
			w = want[i]
			i++
		case i >= len(want):
			n = node[j]
			j++
		default:
			switch c := tree.Compare(want[i].Path, node[j].Path); {
			case c < 0:
				w = want[i]
				i++
			case c > 0:
				n = node[j]
				j++
			default:
				w, n = want[i], node[j]
				i++
				j++
			}
		}
		p := pathOf(w, n)
		b := baseIdx[p]
		if w == nil && b == nil {
			continue // the node's own: not ours to look at
		}
		if by, ok := isBlocked(p); ok {
			r.Decisions[p] = Blocked
			if b != nil {
				r.Base[p] = b
			}
			if w != nil {
				blockedBy[by]++
			}
			continue
		}
		if w != nil && w.Type == tree.TypeDir && w.Problem != "" {
			unseen = append(unseen, p)
		}
		if w == nil && isUnseen(p) {
			// The image could not list it: not known to be removed.
			r.Decisions[p] = InSync
			r.Base[p] = b
			continue
		}
		d, why := Decide(w, n, b)
		r.Decisions[p] = d
		switch d {
		case InSync:
			if n != nil && b != nil {
				r.Base[p] = keepIdentity(b, n)
			}
		case Adopt:
			r.Base[p] = n
			r.Adopted++
		case KeepNode, Conflicted:
			if b != nil {
				r.Base[p] = b
			}
			if d == KeepNode {
				r.Kept++
			} else {
				r.Conflicts = append(r.Conflicts, PathConflict{Path: p, Why: why})
				reported[p] = true
			}
		case Gone:
			r.Gone = append(r.Gone, PathConflict{Path: p, Why: why})
		case CopyNew, FollowImage:
			if w.Type == tree.TypeDir {
				// Directory metadata last, deepest first (see below).
				if n == nil || n.Type != tree.TypeDir {
					r.Plan.Actions = append(r.Plan.Actions, imaging.Action{Op: imaging.OpMkdir, Path: p, Src: w, Dst: n, Replace: n != nil})
					dirMeta = append(dirMeta, imaging.Action{Op: imaging.OpDirMeta, Path: p, Src: w})
				} else {
					dirMeta = append(dirMeta, imaging.Action{Op: imaging.OpDirMeta, Path: p, Src: w, Dst: n})
				}
			} else {
				r.Plan.Actions = append(r.Plan.Actions, r.action(w, n))
			}
			r.Writes[p] = w
			if w.Type == tree.TypeRegular && w.LinkTo == "" {
				r.Plan.FetchBytes += w.Size
			}
			if d == CopyNew {
				r.Created++
			} else {
				r.Updated++
			}
		}
		// What the path ends up as, for the applier's directory fix-ups.
		switch {
		case d == CopyNew || d == FollowImage:
			r.Final = append(r.Final, w)
		case n != nil && (w != nil || b != nil):
			r.Final = append(r.Final, n)
		}
		if w != nil && w.Type == tree.TypeDir && (d == KeepNode || d == Conflicted) && n != nil && n.Type != tree.TypeDir {
			blocked = append(blocked, p)
		}
	}
	for k := len(dirMeta) - 1; k >= 0; k-- {
		r.Plan.Actions = append(r.Plan.Actions, dirMeta[k])
	}
	for _, p := range blocked {
		if blockedBy[p] > 0 && !reported[p] {
			r.Conflicts = append(r.Conflicts, PathConflict{Path: p, Why: fmt.Sprintf(
				"the node has a %s where the image has a directory; %d image paths beneath it not copied", entryType(node, p), blockedBy[p])})
		}
	}
	slices.SortFunc(r.Conflicts, func(a, b PathConflict) int { return tree.Compare(a.Path, b.Path) })
	return r
}

func entryType(es []*tree.Entry, p string) string {
	i, ok := slices.BinarySearchFunc(es, p, func(e *tree.Entry, p string) int { return tree.Compare(e.Path, p) })
	if !ok {
		return "non-directory"
	}
	return es[i].Type.String()
}

func pathOf(w, n *tree.Entry) string {
	if w != nil {
		return w.Path
	}
	return n.Path
}

// keepIdentity returns the record of an in-sync path: the old record when
// the node's object is still the one recorded (so an unchanged record is
// not rewritten), else the node's entry with its fresh identity.
func keepIdentity(b, n *tree.Entry) *tree.Entry {
	if imaging.Unchanged(b, n) && b.Hashed() == n.Hashed() {
		return b
	}
	return n
}

// action returns the action that makes the node's path (n, maybe nil) the
// non-directory the image has (w). Regular files are always written whole
// to a new inode (Replace), so no action needs the node's old content.
func (r *Refresh) action(w, n *tree.Entry) imaging.Action {
	a := imaging.Action{Path: w.Path, Src: w, Dst: n, Replace: n != nil}
	sameType := n != nil && n.Type == w.Type
	switch w.Type {
	case tree.TypeRegular:
		switch {
		case w.LinkTo != "" && r.Writes[w.LinkTo] != nil:
			a.Op = imaging.OpLink
		case sameType && tree.SameContent(w, n):
			a.Op, a.Replace = imaging.OpMeta, false
		default:
			if w.LinkTo != "" {
				c := w.Clone()
				c.LinkTo = ""
				a.Src = c
			}
			a.Op = imaging.OpFetch
		}
	case tree.TypeSymlink, tree.TypeCharDev, tree.TypeBlockDev:
		if sameType && w.Target == n.Target && w.Rdev == n.Rdev {
			a.Op, a.Replace = imaging.OpMeta, false
		} else {
			a.Op = imaging.OpSymlink
			if w.Type != tree.TypeSymlink {
				a.Op = imaging.OpSpecial
			}
		}
	default: // fifo, socket
		if sameType {
			a.Op, a.Replace = imaging.OpMeta, false
		} else {
			a.Op = imaging.OpSpecial
		}
	}
	return a
}
