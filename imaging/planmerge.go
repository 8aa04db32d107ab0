package imaging

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goldsync/goldsync/imaging/tree"
)

// planMerge is a Sync's plan made one merged pair of the source's and the
// destination's lists at a time, in tree.Compare order. What the planner
// needs of the hard links it learns as the merge passes them: a question
// about a link is only ever about an earlier path (a member's leader, the
// other paths of a destination inode before this one), so no pass over
// either list is needed before the merge. That lets the merge run while
// both lists are still arriving (streamPlan), during the scan, and end
// after it over the spools from where it stopped.
type planMerge struct {
	r     *syncRun
	pl    *planner
	p     *Plan
	acts  *spoolActions
	itemz *spool // the actions to itemize, in path order (Options.Itemize)
	werr  error
	buf   []byte
	// The source directories open at the merge's path (ancestors first)
	// with their ords: each action carries its parent's (Action.pord).
	open    []openDir
	pord    int32
	ord     int32
	dirDone bool
	// nsrc and ndst count the entries of each list the merge has planned,
	// lastSrc and lastDst are the last of them (what the spools' next
	// records are encoded against).
	nsrc, ndst       int
	lastSrc, lastDst *tree.Entry

	// Of the destination's regular files with more than one link (the
	// only paths the planner asks about): kind and inode (dstAt), the
	// source's kind and leader at the same path (srcAt), and the paths
	// themselves (the planner's newInode set records only these).
	dstLinked map[string]inoKey
	srcLinked map[string]srcLink
	linked    map[string]string
	// unvouched counts the source's hard links whose targets the merge
	// could not vouch for as earlier regular files of the stream (the
	// source's own check of its links, tree.Checker.DeferLinks, is left
	// to the plan): if any, a linkCheck pass over the source's spool
	// settles them at the end.
	unvouched int
}

// openDir is a source directory open at the merge's path.
type openDir struct {
	path string
	ord  int32
}

// srcLink is what the planner asks of a source entry at the path of a
// multiply-linked destination inode: kind and leader.
type srcLink struct {
	typ    tree.Type
	linkTo string
}

// newPlanMerge starts a plan: its action spools and an empty planner.
func (r *syncRun) newPlanMerge(scope []tree.Scope, noDelete bool) (*planMerge, error) {
	m := &planMerge{r: r, dstLinked: map[string]inoKey{}, srcLinked: map[string]srcLink{},
		linked: map[string]string{}}
	var err error
	if m.acts, err = newSpoolActions(r.spoolDir()); err != nil {
		return nil, err
	}
	if r.opts.Itemize != nil {
		if m.itemz, err = newSpool(r.spoolDir(), false); err != nil {
			m.acts.close()
			return nil, err
		}
	}
	m.pl = newPlanner(m.linked, func(p string) *tree.Entry {
		l, ok := m.srcLinked[p]
		if !ok {
			return nil
		}
		return &tree.Entry{Path: p, Type: l.typ, LinkTo: l.linkTo}
	}, PlanOptions{Scope: scope, NoDelete: noDelete})
	m.pl.dstAt = func(p string) *tree.Entry {
		k, ok := m.dstLinked[p]
		if !ok {
			return nil
		}
		return &tree.Entry{Path: p, Type: tree.TypeRegular, Dev: k.dev, Ino: k.ino}
	}
	m.p = m.pl.p
	m.p.replaced = newReplacedFiles(r.spoolDir())
	return m, nil
}

// acts and itemz are the merge's output; kept on the run once it is the
// plan (close drops those of a merge that is not).
func (m *planMerge) close() {
	m.acts.close()
	m.itemz.close()
	m.p.replaced.close()
}

// hashesFromSpool lets the planner build the destination's files by hash
// from the destination's spool (complete only after the scan).
func (m *planMerge) hashesFromSpool() {
	var herr error
	m.pl.hashes = func() func(uint64) hashSrc {
		cs, err := buildCopySources(m.r.spoolDir(), m.r.dsts.entries(&herr))
		if err == nil {
			err = herr
		}
		if err != nil {
			m.werr = cmp.Or(m.werr, err)
			return nil
		}
		m.r.done = append(m.r.done, cs.close)
		return cs.lookup
	}
}

// needsAll reports whether planning s and d needs what only the whole
// destination list gives: its files by hash, asked when a regular file
// the source has a hash for is created.
func (m *planMerge) needsAll(s, d *tree.Entry) bool {
	if m.pl.byHash != nil || s == nil || s.Type != tree.TypeRegular || s.LinkTo != "" || !s.Hashed() {
		return false
	}
	return d == nil || d.Type != s.Type || m.pl.sharesWrongly(s, d)
}

// keep writes one action to the spools.
func (m *planMerge) keep(a *Action) {
	if m.werr != nil {
		return
	}
	if a.Op != OpDirMeta {
		a.pord = m.pord
	}
	if err := m.acts.add(a); err != nil {
		m.werr = err
		return
	}
	if d := a.Dst; d != nil && a.Op != OpMeta && a.Op != OpDirMeta && d.Type == tree.TypeRegular && d.Hashed() && d.Size > 0 {
		m.p.replaced.add(d) // for the generations' harvest
	}
	if m.itemz != nil && !a.cond && (a.Op != OpDirMeta || a.Dst != nil) {
		var err error
		if m.buf, err = appendAction(m.buf[:0], a); err == nil {
			err = m.itemz.add(m.buf)
		}
		m.werr = cmp.Or(m.werr, err)
	}
}

