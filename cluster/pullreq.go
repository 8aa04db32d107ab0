package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/imaging/proto"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/units"
	"github.com/goldsync/goldsync/internal/version"
	"github.com/goldsync/goldsync/remote"
)

// noTimeout is an idle timeout of zero asked for on a command line: as
// rsync's --timeout 0, none (a century; the protocol takes zero for its
// own default).
const noTimeout = 100 * 365 * 24 * time.Hour

// DefaultRetention is how long replaced files stay linked for NFS
// clients when nothing says otherwise (a config's zero retention too).
const DefaultRetention = 24 * time.Hour

// PullRequest is the job of goldsync pull (Pull: a golden tree into an
// image directory) and goldsync receive (Receive: a push from a golden
// node's agent), as their rsync-like command lines ask for it. Its
// errors are *StepError: StepConfig and StepExcludes for what the
// command line got wrong, StepConnect for starting the source,
// StepHandshake for a pushing agent's handshake, StepPull for
// imaging.Sync; the checks of CheckSource, CheckDest and CheckOverlap
// wrap ErrSelection; a first pull refused (PullSettings.CheckFirstPull)
// also wraps imaging.ErrGuard, the other errors of that check are
// StepImage's. A run stopped by Deadline wraps ErrDeadline.
type PullRequest struct {
	PullSettings
	// Source is the golden tree ([user@]host:/path or a directory; a
	// receive's is the agent), Dest the image's root.
	Source, Dest string
	// Excludes are patterns, ExcludeFrom files of more, one a line
	// (exclude.Gather).
	Excludes, ExcludeFrom []string
	// Rsh, AgentPath and Streams reach the source (remote.Options);
	// Streams is 1 to config.MaxStreams, 0 meaning 1.
	Rsh, AgentPath string
	Streams        int
	// Timeout fails a run whose peer sends nothing for this long; zero
	// means never, as rsync's --timeout 0, and a negative one is an error.
	Timeout time.Duration
	// ProgressTimeout is remote.Options.ProgressTimeout.
	ProgressTimeout time.Duration
	// Deadline gives up on the whole run (releasing the image's lock)
	// after this long; zero or negative means never.
	Deadline time.Duration
	// FullScan scans the whole golden tree even when the agent's change
	// journal could say what changed.
	FullScan bool
	// Generations is the run's generation policy; nil records none.
	Generations *imaging.GenerationPolicy
	// MetricsFile, when set, receives the run's Prometheus metrics
	// (WriteMetrics); an error writing it is logged, not returned.
	MetricsFile string
	// ConfigExcludes says Excludes are an image's from the config, which
	// holds the default excludes already (receive --image): Receive adds
	// none.
	ConfigExcludes bool

	// Logger receives the libraries' logs; nil discards them.
	Logger *slog.Logger
	// Warn is told what is wrong but not an error (a dry run's first pull
	// into a directory goldsync never pulled into); nil discards it.
	Warn func(string)
	// Itemize and Progress are imaging.Options'.
	Itemize  func(imaging.Change)
	Progress func(imaging.Progress)
	// Grown, when set, is called once by Receive when the push stops
	// being small: the agent has listed more than SmallEntries entries,
	// or files are asked of it for more than SmallBytes in all. goldsync
	// receive starts in gctune.SmallRun (a replica's update is a few
	// hundred entries) and leaves it then.
	Grown func()
}

// The bounds of a small push (PullRequest.Grown).
const (
	SmallEntries = 4096
	SmallBytes   = 64 << 20
)

// growWatch is the source of a Receive with a Grown hook: it calls grown
// once when the push passes SmallEntries entries or SmallBytes of files.
type growWatch struct {
	imaging.Source
	grown          func()
	once           sync.Once
	entries, bytes atomic.Int64
}

func (g *growWatch) Scan(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
	return g.Source.Scan(ctx, req, func(e *tree.Entry) error {
		if g.entries.Add(1) == SmallEntries+1 {
			g.once.Do(g.grown)
		}
		return fn(e)
	})
}

