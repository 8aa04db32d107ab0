package imaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// RollbackOptions configure Rollback: Options as for Sync (DryRun,
// Itemize, Progress, StateDir, Generations, MaxDelete, Logger...), and
// Force.
type RollbackOptions struct {
	Options
	// Force rolls back over changes to the image its manifest does not
	// know (see Drift), and without the free-space check.
	Force bool
}

// ErrDrift is wrapped when a rollback is refused because the image holds
// changes its manifest does not know (made by hand or by another tool).
var ErrDrift = errors.New("the image changed since the last run")

// Rollback makes the live image dest equal to generation id, through the
// same live-safe applier as a pull: the generation's manifest is the
// source's tree and its content comes from the kept objects (or from the
// live image, where a file with the same content still is), so no golden
// node is needed. Clients see whole files; retention keeps what the
// rollback replaces. A successful rollback is recorded as a new generation
// (so it can be undone) when opts.Generations is set, with the source
// "rollback to ID". opts.DryRun and opts.Itemize work as in Sync.
//
// Rollback refuses, wrapping ErrIncomplete and naming the paths, when
// content of the generation is kept nowhere; unless ro.Force, also when the
// image changed in ways its manifest does not know (ErrDrift, naming the
// paths) or when the filesystem lacks the space for the files to write
// (ErrGuard). A rollback that was stopped
// midway converges when run again. The guards of Sync (MaxDelete) apply.
func Rollback(ctx context.Context, dest string, id int64, ro RollbackOptions) (*Result, error) {
	opts := ro.Options
	stateDir := opts.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir(dest)
		opts.StateDir = stateDir
	}
	g, m, err := LoadGeneration(stateDir, id)
	if err != nil {
		return nil, err
	}
	live, err := LoadManifest(State(stateDir).Manifest)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("live manifest: %w", err)
	}
	if live == nil {
		live = &Manifest{}
	}
	src := newGenSource(stateDir, dest, m, live)
	if missing := src.missing(); len(missing) > 0 {
		return nil, fmt.Errorf("%w: generation %d: the content of %d files is kept nowhere: %s",
			ErrIncomplete, id, len(missing), listPaths(missing, 20))
	}
	if opts.Excludes == nil {
		opts.Excludes = g.Excludes
	}
	if !ro.Force {
		// The image may also hold, per path, what the newest generation
		// recorded: a stopped run leaves the manifest vouching only for
		// what it wrote.
		var prev *Manifest
		if ids, _ := generationIDs(stateDir); len(ids) > 0 {
			_, prev, _ = LoadGeneration(stateDir, ids[len(ids)-1])
		}
		if err := checkSpace(dest, m, live); err != nil {
			return nil, err
		}
		// Checked on the sync's own walk of the image, against the
		// manifest it loads under the state dir's lock: one walk, not two.
		opts.checkDest = func(dst []*tree.Entry, live *Manifest) error {
			if drift := driftOf(dst, live, m, prev); len(drift) > 0 {
				return fmt.Errorf("%w in ways its manifest does not know (%d paths: %s): see them with verify, or roll back over them with force",
					ErrDrift, len(drift), listPaths(drift, 20))
			}
			return nil
		}
	}
	opts.Since, opts.Incremental, opts.Scopes = "", false, nil
	if opts.Generations != nil {
		pol := *opts.Generations
		pol.Source = fmt.Sprintf("rollback to %d", id)
		opts.Generations = &pol
		opts.rollbackOf = id
	}
	defer src.Close()
	return Sync(ctx, src, dest, opts)
}

// Drift lists the paths of the live image dest that differ from what its
// manifest (in stateDir) records: changed, added or removed by something
// other than goldsync. Files the quick check vouches for are not read;
// directory mtimes are not compared (their entries are).
func Drift(ctx context.Context, dest, stateDir string, excludes []string, log *slog.Logger) ([]string, error) {
	return drift(ctx, dest, stateDir, excludes, nil, nil, log)
}

