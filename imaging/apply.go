package imaging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// applier carries out a plan beneath a destination root.
type applier struct {
	root *fsx.Root
	// noUnnamed: the destination refused O_TMPFILE once; temp names then
	noUnnamed atomic.Bool
	src       Source
	plan      *Plan         // for its counts
	acts      actionSource  // its actions, a phase at a time
	srcs      []*tree.Entry // the source entries, in tree.Compare order, when held (see srcEntry)
	opts      *Options
	log       *slog.Logger
	ret       *retainer
	owner     bool // we may chown (running as root)

	mu  sync.Mutex
	out outcomeStore // what this run did to each source path it changed
	// dirs are directories whose entries changed, known by path only
	// (a removed temp, an action without pord); the others are marked in
	// out (outDirChanged), lastDir the one marked last.
	dirs    map[string]bool
	lastDir int32
	// dirsChanged counts the marks dirChanged made (0: no directory's
	// entries changed, and a streamed plan's conditional directory
	// actions all have nothing to do).
	dirsChanged int
	failed      map[string]bool // paths left as they were
	problems    []string

	excl       *exclude.Matcher           // the receiver's excludes (nil: none)
	walkedDir  func(p string) *tree.Entry // a directory of the destination walk (nil: unknown)
	groupsOnce sync.Once
	groups     map[string]uint64 // hard-link group leaders: members beside the leader (nil: count srcs)

	stats *Stats
	count counters
	// sourceDone is Options.SourceDone (nil: none), called once the
	// content phase has ended
	sourceDone func()
	sinks      sync.Map // *fileSink with a temp file not yet finished
}

// srcEntry returns the source entry at path p, or nil: a binary search of
// the sorted list rather than a map of every path, which cost a receiver
// about 30 bytes per entry for a few lookups of directories and hard-link
// leaders. A streamed plan holds no list (nil).
func (a *applier) srcEntry(p string) *tree.Entry {
	return findEntry(a.srcs, p)
}

func newTempName() string {
	var b [8]byte
	rand.Read(b[:])
	return TempPrefix + hex.EncodeToString(b[:])
}

// outcome is what the applier did to one path, as the manifest needs it:
// one compact value per changed path (the whole lstat record of every
// placed file was 144 bytes, in a third map beside two others). dev and
// ino are also the identity of a directory the run created (outMade).
type outcome struct {
	hash         uint64
	dev, ino     uint64
	ctime, mtime int64
	nlink        uint32
	flags        outcomeFlags
}

type outcomeFlags uint8

const (
	outTouched    outcomeFlags = 1 << iota // the object was created or changed
	outHashed                              // hash is the content written
	outPlaced                              // a regular file written: dev..nlink are its lstat once in place
	outMade                                // a directory created: dev and ino are its identity
	outDirChanged                          // a directory whose entries the run changed
)

// outcomeOf returns what the run did to source path p, with ord 1 + its
// index in the source's list (the zero value: nothing). Callers hold no
// lock; it is used once the applier is done.
func (a *applier) outcomeOf(p string, ord int32) outcome { return a.out.get(p, ord) }

// touched reports whether the run created or changed the object at p.
func (a *applier) touched(p string) bool { return a.out.get(p, 0).flags&outTouched != 0 }

// touch records that the run created or changed the object of act (and,
// with dirChanged, the entries of its directory).
func (a *applier) touch(act *Action, dirChanged bool) {
	a.mu.Lock()
	a.out.update(act.Path, act.ord, func(o *outcome) { o.flags |= outTouched })
	if dirChanged {
		a.dirChanged(act.Path, act.pord)
	}
	a.mu.Unlock()
}

// touchPath is touch for a path known by name only (a hard-link leader
// whose link count changed).
func (a *applier) touchPath(p string) {
	a.mu.Lock()
	a.out.update(p, 0, func(o *outcome) { o.flags |= outTouched })
	a.mu.Unlock()
}

// dirChanged records that the entries of p's directory changed: in the
// outcome of the directory when its ord (pord) is known, else by path.
// Callers hold a.mu.
func (a *applier) dirChanged(p string, pord int32) {
	if p != tree.Root {
		a.dirsChanged++
	}
	switch {
	case p == tree.Root:
	case pord > 0:
		if pord != a.lastDir { // a directory's entries come one after another
			a.out.update(tree.Dir(p), pord, func(o *outcome) { o.flags |= outDirChanged })
			a.lastDir = pord
		}
	default:
		a.dirs[tree.Dir(p)] = true
	}
}

// entriesChanged reports whether the run changed the entries of the
// directory at p (ord: 1 + its index in the source's list, 0 if unknown).
// Callers hold a.mu.
func (a *applier) entriesChanged(p string, ord int32) bool {
	return a.dirs[p] || (ord > 0 && a.out.get(p, ord).flags&outDirChanged != 0)
}

func (a *applier) fail(p string, err error) {
	a.log.Warn("not applied", "path", p, "err", err)
	a.mu.Lock()
	a.failed[p] = true
	a.problems = append(a.problems, err.Error())
	a.mu.Unlock()
}

func (a *applier) failedPaths() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.failed))
	for p := range a.failed {
		out = append(out, p)
	}
	slices.SortFunc(out, tree.Compare)
	return out
}

func (a *applier) progress(ph Phase, path string, bytes int64) {
	if a.opts.Progress == nil {
		return
	}
	a.opts.Progress(Progress{Phase: ph, Path: path, Files: a.count.filesDone.Add(1), TotalFiles: int64(a.plan.Len()),
		Bytes: a.count.bytesDone.Add(bytes), TotalBytes: a.plan.FetchBytes})
}

