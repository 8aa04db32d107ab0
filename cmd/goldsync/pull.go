package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/term"
	"github.com/goldsync/goldsync/remote"
)

// pullFlags are the rsync-like flags of a pull.
type pullFlags struct {
	excludes    []string
	excludeFrom []string
	reported    bool // a result was printed
	itemize     bool
	rsh         string
	agentPath   string
	streams     int
	stats       bool
	progress    bool
	noProgress  bool
	timeout     time.Duration
	metricsFile string
	fullScan    bool
	progressTO  time.Duration
	deadline    time.Duration
	dest        string // receive --image: the image's root, from the config
	gen         genFlags
	cluster.PullSettings
}

// Defaults of a pull's flags, shown as such in --help and the man page.
const (
	defaultRetention       = 24 * time.Hour
	defaultTimeout         = 60 * time.Second
	defaultProgressTimeout = 10 * time.Minute
)

func (f *pullFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.excludes, "exclude", nil, "exclude paths matching `PATTERN` (rsync syntax; repeatable)")
	fl.StringArrayVar(&f.excludeFrom, "exclude-from", nil, "read exclude patterns from `FILE`, one a line")
	fl.BoolVar(&f.NoDefaultExcludes, "no-default-excludes", false, "copy /proc/*, /sys/*, /dev/*, /run/*, /tmp/*, /var/tmp/*, /var/lib/goldsync/* too when the source is a root (\"/\")")
	fl.BoolVarP(&f.DryRun, "dry-run", "n", false, "show what would change, change nothing")
	fl.BoolVarP(&f.itemize, "itemize-changes", "i", false, "print each change in rsync's itemized format")
	fl.IntVar(&f.MaxDelete, "max-delete", 0, "refuse a run deleting more than `N` entries (default: half the image's entries, at least 100; 0: delete nothing, warn only, as rsync; -1: no limit)")
	fl.BoolVar(&f.NoDelete, "no-delete", false, "keep image entries the golden node no longer has")
	fl.StringVar(&f.StateDir, "state-dir", "", "manifest, lock and retention `DIR` (default: .<image>.goldsync beside the image)")
	fl.DurationVar(&f.Retention, "retention", defaultRetention, "keep replaced files linked for NFS clients this long (0 or negative: off)")
	fl.StringVarP(&f.rsh, "rsh", "e", "ssh", "remote shell `COMMAND` to reach the golden node, as rsync's -e")
	fl.StringVar(&f.agentPath, "agent-path", "", "goldsync-agent `PATH` on the golden node (default: look it up, upload if missing)")
	fl.IntVar(&f.streams, "streams", 1, "parallel transfer streams (ssh connections)")
	fl.BoolVar(&f.stats, "stats", false, "print transfer statistics")
	fl.BoolVar(&f.progress, "progress", false, "show progress even when stderr is not a terminal (one plain line a phase)")
	fl.BoolVar(&f.noProgress, "no-progress", false, "never show progress")
	fl.BoolVar(&f.Fsync, "fsync", false, "fsync each file before it is renamed into place")
	secondsVar(fl, &f.timeout, "timeout", defaultTimeout, "fail when the peer sends nothing for this long: seconds as rsync (600) or a duration (10m); 0: never, as rsync")
	fl.StringVar(&f.metricsFile, "metrics-file", "", "write Prometheus text metrics to `FILE` (node_exporter textfile collector)")
	fl.BoolVar(&f.fullScan, "full-scan", false, "scan the whole golden tree even when the agent's change journal could say what changed")
	secondsVar(fl, &f.progressTO, "progress-timeout", defaultProgressTimeout, "fail when the peer sends only keepalives for this long while it owes an answer: seconds or a duration (negative: never)")
	secondsVar(fl, &f.deadline, "deadline", cluster.DefaultDeadline, "give up on the whole run (and release the image's lock) after this long: seconds or a duration (0 or negative: never)")
	fl.Int64Var(&f.MaxListBytes, "max-list-bytes", 0, "refuse a golden tree whose entry list would hold more than `N` bytes of paths, targets and xattrs (0: 1 GiB, about 3 million entries)")
	registerRsyncNoOps(fl)
	f.gen.register(cmd, 10)
}

// settle reads what only the command line can say (whether --max-delete
// and --delete were given) and checks flags that exclude each other.
func (f *pullFlags) settle(cmd *cobra.Command) error {
	f.MaxDeleteSet, f.DeleteSet = cmd.Flags().Changed("max-delete"), cmd.Flags().Changed("delete")
	switch {
	case f.timeout < 0:
		return exitcode.With(exitcode.Usage, fmt.Errorf("--timeout %s: want 0 (no timeout, as rsync) or more", f.timeout))
	case f.timeout == 0:
		f.timeout = noTimeout
	}
	return exitcode.With(exitcode.Usage, f.Check())
}