// drift is Drift that also accepts what matches target (the progress of a
// rollback to target that was stopped) or prev (the newest generation: the
// state such a run started from, where its manifest no longer vouches).
func drift(ctx context.Context, dest, stateDir string, excludes []string, target, prev *Manifest, log *slog.Logger) ([]string, error) {
	live, err := LoadManifest(State(stateDir).Manifest)
	if err != nil {
		return nil, fmt.Errorf("live manifest: %w", err)
	}
	root, err := fsx.OpenRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("open destination: %w", err)
	}
	defer root.Close()
	idx := live.index()
	wo := WalkOptions{Hash: true, Logger: log, Previous: func(p string) *tree.Entry { return idx[p] }, Temps: func(string) {}}
	if ex, err := exclude.New(excludes); err != nil {
		return nil, fmt.Errorf("excludes: %w", err)
	} else if ex != nil {
		wo.Exclude = ex
	}
	w, err := Walk(ctx, root, wo)
	if err != nil {
		return nil, fmt.Errorf("scan destination: %w", err)
	}
	return driftOf(w.Entries, live, target, prev), nil
}

// driftOf lists the paths of a walk of the image (dst) that differ from
// the live manifest, accepting what matches target or prev as drift does.
func driftOf(dst []*tree.Entry, live, target, prev *Manifest) []string {
	idx := live.index()
	tidx := map[string]*tree.Entry{}
	if target != nil {
		tidx = target.index()
	}
	pidx := map[string]*tree.Entry{}
	if prev != nil {
		pidx = prev.index()
	}
	var out []string
	seen := make(map[string]bool, len(dst))
	for _, e := range dst {
		seen[e.Path] = true
		r := idx[e.Path]
		// Ctime 0 marks an entry a stopped run planned but did not do:
		// the manifest records its aim, not the image. So does an entry
		// of another type with the identity of the object found (a kind
		// change a stopped run did not make).
		if r != nil && (r.Ctime == 0 || sameState(r, e) || r.Type != e.Type && r.Dev == e.Dev && r.Ino == e.Ino) {
			continue
		}
		// A stopped rollback to target: each attribute is the recorded
		// one or the target's (a hard link's inode may have its new
		// attributes set through another name, its content still old).
		if t := tidx[e.Path]; t != nil && (sameState(t, e) || r != nil && mixedState(r, t, e)) {
			continue
		}
		if p := pidx[e.Path]; p != nil && (sameState(p, e) || tidx[e.Path] != nil && mixedState(p, tidx[e.Path], e)) {
			continue
		}
		if r != nil && r.LinkTo != "" {
			// Its inode is shared: the target's attributes of the
			// group's leader may have been set through the leader.
			if t := tidx[r.LinkTo]; t != nil && mixedState(r, t, e) {
				continue
			}
		}
		if r == nil {
			out = append(out, e.Path+" (added)")
		} else {
			out = append(out, e.Path+" (changed)")
		}
	}
	for _, r := range live.Entries {
		if seen[r.Path] {
			continue
		}
		// Gone: deleted by a stopped rollback, or taken out of the way of
		// an object of another kind not yet put there.
		if t := tidx[r.Path]; target != nil && (t == nil || t.Type != r.Type) {
			continue
		}
		out = append(out, r.Path+" (removed)")
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(a, b) })
	return out
}

// mixedState reports whether each of e's type, attributes and content is
// a's or b's.
func mixedState(a, b, e *tree.Entry) bool {
	if e.Type != a.Type && e.Type != b.Type {
		return false
	}
	meta := func(r *tree.Entry) bool { return r.Type == e.Type && tree.SameMeta(r, e) }
	content := func(r *tree.Entry) bool {
		return r.Type == e.Type && (e.Type != tree.TypeRegular || r.Size == e.Size && (!r.Hashed() || !e.Hashed() || r.Hash == e.Hash))
	}
	return (meta(a) || meta(b)) && (content(a) || content(b))
}

// sameState reports whether a recorded entry describes the object found:
// type, attributes (a directory's mtime aside, and a directory a stopped
// run created), content.
func sameState(r, e *tree.Entry) bool {
	if r.Type != e.Type {
		return false
	}
	if r.Type == tree.TypeDir {
		if e.Mode == 0o700 {
			// How the applier creates a directory: its attributes are
			// set last, so a stopped run leaves it so.
			return true
		}
		c := *e
		c.Mtime = r.Mtime
		return tree.SameMeta(r, &c)
	}
	if !tree.SameMeta(r, e) {
		return false
	}
	if r.Type == tree.TypeRegular {
		return r.Size == e.Size && (!r.Hashed() || !e.Hashed() || r.Hash == e.Hash)
	}
	return true
}