func (g *growWatch) Fetch(ctx context.Context, reqs []*imaging.FetchRequest, open func(*imaging.FetchRequest) (imaging.ContentSink, error)) error {
	var n int64
	for _, r := range reqs {
		n += max(r.Entry.Size, 0)
	}
	if g.bytes.Add(n) > SmallBytes {
		g.once.Do(g.grown)
	}
	return g.Source.Fetch(ctx, reqs, open)
}

// settle checks what the command line can get wrong in itself and
// returns the exclude patterns.
func (r *PullRequest) settle() ([]string, error) {
	switch {
	case r.Timeout < 0:
		return nil, stepErr(StepConfig, fmt.Errorf("--timeout %s: want 0 (no timeout, as rsync) or more", r.Timeout))
	case r.Timeout == 0:
		r.Timeout = noTimeout
	}
	if err := r.Check(); err != nil {
		return nil, stepErr(StepConfig, err)
	}
	excludes, err := exclude.Gather(r.Excludes, r.ExcludeFrom)
	if err != nil {
		return nil, stepErr(StepExcludes, err)
	}
	return excludes, nil
}

// options are the engine's options of the request; root says the source
// is a whole root.
func (r *PullRequest) options(excludes []string, root bool) imaging.Options {
	opts := r.Options(excludes, root)
	opts.Logger, opts.Itemize, opts.Progress, opts.Generations = r.Logger, r.Itemize, r.Progress, r.Generations
	return opts
}

// Pull mirrors Source into Dest. Everything the request can get wrong is
// checked before the source is contacted or Dest and its state dir are
// made. The summary is nil when the run failed before a result.
func (r PullRequest) Pull(ctx context.Context) (*PullSummary, error) {
	opts, err := r.check()
	if err != nil {
		return nil, err
	}
	ctx, cancel := WithDeadline(ctx, r.Deadline)
	defer cancel()
	opts.Incremental = !r.FullScan
	// Once the content is in, the golden node's agent says goodbye (and
	// saves its hash cache) while the image's last steps run (issue 14).
	var release func()
	opts.SourceDone = func() {
		if release != nil {
			release()
		}
	}
	// The destination's walk starts while the remote shell logs in
	// (nothing is changed before the source is connected; nil: Sync
	// does it all).
	early := imaging.StartEarly(ctx, r.Dest, opts)
	source, err := remote.Open(ctx, r.Source, remote.Options{Serve: agent.InProcess, Rsh: r.Rsh, AgentPath: r.AgentPath,
		Streams: r.Streams, Logger: r.Logger, IdleTimeout: r.Timeout, MaxListBytes: r.MaxListBytes, ProgressTimeout: r.ProgressTimeout})
	if err != nil {
		early.Close()
		return nil, DeadlineErr(ctx, stepErr(StepConnect, err))
	}
	defer source.Close()
	if rs, ok := source.(interface{ Release() }); ok {
		release = rs.Release
	}
	var res *imaging.Result
	if early != nil {
		res, err = early.Sync(ctx, source)
	} else {
		res, err = imaging.Sync(ctx, source, r.Dest, opts)
	}
	var s *PullSummary
	if res != nil {
		sum := SummarizePull(r.Source, r.Dest, r.DryRun, res, source, err)
		s = &sum
	}
	if r.MetricsFile != "" {
		if merr := WriteMetrics(r.MetricsFile, []ImageMetrics{{Image: r.Dest, Result: res, Err: err}}, time.Now()); merr != nil && r.Logger != nil {
			r.Logger.Error("metrics file", "err", merr)
		}
	}
	return s, DeadlineErr(ctx, stepErr(StepPull, err))
}

// check runs Pull's checks in order and returns the engine's options.
func (r *PullRequest) check() (imaging.Options, error) {
	if r.Streams < 0 || r.Streams > config.MaxStreams {
		return imaging.Options{}, stepErr(StepConfig, fmt.Errorf("--streams %d: want 1 to %d", r.Streams, config.MaxStreams))
	}
	excludes, err := r.settle()
	if err != nil {
		return imaging.Options{}, err
	}
	root, err := CheckSource(r.Source)
	if err != nil {
		return imaging.Options{}, err
	}
	if err := CheckDest(r.Dest); err != nil {
		return imaging.Options{}, err
	}
	opts := r.options(excludes, root)
	if err := CheckOverlap(r.Source, r.Dest, r.StateDir, opts.Excludes); err != nil {
		return opts, err
	}
	return opts, r.checkFirstPull(opts)
}

