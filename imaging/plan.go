package imaging

import (
	"slices"

	"github.com/goldsync/goldsync/imaging/tree"
)

// Op is what an Action does.
type Op uint8

// The operations of a plan, in the order the applier runs their phases.
const (
	OpNone    Op = iota
	OpMkdir      // create a directory (its metadata is set at the end)
	OpFetch      // get content from the source (maybe unchanged: the source decides)
	OpCopy       // copy content from another destination file with the same hash
	OpMeta       // set metadata on an existing object in place
	OpSymlink    // create a symlink
	OpSpecial    // create a device, fifo or socket
	OpLink       // make a hard link to LinkTo's (new) inode
	OpDelete     // remove an object (and its subtree)
	OpDirMeta    // set a directory's metadata (deepest first, last)
)

var opNames = [...]string{"none", "mkdir", "fetch", "copy", "meta", "symlink", "special", "link", "delete", "dirmeta"}

// String names the operation ("fetch", "delete", ...).
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "op?"
}

// Action is one step of a plan.
type Action struct {
	Op Op
	// Replace says Dst is of another kind (or must get a new inode) and
	// is removed or replaced by the action. (Beside Op: 8 bytes an action
	// less than after Dst.)
	Replace bool
	Path    string
	// Src is the source entry (nil for deletes).
	Src *tree.Entry
	// Dst is what the destination has at Path now (nil if nothing).
	Dst *tree.Entry
	// From is the destination path OpCopy copies from.
	From string
}

// Plan is the ordered list of what a sync does.
type Plan struct {
	Actions []Action
	// Deletes counts the destination entries removed, subtrees included.
	Deletes int
	// FetchBytes is the size of the files fetched from the source (an
	// upper bound: unchanged content or reused blocks do not travel).
	FetchBytes int64
	// Unknown counts fetches whose content may turn out unchanged (the
	// source had no hash for them).
	Unknown int
}

// PlanOptions tune MakePlan. The zero value mirrors everything.
type PlanOptions struct {
	// Scope limits deletions to what the source scan covered;
	// nil means tree.FullScope.
	Scope []tree.Scope
	// NoDelete keeps destination entries the source lacks.
	NoDelete bool
}

