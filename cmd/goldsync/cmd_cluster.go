package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/remote"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// newClusterCmds returns the config-driven commands: sync, status, verify,
// and the hidden man page generator.
func newClusterCmds(g *globalFlags) []*cobra.Command {
	return []*cobra.Command{newSyncCmd(g), newStatusCmd(g), newVerifyCmd(g), newManCmd()}
}

// loadConfig loads the --config file, or the default one.
func loadConfig(g *globalFlags) (*config.Config, error) {
	path := g.config
	if path == "" {
		path = config.DefaultPath
	}
	c, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, withCode(exitUsage, fmt.Errorf("no config file %s: write one (see goldsync.toml.example) or name it with --config", path))
	}
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return c, nil
}

// selectImages returns the named images, or all of them.
func selectImages(c *config.Config, names []string) ([]*config.Image, error) {
	if len(names) == 0 {
		if len(c.Images) == 0 {
			return nil, withCode(exitUsage, fmt.Errorf("%s: no [[image]]", c.Path))
		}
		var all []*config.Image
		for i := range c.Images {
			all = append(all, &c.Images[i])
		}
		return all, nil
	}
	var out []*config.Image
	seen := map[string]bool{}
	for _, n := range names {
		img, ok := c.Image(n)
		if !ok {
			return nil, withCode(exitUsage, fmt.Errorf("no image %q in %s (images: %s)", n, c.Path, strings.Join(c.ImageNames(), ", ")))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, img)
		}
	}
	return out, nil
}

// clusterNodes reads the nodes file and splits it among the operating
// systems; it is not read when no OS is configured.
func clusterNodes(c *config.Config) (map[string][]snapshot.Node, []snapshot.Node, error) {
	if len(c.OS) == 0 {
		return map[string][]snapshot.Node{}, nil, nil
	}
	nodes, err := readNodesFile(c.Cluster.Nodes)
	if err != nil {
		return nil, nil, err
	}
	byOS, unclaimed, err := c.AssignNodes(nodes)
	if err != nil {
		return nil, nil, withCode(exitUsage, err)
	}
	return byOS, unclaimed, nil
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
		Long: `Sync does three things for each image of the config file (or for those
named), in this order.

Pull: mirror the image's golden node into its root, as "goldsync pull" does,
with the image's settings (excludes, max_delete, retention, rsh, streams).

Snapshots: refresh the read-write snapshot of every node booting the image,
as "goldsync snapshot build" does, from SNAPSHOT-DIR/files and files.custom
(the default list is written when files is missing).

Netboot: copy the OS's kernel and initrd from the image into the TFTP tree
(the configured kernel, or the newest) and rewrite the pxelinux, GRUB and
iPXE files of its nodes.

A failed pull skips the image's other steps (a partial one does not); the
other images go on. After each run a status record is written in the
image's state dir for "goldsync status".

Runs of the same image exclude each other: a second run finds the image's
lock taken, says which process holds it, and exits with status 16.

Made for cron and systemd timers: when standard output is not a terminal,
a successful run prints nothing, and warnings are printed only if the run
fails, so cron mails only failures. -v prints them anyway; --json prints a
summary on standard output.

The config file is /etc/goldsync/goldsync.toml unless --config names
another; see goldsync.toml.example.`,
		Example: `  # what cron runs
  goldsync sync

  # one image, showing what would change
  goldsync sync --dry-run rhel5

  # with metrics for node_exporter's textfile collector
  goldsync sync --metrics-file /var/lib/prometheus/node-exporter/goldsync.prom`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSync(cmd.Context(), g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "show what would change, change nothing")
	fl.BoolVarP(&f.itemize, "itemize-changes", "i", false, "print each change in rsync's itemized format")
	fl.DurationVar(&f.deadline, "deadline", defaultDeadline, "give up on an image's pull (releasing its lock; the other images go on) after this long (0 or negative: never)")
	fl.DurationVar(&f.progressTO, "progress-timeout", 0, "fail an image whose golden node sends only keepalives for this long (default 10m; negative: never)")
	fl.StringVar(&f.metricsFile, "metrics-file", "", "write Prometheus text metrics of every image to `FILE` (node_exporter textfile collector)")
	return cmd
}

