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
	// cond marks an OpDirMeta a streamed plan adds for every source
	// directory without one: applied only when the run changed the
	// directory's entries (not counted, not itemized).
	cond bool
	// ord is 1 + the index of Src in the source's scan (0: unknown), the
	// key of what the applier records about it (in the padding after
	// Replace: it costs no byte).
	ord int32
	// pord is the ord of the source directory holding Path (0: unknown or
	// none), where the applier marks that the directory's entries changed
	// (outDirChanged) rather than in a set of every such directory.
	pord int32
	Path string
	// Src is the source entry (nil for deletes).
	Src *tree.Entry
	// Dst is what the destination has at Path now (nil if nothing).
	Dst *tree.Entry
	// From is the destination path OpCopy copies from.
	From string
}

// Plan is the ordered list of what a sync does.
type Plan struct {
	// Actions are the steps, in the order the applier's phases take them.
	// MakePlan fills it; Sync streams its plan from scan to apply without
	// holding it, and its Result.Plan has the counts only (Len, Count; the
	// actions themselves reach Options.Itemize).
	Actions []Action
	// Deletes counts the destination entries removed, subtrees included.
	Deletes int
	// FetchBytes is the size of the files fetched from the source (an
	// upper bound: unchanged content or reused blocks do not travel).
	FetchBytes int64
	// Unknown counts fetches whose content may turn out unchanged (the
	// source had no hash for them).
	Unknown int
	counts  [len(opNames)]int // actions per Op, when Actions is not kept
	// replaced are the destination's hashed regular files a streamed
	// plan replaces or deletes (the generations' harvest looks for their
	// retained inodes), when Actions is not kept.
	replaced *replacedFiles
}

// Len returns the number of actions of the plan.
func (p *Plan) Len() int {
	if p.Actions != nil {
		return len(p.Actions)
	}
	n := 0
	for _, c := range p.counts {
		n += c
	}
	return n
}

// Count returns the number of actions of the plan with the operation op.
func (p *Plan) Count(op Op) int {
	if p.Actions != nil {
		n := 0
		for _, a := range p.Actions {
			if a.Op == op {
				n++
			}
		}
		return n
	}
	if int(op) < len(p.counts) {
		return p.counts[op]
	}
	return 0
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
	leaders := map[string]string{}
	for _, s := range src {
		if s.LinkTo != "" {
			leaders[s.LinkTo] = s.LinkTo
		}
	}
	pl := newPlanner(leaders, func(p string) *tree.Entry { return findEntry(src, p) }, opts)
	pl.setDst(dst)
	p := pl.p
	var dirMeta []Action
	ord := int32(0)
	for s, d := range tree.Merge(src, dst) {
		if s != nil {
			ord++
		}
		pl.step(s, d, ord, func(a Action) { p.Actions = append(p.Actions, a) },
			func(a Action) { dirMeta = append(dirMeta, a) })
	}
	// Directory metadata last, deepest first, so creating and deleting
	// children does not disturb a directory's mtime afterwards.
	for k := len(dirMeta) - 1; k >= 0; k-- {
		p.Actions = append(p.Actions, dirMeta[k])
	}
	return p
}

type inoKey struct{ dev, ino uint64 }

// planner is the state of a plan made one merged pair at a time (step): it
// holds the destination's list (for copies and hard links) and, of the
// source, only its hard-link leaders and the entries at the paths of
// multiply-linked destination inodes. MakePlan runs it over two slices;
// Sync over the source's stream, without holding the source's list.
type planner struct {
	p        *Plan
	opts     PlanOptions
	scopeSet *tree.ScopeSet
	// dstByIno lists the destination's paths of each multiply-linked
	// inode, in Compare order: a Sync's plan (planMerge) fills it as the
	// merge passes them (sharesWrongly looks only at the paths before
	// the one it is asked about).
	dstByIno map[inoKey][]string
	// dstAt returns the destination's entry at a source hard-link leader's
	// path (it is asked about nothing else; a Sync's plan answers only for
	// multiply-linked destination files: only such a leader can already
	// share its member's inode).
	dstAt func(string) *tree.Entry
	// hashes returns the destination's regular files by content hash (the
	// sources of local copies); asked once, the first time a new file
	// could be a copy, so a plan that creates nothing never builds it.
	hashes   func() func(uint64) hashSrc
	byHash   func(uint64) hashSrc
	srcAt    func(string) *tree.Entry // asked only for paths of multiply-linked destination inodes
	newInode newInodeSet              // source paths whose inode the plan replaces
	// Problems in a source directory make its subtree unknown: never
	// delete beneath it.
	problemDirs []string
}

