package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/proto"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/internal/version"
	"github.com/goldsync/goldsync/remote"
	"github.com/goldsync/goldsync/snapshot"
)

// ErrReplica is wrapped by the error of a replica that could not be
// brought up to date. Such an error also wraps imaging.ErrPartial: the
// image itself was synced, and the run is partial (exit 23 on the command
// line), as when some paths could not be applied.
var ErrReplica = errors.New("replica not updated")

// ReplicateOptions configure Replicate. The zero value updates every
// replica of the image, Image.Fanout (or twice the cores) at once.
type ReplicateOptions struct {
	// Replicas names the replicas to update; none means all of them.
	Replicas []string
	// Fanout bounds the pushes each feeder (the primary, or a replica
	// feeding others) runs at once; zero means the image's fanout, else
	// twice the cores.
	Fanout int
	// Deadline gives up on one replica after this long; zero or negative
	// means DefaultDeadline.
	Deadline time.Duration
	// ProgressTimeout fails a replica whose receiver sends only keepalives
	// for this long while it owes an answer (the receiver's own
	// --progress-timeout); zero means its default.
	ProgressTimeout time.Duration
	// NoBuild skips the replicas' snapshot and boot file builds: only the
	// image is pushed.
	NoBuild bool
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
	// ReplicaDone is called, from any goroutine, with each replica's
	// report as it is done.
	ReplicaDone func(r *ReplicaReport)

	// kernels maps an OS to the kernel the replicas must boot instead of
	// the config's (a rollback's).
	kernels map[string]string
	// changes are the change sets computed for the replicas of this run.
	changes *imaging.ChangeCache
	// cacheLoads are the image manifest's scoped loads made for the
	// replicas this run pushes to (mostly the same change set).
	cacheLoads *imaging.CacheLoads
	// shares are the run's shared ssh connections to the replicas.
	shares *sshShares
	// masters, when set, are a cluster.Run's masters, shared by its
	// images (see newRunMasters).
	masters *runMasters
}

// ReplicaReport is what a run did to one replica.
type ReplicaReport struct {
	Replica string `json:"replica"`
	Address string `json:"address"`
	// Result is ResultOK or ResultFailed.
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
	// Generation is the primary's generation the replica holds now (0:
	// none known); Full says the push compared the whole image (the
	// replica's generation was unknown or pruned) instead of sending the
	// paths that changed since it.
	Generation int64 `json:"generation"`
	Full       bool  `json:"full_compare"`
	// Via is the replica that fed this one (tree fan-out, config.Replica.From),
	// empty for the primary.
	Via string `json:"via,omitempty"`
	// Entries, Files and Bytes count what the feeder (the primary, or
	// Via) sent: entries listed, files whose content was asked for,
	// content bytes sent.
	Entries int64 `json:"entries_sent"`
	Files   int64 `json:"files_sent"`
	Bytes   int64 `json:"bytes_sent"`
	// Receiver is the replica receiver's summary line.
	Receiver string `json:"receiver,omitempty"`
	// Build is what the replica's snapshot and boot file build did.
	Build   *ReplicaBuildReport `json:"build,omitempty"`
	Seconds float64             `json:"seconds"`

	// Err is the replica's error, wrapping ErrReplica and
	// imaging.ErrPartial; nil when Result is ResultOK.
	Err error `json:"-"`
}

// ReplicaState is what the primary knows of one replica of an image, kept
// in the image's state dir (replicas/NAME.json) and shown by Status.
type ReplicaState struct {
	Replica string `json:"replica"`
	Address string `json:"address"`
	// Generation is the primary's generation the replica last confirmed,
	// GenerationTime when the primary recorded it, Applied when the
	// replica confirmed it.
	Generation     int64     `json:"generation"`
	GenerationTime time.Time `json:"generation_time,omitzero"`
	Applied        time.Time `json:"applied,omitzero"`
	// LastAttempt is when the last update ended, LastResult how (ok or
	// failed) and LastError why it failed.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastResult  string    `json:"last_result,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	// LastSuccess is when an update last ended ok.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Started is when the last update started; after LastAttempt, that
	// update never ended (the primary's run was killed).
	Started time.Time `json:"started,omitzero"`
	// Via is the replica that fed the last update (tree fan-out), empty
	// for the primary.
	Via string `json:"via,omitempty"`
}