// run applies the plan phase by phase. Per-path failures are recorded and
// the run goes on; an error return means the run as a whole broke.
func (a *applier) run(ctx context.Context, temps []string) error {
	a.cleanTemps(temps)
	each := func(ph int, fn func(*Action)) error {
		return a.acts.each(ph, func(act *Action) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			fn(act)
			return nil
		})
	}
	// 1. Directories, top-down.
	if err := each(phMkdir, a.mkdir); err != nil {
		return err
	}
	a.log.Debug("sync: directories made")
	// New symlinks and devices need only their directory: they are made
	// while the content arrives (issue 14), on a goroutine of their own.
	nodes := a.startNewNodes(ctx)
	// 2. Content: local copies first (their sources may be replaced
	// later), then the source's, fetchChunk files at a time.
	var fallback []*Action // copies that found no good local content
	if err := each(phCopy, func(act *Action) {
		if !a.copyLocal(act) {
			fallback = append(fallback, act)
		}
	}); err != nil {
		nodes(true)
		return err
	}
	var chunk []*Action
	flush := func() error {
		err := a.fetch(ctx, chunk)
		chunk = chunk[:0]
		return err
	}
	err := a.acts.each(phFetch, func(act *Action) error {
		if chunk = append(chunk, act); len(chunk) == fetchChunk {
			return flush()
		}
		return nil
	})
	if err == nil {
		chunk = append(chunk, fallback...)
		err = flush()
	}
	// (Joined before the fallbacks' actions change: a plan held whole
	// is read by both.)
	if nerr := nodes(err != nil); err == nil {
		err = nerr
	}
	for _, act := range fallback {
		act.Op = OpFetch
	}
	a.log.Debug("sync: content fetched")
	if a.sourceDone != nil {
		// Its session ends beside the rest of this run (issue 14).
		a.sourceDone()
	}
	a.stats.BytesReceived = a.count.received.Load()
	a.stats.BytesReused = a.count.reused.Load()
	a.stats.Unchanged = int(a.count.unchanged.Load())
	if err != nil {
		return err
	}
	// 3. Other objects and in-place metadata, in path order (the new
	// symlinks and devices are made already).
	if err := each(phOther, func(act *Action) {
		if newNode(act) {
			return
		}
		switch act.Op {
		case OpSymlink, OpSpecial:
			a.makeNode(act)
		case OpMeta:
			a.meta(act)
		}
	}); err != nil {
		return err
	}
	// 4. Hard links, now that their leaders exist.
	if err := each(phLink, a.link); err != nil {
		return err
	}
	// 5. Deletes, deepest first.
	if err := a.acts.each(phDelete, func(act *Action) error { a.remove(act); return nil }); err != nil {
		return err
	}
	// 6. Directory metadata, deepest first; also every directory whose
	// entries changed, so its mtime ends up as the source's. (A streamed
	// plan has a conditional action for each such directory in its place;
	// a plan held whole has none, and the directories are looked up.)
	a.mu.Lock()
	idle := a.acts.streamed() && a.plan.Count(OpDirMeta) == 0 && a.dirsChanged == 0
	a.mu.Unlock()
	if idle {
		// Only conditional actions, and no directory's entries changed
		// (a no-change run): none is read back.
		return nil
	}
	done := make(map[string]bool)
	if err := a.acts.each(phDirMeta, func(act *Action) error {
		if act.cond {
			a.mu.Lock()
			changed := a.entriesChanged(act.Path, act.ord)
			a.mu.Unlock()
			if !changed {
				return nil
			}
		} else if !a.acts.streamed() {
			done[act.Path] = true
		}
		a.dirMeta(act)
		return nil
	}); err != nil {
		return err
	}
	if a.acts.streamed() {
		return nil
	}
	var rest []string
	for d := range a.dirs {
		if !done[d] {
			rest = append(rest, d)
		}
	}
	slices.SortFunc(rest, func(x, y string) int { return -tree.Compare(x, y) })
	for _, d := range rest {
		if s := a.srcEntry(d); s != nil && s.Type == tree.TypeDir {
			a.dirMeta(&Action{Op: OpDirMeta, Path: d, Src: s})
		}
	}
	return nil
}

// newNode reports whether act makes a symlink, device, fifo or socket
// where the destination had nothing: it needs only its directory (made
// by the first phase), changes no object the other phases look at (no
// retention link, no removal, no link count), and no phase's object
// lies beneath it (a source entry's parent is a directory). Replacing
// an object, or changing one in place, waits for the content phase.
func newNode(act *Action) bool {
	return (act.Op == OpSymlink || act.Op == OpSpecial) && act.Dst == nil
}

// startNewNodes makes the plan's new nodes (see newNode) on a goroutine
// of its own, in path order, while the content phase runs. The function
// it returns waits for it to end (stopping it first with stop) and
// returns its error.
func (a *applier) startNewNodes(ctx context.Context) func(stop bool) error {
	if a.plan.Count(OpSymlink)+a.plan.Count(OpSpecial) == 0 {
		return func(bool) error { return nil }
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- a.acts.each(phOther, func(act *Action) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if newNode(act) {
				a.makeNode(act)
			}
			return nil
		})
	}()
	return func(stop bool) error {
		if stop {
			cancel()
		}
		err := <-done
		cancel()
		return err
	}
}

func (a *applier) cleanTemps(temps []string) {
	for _, t := range temps {
		d, name, err := a.root.OpenParent(t)
		if err != nil {
			continue
		}
		if err := d.RemoveAll(name, nil); err == nil {
			a.stats.TempsRemoved++
			a.mu.Lock()
			a.dirChanged(t, 0)
			a.mu.Unlock()
		}
		d.Close()
	}
}

// removeExisting clears the way for a new object at name: the old object
// is retained if it is a regular file, and removed with its subtree. The
// entries of the subtree count as deleted (the plan counted them too: they
// are its deletes beneath a type change, found gone when their turn comes).
func (a *applier) removeExisting(d *fsx.Dir, name string) error {
	if a.excl != nil {
		// The receiver's excludes protect what lies beneath a directory
		// the source replaces by another kind of object, as they protect
		// it from deletes: a sender must not wipe the image's host keys
		// by sending etc/ssh as a symlink.
		var st unix.Stat_t
		if d.Lstat(name, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			held, err := a.holdsExcluded(d, name)
			if err != nil {
				return err
			}
			if held != "" {
				return fmt.Errorf("%q holds %q, which the receiver excludes: not replaced", tree.Join(d.Path, name), held)
			}
		}
	}
	keep := a.ret.keepFunc()
	removed := 0
	err := d.RemoveAll(name, func(d *fsx.Dir, name string, st *unix.Stat_t) {
		keep(d, name, st)
		removed++
	})
	if removed > 1 {
		a.mu.Lock()
		a.stats.Deleted += removed - 1 // the object itself is replaced, not deleted
		a.mu.Unlock()
	}
	return err
}

func (a *applier) mkdir(act *Action) {
	if act.Path == tree.Root {
		return
	}
	d, name, err := a.root.OpenParent(act.Path)
	if err != nil {
		a.fail(act.Path, err)
		return
	}
	defer d.Close()
	if act.Dst != nil {
		if err := a.removeExisting(d, name); err != nil {
			a.fail(act.Path, err)
			return
		}
	}
	if err := d.Mkdir(name, 0o700); err != nil {
		a.fail(act.Path, err)
		return
	}
	// Its identity, so that its metadata (set last) goes to this
	// directory and not to one swapped in by whoever owns the parent.
	var st unix.Stat_t
	made := d.Lstat(name, &st) == nil
	a.mu.Lock()
	a.out.update(act.Path, act.ord, func(o *outcome) {
		o.flags |= outTouched
		if made {
			o.dev, o.ino = st.Dev, st.Ino
			o.flags |= outMade
		}
	})
	a.dirChanged(act.Path, act.pord)
	a.mu.Unlock()
	a.stats.Created++
}

