package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/proto"
	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/remote"
)

// pullFlags are the rsync-like flags of a pull.
type pullFlags struct {
	excludes    []string
	excludeFrom []string
	dryRun      bool
	itemize     bool
	maxDelete   int
	noDelete    bool
	stateDir    string
	retention   time.Duration
	rsh         string
	agentPath   string
	streams     int
	stats       bool
	progress    bool
	noProgress  bool
	fsync       bool
	timeout     time.Duration
	metricsFile string
	fullScan    bool
	maxList     int64
	progressTO  time.Duration
	deadline    time.Duration
	dest        string // receive --image: the image's root, from the config
	gen         genFlags
}

func (f *pullFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.excludes, "exclude", nil, "exclude paths matching `PATTERN` (rsync syntax; repeatable)")
	fl.StringArrayVar(&f.excludeFrom, "exclude-from", nil, "read exclude patterns from `FILE`, one a line")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "show what would change, change nothing")
	fl.BoolVarP(&f.itemize, "itemize-changes", "i", false, "print each change in rsync's itemized format")
	fl.IntVar(&f.maxDelete, "max-delete", 0, "refuse a run deleting more than `N` entries (0: half the image, -1: no limit)")
	fl.BoolVar(&f.noDelete, "no-delete", false, "keep image entries the golden node no longer has")
	fl.StringVar(&f.stateDir, "state-dir", "", "manifest, lock and retention `DIR` (default: .<image>.goldsync beside the image)")
	fl.DurationVar(&f.retention, "retention", 0, "keep replaced files linked for NFS clients this long (default 24h; negative: off)")
	fl.StringVarP(&f.rsh, "rsh", "e", "ssh", "remote shell `COMMAND` to reach the golden node, as rsync's -e")
	fl.StringVar(&f.agentPath, "agent-path", "", "goldsync-agent `PATH` on the golden node (default: look it up, upload if missing)")
	fl.IntVar(&f.streams, "streams", 1, "parallel transfer streams (ssh connections)")
	fl.BoolVar(&f.stats, "stats", false, "print transfer statistics")
	fl.BoolVar(&f.progress, "progress", false, "show progress even when stderr is not a terminal")
	fl.BoolVar(&f.noProgress, "no-progress", false, "never show progress")
	fl.BoolVar(&f.fsync, "fsync", false, "fsync each file before it is renamed into place")
	fl.DurationVar(&f.timeout, "timeout", 0, "fail when the peer sends nothing for this long (default 60s)")
	fl.StringVar(&f.metricsFile, "metrics-file", "", "write Prometheus text metrics to `FILE` (node_exporter textfile collector)")
	fl.BoolVar(&f.fullScan, "full-scan", false, "scan the whole golden tree even when the agent's change journal could say what changed")
	fl.DurationVar(&f.progressTO, "progress-timeout", 0, "fail when the peer sends only keepalives for this long while it owes an answer (default 10m; negative: never)")
	fl.DurationVar(&f.deadline, "deadline", defaultDeadline, "give up on the whole run (and release the image's lock) after this long (0 or negative: never)")
	fl.Int64Var(&f.maxList, "max-list-bytes", 0, "refuse a golden tree whose entry list would hold more than `N` bytes of paths, targets and xattrs (0: 256 MiB)")
	f.gen.register(cmd, 10)
}

func newPullCmd(g *globalFlags) *cobra.Command {
	f := &pullFlags{}
	cmd := &cobra.Command{
		Use:   "pull [flags] SRC DEST",
		Short: "mirror a golden node's tree into an image",
		Long: `Pull mirrors SRC into the image directory DEST.

SRC is a local directory or [user@]host:/path on a golden node reached with
ssh (-e/--rsh, so ssh_config, keys, jump hosts and Kerberos work as usual).
goldsync-agent runs there; if it is missing or of another version it is
uploaded over SFTP into ~/.cache/goldsync/ and verified by hash first.
A trailing slash on SRC does not matter: an image is a whole root.

The pull keeps everything rsync -aHAXS --numeric-ids keeps, decides changes
by content hash, writes every file to a temp name and renames it into place
(clients reading the image see whole files only), deletes what the source
no longer has (guarded by --max-delete), and keeps replaced files linked in
the state dir's retention area for NFS clients still running them.`,
		Example: `  # the seed procedure's pull, without /proc and /sys contents
  goldsync pull --exclude '/proc/*' --exclude '/sys/*' node004:/ /diskless/i386/RHEL5-AS/root

  # what would change, rsync-style
  goldsync pull -n -i node004:/ /diskless/i386/RHEL5-AS/root`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPull(cmd, g, f, args[0], args[1])
		},
	}
	f.register(cmd)
	return cmd
}

func readPatterns(files []string) ([]string, error) {
	var out []string
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("exclude-from: %w", err))
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
				continue
			}
			out = append(out, line)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("exclude-from %s: %w", name, err))
		}
	}
	return out, nil
}

