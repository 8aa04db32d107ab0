package watch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/tree"
)

// DirtyPath is one path a change touched.
type DirtyPath struct {
	// Path is a tree path relative to the watched root (tree.Root for the
	// root itself).
	Path string
	// Tree says everything beneath Path may have changed too: a directory
	// was created, renamed in or out, or removed.
	Tree bool
}

// ChangeSet is the answer to Since: what changed after a token.
type ChangeSet struct {
	// Full says the journal cannot vouch for the changes since the token:
	// the caller must scan the whole tree. Scopes is then tree.FullScope.
	Full bool
	// Reason says why Full is set.
	Reason string
	// Scopes cover every change after the token: sorted by tree.Compare,
	// minimal (no scope lies inside a Tree scope), possibly empty.
	Scopes []tree.Scope
	// Token names the journal's position now. The caller scans the scopes
	// after receiving it, so a change made during the scan is reported
	// again by the next Since(Token).
	Token string
}

// JournalOptions configure OpenJournal. The zero value is the production
// setting.
type JournalOptions struct {
	// FlushInterval bounds how long a mark stays in memory before it is
	// written to the log; zero means 100 ms.
	FlushInterval time.Duration
	// MaxPending flushes at once when this many distinct paths wait in
	// memory; zero means 10,000.
	MaxPending int
	// MaxEntries bounds the dirty paths the journal keeps. Past it the
	// journal records a full-rescan mark instead (a change that big is
	// cheaper to find by a full scan anyway); zero means 262,144.
	MaxEntries int
	// NoWatcher says the caller reports every change itself through
	// MarkDirty (a package-manager hook, tests). By default Since answers
	// Full unless a Watch is feeding the journal right now, because
	// without one nobody records changes.
	NoWatcher bool
	// Logger receives warnings about repaired logs; nil is silent.
	Logger *slog.Logger

	// compactAt is the log size that triggers a compaction; zero: 4 MiB.
	compactAt int64
}

// Errors callers may branch on.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("journal closed")
	// ErrWatcherRunning says another Watch already feeds the journal.
	ErrWatcherRunning = errors.New("another watcher is feeding this journal")
	// ErrNoWatcher says no Watch feeds the journal, so Barrier cannot be
	// answered.
	ErrNoWatcher = errors.New("no watcher is feeding this journal")
)

// Files in the state directory.
const (
	logName        = "journal.log"
	lockName       = "journal.lock"
	watchLockName  = "watch.lock"
	barrierDirName = "barriers"
)

// Journal is a persistent set of dirty tree paths, stamped with
// generations so that several destinations can each ask what changed
// since the token they last saw. It lives in a state directory as an
// append-only log with checksummed records, compacted by atomic rewrite.
//
// A Journal is safe for concurrent use, and several processes may open the
// same state directory at once (a watcher and a push, say): every operation
// takes an exclusive flock and first replays what the others appended.
//
// A damaged log never loses changes silently: a torn or corrupt tail is cut
// off and replaced by a full-rescan mark, and an unreadable log is set aside
// and restarted under a new epoch, so every older token gets Full.
type Journal struct {
	dir  string
	opts JournalOptions
	log  *slog.Logger

	mu        sync.Mutex
	closed    bool
	lock      *os.File // flock serialises processes
	f         *os.File // the log, nil until loaded
	dev, ino  uint64   // identity of f, to notice a compaction by another process
	off       int64    // bytes of f replayed into st
	snapSize  int64    // size of the log right after the last compaction
	st        *state
	pending   map[string]bool // path → Tree, not yet in the log
	timer     *time.Timer
	flushErr  error    // why the last background flush failed; cleared by a good one
	watchLock *os.File // held while a Watch feeds this journal
}

// OpenJournal opens the journal in stateDir, creating the directory (0700)
// and the journal (0600 files) if needed. A new or restarted-after-damage
// journal answers Full to every token until a new one is handed out.
func OpenJournal(stateDir string, opts JournalOptions) (*Journal, error) {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 100 * time.Millisecond
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 10_000
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 1 << 18
	}
	if opts.compactAt <= 0 {
		opts.compactAt = 4 << 20
	}
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, barrierDirName)} {
		if err := privateDir(d); err != nil {
			return nil, fmt.Errorf("open journal: %w", err)
		}
	}
	lock, err := openPrivate(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	j := &Journal{dir: dir, opts: opts, log: opts.Logger, lock: lock, pending: map[string]bool{}}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.locked(func() error { return nil }); err != nil {
		lock.Close()
		if j.f != nil {
			j.f.Close()
		}
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	return j, nil
}

// privateDir makes sure d is a real directory only its owner can enter.
func privateDir(d string) error {
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(d)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", d)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return os.Chmod(d, 0o700)
	}
	return nil
}