// setMeta sets owner, mode, xattrs and mtime on d/name, in that order: chown
// clears set-id bits and capabilities, so they come after it. Every call
// goes to the inode open opened and checked (see openOurs, openWalked): a
// name swapped for a hard link to someone else's file meanwhile does not
// get root's owner or a set-id mode.
func (a *applier) setMeta(d *fsx.Dir, name string, s *tree.Entry, have []tree.Xattr, open func(*fsx.Dir, string) (*fsx.Obj, error)) error {
	o, err := open(d, name)
	if err != nil {
		return err
	}
	defer o.Close()
	if a.owner {
		if err := o.Chown(s.UID, s.GID); err != nil {
			return err
		}
		// The kernel dropped the file's capability with the chown (even
		// to the same owner): what it had is no longer there to keep.
		have = withoutCapability(have)
	}
	if s.Type != tree.TypeSymlink {
		if err := o.Chmod(s.Mode); err != nil {
			return err
		}
	}
	if len(s.Xattrs) > 0 || len(have) > 0 {
		if err := o.SetXattrs(toFsxXattrs(have), toFsxXattrs(s.Xattrs)); err != nil {
			if a.owner {
				return err
			}
			a.log.Debug("xattrs not set (not root)", "path", s.Path, "err", err)
		}
	}
	return o.SetMtime(s.Mtime)
}

// capabilityXattr holds a file's capabilities (setcap); a chown drops it.
const capabilityXattr = "security.capability"

// withoutCapability returns have without security.capability, in a new
// slice when it had one.
func withoutCapability(have []tree.Xattr) []tree.Xattr {
	for i, x := range have {
		if x.Name == capabilityXattr {
			return append(append([]tree.Xattr(nil), have[:i]...), have[i+1:]...)
		}
	}
	return have
}

// holdsExcluded returns the first entry beneath the directory name in d
// that the receiver's excludes leave out, or "".
func (a *applier) holdsExcluded(d *fsx.Dir, name string) (string, error) {
	sub, err := d.Sub(name)
	if err != nil {
		return "", err
	}
	defer sub.Close()
	names, err := sub.Names()
	if err != nil {
		return "", err
	}
	for _, n := range names {
		var st unix.Stat_t
		if sub.Lstat(n, &st) != nil {
			continue
		}
		p := tree.Join(sub.Path, n)
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if a.excl.Excluded(p, isDir) {
			return p, nil
		}
		if isDir {
			if held, err := a.holdsExcluded(sub, n); err != nil || held != "" {
				return held, err
			}
		}
	}
	return "", nil
}

// openOurs opens an object this run just made under a temp name and checks
// it still is: of the type made, owned by us, with one link. A local user
// who can write the directory could otherwise put a hard link to a file of
// theirs under the temp name before its metadata is set.
func (a *applier) openOurs(typ tree.Type) func(*fsx.Dir, string) (*fsx.Obj, error) {
	return func(d *fsx.Dir, name string) (*fsx.Obj, error) {
		o, err := d.OpenObj(name)
		if err != nil {
			return nil, err
		}
		st := o.Stat()
		if st.Mode&unix.S_IFMT != ifmt(typ) || int(st.Uid) != os.Geteuid() || (typ != tree.TypeDir && st.Nlink != 1) {
			o.Close()
			return nil, fmt.Errorf("temp %s was replaced (a %s of uid %d with %d links) before its metadata was set",
				name, fsx.StatMode(st.Mode), st.Uid, st.Nlink)
		}
		return o, nil
	}
}

// openWalked opens the object at p for an in-place change and checks it is
// the inode the destination walk found there (dst's dev and inode), with no
// more hard links than the source's link group accounts for: a link from
// outside the image (a local user's own copy of a binary) must not become
// root-owned or set-id.
func (a *applier) openWalked(p string, src, dst *tree.Entry) func(*fsx.Dir, string) (*fsx.Obj, error) {
	return func(d *fsx.Dir, name string) (*fsx.Obj, error) {
		o, err := d.OpenObj(name)
		if err != nil {
			return nil, err
		}
		st := o.Stat()
		switch {
		case dst != nil && dst.Ino != 0 && (st.Ino != dst.Ino || st.Dev != dst.Dev):
			o.Close()
			return nil, fmt.Errorf("%q is another object than the walk found there (replaced since): metadata not set", p)
		case st.Mode&unix.S_IFMT == unix.S_IFREG && uint64(st.Nlink) > a.linksFor(src) && a.grants(st, src, dst):
			o.Close()
			return nil, fmt.Errorf("%q has %d hard links, the source accounts for %d: its owner, set-id bits or security xattrs not changed in place (linked from outside the image?)",
				p, st.Nlink, a.linksFor(src))
		}
		return o, nil
	}
}

// grants reports whether setting s's metadata on an inode with stat st (and
// dst's xattrs) would give it what its owner could not give it alone: another
// owner or group, set-id bits, or xattrs outside the user namespace
// (capabilities, SELinux labels) that it does not already have with the
// same value. Taking away (set-id bits dropped, a capability removed) is
// not a grant: revoking must reach an image file whatever links it has.
func (a *applier) grants(st *unix.Stat_t, s, dst *tree.Entry) bool {
	if a.owner && (st.Uid != s.UID || st.Gid != s.GID) {
		return true
	}
	if s.Mode&0o6000 != 0 && s.Mode&0o6000 != st.Mode&0o6000 {
		return true
	}
	var have []tree.Xattr
	if dst != nil {
		have = dst.Xattrs
	}
	for _, x := range s.Xattrs {
		if strings.HasPrefix(x.Name, "user.") {
			continue
		}
		held := false
		for _, h := range have {
			if h.Name == x.Name && string(h.Value) == string(x.Value) {
				held = true
				break
			}
		}
		if !held {
			return true
		}
	}
	return false
}

// linksFor returns how many links the inode of source entry s should have:
// the size of its hard-link group.
func (a *applier) linksFor(s *tree.Entry) uint64 {
	a.groupsOnce.Do(func() {
		if a.groups != nil {
			return // counted by the scan
		}
		a.groups = map[string]uint64{}
		for _, e := range a.srcs {
			if e.LinkTo != "" {
				a.groups[e.LinkTo]++
			}
		}
	})
	leader := s.Path
	if s.LinkTo != "" {
		leader = s.LinkTo
	}
	return 1 + a.groups[leader]
}

// ifmt is the st_mode file type of t.
func ifmt(t tree.Type) uint32 {
	switch t {
	case tree.TypeDir:
		return unix.S_IFDIR
	case tree.TypeSymlink:
		return unix.S_IFLNK
	case tree.TypeCharDev:
		return unix.S_IFCHR
	case tree.TypeBlockDev:
		return unix.S_IFBLK
	case tree.TypeFIFO:
		return unix.S_IFIFO
	case tree.TypeSocket:
		return unix.S_IFSOCK
	}
	return unix.S_IFREG
}

