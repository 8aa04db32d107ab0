package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// BuildOptions configure Build. ImageRoot, SnapshotDir, Nodes and Items
// are required; the rest has usable zero values.
type BuildOptions struct {
	// ImageRoot is the image the snapshots are copied from, e.g.
	// /diskless/i386/RHEL5-AS/root.
	ImageRoot string
	// SnapshotDir holds one snapshot tree per node, SnapshotDir/<host>,
	// e.g. /diskless/i386/RHEL5-AS/snapshot. It is created if missing.
	SnapshotDir string
	// StateDir holds the build's lock, the nodes' records and the image's
	// hash cache. Empty means DefaultStateDir(SnapshotDir), beside the
	// snapshot directory. It may not be inside a node's snapshot.
	StateDir string
	// Nodes are the nodes to build (see ParseNodes, CheckNodes).
	Nodes []Node
	// Items are the paths every snapshot holds, merged from the lists
	// (see MergeLists).
	Items []Item
	// Parallel bounds the nodes built at once; zero means 2 × GOMAXPROCS.
	Parallel int
	// DryRun plans and itemizes but changes nothing, the state dir
	// included.
	DryRun bool
	// Logger receives warnings and debug messages; nil is silent.
	Logger *slog.Logger
	// Progress, when set, is called after the image scan and after each
	// node, one call at a time.
	Progress func(BuildProgress)
	// SSHKeygen is the ssh-keygen that makes the nodes' ssh host keys;
	// empty means "ssh-keygen" from $PATH.
	SSHKeygen string
	// Itemize, when set, is called once per change of a node's snapshot,
	// before it is applied (or instead, in a dry run), in the node's plan
	// order, one call at a time (calls of different nodes interleave).
	Itemize func(node string, c imaging.Change)
}

// BuildProgress reports how far a build has come.
type BuildProgress struct {
	// Phase is "scan" (the image scan is done) or "node" (Node is done).
	Phase string
	// Node is the node just finished, for phase "node".
	Node string
	// NodesDone and Nodes count the nodes finished and to build.
	NodesDone, Nodes int
	// ImageEntries counts the image entries the snapshots are made of.
	ImageEntries int
}

// Counts say what a build did to one node's snapshot, or to all.
type Counts struct {
	// Created counts paths copied because the node lacked them.
	Created int `json:"created"`
	// Updated counts paths replaced from the image: the node had not
	// changed them since the last build and the image had.
	Updated int `json:"updated"`
	// Kept counts paths the node changed and the image did not.
	Kept int `json:"kept"`
	// Conflicts counts paths the node and the image both changed (the
	// node's version stays); see BuildResult.Conflicts.
	Conflicts int `json:"conflicts"`
	// SkippedMissing counts listed paths missing from the image.
	SkippedMissing int `json:"skipped_missing"`
	// Failed counts paths that could not be written.
	Failed int `json:"failed"`
	// Bytes is the content copied.
	Bytes int64 `json:"bytes"`
	// Identity counts the identity files created (hostname, machine-id,
	// fstab, ssh host keys; see IsIdentityPath): only ever where absent.
	Identity int `json:"identity_created"`
}

func (c *Counts) add(o Counts) {
	c.Created += o.Created
	c.Updated += o.Updated
	c.Kept += o.Kept
	c.Conflicts += o.Conflicts
	c.SkippedMissing += o.SkippedMissing
	c.Failed += o.Failed
	c.Bytes += o.Bytes
	c.Identity += o.Identity
}

// NodeResult is what a build did to one node's snapshot.
type NodeResult struct {
	Node string `json:"node"`
	Counts
	// Error, when set, says why the node's snapshot was not (completely)
	// built.
	Error string `json:"error,omitempty"`
}

// Conflict is a path of a node's snapshot whose node version was kept
// although the image's differs.
type Conflict struct {
	Node string `json:"node"`
	Path string `json:"path"` // absolute, as in the lists
	Why  string `json:"why"`
}

