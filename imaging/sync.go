package imaging

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// Options configure Sync. The zero value mirrors the source into the
// destination with deletes guarded, retention on, state in the default
// state dir, and no output.
type Options struct {
	// Excludes are rsync-style patterns; they apply to both sides (an
	// excluded destination path is neither listed nor deleted).
	Excludes []string
	// DryRun plans and itemizes but changes nothing.
	DryRun bool
	// NoDelete keeps destination entries the source lacks.
	NoDelete bool
	// MaxDelete refuses a run that would delete more entries. Zero means
	// half of the destination's entries (but at least 100); negative means
	// no limit.
	MaxDelete int
	// StateDir holds the manifest, lock and retention links; it must be
	// outside the destination and on its filesystem. Empty means
	// DefaultStateDir(dest).
	StateDir string
	// Retention is how long replaced and deleted files stay linked in the
	// retention dir for NFS clients still using them. Zero means 24 h;
	// negative turns retention off.
	Retention time.Duration
	// Workers bounds parallel walking; zero means a default.
	Workers int
	// Fsync flushes each file before it is renamed into place.
	Fsync bool
	// Since asks the source for the changes since a journal token.
	Since string
	// Scopes limit the sync to parts of the tree (see tree.Scope); empty
	// means the whole tree.
	Scopes []tree.Scope
	// Incremental asks the source for the changes since the journal token
	// recorded in the state dir by the last successful sync (when Since is
	// empty). A source without a journal, or one that cannot vouch for the
	// token, answers with a full scan, so this is always safe.
	Incremental bool
	// MaxListBytes bounds the source's entry list as it is spooled (see
	// tree.Checker.MaxBytes): a source sending more is refused as it
	// passes the bound. Zero means tree.DefaultMaxBytes; negative means no
	// bound.
	MaxListBytes int64
	// Logger receives warnings and debug messages; nil is silent.
	Logger *slog.Logger
	// Progress, when set, is called as the sync advances (from several
	// goroutines; it must be quick and safe for concurrent use).
	Progress func(Progress)
	// Itemize, when set, is called once per change, in plan order, before
	// it is applied (or instead, in a dry run).
	Itemize func(Change)
	// SourceDone, when set, is called once the run needs nothing more of
	// the source (the content phase has ended, before the tail of the
	// apply and the manifest): the caller may let the source end its
	// session meanwhile (proto.Client.Release). Called at most once, on
	// the goroutine running Sync; not in a dry run.
	SourceDone func()
	// Generations, when set, records the run as a generation of the image
	// (see Rollback) and prunes by the policy. Content that existing
	// generations need is kept whether or not it is set.
	Generations *GenerationPolicy
	rollbackOf  int64 // set by Rollback, recorded in the generation
	// checkDest, set by Rollback, sees the destination's walk and the
	// manifest that served as its cache, before anything is planned; an
	// error stops the run (the drift guard, without a second walk).
	checkDest func(dst []*tree.Entry, live *Manifest) error
}

// Phase names a step of a sync.
type Phase string

// The phases of a sync, in order.
const (
	PhaseScan     Phase = "scan"
	PhasePlan     Phase = "plan"
	PhaseTransfer Phase = "transfer"
	PhaseFinish   Phase = "finish"
)

// Progress reports how far a sync has come.
type Progress struct {
	Phase      Phase
	Path       string // the entry just done, if any
	Files      int64  // actions done
	TotalFiles int64  // actions planned
	Bytes      int64  // content bytes done
	TotalBytes int64  // content bytes planned (an upper bound)
}

// Result describes a finished sync.
type Result struct {
	Stats
	// Plan is what was (or, in a dry run, would be) done.
	Plan *Plan
	// Token is the source's journal token for a later Options.Since.
	Token string
	// SourceProblems counts source entries that could not be read.
	SourceProblems int
	// Problems lists the paths not applied, with why.
	Problems []string
	// Duration is the wall time of the sync.
	Duration time.Duration
	// Failed lists the paths left as they were, sorted.
	Failed []string
	// DeletesSkipped says deletions were skipped because the source
	// reported problems (as rsync does after an I/O error).
	DeletesSkipped bool
	// Generation is the id of the generation this run recorded, or zero.
	Generation int64

	// run is what the generation hook needs of the run.
	run runNotes
}

// runNotes are what a Sync's generation hook learns of the run beyond
// its counts.
type runNotes struct {
	// stamp names the run's retained links (retainer.stamp).
	stamp string
	// retained names what the retention dir holds (retainer.names),
	// when retainedOK.
	retained   []string
	retainedOK bool
	// retainedAfter, when set, says retained holds only the run's own
	// names: the others were looked at by the harvest of the generation
	// whose Retained stamp this is (valid while it is the newest).
	retainedAfter string
	// recorded is set when the run recorded a generation.
	recorded bool
	// delta is the change of a scoped run to the manifest, nil when
	// unknown (see recordGeneration).
	delta *runDelta
}

// ApplyOptions configure Apply. The zero value applies with retention
// off (no state dir), no excludes and no output.
type ApplyOptions struct {
	// StateDir, when set, holds the retention links of replaced and
	// deleted files (see Options.StateDir); Apply keeps no manifest.
	StateDir string
	// Retention is as Options.Retention.
	Retention time.Duration
	// Excludes protect what the receiver leaves out (see Options.Excludes).
	Excludes []string
	// Fsync flushes each file before it is renamed into place.
	Fsync bool
	// Logger receives warnings and debug messages; nil is silent.
	Logger *slog.Logger
	// Progress is as Options.Progress.
	Progress func(Progress)
	// Walked are dest's entries as the caller walked them before planning
	// (the snapshot builder's walk of a node's snapshot), in tree.Compare
	// order. A directory whose metadata is set again only because its
	// entries changed is then checked, as in Sync, to be the inode the
	// walk found, and left alone (a problem) when it was replaced since.
	Walked []*tree.Entry
}