// setFileMeta is setMeta for a regular file we hold open: fchown, fchmod,
// fsetxattr, then futimens for the mtime. Owner and mode calls are skipped
// when have (the file's fstat, if known) shows them right already; chown
// comes first because it clears set-id bits and capabilities.
func (a *applier) setFileMeta(f fsx.Handle, s *tree.Entry, have *unix.Stat_t) error {
	fd := int(f.Fd())
	// have is the file's fstat, when known: owner and mode already right
	// (a root-owned file made by root) cost no call.
	chowned := false
	if a.owner && (have == nil || have.Uid != s.UID || have.Gid != s.GID) {
		if err := unix.Fchown(fd, int(s.UID), int(s.GID)); err != nil {
			return &os.PathError{Op: "fchown", Path: f.Name(), Err: err}
		}
		chowned = true
	}
	if have == nil || chowned || have.Mode&07777 != s.Mode {
		if err := unix.Fchmod(fd, s.Mode); err != nil {
			return &os.PathError{Op: "fchmod", Path: f.Name(), Err: err}
		}
	}
	for _, x := range s.Xattrs {
		if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil {
			if a.owner {
				return &os.PathError{Op: "fsetxattr " + x.Name, Path: f.Name(), Err: err}
			}
			a.log.Debug("xattr not set (not root)", "path", s.Path, "err", err)
		}
	}
	return fsx.Futimens(f, s.Mtime)
}

// placeTemp renames a finished temp object over name, retaining the old
// object's inode for live readers.
func (a *applier) placeTemp(d *fsx.Dir, tmp, name string, act *Action) error {
	dst := act.Dst
	if dst != nil {
		if dst.Type == tree.TypeDir {
			if err := a.removeExisting(d, name); err != nil {
				return err
			}
		} else if dst.Type == tree.TypeRegular {
			var tst, nst unix.Stat_t
			if d.Lstat(tmp, &tst) == nil && d.Lstat(name, &nst) == nil && tst.Ino == nst.Ino && tst.Dev == nst.Dev {
				// Already the same inode (a hard link that holds):
				// rename(2) would do nothing and leave tmp behind.
				a.touch(act, true)
				return d.Unlink(tmp)
			}
			a.ret.keep(d, name)
		}
	}
	if err := d.Rename(tmp, d, name); err != nil {
		return err
	}
	a.touch(act, true)
	return nil
}

