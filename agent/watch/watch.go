package watch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
)

// Backend names for WatchOptions.Backend.
const (
	BackendAuto     = "auto"
	BackendFanotify = "fanotify"
	BackendInotify  = "inotify"
)

// WatchOptions configure Watch. The zero value watches everything with the
// best backend available.
type WatchOptions struct {
	// Exclude leaves paths out, as the walker does; nil excludes nothing.
	Exclude imaging.Excluder
	// Logger receives the backend chosen and warnings; nil is silent.
	Logger *slog.Logger
	// Ready, when set, is called once every watch is in place and the
	// journal has recorded the start.
	Ready func()
	// Backend is BackendAuto (or empty), BackendFanotify or
	// BackendInotify. Auto uses fanotify when the kernel and privileges
	// allow it, else inotify.
	Backend string

	// hooks let tests reach into the event loop.
	hooks *testHooks
}

// testHooks are test-only entry points into a running Watch.
type testHooks struct {
	// beforeRead runs before each read of the kernel queue.
	beforeRead func()
	// backend receives the name of the backend in use.
	backend func(string)
	// fanotify receives the fanotify backend before it runs.
	fanotify func(*fanotify)
}

// StartReason is the full-rescan reason a starting watcher records.
const StartReason = "watcher started: changes while it was not running are unknown"

// A batch of events is handed to the journal once the queue has been quiet
// for idleDelay, once it is maxDelay old, or once it holds maxBatch paths.
// A temporary file created and renamed away within one batch leaves no
// trace, so a burst (an rpm transaction) is cut as rarely as possible.
const (
	idleDelay = 20 * time.Millisecond
	maxDelay  = time.Second
	maxBatch  = 8192
)