// Apply carries out a plan made by MakePlan beneath dest, reading content
// from src (scanned already; srcEntries are its entries). It is the apply
// phase of Sync, for callers that plan themselves (the snapshot builder),
// with the plan held whole.
func Apply(ctx context.Context, src Source, dest string, plan *Plan, srcEntries []*tree.Entry, ao ApplyOptions) (*Result, error) {
	start := time.Now()
	log := ao.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := Options{StateDir: ao.StateDir, Retention: ao.Retention, Excludes: ao.Excludes, Fsync: ao.Fsync,
		Logger: log, Progress: ao.Progress}
	root, err := fsx.OpenRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("open destination: %w", err)
	}
	defer root.Close()
	retDir := ""
	if opts.StateDir != "" {
		retDir = State(opts.StateDir).Retention
	}
	res := &Result{Plan: plan}
	res.Entries = len(srcEntries)
	byPath := func(x, y *tree.Entry) int { return tree.Compare(x.Path, y.Path) }
	if !slices.IsSortedFunc(srcEntries, byPath) {
		srcEntries = slices.Clone(srcEntries)
		slices.SortFunc(srcEntries, byPath)
	}
	walked := ao.Walked
	if walked != nil && !slices.IsSortedFunc(walked, byPath) {
		walked = slices.Clone(walked)
		slices.SortFunc(walked, byPath)
	}
	a, err := applyPlan(ctx, src, root, plan, memActions{plan}, srcEntries, &opts, log, retDir, nil, &res.Stats,
		func(a *applier) {
			a.out = mapOutcomes{}
			if walked != nil {
				a.walkedDir = func(p string) *tree.Entry {
					if e := findEntry(walked, p); e != nil && e.Type == tree.TypeDir {
						return e
					}
					return nil
				}
			}
		})
	if a == nil {
		return nil, err
	}
	res.Problems = a.problems
	res.Failed = a.failedPaths()
	res.Stats.Problems = len(a.problems)
	res.Duration = time.Since(start)
	if err != nil {
		return res, err
	}
	if len(a.problems) > 0 {
		return res, fmt.Errorf("%w: %d paths not applied", ErrPartial, len(a.problems))
	}
	return res, nil
}

// applyPlan runs an applier over acts (the actions of plan); srcEntries
// are the source's entries when held (sorted), else nil. A nil applier
// means it could not start.
func applyPlan(ctx context.Context, src Source, root *fsx.Root, plan *Plan, acts actionSource, srcEntries []*tree.Entry, opts *Options, log *slog.Logger, retDir string, temps []string, stats *Stats, setup ...func(*applier)) (*applier, error) {
	ret, err := openRetainer(retDir, retention(opts.Retention), log)
	if err != nil {
		return nil, err
	}
	defer ret.close()
	excl, err := exclude.New(opts.Excludes)
	if err != nil {
		return nil, fmt.Errorf("excludes: %w", err)
	}
	a := &applier{root: root, src: src, plan: plan, acts: acts, srcs: srcEntries, opts: opts, log: log, ret: ret, excl: excl,
		owner: os.Geteuid() == 0, dirs: map[string]bool{}, failed: map[string]bool{}, stats: stats}
	for _, f := range setup {
		f(a)
	}
	return a, a.run(ctx, temps)
}

func isFull(scope []tree.Scope) bool { return tree.IsFull(scope) }

// Errors callers branch on.
var (
	// ErrGuard is wrapped when a run is refused because it looks wrong
	// (too many deletes, an empty source). Nothing was changed.
	ErrGuard = errors.New("refused by the safety guard")
	// ErrPartial is wrapped when the run finished but some paths were not
	// applied or deletions were skipped.
	ErrPartial = errors.New("partial transfer")
	// ErrLocked is wrapped when another sync holds the destination's lock.
	ErrLocked = errors.New("another sync of this destination is running")
	// ErrBadSource is wrapped when the source sent something a correct
	// source never sends (bad paths, order, scope). Nothing was changed.
	ErrBadSource = errors.New("bad data from the source")
)

// DefaultStateDir is where a destination's state lives when none is given: a
// sibling of the destination, so it is on the same filesystem (retention
// needs hard links) and outside the exported tree.
func DefaultStateDir(dest string) string {
	dest = filepath.Clean(dest)
	return filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+".goldsync")
}

// StatePaths names the files in a state dir.
type StatePaths struct {
	Dir, Manifest, Lock, Retention, Token string
}

// State returns the state paths for a state dir.
func State(dir string) StatePaths {
	return StatePaths{
		Dir:       dir,
		Manifest:  filepath.Join(dir, "manifest"),
		Lock:      filepath.Join(dir, "lock"),
		Retention: filepath.Join(dir, "retention"),
		Token:     filepath.Join(dir, "token"),
	}
}

// Lock takes the exclusive, non-blocking lock of a state dir (flock),
// after PrepareStateDir has created or checked the dir; a lock file that is
// a symlink is refused. The returned function releases it.
func Lock(stateDir string) (func(), error) {
	f, err := LockStateFile(stateDir, "lock")
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// LockStateFile takes an exclusive, non-blocking flock on the file name of
// a state dir (created when missing, never through a symlink), after
// PrepareStateDir has created or checked the dir: the one lock helper of
// the state dir's locks. Held by another process, it fails wrapping
// ErrLocked and naming the file. Closing the file releases the lock.
func LockStateFile(stateDir, name string) (*os.File, error) {
	if err := PrepareStateDir(stateDir); err != nil {
		return nil, err
	}
	f, err := OpenStateFile(stateDir, name, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (lock %s)", ErrLocked, filepath.Join(stateDir, name))
		}
		return nil, fmt.Errorf("lock %s: %w", filepath.Join(stateDir, name), err)
	}
	return f, nil
}