func (a *applier) copyLocal(act *Action) bool {
	s := act.Src
	from, err := a.root.OpenFile(act.From)
	if err != nil {
		return false
	}
	defer from.Close()
	var st unix.Stat_t
	if unix.Fstat(int(from.Fd()), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != s.Size {
		return false
	}
	d, name, err := a.root.OpenParent(act.Path)
	if err != nil {
		a.fail(act.Path, err)
		return true
	}
	defer d.Close()
	tmp := newTempName()
	f, err := d.CreateFile(tmp, 0o600)
	if err != nil {
		a.fail(act.Path, err)
		return true
	}
	ok := false
	defer func() {
		if !ok {
			d.Unlink(tmp)
		}
	}()
	bp := fsx.GetBuf()
	defer fsx.PutBuf(bp)
	buf := *bp
	if err := fsx.Clone(f, from); err != nil {
		f.Truncate(s.Size)
		exts, err := fsx.DataExtents(from, s.Size)
		if err != nil {
			f.Close()
			return false
		}
		for _, x := range exts {
			if err := fsx.CopyRange(f, from, x.Off, x.Len, buf); err != nil {
				f.Close()
				return false
			}
		}
	}
	// Verify: the content must hash to what the source declared.
	h, _, err := HashContent(f, s.Size, buf)
	f.Close()
	if err != nil || h != s.Hash {
		return false
	}
	if err := a.setMeta(d, tmp, s, nil, a.openOurs(tree.TypeRegular)); err != nil {
		a.fail(act.Path, err)
		return true
	}
	if err := a.placeTemp(d, tmp, name, act); err != nil {
		a.fail(act.Path, err)
		return true
	}
	ok = true
	a.stats.BytesCopied += s.Size
	a.stats.Files++
	a.record(act, h)
	a.progress(PhaseTransfer, act.Path, s.Size)
	return true
}

func (a *applier) record(act *Action, h uint64) {
	a.mu.Lock()
	a.out.update(act.Path, act.ord, func(o *outcome) {
		o.hash = h
		o.flags |= outHashed
	})
	a.mu.Unlock()
}

// fetch asks the source for the content of the files and writes each into a
// temp file that is renamed into place when complete and verified.
func (a *applier) fetch(ctx context.Context, acts []*Action) error {
	for len(acts) > 0 {
		n := min(len(acts), fetchChunk)
		if err := a.fetchSome(ctx, acts[:n]); err != nil {
			return err
		}
		acts = acts[n:]
	}
	return nil
}

// fetchChunk bounds the files one Fetch call asks for: the requests of a
// whole pull, with their index, were about 45 bytes per entry held through
// the transfer. Between two calls the stream drains once (a round trip).
const fetchChunk = 4096

// fetchSome fetches the content of some files (see fetch).
func (a *applier) fetchSome(ctx context.Context, acts []*Action) error {
	reqs := make([]*FetchRequest, len(acts))
	byReq := make(map[*FetchRequest]*Action, len(acts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ioWorkers(2))
	for i, act := range acts {
		r := &FetchRequest{Entry: act.Src}
		reqs[i] = r
		byReq[r] = act
		if d := act.Dst; d != nil && d.Type == tree.TypeRegular && !act.Replace {
			r.Basis = &Basis{Size: d.Size, Hash: d.Hash, Hashed: d.Hashed()}
			if d.Size >= blockDeltaMin {
				g.Go(func() error {
					a.blockHashes(gctx, act.Path, d, r.Basis)
					return nil
				})
			}
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if lc, ok := a.src.(LocalCopier); ok {
		// Files with a same-size basis may turn out unchanged: those go
		// through Fetch, which can say so without writing; the rest are
		// copied locally.
		var rest []*FetchRequest
		var copies []*Action
		for _, r := range reqs {
			if b := r.Basis; b != nil && b.Size == r.Entry.Size {
				rest = append(rest, r)
			} else {
				copies = append(copies, byReq[r])
			}
		}
		if err := a.copyAll(ctx, lc, copies); err != nil {
			return err
		}
		reqs = rest
	}
	// Completing a file (metadata, close, rename) runs on a pool, so the
	// source's stream goes on delivering the next files meanwhile.
	fin := newFinisher(ctx)
	dirs := &dirCache{root: a.root}
	err := a.src.Fetch(ctx, reqs, func(r *FetchRequest) (ContentSink, error) {
		return &fileSink{a: a, act: byReq[r], h: xxhash.New(), fin: fin, dirs: dirs, ctx: ctx}, nil
	})
	ferr := fin.wait()
	// A source that failed mid-file never finishes it: discard its temp.
	a.sinks.Range(func(k, _ any) bool {
		k.(*fileSink).cleanup()
		return true
	})
	derr := dirs.close()
	if ferr != nil {
		// The first failure of the pool is the cause; the fetch's own
		// error is then only its echo (later files refused with it).
		err = ferr
	}
	if err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	return nil
}

// copyAll has a local source copy the files itself (reflinks or
// copy_file_range), in parallel.
func (a *applier) copyAll(ctx context.Context, lc LocalCopier, acts []*Action) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(ioWorkers(2))
	for _, act := range acts {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			s := &fileSink{a: a, act: act}
			if err := s.open(); err != nil {
				s.Abort(err)
				return nil
			}
			res, err := lc.CopyFile(ctx, act.Src, s.f)
			if err != nil {
				var fe *FileError
				if errors.As(err, &fe) {
					s.Abort(err)
					return nil
				}
				s.cleanup()
				return err
			}
			return s.finishFile(res)
		})
	}
	return g.Wait()
}

// blockDeltaMin is the size from which a changed file is sent as a block
// delta against the destination's old content.
const blockDeltaMin = 1 << 20

// BlockSize picks the delta block size for a file: 8 KiB (a few database
// pages) up to files of 128 MiB, then growing to keep at most 16384
// blocks, at most 256 KiB.
func BlockSize(size int64) int {
	bs := 8 << 10
	for int64(bs)*16384 < size && bs < 256<<10 {
		bs *= 2
	}
	return bs
}

func (a *applier) blockHashes(ctx context.Context, p string, d *tree.Entry, b *Basis) {
	f, err := a.root.OpenFile(p)
	if err != nil {
		return
	}
	defer f.Close()
	bs := BlockSize(d.Size)
	buf := make([]byte, bs)
	var blocks []uint64
	for off := int64(0); off < d.Size; off += int64(bs) {
		if ctx.Err() != nil {
			return
		}
		n := int(min(int64(bs), d.Size-off))
		if fsx.ReadFullAt(f, buf[:n], off) != nil {
			return
		}
		blocks = append(blocks, xxhash.Sum64(buf[:n]))
	}
	b.BlockSize, b.Blocks = bs, blocks
}

// fileSink writes one fetched file. The temp file is created on the first
// byte, so an unchanged file costs nothing.
type fileSink struct {
	a     *applier
	act   *Action
	d     *fsx.Dir
	name  string
	tmp   string
	f     *fsx.File
	basis *os.File
	h     *xxhash.Digest
	pos   int64
	buf   []byte
	bufp  *[]byte
	data  int64 // bytes received or reused
	holes int64 // bytes of holes hashed
	ctx   context.Context

	// fin, when set, completes files after Finish returns (see fetch).
	fin *finisher
	// dirs, when set, holds the parent directories open (see dirCache);
	// dc is the entry of d.
	dirs *dirCache
	dc   *cachedDir
	// unnamed: f is an O_TMPFILE file (tmp is empty) until linked
	unnamed bool
}

// dirCache keeps the last few parent directories of one fetch call open:
// its files arrive in path order, most of them beside the one before, and
// an openat2 and a close of the parent a file were two of its system calls
// (issue 14). It lives for one fetchSome only (the directories were made
// by the applier's first phase); each directory is opened beneath the root
// as before.
//
// An open descriptor follows its directory if a local user renames it (or
// an ancestor) meanwhile, and files created through it then land where it
// went: a place that user can write to, since rename needs that. A
// per-file openat2 had the same race between its open and the create;
// holding the directory widens the window to its time in the cache. So
// each directory is checked when it leaves the cache (fsx.Dir.CheckPlace:
// the path resolved again must be the same inode), and a moved one fails
// the fetch with fsx.ErrMoved naming it, instead of a partial transfer
// that says nothing of the files written outside the image. A directory moved away and back
// before the check took its files back with it. What was written there
// is the image's own content with its own modes; nothing of the image
// is chmodded, deleted or replaced outside it except names in the moved
// directory itself.
type dirCache struct {
	root *fsx.Root
	mu   sync.Mutex
	ents []*cachedDir // the most recently used last
	err  error        // the first directory found moved (see release)
}

// cachedDir is one open directory; refs counts the sinks using it.
type cachedDir struct {
	d       *fsx.Dir
	path    string
	refs    int
	evicted bool
}

// dirCacheSize is how many directories a dirCache keeps open.
const dirCacheSize = 8

// parent returns the open parent directory of rel (hold it until put) and
// rel's last component.
func (c *dirCache) parent(rel string) (*cachedDir, string, error) {
	dir, name := ".", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, name = rel[:i], rel[i+1:]
	}
	c.mu.Lock()
	for i := len(c.ents) - 1; i >= 0; i-- {
		if e := c.ents[i]; e.path == dir {
			e.refs++
			c.ents = append(append(c.ents[:i], c.ents[i+1:]...), e)
			c.mu.Unlock()
			return e, name, nil
		}
	}
	c.mu.Unlock()
	d, err := c.root.OpenDir(dir)
	if err != nil {
		return nil, "", err
	}
	e := &cachedDir{d: d, path: dir, refs: 1}
	c.mu.Lock()
	c.ents = append(c.ents, e)
	if len(c.ents) > dirCacheSize {
		old := c.ents[0]
		c.ents = append(c.ents[:0], c.ents[1:]...)
		c.evictLocked(old)
	}
	c.mu.Unlock()
	return e, name, nil
}

func (c *dirCache) evictLocked(e *cachedDir) {
	e.evicted = true
	if e.refs == 0 {
		c.releaseLocked(e)
	}
}

// releaseLocked checks that a directory nobody holds any more is still in
// its place, keeping the first failure, and closes it.
func (c *dirCache) releaseLocked(e *cachedDir) {
	if err := e.d.CheckPlace(); err != nil && c.err == nil {
		c.err = err
	}
	e.d.Close()
}

// put lets go of a directory from parent.
func (c *dirCache) put(e *cachedDir) {
	c.mu.Lock()
	e.refs--
	if e.refs == 0 && e.evicted {
		c.releaseLocked(e)
	}
	c.mu.Unlock()
}

// close closes the directories (those still held close at their last
// put) and returns the first one found moved away from its path.
func (c *dirCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.ents {
		c.evictLocked(e)
	}
	c.ents = nil
	return c.err
}

// finisher completes fetched files (verify, metadata, close, rename) on a
// bounded pool, finishBatch files a task: a task a file woke a goroutine
// (and, on this 2-core machine, a sleeping thread) per file (issue 14).
type finisher struct {
	g     *errgroup.Group
	ctx   context.Context
	mu    sync.Mutex
	batch []func() error
}

// finishBatch is how many completed files one finishing task takes.
const finishBatch = 16

// finishTasks counts the finishing tasks started (a work count for tests).
var finishTasks atomic.Int64

func newFinisher(ctx context.Context) *finisher {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(ioWorkers(2))
	return &finisher{g: g, ctx: ctx}
}

// add queues a file's completion; a full batch goes to the pool.
func (f *finisher) add(fn func() error) {
	f.mu.Lock()
	f.batch = append(f.batch, fn)
	var run []func() error
	if len(f.batch) >= finishBatch {
		run, f.batch = f.batch, nil
	}
	f.mu.Unlock()
	if run != nil {
		f.start(run)
	}
}