// step plans one merged pair (s or d may be nil).
func (m *planMerge) step(s, d *tree.Entry) {
	if s != nil {
		m.ord++
		m.nsrc++
		m.lastSrc = s
		if s.LinkTo != "" {
			// Vouched for: the leader was met (as the merge passed a
			// multiply-linked destination file) as a regular file.
			if l, ok := m.srcLinked[s.LinkTo]; !ok || l.typ != tree.TypeRegular {
				m.unvouched++
			}
		}
	}
	if d != nil {
		m.ndst++
		m.lastDst = d
		if d.Type == tree.TypeRegular && d.Nlink > 1 {
			// Learned before the step: the planner asks about this path
			// only for later ones (and the step's own newInode record).
			k := inoKey{d.Dev, d.Ino}
			m.pl.dstByIno[k] = append(m.pl.dstByIno[k], d.Path)
			m.dstLinked[d.Path] = k
			m.linked[d.Path] = d.Path
			if s != nil {
				m.srcLinked[d.Path] = srcLink{s.Type, s.LinkTo}
			}
		}
	}
	path := cmp.Or(s, d).Path
	for len(m.open) > 0 && !tree.IsWithin(path, m.open[len(m.open)-1].path) {
		m.open = m.open[:len(m.open)-1]
	}
	m.pord = 0
	if k := len(m.open); k > 0 && m.open[k-1].path == tree.Dir(path) {
		m.pord = m.open[k-1].ord
	}
	if s != nil && s.Type == tree.TypeDir {
		m.open = append(m.open, openDir{s.Path, m.ord})
	}
	m.dirDone = false
	m.pl.step(s, d, m.ord, m.emit, m.emitDir)
	if s != nil && s.Type == tree.TypeDir && !m.dirDone {
		m.keep(&Action{Op: OpDirMeta, Path: s.Path, Src: s, Dst: d, cond: true, ord: m.ord})
	}
}

func (m *planMerge) emit(a Action)    { m.keep(&a) }
func (m *planMerge) emitDir(a Action) { m.dirDone = true; m.keep(&a) }

// vouch settles the links the merge could not vouch for: each link's
// target must be an earlier regular file of the source's stream. One pass
// over the source's spool, only when some are left (a first pull: the
// image has no links yet).
func (m *planMerge) vouch() error {
	if m.unvouched == 0 {
		return nil
	}
	links := linkCheck{leaders: m.r.leaders}
	var rerr error
	for e := range m.r.srcs.entries(&rerr) {
		if err := links.add(e); err != nil {
			return err
		}
	}
	return rerr
}

// linkCheck is the check of the source's hard links that scanSource's
// checker leaves to the plan (tree.Checker.DeferLinks): each link's target
// must be an earlier regular file of the stream. It holds the targets it
// has met, never the stream's files.
type linkCheck struct {
	leaders map[string]uint64 // every LinkTo of the stream, with its members
	// open are the leaders met as regular files whose members are not
	// all met yet, with how many are to come: a group leaves it at its
	// last member, so it holds the groups open at the stream's place.
	open map[string]uint64
}

// add checks s, the next source entry in the stream's order.
func (c *linkCheck) add(s *tree.Entry) error {
	if len(c.leaders) == 0 {
		return nil
	}
	if s.LinkTo != "" {
		n := c.open[s.LinkTo]
		if n == 0 {
			return fmt.Errorf("%w: source sent a bad entry: entry %q: hard link to %q, which is not an earlier regular file", ErrBadSource, s.Path, s.LinkTo)
		}
		if n == 1 {
			delete(c.open, s.LinkTo)
		} else {
			c.open[s.LinkTo] = n - 1
		}
	}
	if n := c.leaders[s.Path]; n > 0 && s.Type == tree.TypeRegular {
		if c.open == nil {
			c.open = map[string]uint64{}
		}
		c.open[s.Path] = n
	}
	return nil
}

// streamPlan runs a planMerge while the scan runs: the source's entries
// (as the stream checker passed them) and the destination's walk arrive
// in batches, and the merge plans each pair as soon as both lists are past
// it. It stops (and the plan resumes over the spools after the scan) at
// the first pair that needs the whole destination list, or once either
// list has waited streamWait on the merge (abandon): the lists never wait
// on each other for long (the source's stream then stays read, so the
// protocol's stall clock never runs because the destination's walk is
// slow somewhere).
type streamPlan struct {
	m        *planMerge
	src, dst *batcher
	done     chan struct{}
	stopped  bool // stopped before the end of the lists
	// abandon is set by a list that waited too long: it sends nothing
	// more, and the merge stops before its next pair (a list it no longer
	// gets whole must not look ended to it).
	abandon atomic.Bool
	// The entries the merge is done with are given back: the source's to
	// the source (srcBack, nil: not a LendingSource), the destination
	// walk's to dstLent, which the walk lists into (issue #14).
	srcBack func(*tree.Entry)
	dstLent *tree.EntryPool // the run's (syncRun.dstLent)
	given   int64           // how many
}