// syncReport is what a sync did to one image; the --json output holds one
// per image.
type syncReport struct {
	Image    string  `json:"image"`
	Source   string  `json:"source"`
	Root     string  `json:"root"`
	DryRun   bool    `json:"dry_run"`
	Result   string  `json:"result"` // ok, partial, failed, locked
	Error    string  `json:"error,omitempty"`
	ExitCode int     `json:"exit_code"`
	Seconds  float64 `json:"seconds"`
	// Rollback is the generation step 1 rolled back to instead of pulling.
	Rollback int64 `json:"rollback_to,omitempty"`
	// Pull is the pull's summary, as "goldsync pull --json" prints it.
	Pull *summary `json:"pull,omitempty"`
	// Planned counts the pull's plan by operation (mkdir, fetch, copy,
	// meta, symlink, special, link, delete, dirmeta): what a dry run
	// would do.
	Planned   map[string]int   `json:"planned,omitempty"`
	Snapshots []snapshotReport `json:"snapshots,omitempty"`
	Netboot   []netbootReport  `json:"netboot,omitempty"`
	// Notes are things said along the way that are not errors.
	Notes []string `json:"notes,omitempty"`

	res     *imaging.Result
	err     error
	built   map[string]time.Time // node -> snapshot built
	changed bool                 // the pull changed the image
	// rollbackGen is the generation step 1 rolled back to: its boot
	// record chooses the kernels step 3 installs.
	rollbackGen *imaging.Generation
	boot        []imaging.BootRecord // the kernels step 3 installed
}

type snapshotReport struct {
	OS          string          `json:"os"`
	SnapshotDir string          `json:"snapshot_dir"`
	Nodes       int             `json:"nodes"`
	Totals      snapshot.Counts `json:"totals"`
	Conflicts   int             `json:"conflicts"`
	Failed      []string        `json:"failed_nodes,omitempty"`
	Error       string          `json:"error,omitempty"`
}

type netbootReport struct {
	OS     string `json:"os"`
	Kernel string `json:"kernel,omitempty"`
	Nodes  int    `json:"nodes"`
	Error  string `json:"error,omitempty"`
	// Warnings are os add's (an nfsroot image without goldsync's client
	// piece).
	Warnings []string `json:"warnings,omitempty"`
}

// clusterReport is the --json output of sync.
type clusterReport struct {
	Config string        `json:"config"`
	OK     bool          `json:"ok"`
	DryRun bool          `json:"dry_run"`
	Images []*syncReport `json:"images"`
}

// lockedWriter is an io.Writer safe for the logger's concurrent use.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func runSync(ctx context.Context, g *globalFlags, f *syncFlags, names []string) error {
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	images, err := selectImages(cfg, names)
	if err != nil {
		return err
	}
	byOS, unclaimed, err := clusterNodes(cfg)
	if err != nil {
		return err
	}
	// On a terminal, or when asked, talk; under cron keep warnings until
	// the run is known to have failed.
	interactive := isTerminal(os.Stdout) || g.verbose > 0
	var held bytes.Buffer
	logTo := io.Writer(os.Stderr)
	if !interactive {
		logTo = &lockedWriter{w: &held}
	}
	log := g.logger(logTo)
	if len(unclaimed) > 0 {
		var hosts []string
		for _, n := range unclaimed {
			hosts = append(hosts, n.Host)
		}
		log.Warn("nodes no OS boots: their snapshots and boot files are left alone", "nodes", strings.Join(hosts, " "))
	}
	talk := interactive && !g.quiet && !g.jsonOut
	out := &clusterReport{Config: cfg.Path, OK: true, DryRun: f.dryRun}
	for _, img := range images {
		if ctx.Err() != nil {
			break
		}
		if talk || (f.dryRun && !g.jsonOut) {
			printf("== image %s: %s -> %s\n", img.Name, img.Source, img.Root)
		}
		r := syncImage(ctx, g, f, cfg, img, byOS, log, talk)
		out.Images = append(out.Images, r)
		if r.err != nil {
			out.OK = false
		}
		if !g.jsonOut && r.Result != "locked" && (talk || f.dryRun || r.err != nil) {
			printSyncReport(r, r.err != nil && !talk && !f.dryRun)
		}
	}
	if f.metricsFile != "" && !f.dryRun {
		if err := writeClusterMetrics(f.metricsFile, out.Images); err != nil {
			log.Error("metrics file", "err", err)
			out.OK = false
		}
	}
	if g.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	}
	var errs []error
	code := exitOK
	for _, r := range out.Images {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("image %s: %w", r.Image, r.err))
			if code == exitOK {
				code = r.ExitCode
			}
		}
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
		code = exitSignal
	}
	if len(errs) == 0 && !out.OK {
		code = exitIO
		errs = append(errs, errors.New("metrics file not written"))
	}
	if len(errs) == 0 {
		return nil
	}
	if held.Len() > 0 {
		os.Stderr.Write(held.Bytes())
	}
	return withCode(code, errors.Join(errs...))
}