// BuildResult describes a finished build.
type BuildResult struct {
	// Nodes holds one result per node, in the order given.
	Nodes []NodeResult `json:"nodes"`
	// Totals sums the nodes' counts (SkippedMissing is counted once).
	Totals Counts `json:"totals"`
	// Notices are things worth saying that are not errors: listed paths
	// missing from the image, paths the image no longer has, records
	// that could not be read.
	Notices []string `json:"notices,omitempty"`
	// Conflicts lists every conflict, by node then path.
	Conflicts []Conflict `json:"conflicts,omitempty"`
	// Problems lists the paths not written, with why.
	Problems []string `json:"problems,omitempty"`
	// ImageEntries counts the image entries each snapshot is made of.
	ImageEntries int `json:"image_entries"`
	// DryRun says nothing was changed.
	DryRun bool `json:"dry_run"`
	// Duration is the wall time of the build.
	Duration time.Duration `json:"duration_ns"`
}

// ErrBuild is wrapped when a build finished but some nodes or paths could
// not be built; BuildResult says which. It wraps imaging.ErrPartial.
var ErrBuild = fmt.Errorf("snapshot build incomplete: %w", imaging.ErrPartial)

// Build creates or refreshes each node's snapshot tree,
// SnapshotDir/<host>/<path> for every listed path, from the image, the
// work of Red Hat's pxeboot and updateDiskless.
//
// The image is scanned once, for the listed paths only (see Scopes and
// Want). Then, for several nodes at once, each node's snapshot is walked
// with the same scopes, planned by the three-way rule (ThreeWay) against
// the node's record, and applied by the imaging engine: every file appears
// whole (temp file and rename) with the image's owner, mode, xattrs, ACLs,
// mtime, hard links and holes, copied with reflinks or copy_file_range;
// all writes go through an openat2 root at the node's snapshot, so a
// symlink the node planted is never followed. Nothing in a snapshot is
// ever deleted (leftover temporary files of an interrupted build aside).
//
// A path the node lacks is copied. A path the node has not changed since
// goldsync copied it follows the image. A path the node changed is kept;
// when the image changed it too, that is a conflict, reported in the
// result. Listed paths missing from the image are skipped with a notice.
// A node's record is saved in the state dir after its snapshot is built,
// only when it changed, so a rebuild with nothing changed reads no file
// content and writes nothing.
//
// Problems with single paths or nodes do not stop the build: they are
// reported in the result and the returned error wraps ErrBuild. A missing
// image, a bad argument, a build already running (imaging.ErrLocked) or
// cancellation is an error of the whole build.
func Build(ctx context.Context, opts BuildOptions) (*BuildResult, error) {
	start := time.Now()
	b := &builder{opts: opts, log: opts.Logger}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if err := checkBuildOptions(&opts); err != nil {
		return nil, err
	}
	b.stateDir = opts.StateDir
	if b.stateDir == "" {
		b.stateDir = DefaultStateDir(opts.SnapshotDir)
	}
	if err := checkStateDir(b.stateDir, opts.SnapshotDir, opts.Nodes); err != nil {
		return nil, fmt.Errorf("snapshot build: %w", err)
	}
	cache := ""
	if !opts.DryRun {
		cache = filepath.Join(b.stateDir, imageCacheName)
	}
	ds, err := imaging.OpenDirSource(opts.ImageRoot, imaging.DirSourceOptions{CacheFile: cache, Logger: b.log})
	if err != nil {
		return nil, fmt.Errorf("snapshot build: image: %w", err)
	}
	defer func() {
		if err := ds.Close(); err != nil {
			b.log.Warn("image hash cache not saved", "err", err)
		}
	}()
	b.src = &snapSource{ds}
	if !opts.DryRun {
		if err := os.MkdirAll(opts.SnapshotDir, 0o755); err != nil {
			return nil, fmt.Errorf("snapshot build: %w", err)
		}
		unlock, err := imaging.Lock(b.stateDir)
		if err != nil {
			return nil, fmt.Errorf("snapshot build: %w", err)
		}
		defer unlock()
	}
	res := &BuildResult{DryRun: opts.DryRun}

	// 1. Scan the listed paths of the image, once for every node.
	b.scopes = Scopes(opts.Items)
	var image []*tree.Entry
	_, err = ds.Scan(ctx, imaging.ScanRequest{Scopes: b.scopes, Hash: true}, func(e *tree.Entry) error {
		image = append(image, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot build: scan image %s: %w", opts.ImageRoot, err)
	}
	var skipped int
	b.want, res.Notices, skipped = Want(opts.Items, image)
	// A node's identity is its own, never the golden node's.
	b.want = withoutIdentity(b.want)
	res.ImageEntries = len(b.want)
	if b.sshTypes, err = imageSSHTypes(opts.ImageRoot); err != nil {
		res.Notices = append(res.Notices, fmt.Sprintf("ssh host key types of the image not read, no keys made: %v", err))
	}
	if r, err := fsx.OpenRoot(opts.ImageRoot); err == nil {
		b.imgRoot = r
		defer r.Close()
	}
	b.wantIdx = make(map[string]*tree.Entry, len(b.want))
	for _, w := range b.want {
		b.wantIdx[w.Path] = w
	}
	res.Totals.SkippedMissing = skipped
	b.progress(BuildProgress{Phase: "scan", Nodes: len(opts.Nodes), ImageEntries: len(b.want)})

	// 2. Build the nodes, several at once.
	if r, err := fsx.OpenRoot(opts.SnapshotDir); err == nil {
		b.snapRoot = r
		defer r.Close()
	} else if !opts.DryRun || !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("snapshot build: %w", err)
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 2 * runtime.GOMAXPROCS(0)
	}
	outs := make([]nodeOut, len(opts.Nodes))
	for i, n := range opts.Nodes {
		outs[i].res = NodeResult{Node: n.Host, Error: "not built: the build stopped first"}
		outs[i].res.SkippedMissing = skipped
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, n := range opts.Nodes {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			outs[i] = b.buildNode(gctx, n.Host)
			outs[i].res.SkippedMissing = skipped
			b.progress(BuildProgress{Phase: "node", Node: n.Host, Nodes: len(opts.Nodes), ImageEntries: len(b.want)})
			if err := outs[i].err; err != nil && (errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)) {
				return err // no point in filling the disk for the others
			}
			return nil
		})
	}
	stopErr := g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// 3. Gather.
	failed := false
	for _, o := range outs {
		res.Nodes = append(res.Nodes, o.res)
		c := o.res.Counts
		c.SkippedMissing = 0
		res.Totals.add(c)
		res.Conflicts = append(res.Conflicts, o.conflicts...)
		res.Notices = append(res.Notices, o.notices...)
		res.Problems = append(res.Problems, o.problems...)
		if o.res.Error != "" || o.res.Failed > 0 {
			failed = true
		}
	}
	res.Duration = time.Since(start)
	if stopErr != nil {
		return res, fmt.Errorf("%w: stopped: %w", ErrBuild, stopErr)
	}
	if failed {
		return res, ErrBuild
	}
	return res, nil
}

