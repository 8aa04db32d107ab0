package imaging

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
)

// Early is a Sync begun before its source is connected: while the remote
// shell logs in (a few hundred milliseconds in which the image server
// would have nothing to do), it has taken the state dir's lock, opened the
// destination and its manifest and started the destination's walk into
// the run's spool (issue #14). Nothing in the destination or its state dir
// is created, removed or changed before Sync is called: a run that would
// need that (a first pull, a missing state dir or lock file), that is not
// a full scan (a journal token, scopes, a dry run), or whose lock is held
// is not started early. What the walk lists meanwhile (one worker, up to
// earlyLead entries) goes only to the spool, on disk; the streamed plan
// reads it back from there once the source's entries arrive, then takes
// the walk's entries as they come. Once the source is connected the walk
// waits for the plan to have read back what it spooled before it lists
// more, so that only what was listed during the login is read back.
//
// Either Sync or Close must be called, once.
type Early struct {
	r    *syncRun
	dest string
	opts Options
}

// StartEarly starts the destination's side of Sync(ctx, src, dest, opts)
// before src exists, or returns nil (Sync then does everything, as
// without it) when the run does not fit (see Early). ctx bounds the walk
// until Sync takes it over.
func StartEarly(ctx context.Context, dest string, opts Options) *Early {
	r, err := startRun(nil, dest, opts, true)
	if err != nil {
		// errNotEarly, or what Sync meets again after the source, as
		// without an early start (a lock held, an unsafe state dir).
		return nil
	}
	sp, err := newSpool(r.spoolDir(), false)
	if err != nil {
		r.close()
		return nil
	}
	r.dsts = &entrySpool{spool: sp}
	wctx, cancel := context.WithCancel(ctx)
	w := &earlyWalk{r: r, ctx: wctx, cancel: cancel, done: make(chan struct{}), gate: make(chan struct{}),
		liveCh: make(chan struct{}), started: time.Now()}
	r.early = w
	go func() {
		defer close(w.done)
		err := r.walkDest(wctx, tree.FullScope)
		w.finish(err)
	}()
	r.log.Debug("sync: destination walk started before the source")
	return &Early{r: r, dest: dest, opts: opts}
}

// Sync is imaging.Sync(ctx, src, dest, opts) with the dest and opts given
// to StartEarly, going on from what the early start did.
func (e *Early) Sync(ctx context.Context, src Source) (*Result, error) {
	r := e.r
	e.r = nil
	defer r.close()
	r.src = src
	if !r.opts.DryRun {
		removeStaleManifestTemps(r.sp.Dir)
	}
	r.start = time.Now()
	w := r.early
	w.openGate()
	w.mu.Lock()
	listed, walked := r.dstN, w.finished
	w.mu.Unlock()
	r.log.Debug("sync: source connected", "walk_ahead", time.Since(w.started).Round(time.Millisecond),
		"walk_listed", listed, "walk_done", walked)
	return r.run(ctx)
}

// Close gives up an early start whose source could not be connected: the
// walk stops, the spool and the lock are let go, nothing was changed. A
// nil Early and one given to Sync are left alone.
func (e *Early) Close() {
	if e == nil || e.r == nil {
		return
	}
	e.r.close()
	e.r = nil
}

// errNotEarly: the run is not one StartEarly starts.
var errNotEarly = errors.New("not an early run")