// Down reports whether the replica cannot serve its nodes: it never
// confirmed a generation, or its last update failed. Its nodes boot from
// the primary until an update succeeds again.
func (s *ReplicaState) Down() bool {
	return s == nil || s.Generation == 0 || s.LastResult != ResultOK
}

// needsFullCompare reports whether the replica's next update must
// compare everything: its last one failed, or never ended.
func (s *ReplicaState) needsFullCompare() bool {
	return s.LastResult == ResultFailed || s.Started.After(s.LastAttempt)
}

// replicaStatePath is where the primary keeps a replica's state.
func replicaStatePath(stateDir, name string) string {
	return filepath.Join(stateDir, "replicas", name+".json")
}

// LoadReplicaState reads what the primary knows of a replica of the image
// whose state dir is stateDir; nil when nothing is recorded.
func LoadReplicaState(stateDir, name string) (*ReplicaState, error) {
	data, err := os.ReadFile(replicaStatePath(stateDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st ReplicaState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", replicaStatePath(stateDir, name), err)
	}
	return &st, nil
}

func saveReplicaState(stateDir string, st *ReplicaState) error {
	p := replicaStatePath(stateDir, st.Replica)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return fsx.WritePathAtomic(p, append(data, '\n'), 0o644)
}

// Replicate brings the replicas of an image up to date with its newest
// generation, under the image's run lock: what goldsync sync does after
// the pull. Each replica gets, with the same engine and fidelity as a
// push ("goldsync receive --stdio" on the replica, through its rsh), the
// paths that changed between the generation it holds and the newest one
// (imaging.GenerationChanges), or a full compare when that generation is
// unknown or pruned, or the replica's last update failed; then, unless NoBuild, it builds its nodes' snapshots
// and boot files from its own copy ("goldsync replica-build --stdio", see
// ServeReplicaBuild). A replica with a parent (config.Replica.From) is fed
// by that parent's copy once the parent holds the newest generation
// ("goldsync replica-relay --stdio" on the parent, see ServeReplicaRelay),
// or by the nearest ancestor that does, else by the primary. Replicas are
// updated in parallel, at most Fanout at once per feeder; one that fails
// does not stop the others.
//
// It returns a report per replica, in config order, and the failed
// replicas' errors joined (each wraps ErrReplica and imaging.ErrPartial).
// What each replica now holds is recorded in the image's state dir (see
// LoadReplicaState). Errors before any replica was tried (an unknown
// image or replica, the lock, the nodes file) come with no reports.
func Replicate(ctx context.Context, cfg *config.Config, image string, o ReplicateOptions) ([]*ReplicaReport, error) {
	imgs, err := SelectImages(cfg, []string{image})
	if err != nil {
		return nil, err
	}
	img := imgs[0]
	byOS, _, err := Nodes(cfg)
	if err != nil {
		return nil, err
	}
	unlock, err := TakeRunLock(img.StateDir)
	if err != nil {
		return nil, stepErr(StepLock, err)
	}
	defer unlock()
	return replicate(ctx, cfg, img, byOS, o)
}

// ReplicatePush brings the replicas of image that lack its newest
// generation to it: what goldsync receive --image does after a golden
// node's push (the agent's push path) has recorded a generation. Only
// replicas behind (or down, or whose last update never ended) are
// updated, so a push that changed nothing logs in nowhere, and a replica
// that was down catches up at the next push; a replica's update is
// Replicate's, but for the snapshots and boot files, which a push does
// not build on the primary either (the next goldsync sync builds both).
// It returns no reports when every replica is up to date, and Replicate's
// reports and joined errors otherwise.
func ReplicatePush(ctx context.Context, cfg *config.Config, image string, o ReplicateOptions) ([]*ReplicaReport, error) {
	img, ok := cfg.Image(image)
	if !ok {
		return nil, noImage("no image %q in %s", image, cfg.Path)
	}
	newest, err := imaging.NewestGeneration(img.StateDir)
	if err != nil || newest == 0 {
		return nil, err
	}
	o.NoBuild = true
	o.Replicas = nil
	for _, rep := range img.Replicas {
		st, err := LoadReplicaState(img.StateDir, rep.Name)
		if err != nil || st == nil || st.Down() || st.needsFullCompare() || st.Generation != newest {
			o.Replicas = append(o.Replicas, rep.Name)
		}
	}
	if len(o.Replicas) == 0 {
		return nil, nil
	}
	return Replicate(ctx, cfg, image, o)
}

// replicate is Replicate under the run lock.
func replicate(ctx context.Context, cfg *config.Config, img *config.Image, byOS map[string][]snapshot.Node, o ReplicateOptions) ([]*ReplicaReport, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var reps []*config.Replica
	if len(o.Replicas) == 0 {
		for i := range img.Replicas {
			reps = append(reps, &img.Replicas[i])
		}
	}
	for _, name := range o.Replicas {
		r, ok := img.Replica(name)
		if !ok {
			var names []string
			for _, r := range img.Replicas {
				names = append(names, r.Name)
			}
			return nil, stepErr(StepConfig, fmt.Errorf("image %s has no replica %q (replicas: %s)", img.Name, name, strings.Join(names, ", ")))
		}
		reps = append(reps, r)
	}
	var imageNodes []snapshot.Node
	for _, sys := range cfg.OSOf(img.Name) {
		imageNodes = append(imageNodes, byOS[sys.Name]...)
	}
	for _, w := range UnmatchedReplicas(cfg, img, imageNodes) {
		o.Logger.Warn(w)
	}
	var jobs map[string]*ReplicaJob
	if !o.NoBuild {
		var err error
		if jobs, err = replicaJobs(cfg, img, byOS, o.kernels); err != nil {
			return nil, stepErr(StepNodes, err)
		}
	}
	fanout := o.Fanout
	if fanout <= 0 {
		fanout = img.Fanout
	}
	if fanout <= 0 {
		fanout = 2 * runtime.GOMAXPROCS(0)
	}
	o.changes = &imaging.ChangeCache{}
	o.cacheLoads = &imaging.CacheLoads{}
	o.shares = newShares(o.Logger, img, o.masters)
	defer o.shares.close()
	reports := make([]*ReplicaReport, len(reps))
	for i, rep := range reps {
		reports[i] = &ReplicaReport{Replica: rep.Name, Address: rep.Address}
	}
	fanTree(ctx, img, reps, fanout, func(rep, via *config.Replica, r *ReplicaReport, pushed func(bool)) {
		updateReplica(ctx, img, rep, via, jobs[rep.Name], o, r, pushed)
		if o.ReplicaDone != nil {
			o.ReplicaDone(r)
		}
	}, reports)
	var errs []error
	for _, r := range reports {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return reports, errors.Join(errs...)
}

// fail records err as the replica's error.
func (r *ReplicaReport) fail(err error) {
	r.Err = stepErr(StepReplica, kindError{imaging.ErrPartial, kindError{ErrReplica, fmt.Errorf("replica %s: %w", r.Replica, err)}})
	r.Error = r.Err.Error()
	r.Result = ResultFailed
}

// updateReplica pushes the image to one replica and has it build its
// nodes' snapshots and boot files, and records the outcome.
func updateReplica(ctx context.Context, img *config.Image, rep, via *config.Replica, job *ReplicaJob, o ReplicateOptions, r *ReplicaReport, pushed func(ok bool)) {
	start := time.Now()
	deadline := o.Deadline
	if deadline <= 0 {
		deadline = DefaultDeadline
	}
	ctx, cancel := WithDeadline(ctx, deadline)
	defer cancel()
	prev, err := LoadReplicaState(img.StateDir, rep.Name)
	if err != nil || prev == nil {
		prev = &ReplicaState{}
	}
	st := *prev
	st.Replica, st.Address, st.Via = rep.Name, rep.Address, r.Via
	// After a failed update (cut off, killed, unreachable), or one that
	// never ended, the replica compares everything once: what a cut-off
	// run left half done lies outside the paths of any change set.
	full := prev.needsFullCompare()
	st.Started = time.Now().UTC()
	if serr := saveReplicaState(img.StateDir, &st); serr != nil {
		o.Logger.Warn("replica state not saved", "image", img.Name, "replica", rep.Name, "err", serr)
	}
	// The primary's own sessions to the replica (its push, its build)
	// share one login; what a relay gets is the replica's rsh as
	// configured.
	// With ReplicaSSHPersist the master outlives the run, for a push
	// alone too: a session over a master kept from an earlier run that
	// fails before the receiver answers is tried once more with a fresh
	// login.
	own := *rep
	var conn *shareConn
	if via == nil && o.shares.wanted(rep, job != nil) {
		own.Rsh, conn = o.shares.conn(ctx, rep)
	}
	if via == nil {
		err = pushReplica(ctx, img, &own, o, full, r)
		if err != nil && conn.retry(err) {
			o.Logger.Info("replica: the session over the kept ssh connection failed before the receiver answered; logging in afresh", "image", img.Name, "replica", rep.Name, "err", err)
			err = pushReplica(ctx, img, &own, o, full, r)
		}
		conn.opened()
	} else {
		err = relayReplica(ctx, img, via, rep, o, full, prev, r)
	}
	pushed(err == nil)
	if err == nil && job != nil {
		r.Build, err = buildReplica(ctx, &own, job, o.Logger)
	}
	r.Seconds = time.Since(start).Seconds()
	now := time.Now().UTC()
	st.LastAttempt = now
	if r.Generation != 0 && r.Generation != prev.Generation {
		st.Generation, st.Applied = r.Generation, now
		if g, gerr := imaging.GenerationInfo(img.StateDir, r.Generation); gerr == nil {
			st.GenerationTime = g.Time.UTC()
		}
	}
	if err != nil {
		r.fail(DeadlineErr(ctx, err))
		st.LastResult, st.LastError = ResultFailed, r.Error
		o.Logger.Info("replica not updated (in the report and the error): its nodes boot from the primary until it is", "image", img.Name, "replica", rep.Name, "err", err)
	} else {
		r.Result = ResultOK
		st.LastResult, st.LastError, st.LastSuccess = ResultOK, "", now
	}
	if r.Generation == 0 {
		r.Generation = st.Generation
	}
	if serr := saveReplicaState(img.StateDir, &st); serr != nil {
		o.Logger.Error("replica state not saved", "image", img.Name, "replica", rep.Name, "err", serr)
	}
}

// receiveArgs are the arguments of "goldsync receive" on the replica:
// the image's own settings, and no excludes but the image's (the primary's
// image holds no excluded path, and the replica mirrors it exactly).
func receiveArgs(img *config.Image, rep *config.Replica, o ReplicateOptions) []string {
	args := []string{rep.Receiver, "receive", "--stdio", "--no-default-excludes"}
	for _, e := range img.Excludes {
		args = append(args, "--exclude", e)
	}
	if rep.StateDir != "" {
		args = append(args, "--state-dir", rep.StateDir)
	}
	switch {
	case img.NoDelete:
		args = append(args, "--no-delete")
	case img.MaxDelete != 0:
		args = append(args, "--max-delete", strconv.Itoa(img.MaxDelete))
	}
	switch {
	case img.Retention < 0:
		args = append(args, "--retention", "0")
	case img.Retention > 0:
		args = append(args, "--retention", img.Retention.String())
	}
	if img.KeepGenerations < 0 {
		args = append(args, "--no-generations")
	} else {
		args = append(args, "--keep-generations", strconv.Itoa(img.KeepGenerations))
		if img.KeepGenerationsFor > 0 {
			args = append(args, "--keep-generations-for", img.KeepGenerationsFor.String())
		}
	}
	if img.Timeout > 0 {
		args = append(args, "--timeout", img.Timeout.String())
	}
	if o.ProgressTimeout != 0 {
		args = append(args, "--progress-timeout", o.ProgressTimeout.String())
	}
	return append(args, rep.Path)
}

// replicaSpec is the replica's ssh destination.
func replicaSpec(rep *config.Replica, path string) remote.Spec {
	return sshSpec(rep.SSH, path)
}

// sshSpec is the ssh destination [user@]host, for path.
func sshSpec(dest, path string) remote.Spec {
	user, host, ok := strings.Cut(dest, "@")
	if !ok {
		user, host = "", dest
	}
	return remote.Spec{User: user, Host: host, Path: path}
}

var receivedRE = regexp.MustCompile(`goldsync receive: [^\n]*`)

// PushTarget is a receiver a replica push starts: Args ("goldsync receive
// --stdio ... PATH", the binary first) run on SSH ([user@]host) through
// Rsh. A relay gets it from the primary (RelayRequest).
type PushTarget struct {
	Rsh  string   `json:"rsh"`
	SSH  string   `json:"ssh"`
	Path string   `json:"path"`
	Args []string `json:"args"`
}

// PushResult is what one replica push did: the generation the receiver confirmed
// (0: none), whether the scan was full, and what was sent.
type PushResult struct {
	Generation int64  `json:"generation"`
	Full       bool   `json:"full_compare"`
	Entries    int64  `json:"entries_sent"`
	Files      int64  `json:"files_sent"`
	Bytes      int64  `json:"bytes_sent"`
	Receiver   string `json:"receiver,omitempty"`
}

// pushReplica runs the replica's receiver through ssh and serves it the
// primary's image: the changes since the generation it holds.
func pushReplica(ctx context.Context, img *config.Image, rep *config.Replica, o ReplicateOptions, full bool, r *ReplicaReport) error {
	t := PushTarget{Rsh: rep.Rsh, SSH: rep.SSH, Path: rep.Path, Args: receiveArgs(img, rep, o)}
	src := imaging.DirSourceOptions{
		Changes:   imaging.GenerationChanges{StateDir: img.StateDir, Full: full, Cache: o.changes},
		CacheFile: imaging.State(img.StateDir).Manifest, ReadOnlyCache: true, CacheLoads: o.cacheLoads,
	}
	res, err := push(ctx, t, img.Root, src, o.Logger)
	r.setPush(res)
	return err
}

// setPush copies a push's result into the report.
func (r *ReplicaReport) setPush(res PushResult) {
	r.Generation, r.Full = res.Generation, res.Full
	r.Entries, r.Files, r.Bytes, r.Receiver = res.Entries, res.Files, res.Bytes, res.Receiver
}

// push runs a receiver through ssh (t) and serves it a DirSource of root
// with opts: the one push of a replica update, from the primary or from a
// replica feeding another (ServeReplicaRelay).
func push(ctx context.Context, t PushTarget, root string, opts imaging.DirSourceOptions, log *slog.Logger) (PushResult, error) {
	var res PushResult
	if len(t.Args) == 0 {
		return res, errors.New("no receiver command")
	}
	var quoted []string
	for _, a := range t.Args {
		quoted = append(quoted, remote.ShellQuote(a))
	}
	p, err := remote.Command(ctx, t.Rsh, sshSpec(t.SSH, t.Path), strings.Join(quoted, " "), log)
	if err != nil {
		return res, fmt.Errorf("start the receiver: %w", err)
	}
	defer p.Close()
	opts.Logger = log
	var src *countingSource
	open := func(ctx context.Context, _ string) (imaging.Source, error) {
		ds, err := imaging.OpenDirSource(root, opts)
		if err != nil {
			return nil, err
		}
		src = &countingSource{Source: ds}
		return src, nil
	}
	onAck := func(ctx context.Context, token string) error {
		if id, _, ok := imaging.ParseGenerationToken(token); ok {
			res.Generation = id
		}
		return nil
	}
	serr := proto.Serve(ctx, p, open, proto.ServeOptions{Software: pushSoftware(), OnAck: onAck, Logger: log})
	p.Close()
	if src != nil {
		res.Entries, res.Files, res.Bytes = src.entries.Load(), src.files.Load(), src.bytes.Load()
		res.Full = src.full.Load()
	}
	stderr := strings.TrimSpace(p.Stderr())
	if m := receivedRE.FindString(stderr); m != "" {
		res.Receiver = m
	}
	if code := p.ExitCode(); code != 0 {
		msg := wire.InertLines(stderr)
		if code == 255 {
			err := fmt.Errorf("%w: %s", remote.ErrSSH, msg)
			if errors.Is(serr, wire.ErrRemoteExited) {
				return res, sessionError{err}
			}
			return res, err
		}
		if msg == "" {
			msg = "it printed nothing on stderr (check the replica's rsh and receiver command, and that goldsync runs there)"
		}
		return res, fmt.Errorf("receiver on %s failed (exit %d): %s", t.SSH, code, msg)
	}
	if serr != nil {
		return res, fmt.Errorf("push: %w", serr)
	}
	if res.Generation == 0 {
		return res, errors.New("the image is at no recorded generation (a partial or failed pull, or keep_generations = -1): the replica got it but holds no generation")
	}
	return res, nil
}

// errNoSession is what a push's error is (errors.Is) when ssh failed
// before the receiver said anything: nothing was sent or applied.
var errNoSession = errors.New("the remote shell failed before the receiver answered")

// sessionError is an ssh failure before the receiver answered.
type sessionError struct{ error }

func (e sessionError) Unwrap() error        { return e.error }
func (e sessionError) Is(target error) bool { return target == errNoSession }

// pushSoftware is the handshake name of a replica push's sending side:
// the image server's, with the release and commit stamp. The receiver only
// shows it; the agent's name (agent.Software) hashes the whole running
// executable, 15 MB, on every run of the primary.
func pushSoftware() string { return version.ServerPrefix + version.Stamp() }

// countingSource counts what a replica push sends.
type countingSource struct {
	imaging.Source
	entries, files, bytes atomic.Int64
	full                  atomic.Bool
}

func (c *countingSource) Scan(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
	res, err := c.Source.Scan(ctx, req, func(e *tree.Entry) error {
		c.entries.Add(1)
		return fn(e)
	})
	if err == nil {
		c.full.Store(tree.IsFull(res.Scope))
	}
	return res, err
}

func (c *countingSource) Fetch(ctx context.Context, reqs []*imaging.FetchRequest, open func(*imaging.FetchRequest) (imaging.ContentSink, error)) error {
	c.files.Add(int64(len(reqs)))
	return c.Source.Fetch(ctx, reqs, func(r *imaging.FetchRequest) (imaging.ContentSink, error) {
		s, err := open(r)
		if err != nil {
			return nil, err
		}
		return countingSink{ContentSink: s, n: &c.bytes}, nil
	})
}

type countingSink struct {
	imaging.ContentSink
	n *atomic.Int64
}

func (s countingSink) Data(off int64, p []byte) error {
	s.n.Add(int64(len(p)))
	return s.ContentSink.Data(off, p)
}