// Sync makes dest an exact copy of src: scan both sides, plan, apply
// beneath dest only, save the manifest. Every file appears whole or not at
// all. Paths that could not be applied are listed in the result and the
// error wraps ErrPartial; a refused run wraps ErrGuard and changes nothing.
//
// The source's entries and the plan are streamed through temp files in the
// state dir (see spool), not held: what stays on the heap is the
// destination's walk and what the run must know across the whole tree (its
// hard-link groups, counts). Result.Plan has the plan's counts; its
// actions reach Options.Itemize.
func Sync(ctx context.Context, src Source, dest string, opts Options) (*Result, error) {
	r, err := startRun(src, dest, opts, false)
	if err != nil {
		return nil, err
	}
	defer r.close()
	return r.run(ctx)
}

// run is Sync's phases after startRun.
func (r *syncRun) run(ctx context.Context) (*Result, error) {
	opts := r.opts
	r.progress(PhaseScan)
	if err := r.scan(ctx); err != nil {
		return nil, err
	}
	r.phase("scan done")
	r.progress(PhasePlan)
	if err := r.plan(); err != nil {
		return nil, err
	}
	if err := r.guard(); err != nil {
		return r.res, err
	}
	if err := r.itemize(); err != nil {
		return nil, err
	}
	if opts.DryRun {
		r.res.Duration = time.Since(r.start)
		return r.res, nil
	}
	r.phase("plan done")
	r.progress(PhaseTransfer)
	runErr := r.apply(ctx)
	if r.a == nil {
		return nil, runErr
	}
	r.phase("apply done")
	r.progress(PhaseFinish)
	return r.record(runErr)
}

// syncRun is one Sync, phase by phase: scan, plan, guard, apply, record.
type syncRun struct {
	src   Source
	dest  string
	opts  Options
	log   *slog.Logger
	sp    StatePaths
	excl  *exclude.Matcher
	root  *fsx.Root // nil: dest does not exist (a dry run)
	start time.Time
	res   *Result
	done  []func() // run by close

	// scan
	srcs    *entrySpool       // the source's entries, in tree.Compare order
	srcN    int               // how many
	leaders map[string]uint64 // the source's hard-link leaders: members beside each
	scanRes ScanResult
	scope   []tree.Scope
	dsts    *entrySpool // the destination's walk, in tree.Compare order
	dstN    int         // how many
	temps   []string    // engine temp files the walk found
	reread  int64       // entries the walk read afresh
	// stream is the plan made while a full scan runs (nil: none).
	stream *streamPlan
	// dstLent holds the destination walk's entries the streamed plan
	// gave back, which the walk lists into (issue #14).
	dstLent tree.EntryPool
	// early is the destination walk started before the source was
	// connected (StartEarly; nil: none).
	early *earlyWalk
	// prevLen is how many entries the manifest held; imageTotal the
	// entries of the whole image as last recorded (0: unknown).
	prevLen, imageTotal int
	// prevIn are the manifest's entries within prevScope, as a scoped
	// walk loaded them (nil prevScope: not a scoped walk, or unknown).
	prevIn    []*tree.Entry
	prevScope []tree.Scope
	// deepened: a scoped run walked deeper scopes than the source
	// declared (vanished directories), so prevLen counts less than was
	// walked.
	deepened bool

	// plan
	acts    *spoolActions
	itemz   *spool // the actions to itemize, in path order (Options.Itemize)
	planned *Plan

	// apply
	a *applier
}

// startRun checks the state dir, takes its lock and opens dest. For an
// early run (StartEarly: no source yet) it creates, removes and changes
// nothing: dest, its state dir and lock file must exist, and a run that
// is not a full scan (a journal token, scopes, a dry run) is not started
// early (errNotEarly).
func startRun(src Source, dest string, opts Options, early bool) (*syncRun, error) {
	r := &syncRun{src: src, dest: dest, opts: opts, log: opts.Logger, start: time.Now()}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	stateDir := opts.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir(dest)
	}
	if err := checkStateDir(stateDir, dest); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	if early && !earlyFits(stateDir, dest, opts) {
		return nil, errNotEarly
	}
	if !opts.DryRun {
		if !early { // earlyFits: dest exists
			if err := os.Mkdir(dest, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return nil, fmt.Errorf("create destination: %w", err)
			}
		}
		unlock, err := Lock(stateDir)
		if err != nil {
			return nil, err
		}
		r.done = append(r.done, unlock)
		if !early {
			removeStaleManifestTemps(stateDir)
		}
	}
	r.sp = State(stateDir)
	if opts.Incremental && opts.Since == "" {
		if b, err := os.ReadFile(r.sp.Token); err == nil {
			r.opts.Since = strings.TrimSpace(string(b))
		}
	}
	if early && r.opts.Since != "" {
		return nil, errNotEarly
	}
	var err error
	if r.excl, err = exclude.New(opts.Excludes); err != nil {
		return nil, fmt.Errorf("excludes: %w", err)
	}
	if root, err := fsx.OpenRoot(dest); err == nil {
		r.root = root
		r.done = append(r.done, func() { root.Close() })
	} else if !opts.DryRun || !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open destination: %w", err)
	}
	ok = true
	return r, nil
}

// close releases what the run holds (spools, the root, the lock: last).
func (r *syncRun) close() {
	if r.early != nil {
		// Its walk writes to the destination's spool: stopped first.
		r.early.stop()
	}
	if r.srcs != nil {
		r.srcs.close()
	}
	if r.dsts != nil {
		r.dsts.close()
	}
	if r.stream != nil {
		r.stream.m.close()
	}
	if r.acts != nil {
		r.acts.close()
	}
	r.itemz.close()
	if r.a != nil {
		r.a.out.close()
	}
	for k := len(r.done) - 1; k >= 0; k-- {
		r.done[k]()
	}
}

// phase logs the end of a phase at debug level, with the time since the
// run started.
func (r *syncRun) phase(what string) {
	r.log.Debug("sync: "+what, "after", time.Since(r.start).Round(time.Millisecond))
}

func (r *syncRun) progress(ph Phase) {
	if r.opts.Progress != nil {
		r.opts.Progress(Progress{Phase: ph})
	}
}