func (f *finisher) start(run []func() error) {
	finishTasks.Add(1)
	f.g.Go(func() error {
		for _, fn := range run {
			if f.ctx.Err() != nil {
				// An earlier file failed fatally; the temps of the rest
				// are cleaned up with the fetch's unfinished sinks.
				return context.Cause(f.ctx)
			}
			if err := fn(); err != nil {
				return err
			}
		}
		return nil
	})
}

// wait completes what is queued and returns the first fatal error.
func (f *finisher) wait() error {
	f.mu.Lock()
	run := f.batch
	f.batch = nil
	f.mu.Unlock()
	if len(run) > 0 {
		f.start(run)
	}
	return f.g.Wait()
}

func (s *fileSink) open() error {
	if s.f != nil {
		return nil
	}
	var d *fsx.Dir
	var name string
	var err error
	if s.dirs != nil {
		s.dc, name, err = s.dirs.parent(s.act.Path)
		if err == nil {
			d = s.dc.d
		}
	} else {
		d, name, err = s.a.root.OpenParent(s.act.Path)
	}
	if err != nil {
		return err
	}
	s.d, s.name = d, name
	var f *fsx.File
	if s.act.Dst == nil && s.a.owner && !s.a.noUnnamed.Load() {
		// A new path: an unnamed file, linked at its name once complete.
		// No temp name is added to and removed from the directory, and a
		// killed run leaves nothing behind (issue 14).
		f, err = d.CreateUnnamed(0o600)
		if err != nil && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL)) {
			s.a.noUnnamed.Store(true)
		}
		if err == nil {
			s.unnamed = true
		}
	}
	if f == nil {
		s.tmp = newTempName()
		f, err = d.CreateFile(s.tmp, 0o600)
	}
	if err != nil {
		s.closeDir()
		return err
	}
	s.f = f
	s.a.sinks.Store(s, true)
	// The declared size, up front: a size the destination's filesystem
	// cannot hold (EFBIG) is refused before any byte of it is verified.
	// The file is sparse until content arrives. Below declareMin every
	// filesystem holds it, and finishFile sets the size anyway (one
	// ftruncate a file less in a full pull of small files).
	if s.act.Src == nil || s.act.Src.Size < declareMin {
		return nil
	}
	if err := f.Truncate(s.act.Src.Size); err != nil {
		return fmt.Errorf("%q: declared size %d: %w", s.act.Path, s.act.Src.Size, err)
	}
	return nil
}

// declareMin is the smallest size a new temp file is given before its
// content arrives (see fileSink.open).
const declareMin = 1 << 20

// Holes a received file may have: verifying a hole means hashing its
// zeros, so a sender could declare a petabyte and send nothing. The zeros
// hashed per file are bounded by maxHoleBase plus holeRatio times the
// bytes that arrived (real sparse files: VM images, lastlog, a few
// database files, hold far more data than that), and the hashing stops
// when the run is canceled.
const (
	maxHoleBase = 64 << 30
	holeRatio   = 1024
)

// ErrHoles is wrapped when a fetched file's holes pass the bound on
// verification work (see maxHoleBase).
var ErrHoles = errors.New("holes out of proportion to the content received")

// hole accounts for and hashes n bytes of zeros the source skipped.
func (s *fileSink) hole(n int64) error {
	if n <= 0 {
		return nil
	}
	s.holes += n
	if limit := maxHoleBase + holeRatio*s.data; s.holes > limit {
		return fmt.Errorf("%q: %w: %d bytes of holes against %d bytes of content (at most %d are verified)",
			s.act.Path, ErrHoles, s.holes, s.data, int64(limit))
	}
	for n > 0 {
		if s.ctx != nil {
			if err := s.ctx.Err(); err != nil {
				return err
			}
		}
		c := min(n, 64<<20)
		hashZeros(s.h, c)
		n -= c
	}
	return nil
}

// limit is the most bytes the file may hold: its scanned size. A source
// that changed meanwhile reports ErrChanged instead of sending more.
func (s *fileSink) check(off, n int64) error {
	if off < s.pos {
		return fmt.Errorf("%q: content at offset %d goes backwards (already at %d)", s.act.Path, off, s.pos)
	}
	if n < 0 || off+n > s.act.Src.Size {
		return fmt.Errorf("%q: content beyond the declared size %d", s.act.Path, s.act.Src.Size)
	}
	return nil
}

func (s *fileSink) Data(off int64, p []byte) (err error) {
	defer s.cleanupOnError(&err)
	if err := s.check(off, int64(len(p))); err != nil {
		return err
	}
	if err := s.open(); err != nil {
		return err
	}
	s.data += int64(len(p))
	if err := s.hole(off - s.pos); err != nil {
		return err
	}
	s.h.Write(p)
	s.pos = off + int64(len(p))
	if !fsx.IsZero(p) {
		if _, err := s.f.WriteAt(p, off); err != nil {
			return fmt.Errorf("write %q: %w", s.act.Path, err)
		}
	}
	s.a.count.received.Add(int64(len(p)))
	return nil
}

func (s *fileSink) Reuse(off, n int64) (err error) {
	defer s.cleanupOnError(&err)
	if err := s.check(off, n); err != nil {
		return err
	}
	d := s.act.Dst
	if d == nil || off+n > d.Size {
		return fmt.Errorf("%q: reuse of bytes the destination does not have", s.act.Path)
	}
	if err := s.open(); err != nil {
		return err
	}
	if s.basis == nil {
		b, err := s.d.OpenFile(s.name)
		if err != nil {
			return fmt.Errorf("open basis: %w", err)
		}
		s.basis = b
	}
	if s.buf == nil {
		s.bufp = fsx.GetBuf()
		s.buf = *s.bufp
	}
	s.data += n
	if err := s.hole(off - s.pos); err != nil {
		return err
	}
	for end := off + n; off < end; {
		m := int(min(int64(len(s.buf)), end-off))
		if err := fsx.ReadFullAt(s.basis, s.buf[:m], off); err != nil {
			return fmt.Errorf("read basis %q: %w", s.act.Path, err)
		}
		s.h.Write(s.buf[:m])
		if !fsx.IsZero(s.buf[:m]) {
			if _, err := s.f.WriteAt(s.buf[:m], off); err != nil {
				return fmt.Errorf("write %q: %w", s.act.Path, err)
			}
		}
		off += int64(m)
	}
	s.pos = off
	s.a.count.reused.Add(n)
	return nil
}

// cleanupOnError discards the temp file when a sink call fails: the
// source will not finish this file.
func (s *fileSink) cleanupOnError(err *error) {
	if *err != nil {
		s.cleanup()
	}
}