// openPrivate opens (creating) a 0600 file without following a symlink.
func openPrivate(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// Dir returns the journal's state directory.
func (j *Journal) Dir() string { return j.dir }

// MarkDirty records changed paths. Marks are kept in memory, coalesced (a
// path beneath a pending Tree mark is not kept again) and written to the log
// within FlushInterval, or at once when MaxPending paths wait. An error
// from an earlier background write is returned until a write succeeds.
func (j *Journal) MarkDirty(paths ...DirtyPath) error {
	for _, p := range paths {
		if err := tree.ValidatePath(p.Path); err != nil {
			return fmt.Errorf("mark dirty: %w", err)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	for _, p := range paths {
		j.addPending(p)
	}
	if len(j.pending) >= j.opts.MaxPending {
		return j.locked(j.flushLocked)
	}
	if len(j.pending) > 0 && j.timer == nil {
		j.timer = time.AfterFunc(j.opts.FlushInterval, j.backgroundFlush)
	}
	return j.flushErr
}

// addPending adds one mark to the in-memory set, unless a pending Tree mark
// of an ancestor already covers it.
func (j *Journal) addPending(p DirtyPath) {
	for a := tree.Dir(p.Path); a != ""; a = tree.Dir(a) {
		if j.pending[a] {
			return
		}
	}
	j.pending[p.Path] = j.pending[p.Path] || p.Tree
}

func (j *Journal) backgroundFlush() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.timer = nil
	if j.closed {
		return
	}
	if err := j.locked(j.flushLocked); err != nil {
		j.log.Warn("journal flush failed", "dir", j.dir, "err", err)
	}
}

// Flush writes the pending marks to the log and syncs it to disk. Marks are
// durable only once Flush (or Token, Since, Close) returns; a watcher does
// not need that, because a restarted watcher marks a full rescan anyway.
func (j *Journal) Flush() error {
	return j.do(func() error {
		if err := j.flushLocked(); err != nil {
			return err
		}
		return j.f.Sync()
	})
}

// MarkFullRescan records that changes happened that the journal cannot
// name: every token handed out before answers Full with reason.
func (j *Journal) MarkFullRescan(reason string) error {
	return j.do(func() error {
		clear(j.pending)
		if !j.st.sealed && j.st.fullGen == j.st.cur {
			// The current generation already starts with a full mark and
			// no token names it yet: another one would change nothing.
			return nil
		}
		return j.append(true, encodeFull(j.st.next(), reason))
	})
}

// Token returns the journal's current position, after writing the pending
// marks.
func (j *Journal) Token() (string, error) {
	var tok string
	err := j.do(func() error {
		if err := j.flushLocked(); err != nil {
			return err
		}
		var err error
		tok, err = j.seal()
		return err
	})
	return tok, err
}

// Since returns what changed after token, and the position now. A token
// the journal cannot vouch for (empty, malformed, from another or an
// earlier incarnation of the journal, older than what it keeps, from before
// a full-rescan mark, or asked while no watcher feeds the journal) gives
// Full with a reason. An error means the journal could not be read or the
// new token not be written; the caller should treat it as Full.
func (j *Journal) Since(token string) (ChangeSet, error) {
	var cs ChangeSet
	err := j.do(func() error {
		if err := j.flushLocked(); err != nil {
			return err
		}
		cs = j.evaluate(token)
		if !cs.Full && !j.opts.NoWatcher && !j.watcherAlive() {
			cs = ChangeSet{Full: true, Reason: "no watcher is recording changes"}
		}
		if cs.Full {
			cs.Scopes = slices.Clone(tree.FullScope)
		}
		var err error
		cs.Token, err = j.seal()
		return err
	})
	if err != nil {
		return ChangeSet{}, err
	}
	return cs, nil
}

func (j *Journal) evaluate(token string) ChangeSet {
	full := func(format string, a ...any) ChangeSet {
		return ChangeSet{Full: true, Reason: fmt.Sprintf(format, a...)}
	}
	s := j.st
	if token == "" {
		return full("no token: nothing synced from this journal yet")
	}
	epoch, t, err := parseToken(token)
	switch {
	case err != nil:
		return full("%v", err)
	case epoch != s.epoch:
		return full("token is from another journal (this journal: %s)", s.fullReason)
	case t > s.cur || (t == s.cur && !s.sealed):
		return full("token is ahead of the journal: the journal lost history")
	case t < s.floor:
		return full("token is older than the history the journal keeps (acknowledge applied tokens with Ack)")
	case s.fullGen > t:
		return full("%s", s.fullReason)
	}
	return ChangeSet{Scopes: s.changes(t)}
}

// Ack records that destination destID applied everything up to token. The
// journal keeps the marks that the destination with the oldest
// acknowledgement still needs and may drop the rest; a destination that
// never acknowledged is not protected and may get Full.
func (j *Journal) Ack(destID, token string) error {
	if destID == "" || len(destID) > maxDestID {
		return fmt.Errorf("ack: bad destination id %q", clip(destID, 80))
	}
	epoch, t, err := parseToken(token)
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return j.do(func() error {
		s := j.st
		switch {
		case epoch != s.epoch:
			return fmt.Errorf("ack: token is from another journal")
		case t == 0 || t > s.cur || (t == s.cur && !s.sealed):
			return fmt.Errorf("ack: token is ahead of the journal")
		case t <= s.acks[destID]:
			return nil
		}
		if err := j.append(false, encodeAck(destID, t)); err != nil {
			return err
		}
		return j.maybeCompact()
	})
}

// Forget drops a destination's acknowledgement, so the journal no longer
// keeps history for it.
func (j *Journal) Forget(destID string) error {
	return j.do(func() error {
		if _, ok := j.st.acks[destID]; !ok {
			return nil
		}
		return j.append(false, encodeForget(destID))
	})
}

// Destinations returns each acknowledged destination's latest token.
func (j *Journal) Destinations() (map[string]string, error) {
	out := map[string]string{}
	err := j.do(func() error {
		for d, g := range j.st.acks {
			out[d] = formatToken(j.st.epoch, g)
		}
		return nil
	})
	return out, err
}

// Barrier waits until the watcher feeding the journal has recorded every
// change made before the call. It drops a file into the state directory's
// barriers folder, which the watcher sees in the same kernel event queue as
// the changes, and waits for the watcher to log it. A barrier file dropped
// while the queue is full is lost with the other events (the overflow
// itself is recorded as a full rescan), so every second another one is
// dropped: any of them, logged, proves the same. It fails with
// ErrNoWatcher when no watcher runs (or it stops while waited for).
func (j *Journal) Barrier(ctx context.Context) error {
	if !j.watcherAlive() {
		return ErrNoWatcher
	}
	var ids []string
	defer func() {
		for _, id := range ids {
			os.Remove(filepath.Join(j.dir, barrierDirName, id))
		}
	}()
	drop := func() error {
		id := randomHex(16)
		f, err := os.OpenFile(filepath.Join(j.dir, barrierDirName, id), os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("barrier: %w", err)
		}
		f.Close()
		ids = append(ids, id)
		return nil
	}
	if err := drop(); err != nil {
		return err
	}
	const again = time.Second
	last := time.Now()
	wait := time.Millisecond
	for {
		var seen bool
		if err := j.do(func() error {
			seen = slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(j.st.barriers, id) })
			return nil
		}); err != nil {
			return fmt.Errorf("barrier: %w", err)
		}
		if seen {
			return nil
		}
		if !j.watcherAlive() {
			return ErrNoWatcher
		}
		if time.Since(last) >= again {
			if err := drop(); err != nil {
				return err
			}
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// Close writes the pending marks and releases the journal. A Watch still
// feeding it fails with ErrClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	err := j.locked(func() error {
		if err := j.flushLocked(); err != nil {
			return err
		}
		return j.f.Sync()
	})
	j.closed = true
	if j.watchLock != nil {
		j.watchLock.Close()
		j.watchLock = nil
	}
	if j.f != nil {
		j.f.Close()
	}
	j.lock.Close()
	return err
}