// checkSpace refuses a rollback whose new files (their apparent sizes: an
// upper bound) do not fit in the destination filesystem's free space. What
// the rollback replaces stays allocated (retention keeps it).
func checkSpace(dest string, gen, live *Manifest) error {
	at := make(map[string]contentKey, len(live.Entries))
	for _, e := range live.Entries {
		if e.Type == tree.TypeRegular && e.Hashed() {
			at[e.Path] = entryKey(e)
		}
	}
	var need int64
	for _, e := range gen.Entries {
		if needsContent(e) && (!e.Hashed() || at[e.Path] != entryKey(e)) {
			need += e.Size
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dest, &st); err != nil {
		return nil // unknown: let the applier's ENOSPC speak
	}
	if free := int64(st.Bavail) * st.Bsize; need > free {
		return fmt.Errorf("%w: the rollback writes up to %d bytes but %s has %d free", ErrGuard, need, dest, free)
	}
	return nil
}

// MissingContent lists the paths of generation id whose content is kept
// neither in the objects nor, per the live manifest, in the live image.
func MissingContent(stateDir, dest string, id int64) ([]string, error) {
	_, m, err := LoadGeneration(stateDir, id)
	if err != nil {
		return nil, err
	}
	live, err := LoadManifest(State(stateDir).Manifest)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("live manifest: %w", err)
	}
	if live == nil {
		live = &Manifest{}
	}
	return newGenSource(stateDir, dest, m, live).missing(), nil
}

func listPaths(ps []string, n int) string {
	if len(ps) <= n {
		return strings.Join(ps, ", ")
	}
	return strings.Join(ps[:n], ", ") + fmt.Sprintf(" and %d more", len(ps)-n)
}

// genSource is a Source serving a generation: Scan lists its manifest,
// Fetch reads content from the objects dir, or from the live image file the
// live manifest says has it. Every byte served is checked against the hash.
type genSource struct {
	objects string
	dest    string
	gen     *Manifest
	objs    map[contentKey]bool
	live    map[contentKey]string // content key -> a live path holding it
}

func newGenSource(stateDir, dest string, gen, live *Manifest) *genSource {
	objects := objectsDir(stateDir)
	if abs, err := filepath.Abs(objects); err == nil {
		objects = abs
	}
	s := &genSource{objects: objects, dest: dest, gen: gen,
		objs: listObjects(stateDir), live: map[contentKey]string{}}
	for _, e := range live.Entries {
		if e.Type == tree.TypeRegular && e.Hashed() {
			if _, ok := s.live[entryKey(e)]; !ok {
				s.live[entryKey(e)] = e.Path
			}
		}
	}
	return s
}

func (s *genSource) missing() []string {
	var out []string
	for _, e := range s.gen.Entries {
		if !needsContent(e) {
			continue
		}
		if !e.Hashed() {
			out = append(out, e.Path)
			continue
		}
		k := entryKey(e)
		if !s.objs[k] && s.live[k] == "" {
			out = append(out, e.Path)
		}
	}
	return out
}

// Scan lists the generation's entries (the whole tree).
func (s *genSource) Scan(ctx context.Context, req ScanRequest, fn func(*tree.Entry) error) (ScanResult, error) {
	for _, e := range s.gen.Entries {
		if err := ctx.Err(); err != nil {
			return ScanResult{}, err
		}
		c := e.Clone()
		c.Problem = ""
		if err := fn(c); err != nil {
			return ScanResult{}, err
		}
	}
	return ScanResult{Scope: tree.FullScope, Entries: len(s.gen.Entries)}, nil
}

// Fetch serves kept content, several files at a time.
func (s *genSource) Fetch(ctx context.Context, reqs []*FetchRequest, open func(*FetchRequest) (ContentSink, error)) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(ioWorkers(2))
	for _, r := range reqs {
		if err := ctx.Err(); err != nil {
			break
		}
		g.Go(func() error {
			sink, err := open(r)
			if err != nil {
				return err
			}
			return s.send(ctx, r.Entry, sink)
		})
	}
	return g.Wait()
}

