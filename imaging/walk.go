package imaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// zero means 4 a P (GOMAXPROCS), at most 32: the walk is mostly
	// waiting on the disk.
	Workers int
	// ReadAhead bounds how many listed entries WalkEach holds ahead of
	// the one it hands out (beyond the directories being read); zero
	// means 8192.
	ReadAhead int
	// Temps, when set, receives the paths of engine temporary files found
	// (see TempPrefix) instead of listing them, one call at a time.
	Temps func(path string)
	// Scopes, when set, limit the walk: each scope's path is listed (if it
	// exists) and, for Tree scopes, everything beneath it. Ancestors are not
	// listed unless a scope names them. Empty means the whole tree.
	Scopes []tree.Scope
	// Logger receives debug messages; nil is silent.
	Logger *slog.Logger

	// previousDir, when set, is used instead of Previous: the walk calls
	// it once per worker (and for the root and each scope's own path) and
	// asks the lookup it returns about the children of each directory that
	// worker reads, from that goroutine, a directory's children in Compare
	// order, so the lookup may keep its place (a manifest cursor) between
	// them; done, when not nil, is called after each directory (the
	// cursor lets go of what it holds until its next lookup). From one
	// directory to the next a worker's paths go back and forth: the lookup
	// must answer them too (a cursor: with a full lookup). A lookup a
	// directory was ~5 allocations (a cursor's state and closures): 63k a
	// no-change walk of 225k entries (issue #14).
	previousDir func() (lookup func(path string) *tree.Entry, done func())
	// lend, when set, says fn keeps no entry it is given past its return:
	// WalkEach then reuses the entries it handed out for the ones it
	// lists next, instead of a new one each (DirSourceOptions.LendEntries).
	lend bool
	// lent, when set, holds entries fn's caller gave back once it no
	// longer looked at them (a Sync's streamed plan, after each pair:
	// issue #14), which the workers list into. The walk itself never
	// looks at an entry it handed out again (a directory is read before
	// its entry goes out).
	lent *tree.EntryPool
	// gate, when set, holds all workers but one until it is closed: a
	// walk started while the remote shell logs in (StartEarly) leaves a
	// core to the login, which is the run's critical path.
	gate <-chan struct{}
}