// hashSrc is a destination file a local copy can take content from.
type hashSrc struct {
	path string
	size int64
}

// addHash records d as a copy source for its content hash (the first one
// seen wins).
func addHash(m map[uint64]hashSrc, d *tree.Entry) {
	if d.Type == tree.TypeRegular && d.Hashed() && d.Size > 0 {
		if _, ok := m[d.Hash]; !ok {
			m[d.Hash] = hashSrc{path: d.Path, size: d.Size}
		}
	}
}

// newPlanner starts a plan. leaders are the paths whose new inodes the
// plan notes (asked back only for a hard-link member's leader): the
// source's leaders (the LinkTo of its entries), or (a Sync's plan, which
// learns the leaders only as it goes) the paths of multiply-linked
// destination inodes, the only leaders dstAt answers for; srcAt returns the source's entry at a path
// (it is asked only about paths that share a destination inode). The
// destination is given by setDst, or by setting dstByIno, dstAt and
// hashes.
func newPlanner(leaders map[string]string, srcAt func(string) *tree.Entry, opts PlanOptions) *planner {
	scope := opts.Scope
	if scope == nil {
		scope = tree.FullScope
	}
	return &planner{p: &Plan{}, opts: opts, scopeSet: tree.NewScopeSet(scope), srcAt: srcAt,
		dstByIno: make(map[inoKey][]string), dstAt: func(string) *tree.Entry { return nil },
		hashes:   func() func(uint64) hashSrc { return nil },
		newInode: newInodeSet{leaders: leaders, set: map[string]bool{}}}
}

// setDst gives the planner the destination's whole list (sorted).
func (pl *planner) setDst(dst []*tree.Entry) {
	for _, d := range dst {
		if d.Type == tree.TypeRegular && d.Nlink > 1 {
			k := inoKey{d.Dev, d.Ino}
			pl.dstByIno[k] = append(pl.dstByIno[k], d.Path)
		}
	}
	pl.dstAt = func(p string) *tree.Entry { return findEntry(dst, p) }
	pl.hashes = func() func(uint64) hashSrc {
		m := map[uint64]hashSrc{}
		for _, d := range dst {
			addHash(m, d)
		}
		return func(h uint64) hashSrc { return m[h] }
	}
}

func planLeader(s *tree.Entry) string {
	if s.LinkTo != "" {
		return s.LinkTo
	}
	return s.Path
}

// sharesWrongly: d's inode is shared with other destination paths, and the
// path that keeps the inode (the first of them still a regular file in the
// source) belongs to another source link group than s: s needs an inode of
// its own.
func (pl *planner) sharesWrongly(s, d *tree.Entry) bool {
	if d.Nlink < 2 {
		return false
	}
	for _, other := range pl.dstByIno[inoKey{d.Dev, d.Ino}] {
		if other == d.Path {
			return false // s is the owner
		}
		if os := pl.srcAt(other); os != nil && os.Type == tree.TypeRegular {
			return planLeader(os) != planLeader(s)
		}
	}
	return false
}

func (pl *planner) keep(path string) bool {
	for _, d := range pl.problemDirs {
		if tree.IsWithin(path, d) && path != d {
			return true
		}
	}
	return false
}

