package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/remote"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// DefaultDeadline bounds a pull, a receive or one image of a run: a golden
// node that keeps the session alive but never finishes must not hold the
// image's lock (and, in a run, every later image) for ever.
const DefaultDeadline = 12 * time.Hour

// Options configure Run. The zero value syncs every image with the
// defaults and reports nothing but its result.
type Options struct {
	// Images are the images to sync, by name, in this order; none means
	// every image of the config.
	Images []string
	// DryRun plans and reports, and changes nothing: no lock, no status
	// record, no metrics.
	DryRun bool
	// Deadline gives up on an image's pull after this long (the other
	// images go on); zero or negative means never. The error wraps
	// ErrDeadline.
	Deadline time.Duration
	// ProgressTimeout is remote.Options.ProgressTimeout.
	ProgressTimeout time.Duration
	// RollbackTo, when set, makes step 1 a rollback of each image to this
	// generation (imaging.Rollback) instead of a pull; Force is its
	// RollbackOptions.Force.
	RollbackTo int64
	Force      bool
	// MetricsFile, when set and not DryRun, receives Prometheus metrics of
	// every image after the run (see WriteMetrics).
	MetricsFile string
	// Logger receives warnings (snapshot conflicts, nodes no OS boots) and
	// the libraries' logs; nil discards them.
	Logger *slog.Logger
	// ExitCode, when set, maps an image's error to the exit code recorded
	// in its report and status record.
	ExitCode func(error) int

	// ImageStart is called before an image's steps.
	ImageStart func(img *config.Image)
	// ImageDone is called with an image's report once its steps are done.
	ImageDone func(r *ImageReport)
	// Itemize is told each change of an image's pull, in rsync's itemized
	// format; ItemizeSnapshot each change of a node's snapshot.
	Itemize         func(c imaging.Change)
	ItemizeSnapshot func(node string, c imaging.Change)
	// PullProgress, when set, is called as an image's pull starts: it
	// returns the pull's progress callback and a function called when the
	// pull is over. BuildProgress does the same for the snapshots of an
	// OS.
	PullProgress  func(image string) (update func(imaging.Progress), done func())
	BuildProgress func(osName string) (update func(snapshot.BuildProgress), done func())
	// Notice is told what the snapshot lists' loading did or found that is
	// not an error (snapshot.LoadOptions.Notice).
	Notice func(msg string)
	// NoReplicas skips the replicas of the images (see Replicate): they
	// are not updated, and their nodes' boot files follow their last
	// known state.
	NoReplicas bool
	// ReplicaDone is called, from any goroutine, with each replica's
	// report as it is done.
	ReplicaDone func(r *ReplicaReport)
}

// The results of an image's run.
const (
	ResultOK      = "ok"
	ResultPartial = "partial"
	ResultFailed  = "failed"
	ResultLocked  = "locked"
)

// Report is what Run did.
type Report struct {
	Config string `json:"config"`
	// OK is set when every image ended ok and the metrics were written.
	OK     bool           `json:"ok"`
	DryRun bool           `json:"dry_run"`
	Images []*ImageReport `json:"images"`
}

// ImageReport is what a run did to one image.
type ImageReport struct {
	Image  string `json:"image"`
	Source string `json:"source"`
	Root   string `json:"root"`
	DryRun bool   `json:"dry_run"`
	// Result is ResultOK, ResultPartial, ResultFailed or ResultLocked.
	Result   string  `json:"result"`
	Error    string  `json:"error,omitempty"`
	ExitCode int     `json:"exit_code"`
	Seconds  float64 `json:"seconds"`
	// Rollback is the generation step 1 rolled back to instead of pulling.
	Rollback int64 `json:"rollback_to,omitempty"`
	// Pull is the pull's summary.
	Pull *PullSummary `json:"pull,omitempty"`
	// Planned counts the pull's plan by operation (mkdir, fetch, copy,
	// meta, symlink, special, link, delete, dirmeta): what a dry run
	// would do.
	Planned   map[string]int   `json:"planned,omitempty"`
	Snapshots []SnapshotReport `json:"snapshots,omitempty"`
	Netboot   []NetbootReport  `json:"netboot,omitempty"`
	// Replicas are the image's replicas, updated after the pull.
	Replicas []*ReplicaReport `json:"replicas,omitempty"`
	// Notes are things said along the way that are not errors.
	Notes []string `json:"notes,omitempty"`

	// Err is the image's error (nil when Result is ResultOK); a partial
	// pull's wraps imaging.ErrPartial.
	Err error `json:"-"`
	// PullResult is the pull's or rollback's result, when it got one.
	PullResult *imaging.Result `json:"-"`

	built   map[string]time.Time // node -> snapshot built
	changed bool                 // the pull changed the image
}

