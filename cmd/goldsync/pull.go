package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/term"
	"github.com/goldsync/goldsync/internal/units"
)

// pullFlags are the rsync-like flags of a pull and a receive: the
// request they fill, and where its report goes.
type pullFlags struct {
	cluster.PullRequest
	itemize    bool
	stats      bool
	progress   bool
	noProgress bool
	gen        genFlags
}

// Defaults of a pull's flags, shown as such in --help and the man page.
const (
	defaultTimeout         = 60 * time.Second
	defaultProgressTimeout = 10 * time.Minute
)

func (f *pullFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.Excludes, "exclude", nil, "exclude paths matching `PATTERN` (rsync syntax; repeatable)")
	fl.StringArrayVar(&f.ExcludeFrom, "exclude-from", nil, "read exclude patterns from `FILE`, one a line")
	fl.BoolVar(&f.NoDefaultExcludes, "no-default-excludes", false, "copy /proc/*, /sys/*, /dev/*, /run/*, /tmp/*, /var/tmp/*, /var/lib/goldsync/* too when the source is a root (\"/\")")
	fl.BoolVarP(&f.DryRun, "dry-run", "n", false, "show what would change, change nothing")
	fl.BoolVarP(&f.itemize, "itemize-changes", "i", false, "print each change in rsync's itemized format")
	fl.IntVar(&f.MaxDelete, "max-delete", 0, "refuse a run deleting more than `N` entries (default: half the image's entries, at least 100; 0: delete nothing, warn only, as rsync; -1: no limit)")
	fl.BoolVar(&f.NoDelete, "no-delete", false, "keep image entries the golden node no longer has")
	fl.StringVar(&f.StateDir, "state-dir", "", "manifest, lock and retention `DIR` (default: .<image>.goldsync beside the image)")
	fl.DurationVar(&f.Retention, "retention", cluster.DefaultRetention, "keep replaced files linked for NFS clients this long (0 or negative: off)")
	fl.StringVarP(&f.Rsh, "rsh", "e", "ssh", "remote shell `COMMAND` to reach the golden node, as rsync's -e")
	fl.StringVar(&f.AgentPath, "agent-path", "", "goldsync-agent `PATH` on the golden node (default: look it up, upload if missing)")
	fl.IntVar(&f.Streams, "streams", 1, "parallel transfer streams (ssh connections), 1 to 64")
	fl.BoolVar(&f.stats, "stats", false, "print transfer statistics")
	fl.BoolVar(&f.progress, "progress", false, "show progress even when stderr is not a terminal (one plain line a phase)")
	fl.BoolVar(&f.noProgress, "no-progress", false, "never show progress")
	fl.BoolVar(&f.Fsync, "fsync", false, "fsync each file before it is renamed into place")
	fl.Var(units.NewSeconds(&f.Timeout, defaultTimeout), "timeout", "fail when the peer sends nothing for this long: seconds as rsync (600) or a duration (10m); 0: never, as rsync")
	fl.StringVar(&f.MetricsFile, "metrics-file", "", "write Prometheus text metrics to `FILE` (node_exporter textfile collector)")
	fl.BoolVar(&f.FullScan, "full-scan", false, "scan the whole golden tree even when the agent's change journal could say what changed")
	fl.Var(units.NewSeconds(&f.ProgressTimeout, defaultProgressTimeout), "progress-timeout", "fail when the peer sends only keepalives for this long while it owes an answer: seconds or a duration (negative: never)")
	fl.Var(units.NewSeconds(&f.Deadline, cluster.DefaultDeadline), "deadline", "give up on the whole run (and release the image's lock) after this long: seconds or a duration (0 or negative: never)")
	fl.Int64Var(&f.MaxListBytes, "max-list-bytes", 0, "refuse a golden tree whose entry list would hold more than `N` bytes of paths, targets and xattrs (0: 1 GiB, about 3 million entries)")
	registerRsyncNoOps(fl)
	f.gen.register(cmd, 10)
}

// request is the request of the flags for src (the generations' source)
// into dest, with what only the command line can say (whether
// --max-delete and --delete were given), the logger and the warnings.
func (f *pullFlags) request(cmd *cobra.Command, g *globalFlags, src, dest string) cluster.PullRequest {
	r := f.PullRequest
	r.Source, r.Dest, r.Generations = src, dest, f.gen.policy(src)
	r.MaxDeleteSet, r.DeleteSet = cmd.Flags().Changed("max-delete"), cmd.Flags().Changed("delete")
	r.Logger = g.logger(os.Stderr)
	r.Warn = func(w string) { fmt.Fprintf(os.Stderr, "goldsync: warning: %s\n", w) }
	return r
}

func newPullCmd(g *globalFlags) *cobra.Command {
	f := &pullFlags{}
	cmd := &cobra.Command{
		Use:   "pull [flags] SRC DEST",
		Short: "mirror a golden node's tree into an image",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := f.request(cmd, g, args[0], args[1])
			if f.itemize || (f.DryRun && !g.jsonOut) {
				r.Itemize = func(c imaging.Change) { printf("%s\n", c) }
			}
			prog := term.NewProgress(os.Stderr, f.progress, f.noProgress || g.quiet || g.jsonOut)
			r.Progress = prog.Update
			s, err := r.Pull(cmd.Context())
			prog.Done()
			err = exitcode.Pull(cmd.Context(), err)
			if s == nil {
				// Failed before a result: --json still prints one.
				return jsonFailure(g, cmd.Context(), err)
			}
			if g.jsonOut {
				_ = printJSON(s)
				return err
			}
			s.WriteReport(cluster.PullReport{Out: stdout, Err: os.Stderr, Quiet: g.quiet, Full: f.stats || g.verbose > 0 || f.DryRun,
				ProgressShown: prog.Shown(), KeptDeletes: r.KeepsDeletes()})
			return err
		},
	}
	f.register(cmd)
	return cmd
}