func (s *genSource) send(ctx context.Context, e *tree.Entry, sink ContentSink) error {
	k := entryKey(e)
	var tried []string
	for _, c := range s.candidates(k) {
		p := c.path
		res, sent, err := s.sendFrom(ctx, c, e, sink)
		if err == nil {
			return sink.Finish(res)
		}
		var se sinkError
		if errors.As(err, &se) {
			return se.err
		}
		tried = append(tried, fmt.Sprintf("%s: %v", p, err))
		if sent {
			break // the sink has data: no second try
		}
	}
	if len(tried) == 0 {
		tried = append(tried, "kept nowhere")
	}
	sink.Abort(&FileError{Op: "restore", Path: e.Path, Err: fmt.Errorf("%w: %s", ErrIncomplete, strings.Join(tried, "; "))})
	return nil
}

// keptFile is where content may be read: an object, or a path of the live
// image (read beneath dest, never following symlinks).
type keptFile struct {
	path  string
	inImg bool
}

func (s *genSource) candidates(k contentKey) []keptFile {
	var ps []keptFile
	if s.objs[k] {
		ps = append(ps, keptFile{path: filepath.Join(s.objects, k.name())})
	}
	if p := s.live[k]; p != "" {
		ps = append(ps, keptFile{path: p, inImg: true})
	}
	return ps
}

// sendFrom streams one file (an object, or a path beneath dest), holes
// kept, and checks it against the key.
func (s *genSource) sendFrom(ctx context.Context, c keptFile, e *tree.Entry, sink ContentSink) (res FetchResult, sent bool, err error) {
	var f *fsx.File
	p := c.path
	if !c.inImg {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return res, false, err
		}
		f = fsx.NewFile(fd, p)
	} else {
		root, err := fsx.OpenRoot(s.dest)
		if err != nil {
			return res, false, err
		}
		f, err = root.OpenFile(p)
		root.Close()
		if err != nil {
			return res, false, err
		}
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return res, false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != e.Size {
		return res, false, errors.New("not the kept file (type or size differs)")
	}
	exts, err := fsx.ExtentsOf(f, &st)
	if err != nil {
		return res, false, err
	}
	bp := fsx.GetBuf()
	defer fsx.PutBuf(bp)
	buf := *bp
	d := xxhash.New()
	var pos int64
	for _, x := range exts {
		for off, end := x.Off, min(x.Off+x.Len, e.Size); off < end; {
			if err := ctx.Err(); err != nil {
				return res, sent, sinkError{err}
			}
			n := min(int64(len(buf)), end-off)
			b := buf[:n]
			if err := fsx.ReadFullAt(f, b, off); err != nil {
				return res, sent, fmt.Errorf("read: %w", err)
			}
			hashZeros(d, off-pos)
			d.Write(b)
			pos = off + n
			if !fsx.IsZero(b) {
				sent = true
				if err := sink.Data(off, b); err != nil {
					return res, sent, sinkError{err}
				}
			}
			off += n
		}
	}
	hashZeros(d, e.Size-pos)
	if h := d.Sum64(); h != e.Hash {
		return res, sent, fmt.Errorf("content hashes to %016x, not the recorded %016x", h, e.Hash)
	}
	// The generation's mtime, not the kept inode's (which a later in-place
	// metadata change may have moved).
	return FetchResult{Size: e.Size, Hash: e.Hash, Mtime: e.Mtime}, sent, nil
}

// Close releases nothing: the source holds no open files between calls.
func (s *genSource) Close() error { return nil }

// DiffGenerations itemizes, in rsync's format, what changes from one
// recorded state of an image to another: from generation from to
// generation to, where 0 names the live image (its manifest as the last
// run recorded it).
func DiffGenerations(stateDir string, from, to int64) ([]Change, error) {
	load := func(id int64) (*Manifest, error) {
		if id == 0 {
			m, err := LoadManifest(State(stateDir).Manifest)
			if err != nil {
				return nil, fmt.Errorf("live manifest: %w", err)
			}
			return m, nil
		}
		_, m, err := LoadGeneration(stateDir, id)
		return m, err
	}
	a, err := load(from)
	if err != nil {
		return nil, err
	}
	b, err := load(to)
	if err != nil {
		return nil, err
	}
	plan := MakePlan(b.Entries, a.Entries, PlanOptions{})
	var acts []Action
	for _, act := range plan.Actions {
		if act.Op == OpDirMeta && act.Dst == nil {
			continue
		}
		acts = append(acts, act)
	}
	slices.SortStableFunc(acts, func(x, y Action) int { return tree.Compare(x.Path, y.Path) })
	out := make([]Change, 0, len(acts))
	for _, act := range acts {
		out = append(out, Itemize(act))
	}
	return out, nil
}