// CheckApart refuses a snapshot directory that is the image root, lies
// inside it, or holds it. The image is exported read-only to every node:
// snapshots inside it would hand each node's private files (its ssh host
// keys) to all the others, and an image inside the snapshot directory
// would be writable by the nodes.
func CheckApart(imageRoot, snapshotDir string) error {
	img, snap := imaging.ResolvePath(imageRoot), imaging.ResolvePath(snapshotDir)
	within := func(a, b string) bool { return a == b || strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/") }
	switch {
	case img == snap:
		return fmt.Errorf("snapshot directory %s is the image root: keep them apart (the image is exported read-only to every node)", snapshotDir)
	case within(snap, img):
		return fmt.Errorf("snapshot directory %s is inside the image %s: every node could read the others' snapshots (their ssh host keys); put it beside the image", snapshotDir, imageRoot)
	case within(img, snap):
		return fmt.Errorf("image %s is inside the snapshot directory %s, which nodes can write: put it beside it", imageRoot, snapshotDir)
	}
	return nil
}

func checkBuildOptions(o *BuildOptions) error {
	var errs []error
	if o.ImageRoot == "" {
		errs = append(errs, errors.New("image root not set"))
	}
	if o.SnapshotDir == "" {
		errs = append(errs, errors.New("snapshot directory not set"))
	}
	if err := CheckNodes(o.Nodes); err != nil {
		errs = append(errs, err)
	}
	if o.ImageRoot != "" && o.SnapshotDir != "" {
		if err := CheckApart(o.ImageRoot, o.SnapshotDir); err != nil {
			errs = append(errs, err)
		}
	}
	for _, it := range o.Items {
		if err := tree.ValidatePath(it.Path); err != nil || it.Path == tree.Root {
			errs = append(errs, fmt.Errorf("%s: bad item path %q", it.Source, short(it.Path)))
		}
		if !it.Kind.Valid() {
			errs = append(errs, fmt.Errorf("%s: %s: invalid kind %s", it.Source, short(it.Abs()), it.Kind))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("snapshot build: %w", errors.Join(errs...))
	}
	return nil
}

// builder is one Build's shared state.
type builder struct {
	opts     BuildOptions
	log      *slog.Logger
	stateDir string
	scopes   []tree.Scope
	want     []*tree.Entry
	wantIdx  map[string]*tree.Entry
	src      *snapSource
	snapRoot *fsx.Root // nil in a dry run of a snapshot dir not made yet
	imgRoot  *fsx.Root // the image, for identity checks; nil if unopenable
	sshTypes []string  // host key types of the image (imageSSHTypes)

	mu   sync.Mutex // serializes callbacks
	done int
}

func (b *builder) progress(p BuildProgress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.Phase == "node" {
		b.done++
	}
	p.NodesDone = b.done
	if b.opts.Progress != nil {
		b.opts.Progress(p)
	}
}

func (b *builder) itemize(host string, plan *imaging.Plan) {
	if b.opts.Itemize == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// In path order, as rsync prints them (directory attributes appear
	// where the directory is, though they are set last).
	acts := make([]imaging.Action, 0, len(plan.Actions))
	for _, a := range plan.Actions {
		if a.Op == imaging.OpDirMeta && a.Dst == nil {
			continue // itemized at its mkdir
		}
		acts = append(acts, a)
	}
	slices.SortStableFunc(acts, func(x, y imaging.Action) int { return tree.Compare(x.Path, y.Path) })
	for _, a := range acts {
		b.opts.Itemize(host, imaging.Itemize(a))
	}
}

// nodeOut is what one node's build produced.
type nodeOut struct {
	res       NodeResult
	err       error // a node error that should stop the build (disk full)
	conflicts []Conflict
	notices   []string
	problems  []string
}

// testHookBeforeApply, when set by a test, runs between planning and
// applying a node's snapshot.
var testHookBeforeApply func(host string)

// buildNode builds one node's snapshot. Problems are reported in the
// result, never returned.
func (b *builder) buildNode(ctx context.Context, host string) (out nodeOut) {
	out.res.Node = host
	fail := func(err error) nodeOut {
		out.res.Error = err.Error()
		b.log.Warn("snapshot not built", "node", host, "err", err)
		return out
	}
	// Open the node's snapshot without following a symlink (the node can
	// replace its own snapshot directory's entries, and other nodes'),
	// and refer to it as /proc/self/fd/N from then on.
	root, err := b.openNode(host)
	if err != nil {
		return fail(err)
	}
	var node []*tree.Entry
	var base []*tree.Entry
	if root != nil {
		defer root.Close()
		base, err = loadRecord(b.stateDir, host)
		if err != nil {
			out.notices = append(out.notices, fmt.Sprintf("%s: record unreadable, differences from the image are kept as the node's: %v", host, err))
		}
		base = withoutIdentity(base) // recorded by an older build
		idx := make(map[string]*tree.Entry, len(base))
		for _, e := range base {
			idx[e.Path] = e
		}
		var temps []string
		w, err := imaging.Walk(ctx, root, imaging.WalkOptions{
			Scopes:   b.scopes,
			Exclude:  relevant{b.wantIdx, idx},
			Previous: func(p string) *tree.Entry { return idx[p] },
			Workers:  2,
			Temps:    func(p string) { temps = append(temps, p) },
			Logger:   b.log,
		})
		if err != nil {
			return fail(fmt.Errorf("walk snapshot of %s: %w", host, err))
		}
		node = w.Entries
		if !b.opts.DryRun {
			b.removeTemps(root, host, temps)
		}
		hashNeeded(root, b.wantIdx, node, idx)
	}

	ref := ThreeWay(b.want, node, base)
	out.res.Created, out.res.Updated, out.res.Kept = ref.Created, ref.Updated, ref.Kept
	out.res.Conflicts = len(ref.Conflicts)
	out.res.Bytes = ref.Plan.FetchBytes
	for _, c := range ref.Conflicts {
		out.conflicts = append(out.conflicts, Conflict{Node: host, Path: "/" + c.Path, Why: c.Why})
	}
	for _, c := range ref.Gone {
		out.notices = append(out.notices, fmt.Sprintf("%s: /%s: %s", host, short(c.Path), c.Why))
	}
	b.itemize(host, ref.Plan)
	if b.opts.DryRun {
		if root == nil {
			out.res.Identity = 3 + 2*len(b.sshTypes)
		} else {
			b.identity(ctx, root, host, &out)
		}
		return out
	}

	failed := map[string]bool{}
	trusted := true // every action not listed as failed was carried out
	if len(ref.Plan.Actions) > 0 {
		if testHookBeforeApply != nil {
			testHookBeforeApply(host)
		}
		dest := procPath(root)
		ar, err := imaging.Apply(ctx, b.src, dest, ref.Plan, ref.Final, imaging.ApplyOptions{StateDir: b.stateDir, Logger: b.log, Walked: node})
		if ar != nil {
			for _, p := range ar.Failed {
				failed[p] = true
			}
			for _, p := range ar.Problems {
				out.problems = append(out.problems, host+": "+strings.ReplaceAll(p, dest, filepath.Join(b.opts.SnapshotDir, host)))
			}
			out.res.Failed = len(ar.Failed)
		}
		if err != nil && !errors.Is(err, imaging.ErrPartial) {
			// Cancelled, or a disk full: the plan stopped somewhere, and
			// what it did not reach is not listed as failed. Record no
			// write: a path that did get written is adopted next time.
			out.err = fmt.Errorf("snapshot of %s: %w", host, err)
			out.res.Error = strings.ReplaceAll(err.Error(), dest, filepath.Join(b.opts.SnapshotDir, host))
			trusted = false
			out.res.Created, out.res.Updated, out.res.Bytes = 0, 0, 0
		}
		for p := range failed {
			if w := ref.Writes[p]; w != nil && trusted {
				if w.Type == tree.TypeRegular && w.LinkTo == "" {
					out.res.Bytes -= w.Size
				}
				if ref.Decisions[p] == CopyNew {
					out.res.Created--
				} else {
					out.res.Updated--
				}
			}
		}
	}

	// The node's identity, before the record: creating it changes its
	// parent directories, which the record then has as they are.
	id := b.identity(ctx, root, host, &out)

	// Record what the node holds now.
	next := make([]*tree.Entry, 0, len(ref.Base)+len(ref.Writes))
	oldIdx := make(map[string]*tree.Entry, len(base))
	for _, e := range base {
		oldIdx[e.Path] = e
	}
	for p, e := range ref.Base {
		if _, written := ref.Writes[p]; !written {
			next = append(next, e)
		}
	}
	var done []*tree.Entry
	for p, w := range ref.Writes {
		if trusted && !failed[p] {
			done = append(done, w)
		} else if e := oldIdx[p]; e != nil {
			next = append(next, e)
		}
	}
	next = append(next, recordWritten(root, done)...)
	if recordChanged(base, next) {
		if err := saveRecord(b.stateDir, host, next); err != nil {
			out.res.Error = err.Error()
		}
	}

	// The boot list the node's client piece reads.
	entries, notices := BootList(b.opts.Items, id.present, nodeExists(root))
	for _, n := range notices {
		out.notices = append(out.notices, host+": "+n)
	}
	if err := writeBootList(root, FormatBootList(entries)); err != nil {
		err = fmt.Errorf("boot list %s: %w", filepath.Join(b.opts.SnapshotDir, host, BootListPath), err)
		out.problems = append(out.problems, host+": "+err.Error())
		if out.res.Error == "" {
			out.res.Error = err.Error()
		}
	}
	return out
}

// identity makes the node's identity files and reports in out.
func (b *builder) identity(ctx context.Context, root *fsx.Root, host string, out *nodeOut) identityOut {
	id := b.makeIdentity(ctx, root, host)
	out.res.Identity = id.created
	out.res.Failed += len(id.problems)
	out.problems = append(out.problems, id.problems...)
	out.notices = append(out.notices, id.notices...)
	return id
}

// openNode opens SnapshotDir/host, creating it (mode 0755) when missing,
// without following a symlink. It returns nil in a dry run for a snapshot
// not made yet.
func (b *builder) openNode(host string) (*fsx.Root, error) {
	if b.snapRoot == nil {
		return nil, nil
	}
	d, err := b.snapRoot.OpenDir(host)
	if errors.Is(err, unix.ENOENT) {
		if b.opts.DryRun {
			return nil, nil
		}
		if err := b.mkdirNode(host); err != nil {
			return nil, err
		}
		d, err = b.snapRoot.OpenDir(host)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("snapshot of %s: %s is not a directory (a symlink?); refused", host, filepath.Join(b.opts.SnapshotDir, host))
		}
		return nil, fmt.Errorf("snapshot of %s: %w", host, err)
	}
	defer d.Close()
	r, err := fsx.OpenRoot("/proc/self/fd/" + strconv.Itoa(d.FD))
	if err != nil {
		return nil, fmt.Errorf("snapshot of %s: %w (is /proc mounted?)", host, err)
	}
	return r, nil
}

func (b *builder) mkdirNode(host string) error {
	top, err := b.snapRoot.OpenDir(".")
	if err != nil {
		return fmt.Errorf("snapshot of %s: %w", host, err)
	}
	defer top.Close()
	err = top.Mkdir(host, 0o755)
	if err == nil {
		err = top.Chmod(host, 0o755)
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create snapshot of %s: %w", host, err)
	}
	return nil
}

// procPath names an open root by its descriptor, so the engine opens that
// very directory whatever happens to the path meanwhile.
func procPath(r *fsx.Root) string { return "/proc/self/fd/" + strconv.Itoa(r.FD()) }

// relevant leaves out of a node's walk what the refresh never looks at:
// paths neither the image nor the record has (the node's own files and
// directories, not descended into). Their lstat is all they cost.
type relevant struct{ want, base map[string]*tree.Entry }

// Excluded reports whether p is the node's own.
func (r relevant) Excluded(p string, isDir bool) bool {
	return r.want[p] == nil && r.base[p] == nil
}

// isEngineTemp matches the engine's temporary files: TempPrefix and 16 hex
// digits.
func isEngineTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, imaging.TempPrefix)
	if !ok || len(rest) != 16 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// removeTemps removes the temporary files an interrupted build left in a
