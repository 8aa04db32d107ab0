package main

import (
	"context"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/term"
	"github.com/goldsync/goldsync/internal/units"
)

// newClusterCmds returns the config-driven commands: sync, status, verify,
// and the hidden man page generator.
func newClusterCmds(g *globalFlags) []*cobra.Command {
	return []*cobra.Command{newSyncCmd(g), newStatusCmd(g), newVerifyCmd(g), newManCmd()}
}

// loadConfig loads the --config file, or the default one; its errors
// are usage errors.
func loadConfig(g *globalFlags) (*config.Config, error) {
	c, err := config.Load(g.config)
	return c, exitcode.With(exitcode.Usage, err)
}

// jsonFailure prints the --json result object of a command that failed
// before it printed a report of its own (exitcode.FailureOf), so a
// script reading stdout always gets one.
func jsonFailure(g *globalFlags, ctx context.Context, err error) error {
	if f := exitcode.FailureOf(ctx, err); f != nil && g.jsonOut {
		_ = printJSON(f)
	}
	return err
}

// ---- sync ----------------------------------------------------------------

type syncFlags struct {
	dryRun      bool
	itemize     bool
	metricsFile string
	deadline    time.Duration
	progressTO  time.Duration
	// rollbackTo, when set, makes step 1 a rollback of the image to this
	// generation instead of a pull (goldsync rollback NAME GEN); force is
	// its --force.
	rollbackTo int64
	force      bool
}

func newSyncCmd(g *globalFlags) *cobra.Command {
	f := &syncFlags{}
	cmd := &cobra.Command{
		Use:   "sync [flags] [IMAGE]...",
		Short: "the nightly job: pull each image, refresh its node snapshots and netboot files",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSync(cmd.Context(), g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "show what would change, change nothing")
	fl.BoolVarP(&f.itemize, "itemize-changes", "i", false, "print each change in rsync's itemized format")
	fl.DurationVar(&f.deadline, "deadline", cluster.DefaultDeadline, "give up on an image's pull (releasing its lock; the other images go on) after this long (0 or negative: never)")
	fl.Var(units.NewSeconds(&f.progressTO, 0), "progress-timeout", "fail an image whose golden node sends only keepalives for this long: seconds or a duration (default 10m; negative: never)")
	fl.StringVar(&f.metricsFile, "metrics-file", "", "write Prometheus text metrics of every image to `FILE` (node_exporter textfile collector)")
	return cmd
}

func runSync(ctx context.Context, g *globalFlags, f *syncFlags, names []string) error {
	cfg, err := loadConfig(g)
	if err != nil {
		return jsonFailure(g, ctx, err)
	}
	// On a terminal, or when asked, talk; under cron keep warnings until
	// the run is known to have failed.
	c := &cluster.Console{Out: stdout, Err: os.Stderr, Interactive: term.IsTerminal(os.Stdout) || g.verbose > 0,
		Quiet: g.quiet, JSON: g.jsonOut, DryRun: f.dryRun, Itemize: f.itemize}
	o := cluster.Options{
		Images: names, DryRun: f.dryRun, Deadline: f.deadline, ProgressTimeout: f.progressTO,
		RollbackTo: f.rollbackTo, Force: f.force, MetricsFile: f.metricsFile, Logger: g.logger(c.Log()),
		ExitCode: func(err error) int { return exitcode.Cluster(ctx, err) },
	}
	c.Hooks(&o)
	rep, err := cluster.Run(ctx, cfg, o)
	if rep == nil {
		return jsonFailure(g, ctx, exitcode.ClusterErr(ctx, err))
	}
	if g.jsonOut {
		printJSON(rep)
	}
	if err == nil {
		return nil
	}
	c.Flush()
	return exitcode.Run(ctx, rep, err)
}