// do runs fn with the journal locked and up to date.
func (j *Journal) do(fn func() error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	return j.locked(fn)
}

// locked takes the inter-process lock, replays what other processes
// appended, and runs fn. The caller holds j.mu.
func (j *Journal) locked(fn func() error) error {
	if err := flock(j.lock, unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock journal: %w", err)
	}
	defer flock(j.lock, unix.LOCK_UN)
	if err := j.catchUp(); err != nil {
		return err
	}
	return fn()
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

func (j *Journal) logPath() string { return filepath.Join(j.dir, logName) }

// catchUp brings st up to date with the log on disk.
func (j *Journal) catchUp() error {
	if j.f == nil {
		return j.load()
	}
	var st unix.Stat_t
	err := unix.Lstat(j.logPath(), &st)
	if err != nil || st.Ino != j.ino || st.Dev != j.dev || st.Size < j.off {
		// Replaced by another process's compaction or repair.
		j.f.Close()
		j.f = nil
		return j.load()
	}
	if st.Size == j.off {
		return nil
	}
	data := make([]byte, st.Size-j.off)
	if _, err := j.f.ReadAt(data, j.off); err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	return j.replay(data, j.off)
}

// replay applies records read at offset base, repairing a bad tail.
func (j *Journal) replay(data []byte, base int64) error {
	off := 0
	for off < len(data) {
		payload, n, err := nextRecord(data[off:])
		if err == nil {
			err = j.st.apply(payload)
		}
		if err != nil {
			return j.repair(base+int64(off), err)
		}
		off += n
		j.off = base + int64(off)
	}
	return nil
}

// repair cuts the log at off, where a bad record starts, and records a full
// rescan in its place: the lost records may have been marks.
func (j *Journal) repair(off int64, cause error) error {
	reason := fmt.Sprintf("journal damaged at byte %d (%v): changes may be missing", off, cause)
	j.log.Warn("repairing journal", "dir", j.dir, "reason", reason)
	if err := j.f.Truncate(off); err != nil {
		return fmt.Errorf("repair journal: %w", err)
	}
	j.off = off
	return j.append(true, encodeFull(j.st.next(), reason))
}

// load reads the whole log, creating it or starting it anew when it is
// missing or unreadable.
func (j *Journal) load() error {
	f, err := os.OpenFile(j.logPath(), os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return j.create("new journal: no history")
	}
	if err != nil {
		return fmt.Errorf("open journal log: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return fmt.Errorf("stat journal log: %w", err)
	}
	if st.Mode&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return fmt.Errorf("chmod journal log: %w", err)
		}
	}
	data := make([]byte, st.Size)
	if _, err := f.ReadAt(data, 0); err != nil {
		f.Close()
		return fmt.Errorf("read journal log: %w", err)
	}
	s, good, derr := decodeLog(data)
	if s == nil {
		f.Close()
		j.log.Warn("journal unreadable, starting a new one", "dir", j.dir, "err", derr)
		if err := os.Rename(j.logPath(), j.logPath()+".corrupt"); err != nil {
			return fmt.Errorf("set aside unreadable journal: %w", err)
		}
		return j.create(fmt.Sprintf("journal was unreadable (%v) and was started anew", derr))
	}
	j.f, j.dev, j.ino, j.st = f, st.Dev, st.Ino, s
	j.off, j.snapSize = int64(good), int64(good)
	if derr != nil {
		return j.repair(int64(good), derr)
	}
	return nil
}

