package imaging

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/goldsync/goldsync/imaging/tree"
)

// packedBlock is a base block decoded for lookups and held compactly: each
// entry's parent directory once per run of siblings, the entries' names
// end to end in one string, and per entry one fixed-size record of its
// numbers; the fields most entries leave empty (link target, xattrs, hard
// link, problem, device number) are kept aside for the few that have
// them. A block decoded into tree.Entry values held ~290 bytes an entry
// (the 176-byte struct, a pointer, the whole path in its own allocation);
// this holds the record's 80, the name and a share of the directories'
// paths: 126 bytes an entry on the 225k-entry synthetic tree (paths of 77
// bytes on average), against 293 decoded. It is what a manifestReader keeps of the hash cache's blocks: 32
// of them during a walk, the largest part of the golden node's live heap
// in a no-change pull (issue #14).
type packedBlock struct {
	names string
	dirs  []string // the parents; "" for Root and its children (their path is their name)
	recs  []packedRec
	more  []packedMore
	// buf holds names' bytes when the block was decoded into another's
	// arrays (decodePackedInto): names is a string over it, which only the
	// block's own comparisons read. Nil when names is a string of its own.
	buf []byte
	// dbuf holds the parents' bytes likewise (dirs are strings over it);
	// nil when each parent is a string of its own.
	dbuf []byte
	// refs counts the holders of a manifestReader's block: its cache and
	// the lookups using it (guarded by the reader's mu). At zero the block
	// is not looked at again and its slices may be decoded into.
	refs int
}

type packedRec struct {
	size, mtime, ctime   int64
	dev, ino, hash       uint64
	mode, uid, gid, nlnk uint32
	end                  uint32 // the name's end in names; it starts at the previous one's end
	dir                  uint32 // the parent's index in dirs
	more                 uint32 // 1 + the index of the entry's rare fields in more; 0: none
	typ                  tree.Type
	flags                tree.Flags
}

type packedMore struct {
	target, linkTo, problem string
	rdev                    uint64
	xattrs                  []tree.Xattr
}

// packScratch is decodePacked's scratch: the buffer a block's names are
// built in before they are copied into one string of the exact size, and
// the two buffers the entries' paths are decoded into in turn (a path is
// only looked at until the next but one is decoded: what is kept of it, the
// name and a new parent, is copied).
type packScratch struct {
	arena []byte
	paths [2][]byte
	// starts holds where each parent starts in a reused block's dbuf.
	starts []int
}

// arenaPool holds the packScratch values.
var arenaPool = sync.Pool{New: func() any { return &packScratch{arena: make([]byte, 0, 32<<10)} }}

// decodePacked reads, checks and decodes one base block as decodeBlock
// does, into a packedBlock.
func decodePacked(bf baseFile, b baseBlock) (*packedBlock, error) {
	return decodePackedInto(bf, b, nil)
}

// decodePackedInto is decodePacked into the arrays of reuse, a block no
// one looks at any more, when it is not nil: its records were a new 20 KiB
// a block and its names' string ~3 KiB, the largest part of the golden
// node's allocations in a no-change pull (issue #14). The names' bytes go
// into reuse's buffer (only the block's comparisons read them); what a
// lookup hands its caller (link targets, xattrs, problems) is fresh each
// time, as before. After an error reuse is garbage.
func decodePackedInto(bf baseFile, b baseBlock, reuse *packedBlock) (*packedBlock, error) {
	ps := arenaPool.Get().(*packScratch)
	defer arenaPool.Put(ps)
	arena := ps.arena[:0]
	var pb *packedBlock
	var dbuf []byte // a reused block's parents, end to end
	starts := ps.starts[:0]
	own := reuse != nil
	if own {
		clear(reuse.dirs)
		clear(reuse.more)
		if reuse.buf != nil {
			arena = reuse.buf[:0]
		} else {
			arena = make([]byte, 0, len(reuse.names)+len(reuse.names)/4)
		}
		dbuf = reuse.dbuf[:0]
		recs := reuse.recs
		if cap(recs) < b.n {
			// (Blocks end at directories: any block fits from now on.)
			recs = make([]packedRec, 0, max(b.n, manifestBlock))
		}
		pb = reuse
		*pb = packedBlock{recs: recs[:b.n], dirs: reuse.dirs[:0], more: reuse.more[:0]}
	} else {
		pb = &packedBlock{recs: make([]packedRec, b.n)}
	}
	// Two entries decoded in turn: each is decoded against the one before.
	var two [2]tree.Entry
	slot := func(i int) *tree.Entry {
		e := &two[i%2]
		*e = tree.Entry{}
		return e
	}
	use := func(i int, e *tree.Entry) {
		dir, name := "", e.Path
		if k := strings.LastIndexByte(e.Path, '/'); k >= 0 {
			dir, name = e.Path[:k], e.Path[k+1:]
		}
		switch {
		case own:
			// Into the reused block's buffer (a new parent was ~2 MB of
			// the golden node's ~37 MB allocated in a no-change pull of
			// 225k entries, issue #14): dirs are set once it is
			// complete, and only the block's comparisons read them.
			if n := len(starts); n == 0 || string(dbuf[starts[n-1]:]) != dir {
				starts = append(starts, len(dbuf))
				dbuf = append(dbuf, dir...)
				pb.dirs = append(pb.dirs, "")
			}
		case len(pb.dirs) == 0 || pb.dirs[len(pb.dirs)-1] != dir:
			// (A directory met again after a subtree is kept again.) A
			// copy: e.Path is in ps.paths.
			pb.dirs = append(pb.dirs, strings.Clone(dir))
		}
		arena = append(arena, name...)
		r := &pb.recs[i]
		*r = packedRec{
			size: e.Size, mtime: e.Mtime, ctime: e.Ctime,
			dev: e.Dev, ino: e.Ino, hash: e.Hash,
			mode: e.Mode, uid: e.UID, gid: e.GID, nlnk: e.Nlink,
			end: uint32(len(arena)), dir: uint32(len(pb.dirs) - 1), typ: e.Type, flags: e.Flags,
		}
		if e.Target != "" || e.LinkTo != "" || e.Problem != "" || e.Rdev != 0 || len(e.Xattrs) > 0 {
			pb.more = append(pb.more, packedMore{target: e.Target, linkTo: e.LinkTo, problem: e.Problem, rdev: e.Rdev, xattrs: e.Xattrs})
			r.more = uint32(len(pb.more))
		}
	}
	err := eachBlockEntry(bf, b, &ps.paths, slot, use)
	ps.starts = starts
	if err != nil {
		if !own {
			ps.arena = arena
		}
		return nil, err
	}
	if own {
		pb.buf = arena
		pb.names = unsafe.String(unsafe.SliceData(arena), len(arena))
		pb.dbuf = dbuf
		for i, st := range starts {
			end := len(dbuf)
			if i+1 < len(starts) {
				end = starts[i+1]
			}
			if end > st {
				pb.dirs[i] = unsafe.String(&dbuf[st], end-st)
			}
		}
	} else {
		pb.names = string(arena)
		ps.arena = arena
	}
	return pb, nil
}

