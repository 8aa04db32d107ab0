package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/term"
	"github.com/goldsync/goldsync/snapshot"
)

// newClusterCmds returns the config-driven commands: sync, status, verify,
// and the hidden man page generator.
func newClusterCmds(g *globalFlags) []*cobra.Command {
	return []*cobra.Command{newSyncCmd(g), newStatusCmd(g), newVerifyCmd(g), newManCmd()}
}

// errNoConfig is wrapped by loadConfig's error when the config file does
// not exist: only then do commands hint at the flags that replace it.
var errNoConfig = errors.New("no config file")

// loadConfig loads the --config file, or the default one.
func loadConfig(g *globalFlags) (*config.Config, error) {
	path := g.config
	if path == "" {
		path = config.DefaultPath
	}
	c, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("%w %s: write one (see goldsync.toml.example) or name it with --config", errNoConfig, path))
	}
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, err)
	}
	return c, nil
}

// jsonFailure prints the --json result object of a command that failed
// before it printed a report of its own (a silent error has), so a script
// reading stdout always gets one.
func jsonFailure(g *globalFlags, ctx context.Context, err error) error {
	var ee *exitcode.Error
	if err == nil || !g.jsonOut || (errors.As(err, &ee) && ee.Silent) {
		return err
	}
	code := exitcode.Of(ctx, err)
	printJSON(map[string]any{"ok": false, "error": err.Error(), "exit_code": code})
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
	fl.DurationVar(&f.progressTO, "progress-timeout", 0, "fail an image whose golden node sends only keepalives for this long (default 10m; negative: never)")
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
	interactive := term.IsTerminal(os.Stdout) || g.verbose > 0
	var held bytes.Buffer
	logTo := io.Writer(os.Stderr)
	if !interactive {
		logTo = &term.LockedWriter{W: &held}
	}
	talk := interactive && !g.quiet && !g.jsonOut
	showItems := f.itemize || (f.dryRun && !g.jsonOut)
	o := cluster.Options{
		Images: names, DryRun: f.dryRun, Deadline: f.deadline, ProgressTimeout: f.progressTO,
		RollbackTo: f.rollbackTo, Force: f.force, MetricsFile: f.metricsFile, Logger: g.logger(logTo),
		ExitCode: func(err error) int { return exitcode.Cluster(ctx, err) },
		ImageStart: func(img *config.Image) {
			if talk || (f.dryRun && !g.jsonOut) {
				printf("== image %s: %s -> %s\n", img.Name, img.Source, img.Root)
			}
		},
		ImageDone: func(r *cluster.ImageReport) {
			if !g.jsonOut && r.Result != cluster.ResultLocked && (talk || f.dryRun || r.Err != nil || r.HasConflicts()) {
				// A failure under cron goes to stderr.
				w := stdout
				if r.Err != nil && !talk && !f.dryRun {
					w = os.Stderr
				}
				_ = r.WriteText(w)
			}
		},
		PullProgress: func(string) (func(imaging.Progress), func()) {
			prog := term.NewProgress(os.Stderr, false, !talk)
			return prog.Update, prog.Done
		},
		BuildProgress: func(string) (func(snapshot.BuildProgress), func()) {
			return buildCounter(talk && term.IsTerminal(os.Stderr))
		},
		Notice: func(msg string) {
			if talk {
				fmt.Fprintf(os.Stderr, "goldsync: notice: %s\n", msg)
			}
		},
	}
	if showItems {
		o.Itemize = func(c imaging.Change) { printf("%s\n", c) }
		o.ItemizeSnapshot = func(node string, c imaging.Change) { printf("%s %s\n", node, c) }
	}
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
	if held.Len() > 0 {
		os.Stderr.Write(held.Bytes())
	}
	return exitcode.Run(ctx, rep, err)
}