// spoolDir is where the run's spools go: the state dir (the runner's own,
// locked), or the system's temp dir in a dry run, which takes no lock.
func (r *syncRun) spoolDir() string {
	if r.opts.DryRun {
		return ""
	}
	return r.sp.Dir
}

// scan lists the source into a spool and walks the destination, at once
// (or, for a journal-driven run, one after the other: the source decides
// the scope).
func (r *syncRun) scan(ctx context.Context) error {
	sp, err := newSpool(r.spoolDir(), false)
	if err != nil {
		return err
	}
	r.srcs = &entrySpool{spool: sp}
	if r.early == nil {
		// An early run's walk made its spool before the source was
		// connected.
		if sp, err = newSpool(r.spoolDir(), false); err != nil {
			return err
		}
		r.dsts = &entrySpool{spool: sp}
	}
	if r.opts.Since != "" {
		if err := r.scanSource(ctx); err != nil {
			return err
		}
		if err := r.walkDest(ctx, r.scanRes.Scope); err != nil {
			return err
		}
	} else {
		scopes := tree.FullScope
		if len(r.opts.Scopes) > 0 {
			scopes = r.opts.Scopes
		}
		g, gctx := errgroup.WithContext(ctx)
		if len(r.opts.Scopes) == 0 && r.root != nil && r.opts.checkDest == nil {
			// A full scan: plan as both lists arrive (issue #14).
			if r.stream, err = r.startStreamPlan(gctx, r.opts.NoDelete); err != nil {
				return err
			}
		}
		g.Go(func() error {
			if r.stream != nil {
				defer r.stream.src.end()
			}
			return r.scanSource(gctx)
		})
		g.Go(func() error {
			if r.early != nil {
				// Walking since before the source was connected.
				return r.early.wait(gctx)
			}
			if r.stream != nil {
				defer r.stream.dst.end()
			}
			return r.walkDest(gctx, scopes)
		})
		err := g.Wait()
		if r.stream != nil {
			r.stream.wait()
		}
		if err != nil {
			return err
		}
	}
	r.scope = r.scanRes.Scope
	if len(r.scope) == 0 {
		r.scope = tree.FullScope
	}
	if isFull(r.scope) {
		return nil
	}
	// A scoped scan: every entry must lie in the scope the source
	// declared. A scope {dir, Tree: false} whose directory the source no
	// longer has as a directory removes the destination's whole subtree
	// there: walk it, so that every entry removed is planned, counted by
	// the guard and dropped from the manifest one by one.
	set := tree.NewScopeSet(r.scope)
	want := map[string]bool{}
	for _, sc := range r.scope {
		if !sc.Tree && sc.Path != tree.Root {
			want[sc.Path] = true
		}
	}
	srcDir := map[string]bool{}
	var rerr error
	for e := range r.srcs.entries(&rerr) {
		if !set.Covers(e.Path) {
			return fmt.Errorf("%w: source sent %q outside the scope it declared", ErrBadSource, e.Path)
		}
		if want[e.Path] && e.Type == tree.TypeDir {
			srcDir[e.Path] = true
		}
	}
	if rerr != nil {
		return rerr
	}
	var derr error
	deeper := vanishedDirs(r.scope, want, srcDir, r.dsts.entries(&derr))
	if derr != nil {
		return derr
	}
	if len(deeper) == 0 || r.root == nil {
		return nil
	}
	prev := r.loadPrev(deeper)
	r.notePrev(deeper, prev.Entries)
	r.deepened = true
	wo := WalkOptions{Hash: true, Workers: r.opts.Workers, Logger: r.log, Scopes: deeper,
		Previous: prev.finder(), Temps: func(p string) { r.temps = append(r.temps, p) }}
	if r.excl != nil {
		wo.Exclude = r.excl
	}
	sub, err := Walk(ctx, r.root, wo)
	if err != nil {
		return fmt.Errorf("scan destination: %w", err)
	}
	// The subtrees' entries join the walk's, in order, in a new spool.
	sp, err = newSpool(r.spoolDir(), false)
	if err != nil {
		return err
	}
	merged := &entrySpool{spool: sp}
	old, n := r.dsts, 0
	for x, y := range tree.MergeSeq(old.entries(&derr), slices.Values(sub.Entries)) {
		if x == nil {
			x = y
		}
		if err := r.addDst(merged, x); err != nil {
			merged.close()
			return err
		}
		n++
	}
	if derr != nil {
		merged.close()
		return derr
	}
	old.close()
	r.dsts, r.dstN = merged, n
	r.reread += sub.Reread
	r.scope = deepenScopes(r.scope, deeper)
	return nil
}

// notePrev adds the manifest's entries within the deeper scopes that a
// scoped run walks as well to prevIn.
func (r *syncRun) notePrev(deeper []tree.Scope, es []*tree.Entry) {
	if r.prevScope == nil || !slices.Equal(r.prevScope, r.scope) {
		r.prevScope = nil
		return
	}
	var all []*tree.Entry
	for x, y := range tree.MergeSeq(slices.Values(r.prevIn), slices.Values(es)) {
		if x == nil {
			x = y
		}
		all = append(all, x)
	}
	r.prevIn, r.prevScope = all, deepenScopes(r.scope, deeper)
}