// WalkResult is what Walk found.
type WalkResult struct {
	// Entries in tree.Compare order, hard links resolved (LinkTo set on
	// all but the first path of each inode).
	Entries []*tree.Entry
	// Listed counts the entries handed out (len(Entries) for Walk).
	Listed int
	// Problems counts entries with Entry.Problem set, and paths that could
	// not be listed at all.
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
// or cancellation is an error. It collects what WalkEach hands out; callers
// that can take the entries one at a time should use WalkEach, which holds
// only a window of the tree.
func Walk(ctx context.Context, root *fsx.Root, opts WalkOptions) (*WalkResult, error) {
	var entries []*tree.Entry
	res, err := WalkEach(ctx, root, opts, func(e *tree.Entry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// WalkEach already set LinkTo; this also lends a link group's hash to
	// a leader that had none.
	ResolveHardLinks(entries)
	res.Entries = entries
	return res, nil
}

// WalkEach walks like Walk but hands each entry to fn as soon as it is
// listed, in tree.Compare order, instead of collecting them: it reads a
// directory, sorts its names, and descends depth first in that order,
// with up to Workers directories read (and their files hashed) ahead of
// the entry handed out, and at most about ReadAhead entries held beyond
// the largest directory being read. Memory does not grow with the tree.
//
// fn is called from the goroutine that called WalkEach (so WalkEach can
// back an iter.Seq, also through iter.Pull), one entry at a time; it may
// keep the entry, which the walk no longer touches. A directory is handed
// out after it was read, with its Problem set if it could not be. Hard
// links are resolved as the entries go: LinkTo names the first path of
// the inode in Compare order and the link takes its hash; only inodes
// with more than one link are remembered, until all their links were seen.
// An error from fn stops the walk and is returned as is. The result's
// Entries is nil; Listed counts what fn was given.
//
// opts.Previous may be called from several goroutines at once (Temps one
// call at a time, from any of them); for each directory, Previous is asked
// about its children in Compare order.
func WalkEach(ctx context.Context, root *fsx.Root, opts WalkOptions, fn func(*tree.Entry) error) (*WalkResult, error) {
	w := &walker{root: root, opts: opts, log: opts.Logger, fn: fn, kidsFree: make(chan []walkKid, 16)}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = ioWorkers(4)
	}
	w.window = opts.ReadAhead
	if w.window <= 0 {
		w.window = defaultReadAhead
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
	previous, done := w.previous()
	w.fill(rootDir, ".", re, &st, previous)
	done()
	rootDir.Close()

	w.cond = sync.NewCond(&w.mu)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	ended := make(chan struct{}) // the walk has handed out everything
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i > 0 && opts.gate != nil {
				select {
				case <-opts.gate:
				case <-ctx.Done():
					return
				case <-ended:
					return
				}
			}
			walkWorkers.Add(1)
			w.work(ctx)
		}()
	}
	stopWake := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	err = w.run(ctx, re)
	if err != nil {
		cancel() // the workers stop at their next entry
	}
	w.mu.Lock()
	w.stopped = true
	w.cond.Broadcast()
	w.mu.Unlock()
	close(ended)
	wg.Wait()
	stopWake()
	if err == nil {
		err = ctx.Err()
	}
	if err == nil && w.fatal != nil {
		err = w.fatal
	}
	if err != nil {
		return nil, err
	}
	w.res.Reread = w.reread.Load()
	w.res.Problems += w.probEntries
	return &w.res, nil
}

// walkWorkers counts the walks' workers that got to work (a work count
// for tests: a gated walk's are held back).
var walkWorkers atomic.Int64

// defaultReadAhead is WalkOptions.ReadAhead's default: enough listed
// entries to keep the workers busy, a few MiB at most.
const defaultReadAhead = 8192

// run hands out the whole tree, or the scopes' parts of it, in order.
func (w *walker) run(ctx context.Context, re *tree.Entry) error {
	if len(w.opts.Scopes) == 0 || tree.IsFull(w.opts.Scopes) {
		n := w.schedule(re)
		if err := w.await(ctx, n); err != nil {
			return err
		}
		w.mu.Lock()
		fatal := w.fatal
		w.mu.Unlock()
		if fatal != nil {
			return fatal
		}
		if err := w.emit(re); err != nil {
			return err
		}
		return w.descend(ctx, n)
	}
	for _, sc := range normalScopes(w.opts.Scopes) {
		if sc.Path == tree.Root {
			if err := w.emit(re); err != nil {
				return err
			}
			continue
		}
		e := w.scopeEntry(sc.Path)
		if e == nil {
			continue
		}
		if !sc.Tree || e.Type != tree.TypeDir {
			if err := w.emit(e); err != nil {
				return err
			}
			continue
		}
		n := w.schedule(e)
		if err := w.await(ctx, n); err != nil {
			return err
		}
		if err := w.emit(e); err != nil {
			return err
		}
		if err := w.descend(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// normalScopes sorts scopes in Compare order and drops those another
// (Tree) scope already covers, so that walking them one after the other
// lists each path once, in order.
func normalScopes(scopes []tree.Scope) []tree.Scope {
	var out []tree.Scope
	for _, sc := range scopes {
		if sc.Path != tree.Root && tree.ValidatePath(sc.Path) != nil {
			continue
		}
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b tree.Scope) int {
		if c := tree.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		switch {
		case a.Tree == b.Tree:
			return 0
		case a.Tree:
			return -1
		}
		return 1
	})
	kept := out[:0]
	for _, sc := range out {
		if len(kept) > 0 {
			last := kept[len(kept)-1]
			if last.Path == sc.Path || (last.Tree && tree.IsWithin(sc.Path, last.Path)) {
				continue
			}
		}
		kept = append(kept, sc)
	}
	return kept
}

// scopeEntry lists one scope's own path: nil when it does not exist, lies
// inside an excluded directory or beneath a non-directory, or is excluded.
func (w *walker) scopeEntry(p string) *tree.Entry {
	for a := tree.Dir(p); a != tree.Root && a != ""; a = tree.Dir(a) {
		if w.opts.Exclude != nil && w.opts.Exclude.Excluded(a, true) {
			return nil
		}
	}
	d, name, err := w.root.OpenParent(p)
	if err != nil {
		return nil // the parent is gone or not a directory: nothing there
	}
	defer d.Close()
	var st unix.Stat_t
	if err := d.Lstat(name, &st); err != nil {
		return nil
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if w.opts.Exclude != nil && w.opts.Exclude.Excluded(p, isDir) {
		return nil
	}
	e := entryFromStat(p, &st)
	if !e.Type.Valid() {
		return nil
	}
	previous, done := w.previous()
	w.fill(d, name, e, &st, previous)
	done()
	if e.Type == tree.TypeRegular && !e.Hashed() && w.opts.Hash {
		w.hash(d, name, e)
	}
	return e
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
	root   *fsx.Root
	opts   WalkOptions
	log    *slog.Logger
	fn     func(*tree.Entry) error
	window int

	mu       sync.Mutex
	cond     *sync.Cond
	pending  dirHeap  // directories found, not yet being read
	want     *dirNode // the directory the emitter waits for
	buffered int      // entries read and not yet handed out
	stopped  bool
	fatal    error
	res      WalkResult
	reread   atomic.Int64

	// The emitter's own: the inodes with links still to come, and the
	// entries handed out with a Problem.
	links       map[linkKey]*linkLeader
	probEntries int

	// tempsMu makes the workers' calls of opts.Temps one at a time: its
	// callers append to a slice (a lost append left a killed run's temp
	// file in the image after the complete re-run).
	tempsMu sync.Mutex

	// spare holds entries fn is done with, for the workers to list into
	// (opts.lend).
	spare sync.Pool
	// kidsFree holds directories' lists of children the emitter is done
	// with, for the workers to list into.
	kidsFree chan []walkKid
}

// dirNode is one directory of the walk: read by a worker, then descended
// by the emitter.
type dirNode struct {
	e    *tree.Entry
	done chan struct{} // closed once kids is set (or the read failed)
	kids []walkKid     // the children, in Compare order
}

type walkKid struct {
	e    *tree.Entry
	node *dirNode // for a directory to descend
}

// dirHeap holds the directories to read, the first in Compare order on
// top: the one the emitter will need next.
type dirHeap []*dirNode

func (h dirHeap) less(i, j int) bool { return tree.Compare(h[i].e.Path, h[j].e.Path) < 0 }

func (h *dirHeap) push(n *dirNode) {
	*h = append(*h, n)
	for i := len(*h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		(*h)[i], (*h)[p] = (*h)[p], (*h)[i]
		i = p
	}
}

func (h *dirHeap) pop() *dirNode {
	old := *h
	top := old[0]
	last := len(old) - 1
	old[0] = old[last]
	old[last] = nil
	*h = old[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && h.less(l, m) {
			m = l
		}
		if r < last && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		(*h)[i], (*h)[m] = (*h)[m], (*h)[i]
		i = m
	}
	return top
}

type linkKey struct{ dev, ino uint64 }

type linkLeader struct {
	path string
	hash uint64
	has  bool   // hash is set
	left uint32 // links not seen yet
}

// schedule queues a directory to be read.
func (w *walker) schedule(e *tree.Entry) *dirNode {
	n := &dirNode{e: e, done: make(chan struct{})}
	w.mu.Lock()
	w.pending.push(n)
	w.cond.Broadcast()
	w.mu.Unlock()
	return n
}

// await waits until n was read, letting a worker read it even when the
// read-ahead window is full.
func (w *walker) await(ctx context.Context, n *dirNode) error {
	select {
	case <-n.done:
		return nil
	default:
	}
	w.mu.Lock()
	w.want = n
	w.cond.Broadcast()
	w.mu.Unlock()
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// descend hands out a read directory's subtree, depth first.
func (w *walker) descend(ctx context.Context, n *dirNode) error {
	kids := n.kids
	n.kids = nil
	given := 0
	defer func() { w.release(given) }()
	for i, k := range kids {
		kids[i] = walkKid{}
		if k.node != nil {
			if err := w.await(ctx, k.node); err != nil {
				return err
			}
		}
		if err := w.emit(k.e); err != nil {
			return err
		}
		if given++; given == 256 {
			w.release(given)
			given = 0
		}
		if k.node != nil {
			if err := w.descend(ctx, k.node); err != nil {
				return err
			}
		}
		if w.opts.lend {
			// Neither fn nor the walk looks at it again (a directory's
			// node was read before its entry went out).
			w.spare.Put(k.e)
		}
	}
	if cap(kids) <= maxFreeKids {
		// Each cleared above: the workers may list into it again.
		select {
		case w.kidsFree <- kids[:0]:
		default:
		}
	}
	return nil
}

// maxFreeKids bounds the capacity of a directory's list of children kept
// for the workers to list into again (walker.kidsFree: at most 16 lists,
// 64 KiB): a new list a directory was ~4 MB of a no-change walk of 225k
// entries (issue #14).
const maxFreeKids = 256

// release returns n handed-out entries to the read-ahead window.
func (w *walker) release(n int) {
	if n == 0 {
		return
	}
	w.mu.Lock()
	w.buffered -= n
	if w.buffered < w.window {
		w.cond.Broadcast()
	}
	w.mu.Unlock()
}

// emit resolves hard links and hands e to fn.
func (w *walker) emit(e *tree.Entry) error {
	if e.Problem != "" {
		w.probEntries++
	}
	if e.Type == tree.TypeRegular && e.Nlink >= 2 {
		k := linkKey{e.Dev, e.Ino}
		if l := w.links[k]; l != nil {
			e.LinkTo = l.path
			if l.has {
				e.SetHash(l.hash)
			}
			if l.left--; l.left == 0 {
				delete(w.links, k)
			}
		} else {
			if w.links == nil {
				w.links = make(map[linkKey]*linkLeader)
			}
			w.links[k] = &linkLeader{path: e.Path, hash: e.Hash, has: e.Hashed(), left: e.Nlink - 1}
		}
	}
	w.res.Listed++
	return w.fn(e)
}

// work reads directories, the first in Compare order first, while the
// read-ahead window has room or the emitter waits for that directory.
func (w *walker) work(ctx context.Context) {
	// The worker's lookup of the previous walk's entries, and its storage
	// for a directory's names.
	previous, done := w.previous()
	var names fsx.NameBuf
	for {
		w.mu.Lock()
		for !w.stopped && ctx.Err() == nil && !(len(w.pending) > 0 && (w.buffered < w.window || w.pending[0] == w.want)) {
			w.cond.Wait()
		}
		if w.stopped || ctx.Err() != nil {
			w.mu.Unlock()
			return
		}
		n := w.pending.pop()
		w.mu.Unlock()

		kids := w.readDir(ctx, n.e, previous, &names)
		done()

		w.mu.Lock()
		n.kids = kids
		w.buffered += len(kids)
		for _, k := range kids {
			if k.node != nil {
				w.pending.push(k.node)
			}
		}
		w.cond.Broadcast()
		w.mu.Unlock()
		close(n.done)
	}
}

// readDir lists one directory, its names sorted, and returns its children
// with a node for each subdirectory to descend; previous is the worker's
// lookup of the previous walk's entries (nil: none), nb its storage for
// the names (which nothing keeps: the entries' paths are copies). A
// directory that cannot be read gets a Problem, so a mirror keeps what the
// destination has beneath it.
func (w *walker) readDir(ctx context.Context, de *tree.Entry, previous func(string) *tree.Entry, nb *fsx.NameBuf) []walkKid {
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
	names, err := d.NamesInto(nb)
	if err != nil {
		if rel == tree.Root {
			w.setFatal(err)
		} else {
			de.Problem = err.Error()
		}
		return nil
	}
	// Byte order of the names is Compare order of the siblings' paths.
	slices.Sort(names)
	var out []walkKid
	select {
	case out = <-w.kidsFree:
	default:
	}
	if cap(out) < len(names) {
		out = make([]walkKid, 0, len(names))
	}
	for _, name := range names {
		if ctx.Err() != nil {
			return nil
		}
		p := tree.Join(rel, name)
		if rel == tree.Root {
			// Join gives the name itself, and the name is nb's.
			p = strings.Clone(name)
		}
		if strings.HasPrefix(name, TempPrefix) && w.opts.Temps != nil {
			w.tempsMu.Lock()
			w.opts.Temps(p)
			w.tempsMu.Unlock()
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
		var e *tree.Entry
		if w.opts.lend {
			e, _ = w.spare.Get().(*tree.Entry)
		} else if w.opts.lent != nil {
			e = w.opts.lent.Get()
		}
		if e == nil {
			e = new(tree.Entry)
		}
		setFromStat(e, p, &st)
		if !e.Type.Valid() {
			w.problem(p, fmt.Errorf("unknown file type %#o", st.Mode&unix.S_IFMT))
			continue
		}
		w.fill(d, name, e, &st, previous)
		if e.Type == tree.TypeRegular && !e.Hashed() && w.opts.Hash && e.Problem == "" {
			w.hash(d, name, e)
		}
		k := walkKid{e: e}
		if isDir {
			k.node = &dirNode{e: e, done: make(chan struct{})}
		}
		out = append(out, k)
	}
	return out
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

// previous returns a lookup of the previous walk's entries for one
// goroutine (nil: none) and what to call after each directory: see
// WalkOptions.previousDir.
func (w *walker) previous() (lookup func(string) *tree.Entry, done func()) {
	if w.opts.previousDir != nil {
		lookup, done = w.opts.previousDir()
	} else {
		lookup = w.opts.Previous
	}
	if done == nil {
		done = func() {}
	}
	return lookup, done
}

// fill completes an entry from stat: reuse from the previous walk (looked
// up by previous) when the quick check passes, else read xattrs and the
// link target.
func (w *walker) fill(d *fsx.Dir, name string, e *tree.Entry, st *unix.Stat_t, previous func(string) *tree.Entry) {
	if previous != nil {
		if prev := previous(e.Path); Unchanged(prev, e) {
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

// hash reads and hashes one file. Its buffer is pooled, not a worker's
// own: most walks hash nothing (the cache vouches, or hashing is left to
// fetches), and eight idle 256 KiB buffers were a third of the golden
// node's live heap (issue #14).
func (w *walker) hash(d *fsx.Dir, name string, e *tree.Entry) {
	bp := fsx.GetBuf()
	defer fsx.PutBuf(bp)
	buf := *bp
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
func hashOpenFile(f fsx.Handle, e *tree.Entry, buf []byte) (uint64, int64, error) {
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
func HashContent(f fsx.Handle, size int64, buf []byte) (uint64, int64, error) {
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
	e := new(tree.Entry)
	setFromStat(e, p, st)
	return e
}

// setFromStat sets *e to the entry of lstat data alone.
func setFromStat(e *tree.Entry, p string, st *unix.Stat_t) {
	*e = tree.Entry{
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
}