// noTimeout is --timeout 0: as rsync, no idle timeout (a century; the
// protocol takes zero for its own default).
const noTimeout = 100 * 365 * 24 * time.Hour

// excludePatterns are the checked patterns of --exclude and
// --exclude-from (exclude.Gather): a bad one is a usage error.
func (f *pullFlags) excludePatterns() ([]string, error) {
	out, err := exclude.Gather(f.excludes, f.excludeFrom)
	return out, exitcode.With(exitcode.Usage, err)
}

// checkFirstPull refuses a first pull that would delete DEST's contents
// without --delete (cluster.PullSettings.CheckFirstPull).
func (f *pullFlags) checkFirstPull(dest string, opts imaging.Options) error {
	warning, err := f.CheckFirstPull(dest, opts)
	if warning != "" {
		fmt.Fprintf(os.Stderr, "goldsync: warning: %s\n", warning)
	}
	if errors.Is(err, imaging.ErrNotImage) {
		return exitcode.With(exitcode.MaxDelete, err)
	}
	return exitcode.With(exitcode.Select, err)
}

func newPullCmd(g *globalFlags) *cobra.Command {
	f := &pullFlags{}
	cmd := &cobra.Command{
		Use:   "pull [flags] SRC DEST",
		Short: "mirror a golden node's tree into an image",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := runPull(cmd, g, f, args[0], args[1])
			if err != nil && !f.reported {
				// Failed before a result: --json still prints one.
				return jsonFailure(g, cmd.Context(), err)
			}
			return err
		},
	}
	f.register(cmd)
	return cmd
}

func runPull(cmd *cobra.Command, g *globalFlags, f *pullFlags, src, dest string) (err error) {
	// Everything the command line can get wrong is checked before the
	// source is contacted or DEST and its state dir are created.
	if err := f.settle(cmd); err != nil {
		return err
	}
	excludes, err := f.excludePatterns()
	if err != nil {
		return err
	}
	root, err := cluster.CheckSource(src)
	if err != nil {
		return err
	}
	if err := cluster.CheckDest(dest); err != nil {
		return err
	}
	opts := f.Options(excludes, root)
	if err := cluster.CheckOverlap(src, dest, f.StateDir, opts.Excludes); err != nil {
		return err
	}
	if err := f.checkFirstPull(dest, opts); err != nil {
		return err
	}
	ctx, cancel := cluster.WithDeadline(cmd.Context(), f.deadline)
	defer cancel()
	defer func() { err = exitcode.Deadline(ctx, err) }()
	log := g.logger(os.Stderr)
	source, err := remote.Open(ctx, src, remote.Options{Serve: agent.InProcess,
		Rsh: f.rsh, AgentPath: f.agentPath, Streams: f.streams, Logger: log, IdleTimeout: f.timeout, MaxListBytes: f.MaxListBytes,
		ProgressTimeout: f.progressTO,
	})
	if err != nil {
		return exitcode.Connect(err)
	}
	defer source.Close()
	opts.Logger = log
	opts.Incremental = !f.fullScan
	opts.Generations = f.gen.policy(src)
	if f.itemize || (f.DryRun && !g.jsonOut) {
		opts.Itemize = func(c imaging.Change) { printf("%s\n", c) }
	}
	prog := term.NewProgress(os.Stderr, f.progress, f.noProgress || g.quiet || g.jsonOut)
	opts.Progress = prog.Update
	res, err := imaging.Sync(ctx, source, dest, opts)
	prog.Done()
	if res != nil {
		report(g, f, src, dest, res, source, err, prog.Shown())
		f.reported = true
	}
	if f.metricsFile != "" {
		if merr := writeMetrics(f.metricsFile, dest, res, err); merr != nil {
			log.Error("metrics file", "err", merr)
		}
	}
	if err != nil {
		return exitcode.Sync(err)
	}
	return nil
}

func report(g *globalFlags, f *pullFlags, src, dest string, res *imaging.Result, source imaging.Source, err error, progressShown bool) {
	s := cluster.SummarizePull(src, dest, f.DryRun, res, source, err)
	if g.jsonOut {
		_ = printJSON(s)
		return
	}
	s.WriteReport(cluster.PullReport{Out: stdout, Err: os.Stderr, Quiet: g.quiet, Full: f.stats || g.verbose > 0 || f.DryRun,
		ProgressShown: progressShown, KeptDeletes: f.KeepsDeletes()})
}
