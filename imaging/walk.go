package imaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// TempPrefix starts the name of every temporary file the engine creates in
// a destination. A destination walk lists such names as litter to remove,
// never as entries.
const TempPrefix = ".~gs-tmp."

// Excluder decides which paths a walk leaves out. A directory that is
// excluded is not descended into.
type Excluder interface {
	Excluded(path string, isDir bool) bool
}

// WalkOptions configure Walk. The zero value walks everything, hashes
// nothing and uses a default number of workers.
type WalkOptions struct {
	// Exclude leaves paths out; nil excludes nothing.
	Exclude Excluder
	// Previous looks up the entry a path had in an earlier walk (a
	// manifest or hash cache). When the quick check (Unchanged) passes, its
	// hash, xattrs and target are reused and the file is not read.
	Previous func(path string) *tree.Entry
	// Hash hashes every regular file that Previous does not cover.
	Hash bool
	// Workers bounds the directories read and files hashed at once;
	// zero means 4 × GOMAXPROCS (the walk is mostly waiting on the disk).
	Workers int
	// Temps, when set, receives the paths of engine temporary files found
	// (see TempPrefix) instead of listing them.
	Temps func(path string)
	// Scopes, when set, limit the walk: each scope's path is listed (if it
	// exists) and, for Tree scopes, everything beneath it. Ancestors are not
	// listed unless a scope names them. Empty means the whole tree.
	Scopes []tree.Scope
	// Logger receives debug messages; nil is silent.
	Logger *slog.Logger
}

// WalkResult is what Walk found.
type WalkResult struct {
	// Entries in tree.Compare order, hard links resolved (LinkTo set on
	// all but the first path of each inode).
	Entries []*tree.Entry
	// Problems counts entries with Entry.Problem set.
	Problems int
	// Vanished counts paths that disappeared while the walk ran.
	Vanished int
	// HashedFiles and HashedBytes count the files read to hash them.
	HashedFiles int64
	HashedBytes int64
	// Reread counts the entries the Previous cache did not cover (read
	// afresh); zero means the walk found everything as recorded.
	Reread int64
}

// Unchanged is the quick check that decides whether what a previous walk
// recorded for a path (its hash, xattrs, link target) still holds for the
// object now found there: same type, device, inode, size, mtime and ctime.
// Any write, chmod, chown, xattr change or replacement changes one of them.
func Unchanged(prev *tree.Entry, now *tree.Entry) bool {
	return prev != nil &&
		prev.Type == now.Type &&
		prev.Dev == now.Dev &&
		prev.Ino == now.Ino &&
		prev.Size == now.Size &&
		prev.Mtime == now.Mtime &&
		prev.Ctime == now.Ctime &&
		prev.Problem == ""
}