// checkFirstPull is PullSettings.CheckFirstPull with the request's
// warning and errors.
func (r *PullRequest) checkFirstPull(opts imaging.Options) error {
	warning, err := r.CheckFirstPull(r.Dest, opts)
	if warning != "" && r.Warn != nil {
		r.Warn(warning)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, imaging.ErrNotImage):
		return kindError{imaging.ErrGuard, err}
	}
	return stepErr(StepImage, err)
}

// Receive applies a push from a golden node's agent, which speaks the
// protocol on rw, into Dest, and confirms it to the agent (unless
// DryRun). Source names the push in the generation it records. The
// request is checked before Dest or its state dir is made. The result is
// nil when the run failed before one.
func (r PullRequest) Receive(ctx context.Context, rw io.ReadWriteCloser) (*imaging.Result, error) {
	// A push serves a golden node's root: the default excludes apply
	// unless turned off, or the config's excludes hold them.
	excludes, err := r.settle()
	if err != nil {
		return nil, err
	}
	opts := r.options(excludes, !r.ConfigExcludes)
	if err := CheckDest(r.Dest); err != nil {
		return nil, err
	}
	ctx, cancel := WithDeadline(ctx, r.Deadline)
	defer cancel()
	client, err := proto.NewClient(ctx, rw, ".", proto.ClientOptions{Software: version.ServerPrefix + version.Stamp(),
		IdleTimeout: r.Timeout, ProgressTimeout: r.ProgressTimeout, MaxListBytes: r.MaxListBytes, Logger: r.Logger})
	if err != nil {
		return nil, DeadlineErr(ctx, stepErr(StepHandshake, err))
	}
	defer client.Close()
	opts.Incremental = true
	var src imaging.Source = client
	if r.Grown != nil {
		src = &growWatch{Source: client, grown: r.Grown}
	}
	res, err := imaging.Sync(ctx, src, r.Dest, opts)
	if err == nil && !r.DryRun {
		if aerr := client.Ack(ctx, res.Token); aerr != nil {
			err = fmt.Errorf("confirm to the agent: %w", aerr)
		}
	}
	return res, DeadlineErr(ctx, stepErr(StepPull, err))
}

// ReceiveLine is the one line goldsync receive says about a push into
// dest, ending with the CPU time (user + system) and the peak resident
// memory this process has used so far: the primary's replica report
// carries the line, so what an update cost the replica is known without
// a measuring wrapper around the receiver.
func ReceiveLine(dest string, res *imaging.Result) string {
	line := fmt.Sprintf("goldsync receive: %s: %d entries scanned, %d created, %d updated, %d metadata only, %d deleted, %s received, %.3fs",
		dest, res.Entries, res.Created, res.Updated, res.MetaOnly, res.Deleted, units.Bytes(res.BytesReceived), res.Duration.Seconds())
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		line += fmt.Sprintf(", cpu %.3fs, peak %s", cpu.Seconds(), units.Bytes(ru.Maxrss*1024))
	}
	return line
}

// ReceiveImage is the request of receive --image name: the config's
// image, with its settings (the restricted mode of a forced command in
// authorized_keys, where nothing the client chose counts). An image the
// config does not have is a StepConfig error wrapping ErrNoImage.
func ReceiveImage(cfg *config.Config, name string) (PullRequest, error) {
	img, ok := cfg.Image(name)
	if !ok {
		return PullRequest{}, noImage("no image %q in %s", name, cfg.Path)
	}
	r := PullRequest{Dest: img.Root, Excludes: img.Excludes, Timeout: img.Timeout, Deadline: DefaultDeadline,
		ConfigExcludes: true, Generations: &imaging.GenerationPolicy{Source: "push"},
		PullSettings: PullSettings{StateDir: img.StateDir, MaxDelete: img.MaxDelete, NoDelete: img.NoDelete, Retention: img.Retention}}
	if r.Retention == 0 {
		r.Retention = DefaultRetention // the config's zero is the default
	}
	return r, nil
}