// batcher sends one list's entries to the merge in batches.
type batcher struct {
	ch      chan []*tree.Entry
	batch   []*tree.Entry
	ctx     context.Context
	abandon *atomic.Bool
}

// streamBatch and streamBatches bound what waits between a list and the
// merge: a few thousand entries.
const (
	streamBatch   = 256
	streamBatches = 8
)

// streamWait is how long a list waits for room before the streamed plan
// is abandoned (a variable for tests).
var streamWait = 2 * time.Second

func newBatcher(ctx context.Context, abandon *atomic.Bool) *batcher {
	return &batcher{ch: make(chan []*tree.Entry, streamBatches), ctx: ctx, abandon: abandon}
}

// add queues e (a value nobody changes any more).
func (b *batcher) add(e *tree.Entry) error {
	if b.abandon.Load() {
		return nil
	}
	if b.batch = append(b.batch, e); len(b.batch) == streamBatch {
		return b.flush()
	}
	return nil
}

func (b *batcher) flush() error {
	if len(b.batch) == 0 || b.abandon.Load() {
		return nil
	}
	select {
	case b.ch <- b.batch:
		b.batch = make([]*tree.Entry, 0, streamBatch)
		return nil
	default:
	}
	t := time.NewTimer(streamWait)
	defer t.Stop()
	select {
	case b.ch <- b.batch:
		b.batch = make([]*tree.Entry, 0, streamBatch)
		return nil
	case <-t.C:
		b.abandon.Store(true) // before end closes the channel
		b.batch = nil
		return nil
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
}

// end sends what is queued and closes the list (after an error too: the
// merge's result is then not used).
func (b *batcher) end() {
	b.flush()
	close(b.ch)
}

func (b *batcher) seq() iter.Seq[*tree.Entry] {
	return func(yield func(*tree.Entry) bool) {
		for batch := range b.ch {
			for _, e := range batch {
				if !yield(e) {
					return
				}
			}
		}
	}
}

// startStreamPlan starts the merge of a full scan's two lists; ctx is the
// scan's (the lists' senders stop waiting when it ends).
func (r *syncRun) startStreamPlan(ctx context.Context, noDelete bool) (*streamPlan, error) {
	m, err := r.newPlanMerge(tree.FullScope, noDelete)
	if err != nil {
		return nil, err
	}
	sp := &streamPlan{m: m, done: make(chan struct{}), dstLent: &r.dstLent}
	if ls, ok := r.src.(LendingSource); ok {
		sp.srcBack = ls.GiveBack
	}
	sp.src, sp.dst = newBatcher(ctx, &sp.abandon), newBatcher(ctx, &sp.abandon)
	dsts := sp.dst.seq()
	if r.early != nil {
		// The walk started before the source was connected: what it
		// spooled meanwhile is read back first (early.seq).
		dsts = r.early.seq(sp.dst, dsts)
	}
	go func() {
		defer close(sp.done)
		defer func() { streamGivenBack.Add(sp.given) }()
		for s, d := range tree.MergeSeq(sp.src.seq(), dsts) {
			if sp.abandon.Load() || m.werr != nil || m.needsAll(s, d) {
				sp.stopped = true
				break
			}
			lastSrc, lastDst := m.lastSrc, m.lastDst
			m.step(s, d)
			sp.giveBack(s, d, lastSrc, lastDst)
		}
		if sp.abandon.Load() {
			sp.stopped = true
		}
		// What the merge does not take is dropped, both lists at once
		// (neither sender may wait on the other).
		var wg sync.WaitGroup
		wg.Go(func() {
			for range sp.src.ch {
			}
		})
		for range sp.dst.ch {
		}
		wg.Wait()
	}()
	return sp, nil
}

// giveBack gives back the entries a step of the merge replaced as the
// last of their lists (lastSrc, lastDst: what m.lastSrc and m.lastDst were
// before the step of s and d). Nothing looks at them any more: the step
// spooled what it planned, the spools and the checkers keep copies and
// strings, and the merge has moved past them; the last of each list is
// kept (a plan that resumes over the spools starts from it).
func (sp *streamPlan) giveBack(s, d, lastSrc, lastDst *tree.Entry) {
	if s != nil && lastSrc != nil && sp.srcBack != nil {
		sp.srcBack(lastSrc)
		sp.given++
	}
	if d != nil && lastDst != nil {
		if poisonGiven != nil {
			poisonGiven(lastDst)
		}
		sp.dstLent.Put(lastDst)
		sp.given++
	}
}

// poisonGiven, set by tests, spoils each destination entry given back
// before the walk may list into it again.
var poisonGiven func(*tree.Entry)

// streamGivenBack counts the entries streamed plans gave back (a work
// count for tests).
var streamGivenBack atomic.Int64

// wait returns once the merge has ended (both lists ended first).
func (sp *streamPlan) wait() { <-sp.done }