// syncImage runs the three steps for one image. Every problem ends up in
// the report.
func syncImage(ctx context.Context, g *globalFlags, f *syncFlags, cfg *config.Config, img *config.Image,
	byOS map[string][]snapshot.Node, log *slog.Logger, talk bool) *syncReport {
	start := time.Now()
	r := &syncReport{Image: img.Name, Source: img.Source, Root: img.Root, DryRun: f.dryRun, Rollback: f.rollbackTo, built: map[string]time.Time{}}
	fail := func(code int, err error) *syncReport {
		r.err = err
		r.Error = err.Error()
		r.ExitCode = code
		r.Result = "failed"
		if errors.Is(err, imaging.ErrLocked) {
			r.Result = "locked"
		}
		return r
	}
	defer func() { r.Seconds = time.Since(start).Seconds() }()

	if !f.dryRun {
		unlock, err := takeRunLock(img.StateDir)
		if err != nil {
			code := exitIO
			if errors.Is(err, imaging.ErrLocked) {
				code = exitLocked
			}
			return fail(code, err)
		}
		defer unlock()
		// The status is written last, under the lock, whatever happened,
		// unless another process (a manual pull) held the image.
		defer func() {
			if r.Result == "locked" {
				return
			}
			if err := saveStatus(img, r, start); err != nil {
				log.Error("status not saved", "image", img.Name, "err", err)
			}
		}()
	}

	// 1. Pull.
	if err := pullImage(ctx, g, f, img, r, log, talk); err != nil {
		return fail(exitCodeOf(ctx, err), err)
	}
	r.Result = "ok"
	if r.err != nil {
		r.Result = "partial"
	}
	if f.dryRun {
		if _, err := os.Stat(img.Root); errors.Is(err, fs.ErrNotExist) {
			r.Notes = append(r.Notes, "the image does not exist yet: snapshots and netboot files come after the first pull")
			return r
		}
	}

	// 2. Snapshots, then 3. netboot files, OS by OS.
	var stepErr error
	for _, o := range cfg.OSOf(img.Name) {
		nodes := byOS[o.Name]
		if len(nodes) == 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("OS %s: no node of %s boots it", o.Name, cfg.Cluster.Nodes))
			continue
		}
		if err := buildSnapshots(ctx, g, f, img, o, nodes, r, log, talk); err != nil {
			stepErr = errors.Join(stepErr, err)
			if !errors.Is(err, imaging.ErrPartial) {
				continue // boot files would point nodes at snapshots not built
			}
		}
		if err := writeNetboot(ctx, f, cfg, img, o, nodes, r); err != nil {
			stepErr = errors.Join(stepErr, err)
		}
	}
	if !f.dryRun && len(r.boot) > 0 && r.res != nil {
		// The image's generation records what its nodes boot, so a
		// rollback to it installs the same kernels.
		if err := imaging.SetGenerationBoot(img.StateDir, r.res.Generation, r.boot); err != nil {
			log.Warn("generation: boot record not saved", "image", img.Name, "err", err)
		}
	}
	if stepErr != nil {
		code := exitCodeOf(ctx, stepErr)
		result := "failed"
		if code == exitPartial {
			result = "partial"
		}
		if r.err != nil {
			// A partial pull's error comes first.
			stepErr = errors.Join(r.err, stepErr)
		}
		fail(code, stepErr)
		r.Result = result
		return r
	}
	if r.err != nil {
		r.Error = r.err.Error()
		r.ExitCode = exitCodeOf(ctx, r.err)
	}
	return r
}