func (s *fileSink) cleanup() {
	s.a.sinks.Delete(s)
	if s.bufp != nil {
		fsx.PutBuf(s.bufp)
		s.bufp, s.buf = nil, nil
	}
	// Each descriptor is closed once and forgotten: cleanup may run twice
	// (a failed Data cleans up, then Abort does), and a second close of a
	// number another goroutine has reopened would close its file.
	if s.basis != nil {
		s.basis.Close()
		s.basis = nil
	}
	if s.f != nil {
		s.f.Close()
		s.f = nil
		if !s.unnamed {
			s.d.Unlink(s.tmp)
		}
	}
	s.closeDir()
}

// closeDir lets go of the parent directory.
func (s *fileSink) closeDir() {
	switch {
	case s.dc != nil:
		s.dirs.put(s.dc)
		s.dc = nil
	case s.d != nil:
		s.d.Close()
	}
	s.d = nil
}

func (s *fileSink) Abort(err error) {
	s.cleanup()
	s.a.fail(s.act.Path, err)
}

// Finish verifies the content (size and hash against what the source
// declared and what was received), sets metadata and renames into place.
func (s *fileSink) Finish(res FetchResult) error {
	a, act := s.a, s.act
	src := act.Src
	if res.Size != src.Size {
		s.cleanup()
		return fmt.Errorf("%q: source declared %d bytes but the scan said %d", act.Path, res.Size, src.Size)
	}
	if src.Hashed() && res.Hash != src.Hash {
		s.cleanup()
		return fmt.Errorf("%q: content hash %016x differs from the scanned %016x", act.Path, res.Hash, src.Hash)
	}
	final := src
	if res.Mtime != src.Mtime {
		final = src.Clone()
		final.Mtime = res.Mtime
	}
	if res.Unchanged {
		s.cleanup()
		d := act.Dst
		if d == nil || !d.Hashed() || d.Hash != res.Hash || d.Size != res.Size {
			return fmt.Errorf("%q: source claims unchanged content the destination does not have", act.Path)
		}
		a.count.unchanged.Add(1)
		a.record(act, res.Hash)
		if !tree.SameMeta(final, d) {
			a.meta(&Action{Op: OpMeta, Path: act.Path, Src: final, Dst: d, ord: act.ord})
		}
		a.progress(PhaseTransfer, act.Path, src.Size)
		return nil
	}
	complete := func() error {
		if err := s.open(); err != nil { // an empty or all-hole file
			s.cleanup()
			a.fail(act.Path, err)
			return nil
		}
		if err := s.hole(res.Size - s.pos); err != nil {
			s.cleanup()
			if errors.Is(err, ErrHoles) {
				a.fail(act.Path, err)
				return nil
			}
			return err
		}
		if got := s.h.Sum64(); got != res.Hash {
			s.cleanup()
			return fmt.Errorf("%q: received content hashes to %016x, the source declared %016x", act.Path, got, res.Hash)
		}
		return s.finishFile(res)
	}
	if s.fin == nil {
		return complete()
	}
	if s.fin.ctx.Err() != nil {
		// An earlier file failed fatally: stop here too, with its error.
		s.cleanup()
		return context.Cause(s.fin.ctx)
	}
	s.fin.add(complete)
	return nil
}

// finishFile completes a temp file holding verified content: size, fsync,
// metadata, rename into place.
func (s *fileSink) finishFile(res FetchResult) error {
	a, act := s.a, s.act
	src := act.Src
	if src.Hashed() && res.Hash != src.Hash {
		s.cleanup()
		return fmt.Errorf("%q: content hash %016x differs from the scanned %016x", act.Path, res.Hash, src.Hash)
	}
	final := src
	if res.Mtime != src.Mtime {
		final = src.Clone()
		final.Mtime = res.Mtime
	}
	// Size (a trailing hole), metadata and fsync go through the open
	// file: no path lookups, and no truncate when the size is already
	// right (on XFS it would un-share the last block of a reflink).
	var err error
	var st unix.Stat_t
	have := &st
	if serr := unix.Fstat(int(s.f.Fd()), &st); serr != nil {
		have = nil
		err = s.f.Truncate(res.Size)
	} else if st.Size != res.Size {
		err = s.f.Truncate(res.Size)
	}
	if err == nil {
		err = a.setFileMeta(s.f, final, have)
	}
	if err == nil && a.opts.Fsync {
		err = s.f.Sync()
	}
	linked := false
	if err == nil && s.unnamed {
		// Give it its name: linkat fails if the name exists meanwhile; then
		// a temp name and a rename over it, as for any file.
		switch lerr := s.d.LinkFile(s.f, s.name); {
		case lerr == nil:
			linked = true
			a.touch(act, true)
		case errors.Is(lerr, unix.EEXIST):
			s.tmp = newTempName()
			if err = s.d.LinkFile(s.f, s.tmp); err == nil {
				s.unnamed = false
			}
		default:
			err = lerr
		}
	}
	if err == nil {
		err = s.f.Close()
	}
	s.f = nil
	if err == nil && !linked {
		err = a.placeTemp(s.d, s.tmp, s.name, act)
	}
	if err != nil {
		if !s.unnamed {
			s.d.Unlink(s.tmp)
		}
		s.cleanup()
		if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
			return fmt.Errorf("write %q: %w", act.Path, err)
		}
		a.fail(act.Path, err)
		return nil
	}
	// The new file's identity for the manifest, through the parent
	// already open (rename changes the ctime, so after it).
	var placed unix.Stat_t
	okPlaced := s.d.Lstat(s.name, &placed) == nil
	s.cleanup()
	a.mu.Lock()
	a.out.update(act.Path, act.ord, func(o *outcome) {
		o.hash = res.Hash
		o.flags |= outHashed
		if okPlaced {
			o.dev, o.ino, o.nlink = placed.Dev, placed.Ino, uint32(placed.Nlink)
			o.ctime, o.mtime = fsx.StatCtime(&placed), fsx.StatMtime(&placed)
			o.flags |= outPlaced
		}
	})
	a.stats.Files++
	if act.Dst == nil {
		a.stats.Created++
	} else {
		a.stats.Updated++
	}
	a.mu.Unlock()
	a.progress(PhaseTransfer, act.Path, src.Size)
	return nil
}

func (a *applier) meta(act *Action) {
	d, name, err := a.root.OpenDirOrParent(act.Path)
	if err != nil {
		a.fail(act.Path, err)
		return
	}
	defer d.Close()
	var have []tree.Xattr
	if act.Dst != nil {
		have = act.Dst.Xattrs
	}
	if err := a.setMeta(d, name, act.Src, have, a.openWalked(act.Path, act.Src, act.Dst)); err != nil {
		a.fail(act.Path, err)
		return
	}
	a.mu.Lock()
	a.stats.MetaOnly++
	a.mu.Unlock()
	a.touch(act, false)
}