// MakePlan compares the source entries with the destination's (both sorted
// in tree.Compare order, the destination's with local identity from a walk)
// and returns the actions that make the destination equal to the source. It
// is a pure function: it touches no disk.
func MakePlan(src, dst []*tree.Entry, opts PlanOptions) *Plan {
	scope := opts.Scope
	if scope == nil {
		scope = tree.FullScope
	}
	scopeSet := tree.NewScopeSet(scope)
	p := &Plan{}

	// Hard-link bookkeeping: which destination paths share an inode, and
	// each source path's group leader.
	type ino struct{ dev, ino uint64 }
	dstByIno := make(map[ino][]string)
	byHash := make(map[uint64]*tree.Entry)
	for _, d := range dst {
		if d.Type == tree.TypeRegular {
			if d.Nlink > 1 {
				k := ino{d.Dev, d.Ino}
				dstByIno[k] = append(dstByIno[k], d.Path)
			}
			if d.Hashed() && d.Size > 0 {
				if _, ok := byHash[d.Hash]; !ok {
					byHash[d.Hash] = d
				}
			}
		}
	}
	// Lookups by path are binary searches of the sorted lists: a map of
	// every path of each side cost the planner about 60 bytes per entry
	// for lookups that only hard links make.
	srcByPath := func(p string) *tree.Entry { return findEntry(src, p) }
	dstByPath := func(p string) *tree.Entry { return findEntry(dst, p) }
	// Only the inodes of hard-link leaders are asked about.
	leaders := map[string]bool{}
	for _, s := range src {
		if s.LinkTo != "" {
			leaders[s.LinkTo] = true
		}
	}
	leader := func(s *tree.Entry) string {
		if s.LinkTo != "" {
			return s.LinkTo
		}
		return s.Path
	}
	// sharesWrongly: d's inode is shared with other destination paths, and
	// the path that keeps the inode (the first of them still a regular file
	// in the source) belongs to another source link group than s: s needs
	// an inode of its own.
	sharesWrongly := func(s, d *tree.Entry) bool {
		if d.Nlink < 2 {
			return false
		}
		for _, other := range dstByIno[ino{d.Dev, d.Ino}] {
			if other == d.Path {
				return false // s is the owner
			}
			if os := srcByPath(other); os != nil && os.Type == tree.TypeRegular {
				return leader(os) != leader(s)
			}
		}
		return false
	}
	newInode := newInodeSet{leaders: leaders, set: map[string]bool{}} // source paths whose inode the plan replaces

	// Problems in a source directory make its subtree unknown: never delete
	// beneath it.
	var problemDirs []string
	keep := func(path string) bool {
		for _, d := range problemDirs {
			if tree.IsWithin(path, d) && path != d {
				return true
			}
		}
		return false
	}

	var dirMeta []Action
	for s, d := range tree.Merge(src, dst) {
		if s == nil {
			if opts.NoDelete || !scopeSet.Covers(d.Path) || keep(d.Path) {
				continue
			}
			p.Actions = append(p.Actions, Action{Op: OpDelete, Path: d.Path, Dst: d})
			p.Deletes++
			continue
		}
		if s.Type == tree.TypeDir && s.Problem != "" {
			problemDirs = append(problemDirs, s.Path)
		}
		if d != nil && d.Type != s.Type {
			// Kind changes: the old object goes (with its subtree, whose
			// entries also show up as deletes below).
			p.Actions = append(p.Actions, p.create(s, d, true, byHash, newInode)...)
			if s.Type == tree.TypeDir {
				dirMeta = append(dirMeta, Action{Op: OpDirMeta, Path: s.Path, Src: s})
			}
			continue
		}
		if d == nil {
			p.Actions = append(p.Actions, p.create(s, nil, false, byHash, newInode)...)
			if s.Type == tree.TypeDir {
				dirMeta = append(dirMeta, Action{Op: OpDirMeta, Path: s.Path, Src: s})
			}
			continue
		}
		switch s.Type {
		case tree.TypeDir:
			if !tree.SameMeta(s, d) {
				dirMeta = append(dirMeta, Action{Op: OpDirMeta, Path: s.Path, Src: s, Dst: d})
			}
		case tree.TypeRegular:
			if s.LinkTo != "" {
				// Already the same inode as its leader, and the leader
				// keeps its inode?
				l := dstByPath(s.LinkTo)
				if l != nil && l.Type == tree.TypeRegular && l.Dev == d.Dev && l.Ino == d.Ino && !newInode.has(s.LinkTo) {
					continue // metadata comes with the leader's
				}
				p.Actions = append(p.Actions, Action{Op: OpLink, Path: s.Path, Src: s, Dst: d, Replace: true})
				newInode.add(s.Path)
				continue
			}
			if sharesWrongly(s, d) {
				p.Actions = append(p.Actions, p.create(s, d, true, byHash, newInode)...)
				continue
			}
			if tree.SameContent(s, d) {
				if !tree.SameMeta(s, d) {
					p.Actions = append(p.Actions, Action{Op: OpMeta, Path: s.Path, Src: s, Dst: d})
				}
				continue
			}
			if s.Hashed() && d.Hashed() && s.Size == d.Size && s.Hash == d.Hash {
				continue
			}
			if !s.Hashed() && s.Size == d.Size {
				p.Unknown++
			}
			p.Actions = append(p.Actions, Action{Op: OpFetch, Path: s.Path, Src: s, Dst: d})
			p.FetchBytes += s.Size
			newInode.add(s.Path)
		case tree.TypeSymlink, tree.TypeCharDev, tree.TypeBlockDev:
			if s.Target != d.Target || s.Rdev != d.Rdev {
				p.Actions = append(p.Actions, p.create(s, d, true, byHash, newInode)...)
			} else if !tree.SameMeta(s, d) {
				p.Actions = append(p.Actions, Action{Op: OpMeta, Path: s.Path, Src: s, Dst: d})
			}
		default: // fifo, socket
			if !tree.SameMeta(s, d) {
				p.Actions = append(p.Actions, Action{Op: OpMeta, Path: s.Path, Src: s, Dst: d})
			}
		}
	}
	// Directory metadata last, deepest first, so creating and deleting
	// children does not disturb a directory's mtime afterwards.
	for k := len(dirMeta) - 1; k >= 0; k-- {
		p.Actions = append(p.Actions, dirMeta[k])
	}
	return p
}

// create returns the action that makes s exist where d (maybe nil) is.
func (p *Plan) create(s, d *tree.Entry, replace bool, byHash map[uint64]*tree.Entry, newInode newInodeSet) []Action {
	a := Action{Path: s.Path, Src: s, Dst: d, Replace: replace}
	switch s.Type {
	case tree.TypeDir:
		a.Op = OpMkdir
	case tree.TypeRegular:
		newInode.add(s.Path)
		switch {
		case s.LinkTo != "":
			a.Op = OpLink
		case s.Hashed() && byHash[s.Hash] != nil && byHash[s.Hash].Size == s.Size:
			a.Op = OpCopy
			a.From = byHash[s.Hash].Path
		default:
			a.Op = OpFetch
			p.FetchBytes += s.Size
		}
	case tree.TypeSymlink:
		a.Op = OpSymlink
	default:
		a.Op = OpSpecial
	}
	return []Action{a}
}

// newInodeSet records the source paths whose inode a plan replaces, for
// the hard-link leaders only (nothing else is asked).
type newInodeSet struct {
	leaders, set map[string]bool
}

func (n newInodeSet) add(p string) {
	if n.leaders[p] {
		n.set[p] = true
	}
}

func (n newInodeSet) has(p string) bool { return n.set[p] }

// findEntry returns the entry at path p of a list sorted in tree.Compare
// order, or nil.
func findEntry(es []*tree.Entry, p string) *tree.Entry {
	i, ok := slices.BinarySearchFunc(es, p, func(e *tree.Entry, p string) int { return tree.Compare(e.Path, p) })
	if !ok {
		return nil
	}
	return es[i]
}