// len is the number of entries.
func (pb *packedBlock) len() int { return len(pb.recs) }

// name returns entry k's name (a part of the block's one string).
func (pb *packedBlock) name(k int) string {
	start := uint32(0)
	if k > 0 {
		start = pb.recs[k-1].end
	}
	return pb.names[start:pb.recs[k].end]
}

// is reports whether entry k's path is p.
func (pb *packedBlock) is(k int, p string) bool {
	dir, name := pb.dirs[pb.recs[k].dir], pb.name(k)
	if dir == "" {
		return p == name
	}
	return len(p) == len(dir)+1+len(name) && p[len(dir)] == '/' && p[:len(dir)] == dir && p[len(dir)+1:] == name
}

// compare is tree.Compare of entry k's path and p, without joining them.
func (pb *packedBlock) compare(k int, p string) int {
	dir, name := pb.dirs[pb.recs[k].dir], pb.name(k)
	if dir == "" {
		return tree.Compare(name, p)
	}
	// The path is dir/name: not Root, which sorts first.
	if p == tree.Root {
		return 1
	}
	n := min(len(dir), len(p))
	if c := compareBytes(dir[:n], p[:n]); c != 0 {
		return c
	}
	if len(p) == n {
		return 1 // p is the path's beginning
	}
	if p[n] != '/' {
		return -1 // the path's '/' sorts below p's byte
	}
	return compareBytes(name, p[n+1:])
}

// compareBytes is tree.Compare's order on strings neither of which is
// Root: byte order with '/' below every other byte, a prefix first.
func compareBytes(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		switch {
		case ca == cb:
			continue
		case ca == '/':
			return -1
		case cb == '/':
			return 1
		case ca < cb:
			return -1
		}
		return 1
	}
	return cmp.Compare(len(a), len(b))
}

// entry sets *e to entry k, whose path the caller found to be p. Its
// xattrs are the block's own: the caller must not modify them.
func (pb *packedBlock) entry(k int, p string, e *tree.Entry) {
	r := &pb.recs[k]
	*e = tree.Entry{
		Path: p, Type: r.typ, Mode: r.mode, UID: r.uid, GID: r.gid,
		Size: r.size, Mtime: r.mtime, Hash: r.hash, Flags: r.flags,
		Dev: r.dev, Ino: r.ino, Nlink: r.nlnk, Ctime: r.ctime,
	}
	if r.more != 0 {
		m := &pb.more[r.more-1]
		e.Target, e.LinkTo, e.Problem, e.Rdev, e.Xattrs = m.target, m.linkTo, m.problem, m.rdev, m.xattrs
	}
}

// search finds p: its index, or where it would go.
func (pb *packedBlock) search(p string) (int, bool) { return pb.searchFrom(0, p) }

// searchFrom is search among the entries from k on.
func (pb *packedBlock) searchFrom(k int, p string) (int, bool) {
	lo, hi := k, pb.len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if pb.compare(m, p) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < pb.len() && pb.is(lo, p)
}

// path returns entry k's whole path (a new string, except for Root's
// children).
func (pb *packedBlock) path(k int) string {
	dir, name := pb.dirs[pb.recs[k].dir], pb.name(k)
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// equal reports whether entry k is e, every field of it: what entry
// would set, compared without building it.
func (pb *packedBlock) equal(k int, e *tree.Entry) bool {
	r := &pb.recs[k]
	if r.size != e.Size || r.mtime != e.Mtime || r.ctime != e.Ctime ||
		r.dev != e.Dev || r.ino != e.Ino || r.hash != e.Hash ||
		r.mode != e.Mode || r.uid != e.UID || r.gid != e.GID || r.nlnk != e.Nlink ||
		r.typ != e.Type || r.flags != e.Flags || !pb.is(k, e.Path) {
		return false
	}
	if r.more == 0 {
		return e.Target == "" && e.LinkTo == "" && e.Problem == "" && e.Rdev == 0 && len(e.Xattrs) == 0
	}
	m := &pb.more[r.more-1]
	return m.target == e.Target && m.linkTo == e.LinkTo && m.problem == e.Problem && m.rdev == e.Rdev &&
		slices.EqualFunc(m.xattrs, e.Xattrs, func(a, b tree.Xattr) bool { return a.Name == b.Name && bytes.Equal(a.Value, b.Value) })
}