// snapshot: regular files with the engine's temporary names only.
func (b *builder) removeTemps(root *fsx.Root, host string, temps []string) {
	for _, p := range temps {
		if !isEngineTemp(tree.Base(p)) {
			continue
		}
		d, name, err := root.OpenParent(p)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if d.Lstat(name, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			if err := d.Unlink(name); err == nil {
				b.log.Info("removed a temporary file of an interrupted build", "node", host, "path", p)
			}
		}
		d.Close()
	}
}

// hashNeeded hashes the node's regular files whose hash the walk did not
// reuse and the refresh needs: those the same size as the image's or the
// recorded version (a different size settles the question unread). A
// file that cannot be read, or changes while read, stays unhashed: it
// then counts as changed by the node, which keeps it.
func hashNeeded(root *fsx.Root, wantIdx map[string]*tree.Entry, node []*tree.Entry, base map[string]*tree.Entry) {
	var buf []byte
	for _, n := range node {
		if n.Type != tree.TypeRegular || n.Hashed() || n.Problem != "" {
			continue
		}
		w, b := wantIdx[n.Path], base[n.Path]
		if !(w != nil && w.Type == tree.TypeRegular && w.Size == n.Size) &&
			!(b != nil && b.Type == tree.TypeRegular && b.Size == n.Size) {
			continue
		}
		if buf == nil {
			buf = make([]byte, 256<<10)
		}
		if h, ok := hashFile(root, n, buf); ok {
			n.SetHash(h)
		}
	}
}