// create starts a journal under a new epoch with a full-rescan mark.
func (j *Journal) create(reason string) error {
	var epoch [16]byte
	rand.Read(epoch[:])
	s := newState(epoch)
	s.loaded = true
	if err := s.apply(encodeFull(s.next(), reason)); err != nil {
		return err
	}
	return j.writeSnapshot(s)
}

// writeSnapshot atomically replaces the log with a snapshot of s.
func (j *Journal) writeSnapshot(s *state) error {
	data := s.encodeSnapshot()
	tmp := j.logPath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, j.logPath())
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	var st unix.Stat_t
	if err == nil {
		err = unix.Fstat(int(f.Fd()), &st)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write journal: %w", err)
	}
	if j.f != nil {
		j.f.Close()
	}
	s.inSnapshot = false
	j.f, j.dev, j.ino, j.st = f, st.Dev, st.Ino, s
	j.off, j.snapSize = int64(len(data)), int64(len(data))
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// append writes records at the end of the log and applies them to st.
func (j *Journal) append(sync bool, payloads ...[]byte) error {
	var buf []byte
	for _, p := range payloads {
		buf = frame(buf, p)
	}
	if _, err := j.f.WriteAt(buf, j.off); err != nil {
		j.f.Truncate(j.off)
		return fmt.Errorf("write journal: %w", err)
	}
	if sync {
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("sync journal: %w", err)
		}
	}
	j.off += int64(len(buf))
	for _, p := range payloads {
		if err := j.st.apply(p); err != nil {
			// A bug: what was written does not replay. Reload from disk,
			// which repairs the log.
			j.f.Close()
			j.f = nil
			return fmt.Errorf("journal record does not replay: %w", err)
		}
	}
	return nil
}