// exitCodeOf maps an error of a step to an exit code, as pull does.
func exitCodeOf(ctx context.Context, err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.As(classifySync(err), &ee) {
		return ee.code
	}
	return exitCode(ctx, err)
}

// pullImage mirrors the golden node into the image. A partial pull is not
// an error here: it is left in r.err and the other steps go on.
func pullImage(ctx context.Context, g *globalFlags, f *syncFlags, img *config.Image, r *syncReport, log *slog.Logger, talk bool) (err error) {
	ctx, cancel := withDeadline(ctx, f.deadline)
	defer cancel()
	defer func() { err = deadlineErr(ctx, err) }()
	if f.rollbackTo > 0 {
		return rollbackImage(ctx, g, f, img, r, log)
	}
	source, err := remote.Open(ctx, img.Source, remote.Options{
		Rsh: img.Rsh, AgentPath: img.AgentPath, Streams: img.Streams, IdleTimeout: img.Timeout, Logger: log,
		ProgressTimeout: f.progressTO,
	})
	if err != nil {
		return classifyConnect(err)
	}
	defer source.Close()
	opts := imaging.Options{
		Excludes: img.Excludes, DryRun: f.dryRun, NoDelete: img.NoDelete, MaxDelete: img.MaxDelete,
		StateDir: img.StateDir, Retention: img.Retention, Logger: log,
	}
	if img.KeepGenerations >= 0 {
		opts.Generations = &imaging.GenerationPolicy{Keep: img.KeepGenerations, KeepFor: img.KeepGenerationsFor, Source: img.Source}
	}
	if f.itemize || (f.dryRun && !g.jsonOut) {
		opts.Itemize = func(c imaging.Change) { printf("%s\n", c) }
	}
	prog := newProgressDisplay(os.Stderr, false, !talk)
	opts.Progress = prog.update
	res, err := imaging.Sync(ctx, source, img.Root, opts)
	prog.done()
	r.res = res
	if res != nil {
		s := pullSummary(img.Source, img.Root, f.dryRun, res, source, err)
		r.Pull = &s
		if res.Plan != nil {
			r.Planned = map[string]int{}
			for _, a := range res.Plan.Actions {
				r.Planned[a.Op.String()]++
			}
		}
		r.changed = !f.dryRun && res.Created+res.Updated+res.MetaOnly+res.Linked+res.Deleted > 0
	}
	if err != nil {
		err = classifySync(describeLocked(err, img.StateDir))
		if errors.Is(err, imaging.ErrPartial) && res != nil {
			r.err = err
			return nil
		}
		return err
	}
	return nil
}

// pullSummary is pull's --json summary of a result.
func pullSummary(src, dest string, dryRun bool, res *imaging.Result, source imaging.Source, err error) summary {
	s := summary{Source: src, Dest: dest, DryRun: dryRun, OK: err == nil, Seconds: res.Duration.Seconds(),
		Entries: res.Entries, Created: res.Created, Updated: res.Updated, MetaOnly: res.MetaOnly,
		Linked: res.Linked, Deleted: res.Deleted, Unchanged: res.Unchanged, BytesReceived: res.BytesReceived,
		BytesReused: res.BytesReused, BytesCopied: res.BytesCopied, SourceProblems: res.SourceProblems,
		Problems: res.Problems, DeletesSkipped: res.DeletesSkipped}
	if res.Plan != nil {
		s.Actions = len(res.Plan.Actions)
		s.WouldDelete = res.Plan.Deletes
	}
	if err != nil {
		s.Error = err.Error()
	}
	if ws, ok := source.(interface{ WireBytes() (in, out int64) }); ok {
		s.WireBytesIn, s.WireBytesOut = ws.WireBytes()
	}
	return s
}