func hashFile(root *fsx.Root, n *tree.Entry, buf []byte) (uint64, bool) {
	f, err := root.OpenFile(n.Path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	same := func() bool {
		var st unix.Stat_t
		return unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG &&
			st.Dev == n.Dev && st.Ino == n.Ino && st.Size == n.Size &&
			fsx.StatMtime(&st) == n.Mtime && fsx.StatCtime(&st) == n.Ctime
	}
	if !same() {
		return 0, false
	}
	h, _, err := imaging.HashContent(f, n.Size, buf)
	if err != nil || !same() {
		return 0, false
	}
	return h, true
}

// recordWritten returns the records of the paths the plan wrote: each
// image entry with the node's new identity (device, inode, ctime), read
// with one lstat per path and one open per directory. A path that is not
// what was written (the node changed it meanwhile) gets no record: with
// none, a difference is kept as the node's.
func recordWritten(root *fsx.Root, ws []*tree.Entry) []*tree.Entry {
	slices.SortFunc(ws, func(a, b *tree.Entry) int {
		if c := tree.Compare(tree.Dir(a.Path), tree.Dir(b.Path)); c != 0 {
			return c
		}
		return tree.Compare(a.Path, b.Path)
	})
	out := make([]*tree.Entry, 0, len(ws))
	var d *fsx.Dir
	dirPath := ""
	defer func() {
		if d != nil {
			d.Close()
		}
	}()
	for _, w := range ws {
		if parent := tree.Dir(w.Path); d == nil || parent != dirPath {
			if d != nil {
				d.Close()
				d = nil
			}
			var err error
			if d, err = root.OpenDir(parent); err != nil {
				d = nil
				continue
			}
			dirPath = parent
		}
		var st unix.Stat_t
		if err := d.Lstat(tree.Base(w.Path), &st); err != nil {
			continue
		}
		if statType(st.Mode) != w.Type || (w.Type == tree.TypeRegular && st.Size != w.Size) {
			continue
		}
		e := w.Clone()
		e.LinkTo = ""
		e.Dev, e.Ino, e.Nlink = st.Dev, st.Ino, uint32(st.Nlink)
		e.Mtime, e.Ctime = fsx.StatMtime(&st), fsx.StatCtime(&st)
		out = append(out, e)
	}
	return out
}

func statType(mode uint32) tree.Type {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return tree.TypeRegular
	case unix.S_IFDIR:
		return tree.TypeDir
	case unix.S_IFLNK:
		return tree.TypeSymlink
	case unix.S_IFCHR:
		return tree.TypeCharDev
	case unix.S_IFBLK:
		return tree.TypeBlockDev
	case unix.S_IFIFO:
		return tree.TypeFIFO
	case unix.S_IFSOCK:
		return tree.TypeSocket
	}
	return tree.TypeInvalid
}