// flushLocked writes the pending marks. The caller holds the lock.
func (j *Journal) flushLocked() error {
	if len(j.pending) == 0 {
		j.flushErr = nil
		return nil
	}
	s := j.st
	gen := s.next()
	var marks []DirtyPath
	trees := map[string]bool{}
	for _, p := range slices.SortedFunc(maps.Keys(j.pending), tree.Compare) {
		if s.covered(p, gen) || coveredBy(trees, p) {
			continue
		}
		isTree := j.pending[p]
		marks = append(marks, DirtyPath{Path: p, Tree: isTree})
		if isTree {
			trees[p] = true
		}
	}
	var err error
	switch {
	case len(marks) == 0:
	case len(s.entries)+len(marks) > j.opts.MaxEntries:
		err = j.append(false, encodeFull(gen, fmt.Sprintf("more than %d dirty paths", j.opts.MaxEntries)))
	default:
		var recs [][]byte
		const chunk = 1 << 20
		for len(marks) > 0 {
			n, size := 0, 0
			for n < len(marks) && size < chunk {
				size += len(marks[n].Path) + 3
				n++
			}
			recs = append(recs, encodeMarks(gen, marks[:n]))
			marks = marks[n:]
		}
		err = j.append(false, recs...)
	}
	if err != nil {
		j.flushErr = err
		return err
	}
	clear(j.pending)
	j.flushErr = nil
	return j.maybeCompact()
}

// coveredBy reports whether an ancestor of p is in trees.
func coveredBy(trees map[string]bool, p string) bool {
	if len(trees) == 0 {
		return false
	}
	for a := tree.Dir(p); a != ""; a = tree.Dir(a) {
		if trees[a] {
			return true
		}
	}
	return false
}

// seal names the current generation with a token, durably: a generation
// handed out is never reused, even after a crash.
func (j *Journal) seal() (string, error) {
	if !j.st.sealed {
		if err := j.append(true, encodeSeal(j.st.cur)); err != nil {
			return "", err
		}
	}
	return formatToken(j.st.epoch, j.st.cur), nil
}

// maybeCompact rewrites the log once it has grown well past its last
// snapshot.
func (j *Journal) maybeCompact() error {
	if j.off < j.opts.compactAt || j.off < 2*j.snapSize {
		return nil
	}
	return j.compact()
}

func (j *Journal) compact() error {
	j.st.prune()
	return j.writeSnapshot(j.st)
}

// watcherAlive reports whether a Watch holds the watch lock, in this
// process or another.
func (j *Journal) watcherAlive() bool {
	f, err := os.OpenFile(filepath.Join(j.dir, watchLockName), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	return false
}

// startWatch registers the caller as the journal's watcher: it takes the
// watch lock and, in the same locked step, records the paths no watch can
// cover and a full-rescan mark for the time nobody watched.
func (j *Journal) startWatch(volatile []string, reason string) error {
	return j.do(func() error {
		f, err := openPrivate(filepath.Join(j.dir, watchLockName))
		if err != nil {
			return fmt.Errorf("watch lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return ErrWatcherRunning
			}
			return fmt.Errorf("watch lock: %w", err)
		}
		clear(j.pending)
		recs := [][]byte{encodeFull(j.st.next(), reason)}
		volatile = slices.SortedFunc(slices.Values(volatile), tree.Compare)
		volatile = slices.Compact(volatile)
		if !slices.Equal(volatile, j.st.volatile) {
			recs = append([][]byte{encodeVolatile(volatile)}, recs...)
		}
		if err := j.append(true, recs...); err != nil {
			f.Close()
			return err
		}
		j.watchLock = f
		return nil
	})
}

// stopWatch writes what the watcher marked and releases the watch lock.
func (j *Journal) stopWatch() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	err := j.locked(j.flushLocked)
	if j.watchLock != nil {
		j.watchLock.Close()
		j.watchLock = nil
	}
	return err
}

// recordBarrier writes the pending marks and then the barrier id.
func (j *Journal) recordBarrier(id string) error {
	return j.do(func() error {
		if err := j.flushLocked(); err != nil {
			return err
		}
		return j.append(false, encodeBarrier(id))
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// isBarrierName reports whether name could be a barrier file's name.
func isBarrierName(name string) bool {
	if len(name) != 32 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil && bytes.Equal([]byte(name), bytes.ToLower([]byte(name)))
}