// Walk lists the tree beneath root in parallel, without following symlinks.
// Unreadable entries are listed with a Problem; a missing or unreadable root
// or cancellation is an error.
func Walk(ctx context.Context, root *fsx.Root, opts WalkOptions) (*WalkResult, error) {
	w := &walker{root: root, opts: opts, log: opts.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	rootDir, err := root.OpenDir(".")
	if err != nil {
		return nil, fmt.Errorf("open source root: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(rootDir.FD, &st); err != nil {
		rootDir.Close()
		return nil, fmt.Errorf("stat root %s: %w", root.Path(), err)
	}
	re := entryFromStat(tree.Root, &st)
	w.fill(rootDir, ".", re, &st)
	rootDir.Close()

	w.cond = sync.NewCond(&w.mu)
	if len(opts.Scopes) == 0 || tree.IsFull(opts.Scopes) {
		w.add(re)
		w.queue = []*tree.Entry{re}
	} else {
		w.queue = w.scoped(re, opts.Scopes)
	}
	w.pending = len(w.queue)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.work(ctx)
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	wg.Wait()
	stop()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if w.fatal != nil {
		return nil, w.fatal
	}
	w.res.Reread = w.reread.Load()
	slices.SortFunc(w.res.Entries, func(a, b *tree.Entry) int { return tree.Compare(a.Path, b.Path) })
	w.res.Entries = slices.CompactFunc(w.res.Entries, func(a, b *tree.Entry) bool { return a.Path == b.Path })
	ResolveHardLinks(w.res.Entries)
	for _, e := range w.res.Entries {
		if e.Problem != "" {
			w.res.Problems++
		}
	}
	return &w.res, nil
}

// scoped lists the scopes' own entries and returns the directories to
// descend (those of Tree scopes). Paths inside an excluded directory, or
// beneath a non-directory, are not listed.
func (w *walker) scoped(re *tree.Entry, scopes []tree.Scope) []*tree.Entry {
	var queue []*tree.Entry
	listed := make(map[string]bool)
	for _, sc := range scopes {
		if listed[sc.Path] || tree.ValidatePath(sc.Path) != nil {
			continue
		}
		if sc.Path == tree.Root {
			listed[sc.Path] = true
			w.add(re)
			continue
		}
		excluded := false
		for p := tree.Dir(sc.Path); p != tree.Root && p != ""; p = tree.Dir(p) {
			if w.opts.Exclude != nil && w.opts.Exclude.Excluded(p, true) {
				excluded = true
			}
		}
		if excluded {
			continue
		}
		d, name, err := w.root.OpenParent(sc.Path)
		if err != nil {
			continue // the parent is gone or not a directory: nothing there
		}
		var st unix.Stat_t
		if err := d.Lstat(name, &st); err != nil {
			d.Close()
			continue
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if w.opts.Exclude != nil && w.opts.Exclude.Excluded(sc.Path, isDir) {
			d.Close()
			continue
		}
		e := entryFromStat(sc.Path, &st)
		if !e.Type.Valid() {
			d.Close()
			continue
		}
		w.fill(d, name, e, &st)
		if e.Type == tree.TypeRegular && !e.Hashed() && w.opts.Hash {
			w.hash(d, name, e, make([]byte, 256<<10))
		}
		d.Close()
		listed[sc.Path] = true
		w.add(e)
		if sc.Tree && isDir {
			queue = append(queue, e)
		}
	}
	return queue
}

// ResolveHardLinks sets LinkTo on every regular file that shares its
// (dev, ino) with an earlier one in the sorted list, and gives members the
// leader's hash.
func ResolveHardLinks(entries []*tree.Entry) {
	eachHardLink(entries, func(e, l *tree.Entry) {
		e.LinkTo = l.Path
		if l.Hashed() {
			e.SetHash(l.Hash)
		} else if e.Hashed() {
			l.SetHash(e.Hash)
		}
	})
}

// eachHardLink clears LinkTo on every entry, then calls fn for every
// regular file that shares its (dev, ino) with an earlier one, the leader.
func eachHardLink(entries []*tree.Entry, fn func(e, leader *tree.Entry)) {
	type key struct{ dev, ino uint64 }
	leaders := make(map[key]*tree.Entry)
	for _, e := range entries {
		e.LinkTo = ""
		if e.Type != tree.TypeRegular || e.Nlink < 2 {
			continue
		}
		k := key{e.Dev, e.Ino}
		if l, ok := leaders[k]; ok {
			fn(e, l)
			continue
		}
		leaders[k] = e
	}
}

type walker struct {
	root *fsx.Root
	opts WalkOptions
	log  *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*tree.Entry
	pending int // directories queued or being read
	fatal   error
	res     WalkResult
	reread  atomic.Int64
}

func (w *walker) add(es ...*tree.Entry) {
	w.mu.Lock()
	w.res.Entries = append(w.res.Entries, es...)
	w.mu.Unlock()
}

func (w *walker) work(ctx context.Context) {
	buf := make([]byte, 256<<10)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && w.pending > 0 && ctx.Err() == nil && w.fatal == nil {
			w.cond.Wait()
		}
		if len(w.queue) == 0 || ctx.Err() != nil || w.fatal != nil {
			w.mu.Unlock()
			return
		}
		dir := w.queue[len(w.queue)-1]
		w.queue = w.queue[:len(w.queue)-1]
		w.mu.Unlock()

		subdirs := w.readDir(ctx, dir, buf)

		w.mu.Lock()
		w.queue = append(w.queue, subdirs...)
		w.pending += len(subdirs) - 1
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

// readDir lists one directory and returns its subdirectories to descend. A
// directory that cannot be read gets a Problem, so a mirror keeps what the
// destination has beneath it.
func (w *walker) readDir(ctx context.Context, de *tree.Entry, buf []byte) []*tree.Entry {
	rel := de.Path
	d, err := w.root.OpenDir(rel)
	if err != nil {
		if rel == tree.Root {
			w.setFatal(fmt.Errorf("open root: %w", err))
		} else {
			de.Problem = err.Error()
		}
		return nil
	}
	defer d.Close()
	names, err := d.Names()
	if err != nil {
		if rel == tree.Root {
			w.setFatal(err)
		} else {
			de.Problem = err.Error()
		}
		return nil
	}
	var subdirs []*tree.Entry
	out := make([]*tree.Entry, 0, len(names))
	for _, name := range names {
		if ctx.Err() != nil {
			return nil
		}
		p := tree.Join(rel, name)
		if strings.HasPrefix(name, TempPrefix) && w.opts.Temps != nil {
			w.opts.Temps(p)
			continue
		}
		if len(p) > tree.MaxPathLen {
			w.problem(p, fmt.Errorf("path longer than %d bytes", tree.MaxPathLen))
			continue
		}
		var st unix.Stat_t
		if err := d.Lstat(name, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				w.vanished()
				continue
			}
			w.problem(p, err)
			continue
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if w.opts.Exclude != nil && w.opts.Exclude.Excluded(p, isDir) {
			continue
		}
		e := entryFromStat(p, &st)
		if !e.Type.Valid() {
			w.problem(p, fmt.Errorf("unknown file type %#o", st.Mode&unix.S_IFMT))
			continue
		}
		w.fill(d, name, e, &st)
		if e.Type == tree.TypeRegular && !e.Hashed() && w.opts.Hash && e.Problem == "" {
			w.hash(d, name, e, buf)
		}
		out = append(out, e)
		if isDir {
			subdirs = append(subdirs, e)
		}
	}
	w.add(out...)
	return subdirs
}

func (w *walker) setFatal(err error) {
	w.mu.Lock()
	if w.fatal == nil {
		w.fatal = err
	}
	w.cond.Broadcast()
	w.mu.Unlock()
}

func (w *walker) vanished() {
	w.mu.Lock()
	w.res.Vanished++
	w.mu.Unlock()
}

// problem records a path that could not be listed at all. A directory we
// could not read still gets listed by its parent, with the Problem set so
// its subtree is not deleted by a mirror; this records the rest.
func (w *walker) problem(p string, err error) {
	w.log.Warn("walk problem", "path", p, "err", err)
	w.mu.Lock()
	w.res.Problems++
	w.mu.Unlock()
}

// fill completes an entry from stat: reuse from the previous walk when the
// quick check passes, else read xattrs and the link target.
func (w *walker) fill(d *fsx.Dir, name string, e *tree.Entry, st *unix.Stat_t) {
	if w.opts.Previous != nil {
		if prev := w.opts.Previous(e.Path); Unchanged(prev, e) {
			e.Xattrs = prev.Xattrs
			e.Target = prev.Target
			if prev.Hashed() {
				e.SetHash(prev.Hash)
			}
			return
		}
	}
	w.reread.Add(1)
	xs, err := d.ListXattrs(name)
	if err != nil {
		e.Problem = err.Error()
	}
	e.Xattrs = toTreeXattrs(xs)
	if e.Type == tree.TypeSymlink {
		t, err := d.Readlink(name)
		if err != nil {
			e.Problem = err.Error()
			t = "?"
		}
		e.Target = t
	}
}

func (w *walker) hash(d *fsx.Dir, name string, e *tree.Entry, buf []byte) {
	f, err := d.OpenFile(name)
	if err != nil {
		e.Problem = err.Error()
		return
	}
	defer f.Close()
	h, n, err := hashOpenFile(f, e, buf)
	if err != nil {
		e.Problem = err.Error()
		return
	}
	e.SetHash(h)
	w.mu.Lock()
	w.res.HashedFiles++
	w.res.HashedBytes += n
	w.mu.Unlock()
}

// hashOpenFile hashes an open regular file that must still be the object e
// describes, reading only its data extents. It fails with ErrChanged when the
// file is another object or changed while read.
func hashOpenFile(f *os.File, e *tree.Entry, buf []byte) (uint64, int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, 0, err
	}
	if !sameObject(e, &st) {
		return 0, 0, ErrChanged
	}
	h, n, err := HashContent(f, e.Size, buf)
	if err != nil {
		return 0, 0, err
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, 0, err
	}
	if !sameObject(e, &st) {
		return 0, 0, ErrChanged
	}
	return h, n, nil
}

// sameObject reports whether st is still the object e was made from.
func sameObject(e *tree.Entry, st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Dev == e.Dev && st.Ino == e.Ino &&
		st.Size == e.Size && fsx.StatMtime(st) == e.Mtime && fsx.StatCtime(st) == e.Ctime
}

// HashContent returns the xxhash64 of the first size bytes of f, holes read
// as zeros, and how many bytes it actually read.
func HashContent(f *os.File, size int64, buf []byte) (uint64, int64, error) {
	d := xxhash.New()
	exts, err := fsx.DataExtents(f, size)
	if err != nil {
		return 0, 0, err
	}
	var pos, read int64
	for _, x := range exts {
		hashZeros(d, x.Off-pos)
		off, end := x.Off, x.Off+x.Len
		for off < end {
			n := int(min(int64(len(buf)), end-off))
			if err := fsx.ReadFullAt(f, buf[:n], off); err != nil {
				return 0, 0, fmt.Errorf("read %s: %w", f.Name(), err)
			}
			d.Write(buf[:n])
			off += int64(n)
			read += int64(n)
		}
		pos = end
	}
	hashZeros(d, size-pos)
	return d.Sum64(), read, nil
}

func hashZeros(d *xxhash.Digest, n int64) {
	for n > 0 {
		c := int(min(n, fsx.ZeroChunk))
		d.Write(fsx.Zeros(c))
		n -= int64(c)
	}
}

func toTreeXattrs(xs []fsx.Xattr) []tree.Xattr {
	if len(xs) == 0 {
		return nil
	}
	out := make([]tree.Xattr, len(xs))
	for i, x := range xs {
		out[i] = tree.Xattr{Name: x.Name, Value: x.Value}
	}
	return out
}

func toFsxXattrs(xs []tree.Xattr) []fsx.Xattr {
	if len(xs) == 0 {
		return nil
	}
	out := make([]fsx.Xattr, len(xs))
	for i, x := range xs {
		out[i] = fsx.Xattr{Name: x.Name, Value: x.Value}
	}
	return out
}

// entryFromStat makes an entry from lstat data alone.
func entryFromStat(p string, st *unix.Stat_t) *tree.Entry {
	e := &tree.Entry{
		Path:  p,
		Mode:  st.Mode & tree.ModePerm,
		UID:   st.Uid,
		GID:   st.Gid,
		Mtime: fsx.StatMtime(st),
		Ctime: fsx.StatCtime(st),
		Dev:   st.Dev,
		Ino:   st.Ino,
		Nlink: uint32(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type = tree.TypeRegular
		e.Size = st.Size
	case unix.S_IFDIR:
		e.Type = tree.TypeDir
	case unix.S_IFLNK:
		e.Type = tree.TypeSymlink
	case unix.S_IFCHR:
		e.Type = tree.TypeCharDev
		e.Rdev = st.Rdev
	case unix.S_IFBLK:
		e.Type = tree.TypeBlockDev
		e.Rdev = st.Rdev
	case unix.S_IFIFO:
		e.Type = tree.TypeFIFO
	case unix.S_IFSOCK:
		e.Type = tree.TypeSocket
	}
	return e
}