func runPull(cmd *cobra.Command, g *globalFlags, f *pullFlags, src, dest string) (err error) {
	ctx, cancel := withDeadline(cmd.Context(), f.deadline)
	defer cancel()
	defer func() { err = deadlineErr(ctx, err) }()
	log := g.logger(os.Stderr)
	from, err := readPatterns(f.excludeFrom)
	if err != nil {
		return err
	}
	excludes := append(append([]string(nil), f.excludes...), from...)
	source, err := remote.Open(ctx, src, remote.Options{Serve: agent.InProcess,
		Rsh: f.rsh, AgentPath: f.agentPath, Streams: f.streams, Logger: log, IdleTimeout: f.timeout, MaxListBytes: f.maxList,
		ProgressTimeout: f.progressTO,
	})
	if err != nil {
		return classifyConnect(err)
	}
	defer source.Close()
	opts := imaging.Options{
		Excludes: excludes, DryRun: f.dryRun, NoDelete: f.noDelete, MaxDelete: f.maxDelete,
		StateDir: f.stateDir, Retention: f.retention, Fsync: f.fsync, Logger: log,
		Incremental: !f.fullScan, MaxListBytes: f.maxList, Generations: f.gen.policy(src),
	}
	if f.itemize || (f.dryRun && !g.jsonOut) {
		opts.Itemize = func(c imaging.Change) { printf("%s\n", c) }
	}
	prog := newProgressDisplay(os.Stderr, f.progress, f.noProgress || g.quiet || g.jsonOut)
	opts.Progress = prog.update
	res, err := imaging.Sync(ctx, source, dest, opts)
	prog.done()
	if res != nil {
		report(g, f, src, dest, res, source, err)
	}
	if f.metricsFile != "" {
		if merr := writeMetrics(f.metricsFile, dest, res, err); merr != nil {
			log.Error("metrics file", "err", merr)
		}
	}
	if err != nil {
		return classifySync(err)
	}
	return nil
}

// classifySync maps a sync error to rsync-style exit codes.
func classifySync(err error) error {
	switch {
	case errors.Is(err, imaging.ErrGuard):
		return withCode(exitMaxDelete, err)
	case errors.Is(err, imaging.ErrLocked):
		return withCode(exitLocked, err)
	case errors.Is(err, imaging.ErrUnsafeStateDir):
		return withCode(exitSelect, err)
	case errors.Is(err, imaging.ErrPartial):
		return withCode(exitPartial, err)
	case errors.Is(err, proto.ErrStalled):
		return withCode(exitTimeout, err)
	case errors.Is(err, proto.ErrProtocol), errors.Is(err, imaging.ErrBadSource),
		errors.Is(err, proto.ErrRemote), errors.Is(err, proto.ErrClosed):
		return withCode(exitStream, err)
	case isNoSpace(err):
		return withCode(exitIO, err)
	case isLostConnection(err):
		// The ssh process or the agent died mid-stream: rsync says 12 too.
		return withCode(exitStream, fmt.Errorf("connection to the source lost: %w", err))
	}
	return err
}

// isLostConnection recognizes the errors a dead peer leaves behind.
func isLostConnection(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrClosed) || errors.Is(err, context.Canceled)
}

func classifyConnect(err error) error {
	switch {
	case errors.Is(err, remote.ErrVersion):
		return withCode(exitProtocol, err)
	case errors.Is(err, remote.ErrSSH):
		return withCode(exitConnection, err)
	case errors.Is(err, remote.ErrProtocol):
		return withCode(exitStart, err)
	case errors.Is(err, os.ErrNotExist):
		return withCode(exitSelect, err)
	}
	return withCode(exitStart, err)
}

func report(g *globalFlags, f *pullFlags, src, dest string, res *imaging.Result, source imaging.Source, err error) {
	s := cluster.SummarizePull(src, dest, f.dryRun, res, source, err)
	if g.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(s)
		return
	}
	if g.quiet {
		return
	}
	verb := "pulled"
	if f.dryRun {
		verb = "dry run of"
	}
	if f.stats || g.verbose > 0 || f.dryRun {
		printf("goldsync: %s %s -> %s in %.2fs\n", verb, src, dest, s.Seconds)
		printf("  entries %d, actions %d: created %d, updated %d, metadata only %d, hard links %d, deleted %d (planned deletes %d)\n",
			s.Entries, s.Actions, s.Created, s.Updated, s.MetaOnly, s.Linked, s.Deleted, s.WouldDelete)
		printf("  content received %s, reused from the old image %s, copied locally %s, verified unchanged %d\n",
			human(s.BytesReceived), human(s.BytesReused), human(s.BytesCopied), s.Unchanged)
		if s.WireBytesIn > 0 {
			printf("  bytes on the wire: in %s, out %s\n", human(s.WireBytesIn), human(s.WireBytesOut))
		}
	}
	for _, p := range res.Problems {
		fmt.Fprintln(os.Stderr, "goldsync: not applied:", wire.InertLines(p))
	}
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