// Watch watches the tree at root and records every change in j until ctx is
// done; it then returns nil, or the error that stopped it. While it runs,
// j.Since answers from the changes it recorded; once it stops, Since
// answers Full.
//
// Starting marks a full rescan ("changes while it was not running are
// unknown"), so the first Since after a (re)start is Full: the journal
// cannot prove that nothing changed while no watcher ran.
//
// What no kernel event reports is not seen: writes through a shared mmap,
// changes made beneath a mount that appears under root after the start, and
// changes to the other names of a hard-linked file written through one name.
// A periodic full verification still has to run.
func Watch(ctx context.Context, root string, j *Journal, opts WatchOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(root)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return fmt.Errorf("watch %s: %w", root, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return fmt.Errorf("watch: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("watch %s: not a directory", abs)
	}
	w := &watcher{
		root:       abs,
		j:          j,
		opts:       opts,
		log:        log,
		barrierDir: filepath.Join(j.Dir(), barrierDirName),
	}
	w.sink = newSink(w)
	if rel, ok := relPath(abs, j.Dir()); ok {
		w.stateRel = rel
	}
	mounts, err := readMounts(abs)
	if err != nil {
		log.Warn("cannot read the mount table: mounts under the root are not handled", "err", err)
	}
	w.mounts = mounts

	var b backend
	switch opts.Backend {
	case "", BackendAuto:
		b, err = newFanotify(w)
		if err != nil {
			log.Info("fanotify unavailable, using inotify", "err", err)
			b, err = newInotify(w)
		}
	case BackendFanotify:
		b, err = newFanotify(w)
	case BackendInotify:
		b, err = newInotify(w)
	default:
		err = fmt.Errorf("unknown backend %q", opts.Backend)
	}
	if err != nil {
		return fmt.Errorf("watch %s: %w", abs, err)
	}
	defer b.close()
	log.Info("watching", "root", abs, "backend", b.name(), "unwatchable", w.volatile)
	if opts.hooks != nil && opts.hooks.backend != nil {
		opts.hooks.backend(b.name())
	}
	if fb, ok := b.(*fanotify); ok && opts.hooks != nil && opts.hooks.fanotify != nil {
		opts.hooks.fanotify(fb)
	}

	if err := j.startWatch(w.volatile, StartReason); err != nil {
		return fmt.Errorf("watch %s: %w", abs, err)
	}
	if opts.Ready != nil {
		opts.Ready()
	}
	err = b.run(ctx)
	if cerr := w.sink.commit(); err == nil {
		err = cerr
	}
	if serr := j.stopWatch(); err == nil && !errors.Is(serr, ErrClosed) {
		err = serr
	}
	if err != nil && ctx.Err() == nil {
		if ferr := j.MarkFullRescan(fmt.Sprintf("watcher failed: %v", err)); ferr != nil {
			log.Warn("cannot record the watcher failure", "err", ferr)
		}
		return fmt.Errorf("watch %s: %w", abs, err)
	}
	return nil
}

// backend is one kernel notification mechanism.
type backend interface {
	name() string
	// run reads events into the watcher's sink until ctx is done or
	// something it cannot vouch for happens.
	run(ctx context.Context) error
	close()
}

// watcher is what both backends share.
type watcher struct {
	root       string // absolute, symlinks resolved
	j          *Journal
	opts       WatchOptions
	log        *slog.Logger
	sink       *sink
	stateRel   string   // the journal's directory relative to root, if inside it
	barrierDir string   // absolute
	mounts     []mount  // mounts strictly beneath root
	volatile   []string // paths no watch covers: reported in every change set
}

// beforeRead runs the test hook, if any.
func (w *watcher) beforeRead() {
	if h := w.opts.hooks; h != nil && h.beforeRead != nil {
		h.beforeRead()
	}
}

// barrier handles a file appearing in the barriers folder: everything
// queued before it is recorded, then the barrier.
func (w *watcher) barrier(name string) error {
	if !isBarrierName(name) {
		return nil
	}
	if err := w.sink.commit(); err != nil {
		return err
	}
	return w.j.recordBarrier(name)
}

// excludedDir reports whether the directory at rel is left out: by the
// Excluder (itself or an ancestor) or because it holds the journal.
func (w *watcher) excludedDir(rel string) bool {
	return w.sink.excluded(rel, true)
}

// relPath returns p relative to root as a tree path, if p is root or lies
// beneath it.
func relPath(root, p string) (string, bool) {
	if p == root {
		return tree.Root, true
	}
	prefix := root + "/"
	if root == "/" {
		prefix = "/"
	}
	if rel, ok := strings.CutPrefix(p, prefix); ok && rel != "" {
		return rel, true
	}
	return "", false
}

// Kinds of change the sink tells apart, to cancel a path that was created
// and removed again within one batch.
const (
	kindOther = iota
	kindBorn  // created: it did not exist just before
	kindGone  // deleted or moved away: it does not exist just after
)

type pathState struct {
	first, last int
	tree        bool
	isDir       bool
}

// sink gathers the paths of a burst of events, coalesces them and hands them
// to the journal.
type sink struct {
	w        *watcher
	batch    map[string]*pathState
	started  time.Time // first event of the batch
	last     time.Time // latest event
	exclDirs map[string]bool
}

func newSink(w *watcher) *sink {
	return &sink{w: w, batch: map[string]*pathState{}, exclDirs: map[string]bool{}}
}

// add records a change of the object at p itself (content, metadata).
func (s *sink) add(p string, isDir bool) { s.record(p, kindOther, false, isDir) }

// entry records a change of p's directory entry: p was created, removed or
// renamed (kind), so p (its whole subtree when it is a directory) and its
// parent directory (whose mtime changed) are dirty.
func (s *sink) entry(p string, isDir bool, kind int) {
	s.record(p, kind, isDir, isDir)
	if p != tree.Root {
		s.record(tree.Dir(p), kindOther, false, true)
	}
}

func (s *sink) record(p string, kind int, isTree, isDir bool) {
	s.last = time.Now()
	if len(s.batch) == 0 {
		s.started = s.last
	}
	st := s.batch[p]
	if st == nil {
		st = &pathState{first: kind}
		s.batch[p] = st
	}
	st.last = kind
	st.tree = st.tree || isTree
	st.isDir = st.isDir || isDir
}

// due reports whether the batch should be committed now, and if not, when.
func (s *sink) due() (bool, time.Time) {
	if len(s.batch) == 0 {
		return false, time.Time{}
	}
	at := s.last.Add(idleDelay)
	if old := s.started.Add(maxDelay); old.Before(at) {
		at = old
	}
	return len(s.batch) >= maxBatch || !time.Now().Before(at), at
}

// commit hands the batch to the journal. A path created and gone again
// within the batch did not exist before it nor after it: nothing to sync.
func (s *sink) commit() error {
	if len(s.batch) == 0 {
		return nil
	}
	paths := make([]DirtyPath, 0, len(s.batch))
	for p, st := range s.batch {
		if st.first == kindBorn && st.last == kindGone {
			continue
		}
		if s.excluded(p, st.isDir) {
			continue
		}
		if len(p) > tree.MaxPathLen {
			// Too long to name: mark the deepest ancestor that fits.
			for len(p) > tree.MaxPathLen {
				p = tree.Dir(p)
			}
			paths = append(paths, DirtyPath{Path: p, Tree: true})
			continue
		}
		paths = append(paths, DirtyPath{Path: p, Tree: st.tree})
	}
	clear(s.batch)
	if len(paths) == 0 {
		return nil
	}
	return s.w.j.MarkDirty(paths...)
}

// excluded reports whether p is left out: it or an ancestor directory is
// excluded, or it lies in the journal's own directory.
func (s *sink) excluded(p string, isDir bool) bool {
	if p == tree.Root {
		return false
	}
	if s.w.stateRel != "" && tree.IsWithin(p, s.w.stateRel) {
		return true
	}
	ex := s.w.opts.Exclude
	if ex == nil {
		return false
	}
	if d := tree.Dir(p); d != tree.Root && s.excludedDirCached(d) {
		return true
	}
	return ex.Excluded(p, isDir)
}

func (s *sink) excludedDirCached(d string) bool {
	if v, ok := s.exclDirs[d]; ok {
		return v
	}
	v := false
	if p := tree.Dir(d); p != tree.Root {
		v = s.excludedDirCached(p)
	}
	v = v || s.w.opts.Exclude.Excluded(d, true)
	if len(s.exclDirs) > 1<<16 {
		clear(s.exclDirs)
	}
	s.exclDirs[d] = v
	return v
}

// mount is one line of the mount table.
type mount struct {
	dir    string // absolute mount point
	rel    string // relative to the watched root
	fstype string
}

// readMounts lists the mounts strictly beneath root, in mount order.
func readMounts(root string) ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m, ok := parseMountInfo(sc.Text())
		if !ok {
			continue
		}
		if rel, ok := relPath(root, m.dir); ok && rel != tree.Root {
			m.rel = rel
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// parseMountInfo reads one /proc/self/mountinfo line:
// "id parent major:minor root mountpoint options [optional...] - fstype source superoptions".
func parseMountInfo(line string) (mount, bool) {
	fields := strings.Fields(line)
	if len(fields) < 7 {
		return mount{}, false
	}
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || sep+1 >= len(fields) {
		return mount{}, false
	}
	return mount{dir: unescapeMount(fields[4]), fstype: fields[sep+1]}, true
}

// unescapeMount undoes the octal escapes (\040 for a space...) of the mount
// table.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// pseudoFS are filesystems whose content no inotify event describes.
var pseudoFS = map[string]bool{
	"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "debugfs": true,
	"tracefs": true, "securityfs": true, "pstore": true, "bpf": true, "configfs": true,
	"fusectl": true, "efivarfs": true, "binfmt_misc": true, "autofs": true,
	"rpc_pipefs": true, "nsfs": true,
}