// buildSnapshots refreshes the snapshots of an OS's nodes.
func buildSnapshots(ctx context.Context, g *globalFlags, f *syncFlags, img *config.Image, o config.OS,
	nodes []snapshot.Node, r *syncReport, log *slog.Logger, talk bool) error {
	sr := snapshotReport{OS: o.Name, SnapshotDir: o.SnapshotDir, Nodes: len(nodes)}
	defer func() { r.Snapshots = append(r.Snapshots, sr) }()
	lg := *g
	lg.quiet = g.quiet || !talk // notices only on a terminal
	items, err := loadLists(&lg, listFlags{}, o.SnapshotDir, f.dryRun)
	if err != nil {
		sr.Error = err.Error()
		return fmt.Errorf("OS %s: snapshot lists: %w", o.Name, err)
	}
	opts := snapshot.BuildOptions{ImageRoot: img.Root, SnapshotDir: o.SnapshotDir, Nodes: nodes, Items: items,
		DryRun: f.dryRun, Logger: log}
	if f.itemize || (f.dryRun && !g.jsonOut) {
		opts.Itemize = func(node string, c imaging.Change) { printf("%s %s\n", node, c) }
	}
	prog := &buildProgress{on: talk && isTerminal(os.Stderr)}
	opts.Progress = prog.update
	res, err := snapshot.Build(ctx, opts)
	prog.done()
	if res != nil {
		sr.Totals = res.Totals
		sr.Conflicts = len(res.Conflicts)
		now := time.Now()
		for _, n := range res.Nodes {
			if n.Error != "" || n.Failed > 0 {
				sr.Failed = append(sr.Failed, n.Node)
			} else if !f.dryRun {
				r.built[n.Node] = now
			}
		}
		for _, c := range res.Conflicts {
			log.Warn("snapshot conflict: the node's version is kept", "node", c.Node, "path", c.Path, "why", c.Why)
		}
		for _, p := range res.Problems {
			log.Warn("snapshot path not applied", "problem", p)
		}
	}
	if err != nil {
		sr.Error = err.Error()
		return fmt.Errorf("OS %s: snapshots: %w", o.Name, classifyBuild(err))
	}
	return nil
}

// writeNetboot installs the OS's kernel and writes its nodes' boot files.
func writeNetboot(ctx context.Context, f *syncFlags, cfg *config.Config, img *config.Image, o config.OS, nodes []snapshot.Node, r *syncReport) error {
	nr := netbootReport{OS: o.Name, Nodes: len(nodes), Kernel: o.Kernel}
	defer func() { r.Netboot = append(r.Netboot, nr) }()
	if f.dryRun {
		return nil
	}
	if err := os.MkdirAll(cfg.Cluster.TFTPBoot, 0o755); err != nil {
		nr.Error = err.Error()
		return withCode(exitIO, fmt.Errorf("OS %s: %w", o.Name, err))
	}
	opts := cfg.AddOSOptions(o)
	if k := r.rollbackGen.BootKernel(o.Name); k != "" {
		opts.Kernel = k // the kernel the generation booted, not the config's
	}
	rec, warnings, err := netboot.AddOS(ctx, opts)
	nr.Warnings = warnings
	if err != nil {
		nr.Error = err.Error()
		return withCode(exitSelect, fmt.Errorf("OS %s: %w", o.Name, err))
	}
	nr.Kernel = rec.Kernel
	if err := netboot.WriteNodeConfigs(cfg.Cluster.TFTPBoot, rec, nodes, o.Netboot.NodeOptions()); err != nil {
		nr.Error = err.Error()
		return withCode(exitIO, fmt.Errorf("OS %s: %w", o.Name, err))
	}
	r.boot = append(r.boot, imaging.BootRecord{OS: o.Name, Kernel: rec.Kernel})
	return nil
}