// SnapshotReport is what the snapshot step did for one OS.
type SnapshotReport struct {
	OS          string          `json:"os"`
	SnapshotDir string          `json:"snapshot_dir"`
	Nodes       int             `json:"nodes"`
	Totals      snapshot.Counts `json:"totals"`
	Conflicts   int             `json:"conflicts"`
	// ConflictList names the conflicts, "node: path: why".
	ConflictList []string `json:"conflict_list,omitempty"`
	Failed       []string `json:"failed_nodes,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// NetbootReport is what the netboot step did for one OS.
type NetbootReport struct {
	OS     string `json:"os"`
	Kernel string `json:"kernel,omitempty"`
	Nodes  int    `json:"nodes"`
	Error  string `json:"error,omitempty"`
	// Warnings are netboot.AddOS's (an nfsroot image without goldsync's
	// client piece).
	Warnings []string `json:"warnings,omitempty"`
}

// Run syncs the images of cfg: for each, in order, a pull from its golden
// node (or a rollback, see Options.RollbackTo), then the snapshots of the
// nodes of every OS booting it, then the OS's kernel and the nodes' boot
// files. A failed pull skips the image's other steps (a partial one does
// not); the other images go on. Unless DryRun, each image runs under its
// run lock (see TakeRunLock) and leaves a status record (see Status).
//
// Run returns a report even when images failed; the error joins each
// failed image's ("image NAME: ..."), the context's, and the metrics
// file's. Errors before any image ran (an unknown image name, a bad nodes
// file, a RollbackTo generation an image lacks) come with a nil report.
func Run(ctx context.Context, cfg *config.Config, o Options) (*Report, error) {
	images, err := SelectImages(cfg, o.Images)
	if err != nil {
		return nil, err
	}
	if o.RollbackTo > 0 {
		// A generation an image lacks is a bad argument: refused before
		// any image runs, so no image's status records a failure for it.
		for _, img := range images {
			if _, err := imaging.GenerationInfo(img.StateDir, o.RollbackTo); errors.Is(err, imaging.ErrNoGeneration) {
				return nil, stepErr(StepRollback, fmt.Errorf("image %s: %w (goldsync generations %s lists them)", img.Name, err, img.Name))
			}
		}
	}
	byOS, unclaimed, err := Nodes(cfg)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(unclaimed) > 0 {
		var hosts []string
		for _, n := range unclaimed {
			hosts = append(hosts, n.Host)
		}
		o.Logger.Warn("nodes no OS boots: their snapshots and boot files are left alone", "nodes", strings.Join(hosts, " "))
	}
	out := &Report{Config: cfg.Path, OK: true, DryRun: o.DryRun}
	var errs []error
	var runs []ImageMetrics
	// A replica that serves several of the images is logged in to once.
	masters := newRunMasters(o.Logger, images)
	defer masters.close()
	for _, img := range images {
		if ctx.Err() != nil {
			break
		}
		if o.ImageStart != nil {
			o.ImageStart(img)
		}
		j := &job{o: &o, cfg: cfg, img: img, byOS: byOS, masters: masters}
		r, rec := j.run(ctx)
		out.Images = append(out.Images, r)
		if r.Err != nil {
			out.OK = false
			errs = append(errs, fmt.Errorf("image %s: %w", r.Image, r.Err))
		}
		m := ImageMetrics{Image: r.Image, Result: r.PullResult, Err: r.Err}
		if rec != nil {
			m.LastSuccess = rec.LastSuccess
		}
		runs = append(runs, m)
		if o.ImageDone != nil {
			o.ImageDone(r)
		}
	}
	if o.MetricsFile != "" && !o.DryRun {
		if err := WriteMetrics(o.MetricsFile, runs, time.Now()); err != nil {
			out.OK = false
			errs = append(errs, stepErr(StepMetrics, fmt.Errorf("metrics file not written: %w", err)))
		}
	}
	if ctx.Err() != nil {
		out.OK = false
		errs = append(errs, ctx.Err())
	}
	return out, errors.Join(errs...)
}

// job is the run of one image.
type job struct {
	o    *Options
	cfg  *config.Config
	img  *config.Image
	byOS map[string][]snapshot.Node
	r    *ImageReport
	// rollbackGen is the generation step 1 rolled back to: its boot
	// record chooses the kernels step 3 installs.
	rollbackGen *imaging.Generation
	boot        []imaging.BootRecord // the kernels step 3 installed
	// kernels override the kernel of an OS (a replica's build: the
	// primary's rollback).
	kernels map[string]string
	// masters are the run's ssh masters to replicas shared by images.
	masters *runMasters
}

// fail records err as the image's error, with result.
func (j *job) fail(result string, err error) {
	r := j.r
	r.Err = err
	r.Error = err.Error()
	r.Result = result
	if errors.Is(err, imaging.ErrLocked) {
		r.Result = ResultLocked
	}
	if j.o.ExitCode != nil {
		r.ExitCode = j.o.ExitCode(err)
	}
}

// run runs the three steps for one image; every problem ends up in the
// report. It returns the status record it saved, if any.
func (j *job) run(ctx context.Context) (_ *ImageReport, rec *Record) {
	o, img := j.o, j.img
	start := time.Now()
	r := &ImageReport{Image: img.Name, Source: img.Source, Root: img.Root, DryRun: o.DryRun, Rollback: o.RollbackTo, built: map[string]time.Time{}}
	j.r = r
	defer func() { r.Seconds = time.Since(start).Seconds() }()

	if !o.DryRun {
		unlock, err := TakeRunLock(img.StateDir)
		if err != nil {
			j.fail(ResultFailed, stepErr(StepLock, err))
			return r, nil
		}
		defer unlock()
		// The status is written last, under the lock, whatever happened,
		// unless another process (a manual pull) held the image.
		defer func() {
			if r.Result == ResultLocked {
				return
			}
			var err error
			if rec, err = saveRecord(img, r, start, time.Now()); err != nil {
				o.Logger.Error("status not saved", "image", img.Name, "err", err)
			}
		}()
	}

	// 1. Pull.
	partial, err := j.pull(ctx)
	if err != nil {
		j.fail(ResultFailed, err)
		return r, nil
	}
	r.Result = ResultOK
	if partial != nil {
		r.Result = ResultPartial
	}
	if o.DryRun {
		if _, err := os.Stat(img.Root); errors.Is(err, fs.ErrNotExist) {
			r.Notes = append(r.Notes, "the image does not exist yet: snapshots and netboot files come after the first pull")
			j.done(partial)
			return r, nil
		}
	}

	// 1b. Replicas: before the primary's boot files, which route each
	// node to its replica or, when that one is down, here.
	var stepErrs error
	if err := j.replicas(ctx, partial); err != nil {
		stepErrs = err
	}

	// 2. Snapshots, then 3. netboot files, OS by OS.
	for _, sys := range j.cfg.OSOf(img.Name) {
		nodes := j.byOS[sys.Name]
		if len(nodes) == 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("OS %s: no node of %s boots it", sys.Name, j.cfg.Cluster.Nodes))
			continue
		}
		if err := j.snapshots(ctx, sys, nodes); err != nil {
			stepErrs = errors.Join(stepErrs, err)
			if !errors.Is(err, imaging.ErrPartial) {
				continue // boot files would point nodes at snapshots not built
			}
		}
		if err := j.netboot(ctx, sys, nodes); err != nil {
			stepErrs = errors.Join(stepErrs, err)
		}
	}
	if !o.DryRun && len(j.boot) > 0 && r.PullResult != nil && partial == nil && img.KeepGenerations >= 0 &&
		(r.PullResult.Generation != 0 || !r.changed) {
		// The image's generation records what its nodes boot, so a
		// rollback to it installs the same kernels: the run's, or the
		// newest when the run changed nothing (it still describes the
		// image). A partial run's image is no generation's.
		if err := imaging.SetGenerationBoot(img.StateDir, r.PullResult.Generation, j.boot); err != nil {
			o.Logger.Warn("generation: boot record not saved", "image", img.Name, "err", err)
		}
	}
	if stepErrs != nil {
		result := ResultFailed
		if onlyPartial(stepErrs) {
			result = ResultPartial
		}
		if partial != nil {
			// A partial pull's error comes first.
			stepErrs = errors.Join(partial, stepErrs)
		}
		j.fail(result, stepErrs)
		return r, nil
	}
	j.done(partial)
	return r, nil
}

// replicas brings the image's replicas up to date (see Replicate). A
// partial pull is no generation: the replicas keep the one they hold.
func (j *job) replicas(ctx context.Context, partial error) error {
	o, img := j.o, j.img
	switch {
	case len(img.Replicas) == 0 || o.NoReplicas:
		return nil
	case o.DryRun:
		j.r.Notes = append(j.r.Notes, fmt.Sprintf("replicas (%d): not updated in a dry run", len(img.Replicas)))
		return nil
	case partial != nil:
		j.r.Notes = append(j.r.Notes, "replicas not updated: the pull was partial, the image is no generation")
		return nil
	}
	kernels := map[string]string{}
	for _, sys := range j.cfg.OSOf(img.Name) {
		if k := j.rollbackGen.BootKernel(sys.Name); k != "" {
			kernels[sys.Name] = k
		}
	}
	reports, err := replicate(ctx, j.cfg, img, j.byOS, ReplicateOptions{Deadline: o.Deadline, ProgressTimeout: o.ProgressTimeout,
		Logger: o.Logger, ReplicaDone: o.ReplicaDone, kernels: kernels, masters: j.masters})
	j.r.Replicas = reports
	return err
}

// done ends an image whose steps succeeded, but for a partial pull.
func (j *job) done(partial error) {
	if partial != nil {
		j.fail(ResultPartial, partial)
	}
}

// onlyPartial reports whether every step error of err is a partial one.
func onlyPartial(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyPartial(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, imaging.ErrPartial)
}

// DeadlineErr wraps err with ctx's cause when it came from a deadline set
// by WithDeadline.
func DeadlineErr(ctx context.Context, err error) error {
	if err == nil || !errors.Is(context.Cause(ctx), ErrDeadline) {
		return err
	}
	return fmt.Errorf("%w: %w", context.Cause(ctx), err)
}

// WithDeadline returns ctx bounded by d (none when d <= 0); when d passes,
// its cause wraps ErrDeadline, and DeadlineErr says so.
func WithDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("%w (%v)", ErrDeadline, d))
}

// pull mirrors the golden node into the image. A partial pull is not an
// error: it is returned apart, and the other steps go on.
func (j *job) pull(ctx context.Context) (partial, err error) {
	o, img := j.o, j.img
	ctx, cancel := WithDeadline(ctx, o.Deadline)
	defer cancel()
	defer func() { err = DeadlineErr(ctx, err) }()
	if o.RollbackTo > 0 {
		return j.rollback(ctx)
	}
	source, err := remote.Open(ctx, img.Source, remote.Options{Serve: agent.InProcess,
		Rsh: img.Rsh, AgentPath: img.AgentPath, Streams: img.Streams, IdleTimeout: img.Timeout, Logger: o.Logger,
		ProgressTimeout: o.ProgressTimeout,
	})
	if err != nil {
		return nil, stepErr(StepConnect, err)
	}
	defer source.Close()
	opts := imaging.Options{
		Excludes: img.Excludes, DryRun: o.DryRun, NoDelete: img.NoDelete, MaxDelete: img.MaxDelete,
		StateDir: img.StateDir, Retention: img.Retention, Logger: o.Logger, Itemize: o.Itemize,
	}
	if img.KeepGenerations >= 0 {
		opts.Generations = &imaging.GenerationPolicy{Keep: img.KeepGenerations, KeepFor: img.KeepGenerationsFor, Source: img.Source}
	}
	if o.PullProgress != nil {
		update, done := o.PullProgress(img.Name)
		opts.Progress = update
		defer done()
	}
	res, err := imaging.Sync(ctx, source, img.Root, opts)
	j.result(img.Source, res, source, err)
	return j.pullErr(StepPull, res, err)
}

// result records a pull's or rollback's result in the report.
func (j *job) result(src string, res *imaging.Result, source imaging.Source, err error) {
	r := j.r
	r.PullResult = res
	if res == nil {
		return
	}
	s := SummarizePull(src, j.img.Root, j.o.DryRun, res, source, err)
	r.Pull = &s
	if res.Plan != nil {
		r.Planned = map[string]int{}
		for op := imaging.OpMkdir; op <= imaging.OpDirMeta; op++ {
			if n := res.Plan.Count(op); n > 0 {
				r.Planned[op.String()] = n
			}
		}
	}
	r.changed = !j.o.DryRun && res.Created+res.Updated+res.MetaOnly+res.Linked+res.Deleted > 0
}

// pullErr sorts a pull's or rollback's error: a partial one is returned
// as partial, the others as err, both as step's.
func (j *job) pullErr(step Step, res *imaging.Result, err error) (partial, _ error) {
	if err == nil {
		return nil, nil
	}
	err = stepErr(step, DescribeLocked(err, j.img.StateDir))
	if errors.Is(err, imaging.ErrPartial) && res != nil {
		return err, nil
	}
	return nil, err
}

// rollback is step 1 of a run that rolls back to a generation instead of
// pulling, so the snapshots and netboot files of the image's OS entries
// follow the rolled-back image.
func (j *job) rollback(ctx context.Context) (partial, err error) {
	o, img := j.o, j.img
	opts := imaging.Options{DryRun: o.DryRun, MaxDelete: -1, StateDir: img.StateDir, Retention: img.Retention,
		Logger: o.Logger, Itemize: o.Itemize}
	if img.KeepGenerations >= 0 {
		opts.Generations = &imaging.GenerationPolicy{}
	}
	if gen, err := imaging.GenerationInfo(img.StateDir, o.RollbackTo); err == nil {
		j.rollbackGen = gen
	}
	res, err := imaging.Rollback(ctx, img.Root, o.RollbackTo, imaging.RollbackOptions{Options: opts, Force: o.Force})
	j.result(fmt.Sprintf("generation %d", o.RollbackTo), res, nil, err)
	return j.pullErr(StepRollback, res, err)
}

// snapshots refreshes the snapshots of an OS's nodes.
func (j *job) snapshots(ctx context.Context, sys config.OS, nodes []snapshot.Node) error {
	o, r := j.o, j.r
	sr := SnapshotReport{OS: sys.Name, SnapshotDir: sys.SnapshotDir, Nodes: len(nodes)}
	defer func() { r.Snapshots = append(r.Snapshots, sr) }()
	items, err := snapshot.LoadLists(snapshot.LoadOptions{SnapshotDir: sys.SnapshotDir, DryRun: o.DryRun, Notice: o.Notice})
	if err != nil {
		sr.Error = err.Error()
		return stepErr(StepLists, fmt.Errorf("OS %s: snapshot lists: %w", sys.Name, err))
	}
	opts := snapshot.BuildOptions{ImageRoot: j.img.Root, SnapshotDir: sys.SnapshotDir, Nodes: nodes, Items: items,
		DryRun: o.DryRun, Logger: o.Logger, Itemize: o.ItemizeSnapshot}
	if o.BuildProgress != nil {
		update, done := o.BuildProgress(sys.Name)
		opts.Progress = update
		defer done()
	}
	res, err := snapshot.Build(ctx, opts)
	if res != nil {
		sr.Totals = res.Totals
		sr.Conflicts = len(res.Conflicts)
		now := time.Now()
		for _, n := range res.Nodes {
			if n.Error != "" || n.Failed > 0 {
				sr.Failed = append(sr.Failed, n.Node)
			} else if !o.DryRun {
				r.built[n.Node] = now
			}
		}
		for _, c := range res.Conflicts {
			sr.ConflictList = append(sr.ConflictList, fmt.Sprintf("%s: %s: %s", c.Node, c.Path, c.Why))
			o.Logger.Warn("snapshot conflict: the node's version is kept", "node", c.Node, "path", c.Path, "why", c.Why)
		}
		for _, p := range res.Problems {
			o.Logger.Warn("snapshot path not applied", "problem", p)
		}
	}
	if err != nil {
		sr.Error = err.Error()
		return stepErr(StepSnapshots, fmt.Errorf("OS %s: snapshots: %w", sys.Name, err))
	}
	return nil
}

// netboot installs the OS's kernel and writes its nodes' boot files.
func (j *job) netboot(ctx context.Context, sys config.OS, nodes []snapshot.Node) error {
	nr := NetbootReport{OS: sys.Name, Nodes: len(nodes), Kernel: sys.Kernel}
	defer func() { j.r.Netboot = append(j.r.Netboot, nr) }()
	if j.o.DryRun && j.o.RollbackTo != 0 {
		opts := AddOSOptions(j.cfg, sys)
		if k := j.rollbackGen.BootKernel(sys.Name); k != "" {
			opts.Kernel = k
		}
		rec, warnings, err := j.checkBoot(ctx, opts)
		nr.Warnings = warnings
		if err != nil {
			nr.Error = err.Error()
			return stepErr(StepNetboot, fmt.Errorf("OS %s: %w", sys.Name, err))
		}
		nr.Kernel = rec.Kernel
		return nil
	}
	if j.o.DryRun {
		return nil
	}
	tftp := j.cfg.Cluster.TFTPBoot
	if err := os.MkdirAll(tftp, 0o755); err != nil {
		nr.Error = err.Error()
		return stepErr(StepBootFiles, fmt.Errorf("OS %s: %w", sys.Name, err))
	}
	opts := AddOSOptions(j.cfg, sys)
	if k := j.rollbackGen.BootKernel(sys.Name); k != "" {
		opts.Kernel = k // the kernel the generation booted, not the config's
	}
	if k := j.kernels[sys.Name]; k != "" {
		opts.Kernel = k
	}
	rec, warnings, err := netboot.AddOS(ctx, opts)
	nr.Warnings = warnings
	if err != nil {
		nr.Error = err.Error()
		return stepErr(StepNetboot, fmt.Errorf("OS %s: %w", sys.Name, err))
	}
	nr.Kernel = rec.Kernel
	groups, err := j.routeGroups(rec, sys, nodes)
	if err != nil {
		nr.Error = err.Error()
		return stepErr(StepBootFiles, fmt.Errorf("OS %s: %w", sys.Name, err))
	}
	for _, g := range groups {
		if err := netboot.WriteNodeConfigs(tftp, g.rec, g.nodes, NodeOptions(sys.Netboot)); err != nil {
			nr.Error = err.Error()
			return stepErr(StepBootFiles, fmt.Errorf("OS %s: %w", sys.Name, err))
		}
	}
	j.boot = append(j.boot, imaging.BootRecord{OS: sys.Name, Kernel: rec.Kernel})
	return nil
}

// bootGroup is nodes booting one OS from one server.
type bootGroup struct {
	rec   netboot.OS
	nodes []snapshot.Node
}

// routeGroups splits an OS's nodes by the server they boot from (see
// Routes): the primary (rec as it is), or a replica (rec with its server
// and paths).
func (j *job) routeGroups(rec netboot.OS, sys config.OS, nodes []snapshot.Node) ([]bootGroup, error) {
	if len(j.img.Replicas) == 0 {
		return []bootGroup{{rec, nodes}}, nil
	}
	routes, err := Routes(j.cfg, map[string][]snapshot.Node{sys.Name: nodes})
	if err != nil {
		return nil, err
	}
	var groups []bootGroup
	at := map[string]int{}
	for _, n := range nodes {
		r := routes[n.Host]
		i, ok := at[r.Replica]
		if !ok {
			i = len(groups)
			at[r.Replica] = i
			g := bootGroup{rec: rec}
			if r.Replica != "" {
				g.rec = routeRecord(rec, r)
			}
			groups = append(groups, g)
		}
		groups[i].nodes = append(groups[i].nodes, n)
	}
	return groups, nil
}