// step plans one path of the merge: s and d are the source's and the
// destination's entries there (either may be nil), ord is 1 + the index of
// s in the source's list. Actions go to emit in plan order; directory
// metadata goes to emitDir in path order (it is applied last, deepest
// first: in the reverse order).
func (pl *planner) step(s, d *tree.Entry, ord int32, emit, emitDir func(Action)) {
	p := pl.p
	add := func(a Action) {
		if a.Op != OpDelete {
			a.ord = ord
		}
		if int(a.Op) < len(p.counts) {
			p.counts[a.Op]++
		}
		if a.Op == OpDirMeta {
			emitDir(a)
			return
		}
		emit(a)
	}
	if s == nil {
		if pl.opts.NoDelete || !pl.scopeSet.Covers(d.Path) || pl.keep(d.Path) {
			return
		}
		add(Action{Op: OpDelete, Path: d.Path, Dst: d})
		p.Deletes++
		return
	}
	if s.Type == tree.TypeDir && s.Problem != "" {
		pl.problemDirs = append(pl.problemDirs, s.Path)
	}
	if d != nil && d.Type != s.Type {
		// Kind changes: the old object goes (with its subtree, whose
		// entries also show up as deletes below).
		add(pl.create(s, d, true))
		if s.Type == tree.TypeDir {
			add(Action{Op: OpDirMeta, Path: s.Path, Src: s})
		}
		return
	}
	if d == nil {
		add(pl.create(s, nil, false))
		if s.Type == tree.TypeDir {
			add(Action{Op: OpDirMeta, Path: s.Path, Src: s})
		}
		return
	}
	switch s.Type {
	case tree.TypeDir:
		if !tree.SameMeta(s, d) {
			add(Action{Op: OpDirMeta, Path: s.Path, Src: s, Dst: d})
		}
	case tree.TypeRegular:
		if s.LinkTo != "" {
			// Already the same inode as its leader, and the leader
			// keeps its inode?
			l := pl.dstAt(s.LinkTo)
			if l != nil && l.Type == tree.TypeRegular && l.Dev == d.Dev && l.Ino == d.Ino && !pl.newInode.has(s.LinkTo) {
				return // metadata comes with the leader's
			}
			add(Action{Op: OpLink, Path: s.Path, Src: s, Dst: d, Replace: true})
			pl.newInode.add(s.Path)
			return
		}
		if pl.sharesWrongly(s, d) {
			add(pl.create(s, d, true))
			return
		}
		if tree.SameContent(s, d) {
			if !tree.SameMeta(s, d) {
				add(Action{Op: OpMeta, Path: s.Path, Src: s, Dst: d})
			}
			return
		}
		if s.Hashed() && d.Hashed() && s.Size == d.Size && s.Hash == d.Hash {
			return
		}
		if !s.Hashed() && s.Size == d.Size {
			p.Unknown++
		}
		add(Action{Op: OpFetch, Path: s.Path, Src: s, Dst: d})
		p.FetchBytes += s.Size
		pl.newInode.add(s.Path)
	case tree.TypeSymlink, tree.TypeCharDev, tree.TypeBlockDev:
		if s.Target != d.Target || s.Rdev != d.Rdev {
			add(pl.create(s, d, true))
		} else if !tree.SameMeta(s, d) {
			add(Action{Op: OpMeta, Path: s.Path, Src: s, Dst: d})
		}
	default: // fifo, socket
		if !tree.SameMeta(s, d) {
			add(Action{Op: OpMeta, Path: s.Path, Src: s, Dst: d})
		}
	}
}

// create returns the action that makes s exist where d (maybe nil) is.
func (pl *planner) create(s, d *tree.Entry, replace bool) Action {
	a := Action{Path: s.Path, Src: s, Dst: d, Replace: replace}
	switch s.Type {
	case tree.TypeDir:
		a.Op = OpMkdir
	case tree.TypeRegular:
		pl.newInode.add(s.Path)
		var h hashSrc
		if s.LinkTo == "" && s.Hashed() {
			if pl.byHash == nil {
				if pl.byHash = pl.hashes(); pl.byHash == nil {
					pl.byHash = func(uint64) hashSrc { return hashSrc{} }
				}
			}
			h = pl.byHash(s.Hash)
		}
		switch {
		case s.LinkTo != "":
			a.Op = OpLink
		case s.Hashed() && h.path != "" && h.size == s.Size:
			a.Op = OpCopy
			a.From = h.path
		default:
			a.Op = OpFetch
			pl.p.FetchBytes += s.Size
		}
	case tree.TypeSymlink:
		a.Op = OpSymlink
	default:
		a.Op = OpSpecial
	}
	return a
}

// newInodeSet records the source paths whose inode a plan replaces, for
// the hard-link leaders only (nothing else is asked).
type newInodeSet struct {
	leaders map[string]string // each leader's path to itself
	set     map[string]bool
}

func (n newInodeSet) add(p string) {
	if l, ok := n.leaders[p]; ok {
		n.set[l] = true
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