// recordChanged reports whether the new record differs from the old: the
// refresh reuses the old entries of what did not change.
func recordChanged(old, next []*tree.Entry) bool {
	if len(old) != len(next) {
		return true
	}
	idx := make(map[*tree.Entry]bool, len(old))
	for _, e := range old {
		idx[e] = true
	}
	return slices.ContainsFunc(next, func(e *tree.Entry) bool { return !idx[e] })
}

// snapSource is the image as the applier reads it: a DirSource, except that
// a file a KindEmpty item made empty (any zero-size file) is written
// without reading the image.
type snapSource struct {
	*imaging.DirSource
}

// CopyFile copies e's content into dst with the DirSource's reflink or
// copy_file_range, or writes nothing for an empty file.
func (s *snapSource) CopyFile(ctx context.Context, e *tree.Entry, dst *fsx.File) (imaging.FetchResult, error) {
	if e.Size == 0 {
		return imaging.FetchResult{Size: 0, Hash: emptyHash, Mtime: e.Mtime}, nil
	}
	return s.DirSource.CopyFile(ctx, e, dst)
}

// Fetch streams content as DirSource.Fetch does, empty files aside.
func (s *snapSource) Fetch(ctx context.Context, reqs []*imaging.FetchRequest, open func(*imaging.FetchRequest) (imaging.ContentSink, error)) error {
	var rest []*imaging.FetchRequest
	for _, r := range reqs {
		if r.Entry.Size != 0 {
			rest = append(rest, r)
			continue
		}
		sink, err := open(r)
		if err != nil {
			return err
		}
		if err := sink.Finish(imaging.FetchResult{Size: 0, Hash: emptyHash, Mtime: r.Entry.Mtime}); err != nil {
			return err
		}
	}
	if len(rest) == 0 {
		return nil
	}
	return s.DirSource.Fetch(ctx, rest, open)
}