// scanSource lists the source through the stream checker and the
// receiver's excludes into the run's spool, keeping only the counts and
// the hard-link leaders.
func (r *syncRun) scanSource(ctx context.Context) error {
	// The hard-link targets are checked as the plan is made (linkCheck):
	// a checker would hold 8 bytes for every regular file.
	chk := tree.Checker{MaxBytes: r.opts.MaxListBytes, Partial: r.opts.Since != "" || len(r.opts.Scopes) > 0, DeferLinks: true}
	if vs, ok := r.src.(ValidatedSource); ok && vs.EntriesValidated() {
		// Each entry was validated where it entered (the wire's
		// decoder): check its place in the stream here, not its
		// fields a third time (issue #14).
		chk.Validated = true
	}
	eg := &excludeGuard{m: r.excl}
	r.leaders = map[string]uint64{}
	rootSeen := false
	var err error
	r.scanRes, err = r.src.Scan(ctx, ScanRequest{Excludes: r.opts.Excludes, Since: r.opts.Since, Scopes: r.opts.Scopes, LinksChecked: true}, func(e *tree.Entry) error {
		if err := chk.Add(e); err != nil {
			return fmt.Errorf("%w: source sent a bad entry: %w", ErrBadSource, err)
		}
		if eg.refuses(e) {
			// The source was asked to leave it out: the receiver's
			// excludes are its own policy, never the sender's.
			return fmt.Errorf("%w: source sent %q, which the receiver's excludes leave out", ErrBadSource, e.Path)
		}
		if r.srcN == 0 {
			rootSeen = e.Path == tree.Root
			r.phase("first source entry")
		}
		if e.LinkTo != "" {
			r.leaders[e.LinkTo]++
		}
		r.srcN++
		if err := r.srcs.add(e); err != nil {
			return err
		}
		if r.stream != nil {
			return r.stream.src.add(e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan source: %w", err)
	}
	if len(r.scanRes.Scope) == 0 {
		r.scanRes.Scope = tree.FullScope
	}
	if isFull(r.scanRes.Scope) && !rootSeen {
		return fmt.Errorf("%w: the source sent no root entry", ErrGuard)
	}
	return nil
}

// loadPrev reads the manifest for the scopes a destination walk covers:
// all of it, or (incremental) only the changed parts.
func (r *syncRun) loadPrev(scopes []tree.Scope) *Manifest {
	var (
		prev *Manifest
		err  error
	)
	if isFull(scopes) {
		prev, err = LoadManifest(r.sp.Manifest)
	} else {
		prev, err = LoadManifestScoped(r.sp.Manifest, scopes)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		prev = &Manifest{}
	case err != nil:
		r.log.Warn("manifest unreadable; the destination will be re-read in full", "err", err)
		prev = &Manifest{}
	}
	r.imageTotal = max(r.imageTotal, prev.total, len(prev.Entries))
	return prev
}

// walkDest walks the destination with its manifest as the cache.
//
// A full walk looks the manifest up on disk, block by block (see
// manifestFinder); a scoped one loads the scopes' part; the rollback's
// drift check gets the manifest whole.
func (r *syncRun) walkDest(ctx context.Context, scopes []tree.Scope) error {
	var (
		prev        *Manifest
		previous    func(string) *tree.Entry
		previousDir func() (func(string) *tree.Entry, func())
	)
	if isFull(scopes) && r.opts.checkDest == nil {
		mf, err := openManifestFinder(r.sp.Manifest, r.log)
		if err == nil {
			defer mf.close()
			previous = mf.find
			previousDir = func() (func(string) *tree.Entry, func()) { return mf.cursor(), nil }
			r.prevLen = mf.total
			r.imageTotal = max(r.imageTotal, mf.total)
		}
	}
	if previous == nil {
		prev = r.loadPrev(scopes)
		r.prevLen = len(prev.Entries)
		previous = prev.finder()
		if !isFull(scopes) {
			r.prevIn, r.prevScope = prev.Entries, scopes
		}
	}
	if r.root == nil {
		return nil
	}
	wo := WalkOptions{Hash: true, Workers: r.opts.Workers, Logger: r.log,
		Previous: previous, previousDir: previousDir,
		Temps: func(p string) { r.temps = append(r.temps, p) }}
	if !isFull(scopes) {
		wo.Scopes = scopes
	}
	if r.excl != nil {
		wo.Exclude = r.excl
	}
	if r.early != nil {
		// Walking before the source is connected: the streamed plan
		// (not made yet: r.stream is not to be read here) will give
		// back what it is done with, and the early walk gives back
		// what it only spools.
		wo.lent = &r.dstLent
		wo.gate = r.early.gate
	} else if r.stream != nil && r.opts.checkDest == nil {
		// The streamed plan gives back the entries it is done with.
		wo.lent = &r.dstLent
	}
	add := func(e *tree.Entry) error {
		if r.early != nil {
			return r.early.add(e)
		}
		r.dstN++
		if err := r.addDst(r.dsts, e); err != nil {
			return err
		}
		if r.stream != nil {
			return r.stream.dst.add(e)
		}
		return nil
	}
	if r.opts.checkDest != nil {
		// The rollback's drift check looks at the whole walk.
		w, err := Walk(ctx, r.root, wo)
		if err != nil {
			return fmt.Errorf("scan destination: %w", err)
		}
		if err := r.opts.checkDest(w.Entries, prev); err != nil {
			return err
		}
		for _, e := range w.Entries {
			if err := add(e); err != nil {
				return err
			}
		}
		r.reread = w.Reread
		return nil
	}
	w, err := WalkEach(ctx, r.root, wo, add)
	if err != nil {
		return fmt.Errorf("scan destination: %w", err)
	}
	r.reread = w.Reread
	return nil
}

// addDst spools a destination entry.
func (r *syncRun) addDst(sp *entrySpool, e *tree.Entry) error {
	return sp.add(e)
}

// plan merges the source's spooled entries with the destination's walk
// into a spool of actions by applier phase (and one in path order for
// Itemize), keeping the counts.
func (r *syncRun) plan() error {
	r.res = &Result{Token: r.scanRes.Token, SourceProblems: r.scanRes.Problems}
	r.res.Entries = r.srcN
	noDelete := r.opts.NoDelete
	if r.scanRes.Problems > 0 && !noDelete {
		noDelete = true
		r.res.DeletesSkipped = true
		r.log.Warn("the source reported unreadable entries: deletions skipped", "problems", r.scanRes.Problems)
	}
	// The plan made during the scan holds if the scan stayed full and
	// deletes stay allowed; it ends here from where it stopped.
	m := r.stream
	r.stream = nil
	var pm *planMerge
	if m != nil && isFull(r.scope) && noDelete == r.opts.NoDelete {
		pm = m.m
		if m.stopped || pm.nsrc != r.srcN || pm.ndst != r.dstN {
			m.stopped = true
		}
	} else {
		if m != nil {
			m.m.close()
			m = nil
		}
		var err error
		if pm, err = r.newPlanMerge(r.scope, noDelete); err != nil {
			return err
		}
	}
	r.acts, r.itemz = pm.acts, pm.itemz
	r.done = append(r.done, pm.p.replaced.close)
	if m == nil || m.stopped {
		pm.hashesFromSpool()
		var rerr, derr error
		// Both spools are decoded ahead, each on its own goroutine, while
		// this one merges and plans.
		for s, d := range tree.MergeSeq(decodeAhead(r.srcs.entriesFrom(pm.nsrc, pm.lastSrc, &rerr)), decodeAhead(r.dsts.entriesFrom(pm.ndst, pm.lastDst, &derr))) {
			pm.step(s, d)
			if pm.werr != nil {
				break
			}
		}
		if err := cmp.Or(rerr, derr); err != nil {
			return err
		}
	}
	if pm.werr != nil {
		return pm.werr
	}
	if err := pm.vouch(); err != nil {
		return err
	}
	r.planned = pm.p
	r.res.Plan = pm.p
	return nil
}

// guard refuses a plan that looks like a mistake.
func (r *syncRun) guard() error {
	return guard(r.planned, r.srcN, r.dstN, r.scope, r.opts.MaxDelete, r.imageTotal)
}

// itemize hands the plan's changes to Options.Itemize in path order, as
// rsync prints them (directory attributes appear where the directory is,
// though they are set last).
func (r *syncRun) itemize() error {
	if r.itemz == nil {
		return nil
	}
	return r.itemz.each(func(rec []byte) error {
		a, err := decodeAction(rec)
		if err != nil {
			return err
		}
		r.opts.Itemize(Itemize(*a))
		return nil
	})
}

// apply carries out the spooled plan. A nil r.a after it means the applier
// could not start.
func (r *syncRun) apply(ctx context.Context) error {
	if !r.opts.DryRun && r.planned.Len() > 0 {
		// A run killed while applying leaves temp files beside the files
		// it was replacing, and a scoped walk lists no directory it was
		// not asked for (a rewritten file's scope is the file): only a
		// full walk finds them. Without a token the next run has one;
		// a run that ends saves the token again.
		if err := os.Remove(r.sp.Token); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("journal token not removed before applying: temp files of a killed run may stay until a full sync", "err", err)
		}
	}
	out, err := newFileOutcomes(r.spoolDir())
	if err != nil {
		return err
	}
	// (No walkedDir: the plan's conditional directory actions carry the
	// walk's entry.)
	r.a, err = applyPlan(ctx, r.src, r.root, r.planned, r.acts, nil, &r.opts, r.log, r.sp.Retention, r.temps, &r.res.Stats,
		func(a *applier) {
			a.out = out
			a.groups = r.leaders
			a.sourceDone = r.opts.SourceDone
		})
	if r.a == nil {
		out.close()
	}
	return err
}

// record saves what the destination now holds (even after a failure, so
// the next run starts from the truth), the journal token and the
// generation, and sorts out the result.
func (r *syncRun) record(runErr error) (*Result, error) {
	res, a, sp, log := r.res, r.a, r.sp, r.log
	if a.ret != nil {
		res.run.stamp = a.ret.stamp
		res.run.retained, res.run.retainedOK, res.run.retainedAfter = a.ret.names()
		if !r.opts.DryRun {
			defer func() { a.ret.leaveNote(res.run.recorded) }()
		}
	}
	// A journal-driven run (a push, a replica update: the destination
	// walked in exactly the scopes the source declared) whose walk found
	// them as recorded is unchanged too: the manifest's part
	// outside them was not looked at and stays. Saving its scopes again
	// appended a log record, which changed the manifest's files, so the
	// generation check (liveDiffers) decoded the live manifest and the
	// newest generation's whole to find them equal: 2 × 22.5k entries,
	// ~0.02 s of a replica's ~0.04 s and half its 30 MiB peak in every
	// no-change update (issue 17).
	unchanged := runErr == nil && r.planned.Len() == 0 && len(r.temps) == 0 && r.reread == 0 &&
		r.prevLen == r.dstN && (isFull(r.scope) || r.opts.Since != "" && !r.deepened) && !res.DeletesSkipped
	if unchanged {
		// Nothing was done and the walk found everything as recorded:
		// the manifest on disk is still the truth.
		res.Duration = time.Since(r.start)
		res.Generation = afterSync(sp, &r.opts, res, r.start, true, log)
		if err := saveToken(sp.Token, r.scanRes.Token); err != nil {
			log.Warn("journal token not saved: the next sync scans everything", "err", err)
		}
		return res, nil
	}
	var rerr, derr error
	recorded := manifestSeq(r.root, r.srcs.entries(&rerr), r.dsts.entries(&derr), a, r.leaders)
	var serr error
	if isFull(r.scope) {
		serr = saveManifestSeq(sp.Manifest, recorded)
		r.phase("manifest saved")
	} else {
		// A scoped run saw only part of the destination: record that part
		// (in time proportional to it); the rest stays as recorded.
		set := tree.NewScopeSet(r.scope)
		var in []*tree.Entry
		for e := range recorded {
			if set.Covers(e.Path) {
				c := *e
				in = append(in, &c)
			}
		}
		if rerr == nil && derr == nil {
			before := manifestIdent(sp.Manifest)
			serr = UpdateManifest(sp.Manifest, r.scope, in)
			if serr == nil && r.prevScope != nil && slices.Equal(r.prevScope, r.scope) && simpleLinks(r.prevIn) && simpleLinks(in) {
				res.run.delta = &runDelta{identBefore: before, old: r.prevIn, new: in}
			}
		}
	}
	if serr == nil {
		serr = cmp.Or(rerr, derr)
	}
	if fo, ok := a.out.(*fileOutcomes); ok && serr == nil && fo.err != nil {
		serr = fmt.Errorf("record outcomes: %w", fo.err)
	}
	if serr != nil && runErr == nil {
		runErr = serr
	}
	res.Problems = a.problems
	res.Failed = a.failedPaths()
	res.Stats.Problems = len(a.problems)
	res.Generation = afterSync(sp, &r.opts, res, r.start, runErr == nil && len(a.problems) == 0 && !res.DeletesSkipped, log)
	r.phase("generation recorded")
	res.Duration = time.Since(r.start)
	if runErr != nil {
		os.Remove(sp.Token) // what failed must be scanned again
		return res, runErr
	}
	if len(a.problems) > 0 || res.DeletesSkipped {
		os.Remove(sp.Token) // what failed must be scanned again
		return res, fmt.Errorf("%w: %d paths not applied%s", ErrPartial, len(a.problems), skippedNote(res))
	}
	if err := saveToken(sp.Token, r.scanRes.Token); err != nil {
		log.Warn("journal token not saved: the next sync scans everything", "err", err)
	}
	return res, nil
}

// simpleLinks reports whether no entry of es is a regular file with more
// than one link: a generation's content keys count a hard-link group
// once, by a leader a full read of the manifest chooses across scopes,
// so a change that touches a group is not applied as a delta.
func simpleLinks(es []*tree.Entry) bool {
	for _, e := range es {
		if e.Type == tree.TypeRegular && (e.Nlink > 1 || e.LinkTo != "") {
			return false
		}
	}
	return true
}

// saveToken records the source's journal token for the next incremental
// sync (atomically; an empty token removes the file).
func saveToken(path, token string) error {
	if token == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	return fsx.WritePathAtomic(path, []byte(token+"\n"), 0o600)
}

// removeStaleManifestTemps removes the temp files of manifests whose save
// was interrupted (Manifest.Save names them ".manifest-*" beside the
// manifest), and spool names a kill left before their unlinking. Only a
// sync holding the state dir's lock saves there, so with the lock held
// every such file is stale (a dry run's spool name lives for one syscall,
// and its file stays open when the name goes).
func removeStaleManifestTemps(stateDir string) {
	stale, _ := filepath.Glob(filepath.Join(stateDir, ".manifest-*"))
	temps, _ := filepath.Glob(filepath.Join(stateDir, fsx.AtomicTempPrefix+"*"))
	spools, _ := filepath.Glob(filepath.Join(stateDir, spoolPrefix+"*"))
	stale = append(stale, spools...)
	for _, p := range append(stale, temps...) {
		os.Remove(p)
	}
}

func skippedNote(r *Result) string {
	if r.DeletesSkipped {
		return fmt.Sprintf("; deletions skipped because %d source entries could not be read", r.SourceProblems)
	}
	return ""
}

func retention(d time.Duration) time.Duration {
	if d == 0 {
		return 24 * time.Hour
	}
	return d
}

// checkStateDir refuses a state dir inside the destination (it would be
// exported and mirrored away, and whoever can write the export could plant
// its manifest, lock or retention links), also when a symlink leads there.
func checkStateDir(stateDir, dest string) error {
	sd, err1 := filepath.Abs(stateDir)
	dd, err2 := filepath.Abs(dest)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("state dir: cannot resolve %s or %s", stateDir, dest)
	}
	if within(sd, dd) || within(resolved(sd), resolved(dd)) {
		return fmt.Errorf("%w: state dir %s is inside the destination %s: put it outside the exported image", ErrUnsafeStateDir, stateDir, dest)
	}
	return nil
}

// guard refuses plans that look like a mistake. image is how many entries
// the whole destination held as last recorded (a scoped run walks only part
// of it); the default delete limit is half of the larger of it and what was
// walked.
func guard(p *Plan, nsrc, ndst int, scope []tree.Scope, maxDelete, image int) error {
	if isFull(scope) && nsrc == 1 && ndst > 1 {
		return fmt.Errorf("%w: the source is empty but the destination holds %d entries; is the source path right?", ErrGuard, ndst-1)
	}
	total := ndst
	if !isFull(scope) {
		total = max(total, image)
	}
	limit := maxDelete
	if limit == 0 {
		limit = max(total/2, 100)
	}
	if limit > 0 && p.Deletes > limit {
		return fmt.Errorf("%w: the run would delete %d of %d entries, more than the limit of %d (raise --max-delete if this is intended)", ErrGuard, p.Deletes, total, limit)
	}
	return nil
}

// vanishedDirs returns, as tree scopes, the scopes {p, Tree: false} (want)
// where the destination has a directory and the source sent no directory
// (srcDir: the paths of want the source sent as directories): the source
// says everything beneath p is gone, which the destination walk of p alone
// did not list.
func vanishedDirs(scope []tree.Scope, want, srcDir map[string]bool, dst iter.Seq[*tree.Entry]) []tree.Scope {
	if isFull(scope) || len(want) == 0 {
		return nil
	}
	trees := tree.NewScopeSet(treeScopes(scope))
	var out []tree.Scope
	for d := range dst {
		if want[d.Path] && d.Type == tree.TypeDir && !srcDir[d.Path] && !trees.Covers(d.Path) {
			out = append(out, tree.Scope{Path: d.Path, Tree: true})
		}
	}
	return out
}

func treeScopes(scope []tree.Scope) []tree.Scope {
	var out []tree.Scope
	for _, sc := range scope {
		if sc.Tree {
			out = append(out, sc)
		}
	}
	return out
}

// deepenScopes returns scope with the scopes of deeper made whole trees.
func deepenScopes(scope, deeper []tree.Scope) []tree.Scope {
	d := map[string]bool{}
	for _, sc := range deeper {
		d[sc.Path] = true
	}
	out := make([]tree.Scope, 0, len(scope))
	for _, sc := range scope {
		if d[sc.Path] {
			sc.Tree = true
		}
		out = append(out, sc)
	}
	return out
}

// manifestSeq yields the destination's manifest after an apply, in
// tree.Compare order: source entries for what was applied (with the
// destination's identity), the old destination entries for what failed or
// lay outside the scope, hard links resolved as ResolveHardLinks does.
//
// It merges the two sorted lists (no index of either: two maps of every
// path were a third of this step's heap) and yields each entry in one of
// two scratch entries, reused once the next is asked for, so a full run's
// manifest is written without a copy of the list (which was the largest
// part of a full pull's peak heap). The inputs are not changed: a local
// Source (DirSource) hands out the entries of its own hash cache. The
// hard-link table holds multiply-linked inodes only; a group leader
// recorded without a hash is not given a member's (ResolveHardLinks does),
// which costs the next walk one re-read, never a wrong file.
//
// src is the source's stream (entries it yields are not changed); linked
// are the leaders of its hard-link groups. Outcomes are looked up by the
// entry's place in src.
func manifestSeq(root *fsx.Root, src, dst iter.Seq[*tree.Entry], a *applier, linked map[string]uint64) iter.Seq[*tree.Entry] {
	return func(yield func(*tree.Entry) bool) {
		// The hard-link leaders the run touched, with how many of their
		// members are still to come (leaders sort first): a leader is
		// dropped once its last member is recorded, so this holds the
		// groups open at the merge's place, not every group of the image.
		leaderTouched := map[string]uint64{}
		touched := func(p string) bool { return leaderTouched[p] > 0 || a.touched(p) }
		type key struct{ dev, ino uint64 }
		type leader struct {
			path   string
			hash   uint64
			hashed bool
		}
		leaders := map[key]leader{}
		var scratch [2]tree.Entry
		k := 0
		ord := int32(0)
		for s, d := range tree.MergeSeq(src, dst) {
			e := &scratch[k]
			if s != nil {
				ord++
			}
			if s == nil {
				// Kept (outside the scope, deletes skipped, or a delete failed)?
				st, ok := lstat(root, d.Path)
				if !ok || st.Ino != d.Ino || st.Dev != d.Dev {
					continue
				}
				*e = *d
			} else {
				o := a.outcomeOf(s.Path, ord)
				if n := linked[s.Path]; n > 0 && o.flags&outTouched != 0 {
					leaderTouched[s.Path] = n
				}
				ok := manifestEntry(e, root, s, d, a, o, linked, touched)
				if n := leaderTouched[s.LinkTo]; n > 1 {
					leaderTouched[s.LinkTo] = n - 1
				} else if n == 1 {
					delete(leaderTouched, s.LinkTo)
				}
				if !ok {
					continue
				}
			}
			k ^= 1
			e.LinkTo = ""
			if e.Type == tree.TypeRegular && e.Nlink >= 2 {
				if l, ok := leaders[key{e.Dev, e.Ino}]; ok {
					e.LinkTo = l.path
					if l.hashed {
						e.SetHash(l.hash)
					}
				} else {
					leaders[key{e.Dev, e.Ino}] = leader{path: e.Path, hash: e.Hash, hashed: e.Hashed()}
				}
			}
			if !yield(e) {
				return
			}
		}
	}
}

// manifestEntry sets *e to what the manifest records for source entry s,
// with d the destination's entry at its path before the run (or nil): s
// with the destination's identity, or d when the run failed there. It
// returns false when nothing can be vouched for.
func manifestEntry(e *tree.Entry, root *fsx.Root, s, d *tree.Entry, a *applier, o outcome, linked map[string]uint64, touched func(string) bool) bool {
	if a.failed[s.Path] {
		if d == nil {
			return false
		}
		*e = *d
		return true
	}
	*e = *s // shallow: xattrs are never changed in place
	if o.flags&outHashed != 0 {
		e.SetHash(o.hash)
	} else if e.Type == tree.TypeRegular && !e.Hashed() && d != nil && d.Hashed() && d.Size == e.Size {
		// Unchanged (the plan found nothing to do) is not possible
		// without both hashes; keep whatever the destination knew.
		e.SetHash(d.Hash)
	}
	switch {
	case o.flags&outTouched == 0 && d != nil && d.Type == s.Type && !(s.LinkTo != "" && touched(s.LinkTo)):
		e.Dev, e.Ino, e.Ctime, e.Nlink = d.Dev, d.Ino, d.Ctime, d.Nlink
		if !tree.SameMeta(s, d) || s.Size != d.Size || e.Hash != d.Hash {
			// Planned but not done (the run stopped first): this
			// records the source's attributes, not the destination's,
			// so force a re-read next time, or the walker would trust
			// them and the change would never be made.
			e.Ctime = 0
		}
	case o.flags&outPlaced != 0 && s.LinkTo == "" && linked[s.Path] == 0:
		// Written by this run and no hard link made to it since: its
		// lstat was taken when it was put in place.
		e.Dev, e.Ino, e.Ctime, e.Nlink = o.dev, o.ino, o.ctime, o.nlink
		e.Mtime = o.mtime
	case o.flags&outTouched == 0 && (d == nil || d.Type != s.Type):
		// Planned but never done (the run stopped first, or the
		// source lost the connection): whatever sits at the path now
		// was not put there by this run, and the manifest must not
		// vouch for it with the source's hash (the next walk would
		// trust a same-size file planted there). Not recorded: the
		// next run reads it afresh.
		return false
	default:
		st, ok := lstat(root, s.Path)
		if !ok || !(o.flags&outTouched != 0 || (st.Dev == d.Dev && st.Ino == d.Ino)) {
			return false
		}
		e.Dev, e.Ino, e.Ctime, e.Nlink = st.Dev, st.Ino, fsx.StatCtime(&st), uint32(st.Nlink)
		e.Mtime = fsx.StatMtime(&st)
	}
	return true
}

func lstat(root *fsx.Root, p string) (unix.Stat_t, bool) {
	var st unix.Stat_t
	d, name, err := root.OpenDirOrParent(p)
	if err != nil {
		return st, false
	}
	defer d.Close()
	return st, d.Lstat(name, &st) == nil
}