func (a *applier) makeNode(act *Action) {
	s := act.Src
	d, name, err := a.root.OpenParent(act.Path)
	if err != nil {
		a.fail(act.Path, err)
		return
	}
	defer d.Close()
	tmp := newTempName()
	switch s.Type {
	case tree.TypeSymlink:
		err = d.Symlink(s.Target, tmp)
	case tree.TypeCharDev:
		err = d.Mknod(tmp, unix.S_IFCHR|0o600, s.Rdev)
	case tree.TypeBlockDev:
		err = d.Mknod(tmp, unix.S_IFBLK|0o600, s.Rdev)
	case tree.TypeFIFO:
		err = d.Mknod(tmp, unix.S_IFIFO|0o600, 0)
	case tree.TypeSocket:
		err = d.Mknod(tmp, unix.S_IFSOCK|0o600, 0)
	}
	if err == nil {
		err = a.setMeta(d, tmp, s, nil, a.openOurs(s.Type))
	}
	if err == nil {
		err = a.placeTemp(d, tmp, name, act)
	}
	if err != nil {
		d.Unlink(tmp)
		a.fail(act.Path, err)
		return
	}
	a.mu.Lock() // (the content phase counts beside it)
	a.stats.Created++
	a.mu.Unlock()
}

func (a *applier) link(act *Action) {
	s := act.Src
	a.mu.Lock()
	leaderFailed := a.failed[s.LinkTo]
	a.mu.Unlock()
	if leaderFailed {
		a.fail(act.Path, fmt.Errorf("hard link %q: its target %q was not applied", act.Path, s.LinkTo))
		return
	}
	ld, lname, err := a.root.OpenParent(s.LinkTo)
	if err != nil {
		a.fail(act.Path, err)
		return
	}
	defer ld.Close()
	d, name, err := a.root.OpenParent(act.Path)
	if err != nil {
		a.fail(act.Path, err)
		return
	}
	defer d.Close()
	var st unix.Stat_t
	if err := ld.Lstat(lname, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		a.fail(act.Path, fmt.Errorf("hard link %q: target %q is not a regular file", act.Path, s.LinkTo))
		return
	}
	tmp := newTempName()
	if err := d.Link(ld, lname, tmp); err != nil {
		if errors.Is(err, unix.EMLINK) {
			a.linkFallback(act, ld, lname, d, name)
			return
		}
		a.fail(act.Path, err)
		return
	}
	if err := a.placeTemp(d, tmp, name, act); err != nil {
		d.Unlink(tmp)
		a.fail(act.Path, err)
		return
	}
	a.touchPath(s.LinkTo) // its link count changed
	a.stats.Linked++
}

// linkFallback copies the leader when the filesystem refuses another link.
func (a *applier) linkFallback(act *Action, ld *fsx.Dir, lname string, d *fsx.Dir, name string) {
	from, err := ld.OpenFile(lname)
	if err != nil {
		a.fail(act.Path, err)
		return
	}
	defer from.Close()
	tmp := newTempName()
	f, err := d.CreateFile(tmp, 0o600)
	if err != nil {
		a.fail(act.Path, err)
		return
	}
	var st unix.Stat_t
	unix.Fstat(int(from.Fd()), &st)
	bp := fsx.GetBuf()
	err = fsx.CopyRange(f, from, 0, st.Size, *bp)
	fsx.PutBuf(bp)
	f.Close()
	if err == nil {
		// The leader's metadata: the member's own entry when the source's
		// list is not held (one inode, one set of attributes).
		le := a.srcEntry(act.Src.LinkTo)
		if le == nil {
			le = act.Src
		}
		err = a.setMeta(d, tmp, le, nil, a.openOurs(tree.TypeRegular))
	}
	if err == nil {
		err = a.placeTemp(d, tmp, name, act)
	}
	if err != nil {
		d.Unlink(tmp)
		a.fail(act.Path, err)
		return
	}
	a.log.Warn("too many links: copied instead", "path", act.Path, "target", act.Src.LinkTo)
	a.stats.Created++
}

func (a *applier) remove(act *Action) {
	d, name, err := a.root.OpenParent(act.Path)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return // went with its parent
		}
		a.fail(act.Path, err)
		return
	}
	defer d.Close()
	var st unix.Stat_t
	if err := d.Lstat(name, &st); err != nil {
		return // already gone
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// Its subtree was walked and planned entry by entry (Sync deepens
		// a scope whose directory vanished), so a directory still full
		// holds what the plan did not count: excluded entries, protected
		// as with rsync, or entries that appeared since the walk.
		err = d.Rmdir(name)
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			a.log.Info("directory not deleted: it holds entries the plan did not list (excluded or new)", "path", act.Path)
			a.mu.Lock()
			a.failed[act.Path] = true
			a.mu.Unlock()
			return
		}
	} else {
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			a.ret.keep(d, name)
		}
		err = d.Unlink(name)
	}
	if err != nil {
		a.fail(act.Path, err)
		return
	}
	a.stats.Deleted++
	a.mu.Lock()
	a.dirChanged(act.Path, act.pord)
	a.mu.Unlock()
}

func (a *applier) dirMeta(act *Action) {
	p, s, dst := act.Path, act.Src, act.Dst
	var have []tree.Xattr
	if dst != nil {
		have = dst.Xattrs
	}
	d, name, err := a.root.OpenDirOrParent(p)
	if err != nil {
		a.fail(p, err)
		return
	}
	defer d.Close()
	if dst == nil && p != tree.Root {
		// A directory we created or one whose entries changed: read its
		// xattrs as they are now.
		if xs, err := d.ListXattrs(name); err == nil {
			have = toTreeXattrs(xs)
		}
	}
	walked := dst
	if walked == nil {
		a.mu.Lock()
		if o := a.out.get(p, act.ord); o.flags&outMade != 0 {
			walked = &tree.Entry{Path: p, Type: tree.TypeDir, Dev: o.dev, Ino: o.ino}
		}
		a.mu.Unlock()
	}
	if walked == nil && a.walkedDir != nil {
		walked = a.walkedDir(p) // a directory whose entries changed
	}
	if err := a.setMeta(d, name, s, have, a.openWalked(p, s, walked)); err != nil {
		a.fail(p, err)
		return
	}
	if act.Dst != nil && !act.cond {
		// A directory that was there and whose own metadata changed
		// (not one created here, nor one only touched by its entries).
		a.mu.Lock()
		a.stats.MetaOnly++
		a.mu.Unlock()
	}
	a.touch(act, false)
}

// Stats count what a sync did.
type Stats struct {
	Entries      int   // entries in the source
	Files        int   // regular files written
	Created      int   // objects created
	Updated      int   // regular files replaced with new content
	MetaOnly     int   // objects whose metadata alone changed
	Linked       int   // hard links made
	Deleted      int   // objects deleted
	TempsRemoved int   // stale temporary files removed
	BytesCopied  int64 // bytes copied from other destination files
	Problems     int   // paths not applied

	BytesReceived int64 // content bytes received from the source
	BytesReused   int64 // bytes reused from the old destination file
	Unchanged     int   // fetched files the source found unchanged
}

// counters are the statistics updated from concurrent fetch workers.
type counters struct {
	received, reused, unchanged, filesDone, bytesDone atomic.Int64
}