// printSyncReport prints what a sync did to an image; toErr sends it to
// stderr (a failure under cron).
func printSyncReport(r *syncReport, toErr bool) {
	w := stdout
	if toErr {
		w = os.Stderr
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	verb := "sync of"
	if r.DryRun {
		verb = "dry run of"
	}
	if r.Rollback > 0 {
		verb = fmt.Sprintf("rollback to generation %d of", r.Rollback)
		if r.DryRun {
			verb = "dry run of " + verb
		}
	}
	p("goldsync: %s %s: %s in %.2fs\n", verb, r.Image, r.Result, r.Seconds)
	if s := r.Pull; s != nil {
		p("  pull: entries %d, created %d, updated %d, metadata only %d, hard links %d, deleted %d (planned deletes %d), received %s\n",
			s.Entries, s.Created, s.Updated, s.MetaOnly, s.Linked, s.Deleted, s.WouldDelete, human(s.BytesReceived))
		for _, pr := range s.Problems {
			p("  not applied: %s\n", pr)
		}
	}
	for _, s := range r.Snapshots {
		t := s.Totals
		p("  snapshots of OS %s (%d nodes): created %d, updated %d, kept node changes %d, conflicts %d, failed %d\n",
			s.OS, s.Nodes, t.Created, t.Updated, t.Kept, s.Conflicts, t.Failed)
		if len(s.Failed) > 0 {
			p("    nodes not fully built: %s\n", strings.Join(s.Failed, " "))
		}
	}
	for _, n := range r.Netboot {
		if r.DryRun {
			p("  netboot: would install OS %s's kernel and write the boot files of %d nodes\n", n.OS, n.Nodes)
		} else if n.Error == "" {
			p("  netboot: OS %s, kernel %s, boot files of %d nodes\n", n.OS, n.Kernel, n.Nodes)
		}
		for _, w := range n.Warnings {
			p("  warning: %s\n", w)
		}
	}
	for _, n := range r.Notes {
		p("  note: %s\n", n)
	}
}

// writeClusterMetrics writes the metrics of every image into one file for
// node_exporter's textfile collector: writeMetrics renders each image's,
// and the families are merged so each has one HELP and TYPE line.
func writeClusterMetrics(path string, reports []*syncReport) error {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".goldsync-metrics-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var parts [][]byte
	for i, r := range reports {
		p := filepath.Join(tmp, fmt.Sprint(i))
		if err := writeMetrics(p, r.Image, r.res, r.err); err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		parts = append(parts, data)
	}
	merged := mergeMetrics(parts)
	out := filepath.Join(tmp, "all")
	if err := os.WriteFile(out, merged, 0o644); err != nil {
		return err
	}
	return os.Rename(out, path)
}

// mergeMetrics merges Prometheus text expositions: each family's HELP and
// TYPE once, then its samples from every part, families in first-seen
// order.
func mergeMetrics(parts [][]byte) []byte {
	type family struct {
		head    []string
		samples []string
	}
	fams := map[string]*family{}
	var order []string
	get := func(name string) *family {
		f, ok := fams[name]
		if !ok {
			f = &family{}
			fams[name] = f
			order = append(order, name)
		}
		return f
	}
	for _, part := range parts {
		for line := range strings.Lines(string(part)) {
			line = strings.TrimRight(line, "\n")
			if line == "" {
				continue
			}
			if rest, ok := strings.CutPrefix(line, "# "); ok {
				fs := strings.Fields(rest)
				if len(fs) >= 2 && (fs[0] == "HELP" || fs[0] == "TYPE") {
					f := get(fs[1])
					if len(f.head) < 2 && !containsPrefix(f.head, "# "+fs[0]+" ") {
						f.head = append(f.head, line)
					}
				}
				continue
			}
			name := line
			if i := strings.IndexAny(line, "{ "); i >= 0 {
				name = line[:i]
			}
			f := get(name)
			f.samples = append(f.samples, line)
		}
	}
	var b strings.Builder
	for _, name := range order {
		f := fams[name]
		for _, l := range f.head {
			b.WriteString(l + "\n")
		}
		for _, l := range f.samples {
			b.WriteString(l + "\n")
		}
	}
	return []byte(b.String())
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