// earlyFits says a run may start before its source: a full scan into an
// image pulled before (dest a directory, the state dir and its lock file
// there), so that starting creates nothing.
func earlyFits(stateDir, dest string, opts Options) bool {
	if opts.DryRun || len(opts.Scopes) > 0 || opts.Since != "" || opts.checkDest != nil {
		return false
	}
	var st unix.Stat_t
	if unix.Stat(dest, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false
	}
	if unix.Lstat(stateDir, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false
	}
	return unix.Lstat(filepath.Join(stateDir, "lock"), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG
}

// earlyWalk is the destination walk of an early run. Until the streamed
// plan has read back all it spooled (live), the walk only spools; from
// then on it also sends each entry to the plan's batcher, as a walk
// started with the plan does. The switch is made under mu at the exact
// count spooled, so every entry reaches the plan once, in order. Once the
// source is connected, the walk lists nothing more until the switch
// (caughtUp): a walk that went on spooling alone would stay ahead of the
// plan, which is paced by the source, and the plan would read the whole
// image back from the spool (225,343 entries of 225,343 in a no-change
// pull of syn200000 over ssh, ~0.08 s of the image server's CPU) instead
// of what was listed during the login.
type earlyWalk struct {
	r       *syncRun
	ctx     context.Context // the walk's
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time
	// gate holds all the walk's workers but one until the source is
	// connected (WalkOptions.gate).
	gate     chan struct{}
	gateOnce sync.Once
	// liveCh is closed when live is set; caughtUp (the walk's goroutine
	// only) says the walk has waited for it once, the source connected.
	liveCh   chan struct{}
	caughtUp bool

	mu       sync.Mutex
	b        *batcher // the plan's (seq)
	live     bool     // the plan has read the spool back: send to b
	finished bool     // the walk has ended
	err      error    // the walk's
	once     sync.Once
}

// add spools a destination entry, and sends it to the plan once live.
func (w *earlyWalk) add(e *tree.Entry) error {
	if !w.caughtUp {
		select {
		case <-w.gate:
			if err := w.catchUp(); err != nil {
				return err
			}
		default:
		}
	}
	w.mu.Lock()
	w.r.dstN++
	err := w.r.addDst(w.r.dsts, e)
	live := w.live
	w.mu.Unlock()
	switch {
	case err != nil:
		return err
	case live:
		return w.b.add(e)
	}
	// Only spooled: nobody looks at it again (the walk never does at an
	// entry it handed out), it is listed into again.
	if poisonGiven != nil {
		poisonGiven(e)
	}
	w.r.dstLent.Put(e)
	if w.r.dstN == earlyLead {
		// As far ahead as it goes before the source is connected (the
		// walk's workers stop at their read-ahead window meanwhile).
		if earlyParked != nil {
			earlyParked()
		}
		select {
		case <-w.gate:
		case <-w.ctx.Done():
			return w.ctx.Err()
		}
	}
	return nil
}

// catchUp waits, once the source is connected, for the plan to have read
// back all the walk spooled and switched to the walk's entries (live),
// and at most streamWait, as a list waits for the streamed plan: a plan
// held back longer by its source lets the walk go on alone into the
// spool (read back in turn, as far as the walk got ahead).
func (w *earlyWalk) catchUp() error {
	w.caughtUp = true
	if earlyCatchingUp != nil {
		earlyCatchingUp()
	}
	t := time.NewTimer(streamWait)
	defer t.Stop()
	select {
	case <-w.liveCh:
	case <-t.C:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	return nil
}

// earlyCatchingUp, set by tests, is called when an early walk starts
// waiting for the plan to catch up.
var earlyCatchingUp func()

// earlyLead is how many entries an early walk lists before the source is
// connected, at most: what the streamed plan reads back from the spool
// (~0.5 µs an entry) stays a constant, whatever the tree and the login's
// length, and on this machine (2 cores) it is more than a quiet login
// lets the walk list (a variable for tests).
var earlyLead = 65536

// earlyParked, set by tests, is called when an early walk has listed
// earlyLead entries before the source was connected.
var earlyParked func()

// finish records the walk's end; once live, the plan's list ends with it.
func (w *earlyWalk) finish(err error) {
	w.mu.Lock()
	w.finished, w.err = true, err
	live := w.live
	w.mu.Unlock()
	if live {
		w.b.end()
	}
}

// goLive switches the walk to the plan's batcher, once; if the walk has
// ended already, the plan's list ends here.
func (w *earlyWalk) goLive() {
	w.once.Do(func() {
		w.mu.Lock()
		w.live = true
		fin := w.finished
		w.mu.Unlock()
		close(w.liveCh)
		if fin {
			w.b.end()
		}
	})
}

// wait returns the walk's error once it has ended; ctx's end stops it.
func (w *earlyWalk) wait(ctx context.Context) error {
	stop := context.AfterFunc(ctx, w.cancel)
	defer stop()
	<-w.done
	return w.err
}

// stop ends the walk (a run closed before or after it ended).
func (w *earlyWalk) stop() {
	w.cancel()
	w.openGate()
	<-w.done
}

// openGate lets all the walk's workers work (the source is connected).
func (w *earlyWalk) openGate() { w.gateOnce.Do(func() { close(w.gate) }) }

// earlyReadBack counts the destination entries streamed plans read back
// from an early walk's spool (a work count for tests).
var earlyReadBack atomic.Int64

// seq is the destination's list for the streamed plan: what the walk has
// spooled, read back from the spool (the walk meanwhile spooling more,
// read back in turn), then, once it has all been read, tail: what the walk
// sends to b from then on. A read error abandons the streamed plan (the
// plan resumes over the spools after the scan, and meets it there).
func (w *earlyWalk) seq(b *batcher, tail iter.Seq[*tree.Entry]) iter.Seq[*tree.Entry] {
	w.mu.Lock()
	w.b = b
	w.mu.Unlock()
	return func(yield func(*tree.Entry) bool) {
		defer w.goLive()
		var (
			key  tree.Entry
			pk   *tree.Entry
			buf  []byte
			off  int64
			read int
			n    int64
		)
		defer func() { earlyReadBack.Add(n) }()
		sp := w.r.dsts
		for {
			w.mu.Lock()
			err := sp.w.Flush()
			end, endOff := sp.n, sp.off
			if err == nil && read == end {
				// All read back: the walk sends the rest.
				w.mu.Unlock()
				break
			}
			w.mu.Unlock()
			if err == nil {
				buf, err = w.readBack(yield, sp.f, off, endOff, end-read, &key, &pk, buf, &n)
			}
			if err != nil {
				if !errors.Is(err, errStopped) {
					w.r.log.Debug("sync: early walk's spool", "err", err)
					b.abandon.Store(true)
				}
				return
			}
			off, read = endOff, end
		}
		w.goLive()
		for e := range tail {
			if !yield(e) {
				return
			}
		}
	}
}

var errStopped = errors.New("stopped")

// readBack yields the k records of the early walk's spool between off and
// end (flushed), each decoded against the one before (*pk).
func (w *earlyWalk) readBack(yield func(*tree.Entry) bool, f *os.File, off, end int64, k int, key *tree.Entry, pk **tree.Entry, buf []byte, n *int64) ([]byte, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(f, off, end-off), 64<<10)
	for range k {
		l, err := binary.ReadUvarint(br)
		if err != nil {
			return buf, fmt.Errorf("spool: %w", err)
		}
		if uint64(cap(buf)) < l {
			buf = make([]byte, l)
		}
		buf = buf[:l]
		if _, err := io.ReadFull(br, buf); err != nil {
			return buf, fmt.Errorf("spool: %w", err)
		}
		e := w.r.dstLent.Get()
		if e == nil {
			e = new(tree.Entry)
		} else {
			*e = tree.Entry{}
		}
		// *pk: nil or the key of the entry decoded just before.
		if _, err := wire.DecodeEntryLocalNext(buf, *pk, e, nil); err != nil {
			return buf, fmt.Errorf("spool: %w", err)
		}
		*key, *pk = spoolKey(e), key
		*n++
		if !yield(e) {
			return buf, errStopped
		}
	}
	return buf, nil
}
