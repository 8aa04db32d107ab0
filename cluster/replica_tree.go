package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/remote"
)

// Tree fan-out. A replica with `from = "P"` is fed by replica P instead of
// the primary: once P holds the newest generation, the primary runs
// "goldsync replica-relay --stdio" on P (ServeReplicaRelay) with the
// child's receiver and the primary's change set for it, and P pushes from
// its own copy. The primary sends P a request of a few kilobytes and gets
// a report back; the image's bytes go from P to the child. Everything else
// stays on the primary: it decides who feeds whom, computes every change
// set, runs every replica's build, and records every replica's state.

// feeder is a server that pushes to replicas: the primary (rep nil) or a
// replica holding the newest generation.
type feeder struct {
	rep *config.Replica
	sem chan struct{}
}

func (f *feeder) name() string {
	if f.rep == nil {
		return ""
	}
	return f.rep.Name
}

// fanTree runs the updates of reps (a subset of img.Replicas) as a tree:
// a replica starts once the nearest of its ancestors that is being updated
// has been pushed, and is fed by the nearest ancestor that holds the
// newest generation then (updated in this run, or found up to date by
// its recorded state), else by the primary. So a failed interior replica's
// subtree is fed by the ancestor above it: by the primary when it was on
// the first level. Each feeder runs at most fanout pushes at once. run
// updates one replica and calls pushed once its push has ended (ok: the
// replica holds the image now), so its children start while it builds.
func fanTree(ctx context.Context, img *config.Image, reps []*config.Replica, fanout int, run func(rep, via *config.Replica, r *ReplicaReport, pushed func(ok bool)), reports []*ReplicaReport) {
	cur, _ := imaging.GenerationChanges{StateDir: img.StateDir}.Current()
	selected := map[string]int{}
	for i, rep := range reps {
		selected[rep.Name] = i
	}
	// The nearest selected ancestor of each replica: it starts after that
	// one's push.
	children := map[string][]int{} // "" is the primary
	for i, rep := range reps {
		parent := ""
		for a := ancestor(img, rep); a != nil; a = ancestor(img, a) {
			if _, ok := selected[a.Name]; ok {
				parent = a.Name
				break
			}
		}
		children[parent] = append(children[parent], i)
	}
	var (
		mu      sync.Mutex
		feeders = map[string]*feeder{}
		pushed  = map[string]bool{} // selected replicas now at cur
	)
	feederOf := func(rep *config.Replica) *feeder {
		mu.Lock()
		defer mu.Unlock()
		var via *config.Replica
		if cur != nil {
			for a := ancestor(img, rep); a != nil; a = ancestor(img, a) {
				if _, ok := selected[a.Name]; ok {
					if pushed[a.Name] {
						via = a
						break
					}
					continue
				}
				if st, err := LoadReplicaState(img.StateDir, a.Name); err == nil && !st.Down() && st.Generation == cur.ID {
					via = a
					break
				}
			}
		}
		name := ""
		if via != nil {
			name = via.Name
		}
		f := feeders[name]
		if f == nil {
			f = &feeder{rep: via, sem: make(chan struct{}, fanout)}
			feeders[name] = f
		}
		return f
	}
	var wg sync.WaitGroup
	var start func(i int)
	start = func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, r := reps[i], reports[i]
			f := feederOf(rep)
			r.Via = f.name()
			var once sync.Once
			held := false
			pushedFn := func(ok bool) {
				once.Do(func() {
					if held {
						<-f.sem
					}
					if ok && cur != nil && r.Generation == cur.ID {
						mu.Lock()
						pushed[rep.Name] = true
						mu.Unlock()
					}
					for _, c := range children[rep.Name] {
						start(c)
					}
				})
			}
			select {
			case f.sem <- struct{}{}:
				held = true
				run(rep, f.rep, r, pushedFn)
				pushedFn(false)
			case <-ctx.Done():
				r.fail(ctx.Err())
				pushedFn(false)
			}
		}()
	}
	for _, i := range children[""] {
		start(i)
	}
	wg.Wait()
}

// ancestor is the replica that feeds rep by the config, or nil for the
// primary (config checks that parents exist and form no cycle).
func ancestor(img *config.Image, rep *config.Replica) *config.Replica {
	if rep.From == "" {
		return nil
	}
	p, _ := img.Replica(rep.From)
	return p
}

// RelayRequest is what the primary sends "goldsync replica-relay --stdio"
// on a replica (ServeReplicaRelay): push this replica's copy of the image
// to one child.
type RelayRequest struct {
	// Root and StateDir are the relaying replica's image and state dir.
	Root     string `json:"root"`
	StateDir string `json:"state_dir"`
	// Token is the primary's generation token the relaying replica must
	// hold (its receiver recorded it); the child gets it as its own.
	Token string `json:"token"`
	// Since is the token the child should hold, and Paths what changed
	// between it and Token (the primary's change set); Full, or a child
	// holding another token, is a full compare.
	Since string   `json:"since,omitempty"`
	Full  bool     `json:"full,omitempty"`
	Paths []string `json:"paths,omitempty"`
	// Child is the child's receiver.
	Child PushTarget `json:"child"`
}

// RelayReport is a relay's answer.
type RelayReport struct {
	PushResult
	// SSH says the child could not be reached (ssh exited 255).
	SSH   bool   `json:"ssh_failed,omitempty"`
	Error string `json:"error,omitempty"`
}

// relayMarker starts a relay's answer on stdout.
const relayMarker = "goldsync-replica-relay/1\n"

// relayChanges answers a child's scan with the primary's change set: the
// paths, when the child asks from the token they start at, else a full
// scan; always with the primary's token.
type relayChanges struct {
	since, token string
	full         bool
	paths        []string
}

// Changes implements imaging.Changes.
func (c relayChanges) Changes(ctx context.Context, since string) ([]tree.Scope, string, bool, error) {
	if c.full || since == "" || since != c.since {
		return nil, c.token, true, nil
	}
	scopes := make([]tree.Scope, len(c.paths))
	for i, p := range c.paths {
		scopes[i] = tree.Scope{Path: p}
	}
	return scopes, c.token, false, nil
}

// relayReplica has via push the newest generation to rep: the primary's
// change set for rep goes to "goldsync replica-relay --stdio" on via.
func relayReplica(ctx context.Context, img *config.Image, via, rep *config.Replica, o ReplicateOptions, full bool, prev *ReplicaState, r *ReplicaReport) error {
	since := ""
	if prev.Generation != 0 {
		if g, err := imaging.GenerationInfo(img.StateDir, prev.Generation); err == nil {
			since = imaging.GenerationToken(g)
		}
	}
	gc := imaging.GenerationChanges{StateDir: img.StateDir, Full: full, Cache: o.changes}
	scopes, token, whole, err := gc.Changes(ctx, since)
	if err != nil || token == "" {
		return fmt.Errorf("change set: the image is at no recorded generation (%v)", err)
	}
	req := RelayRequest{Root: via.Path, StateDir: replicaStateDir(via), Token: token, Since: since, Full: whole || since == "",
		Child: PushTarget{Rsh: rep.Rsh, SSH: rep.SSH, Path: rep.Path, Args: receiveArgs(img, rep, o)}}
	for _, s := range scopes {
		req.Paths = append(req.Paths, s.Path)
	}
	cmd := remote.ShellQuote(via.Receiver) + " replica-relay --stdio"
	p, err := remote.Command(ctx, via.Rsh, replicaSpec(via, via.Path), cmd, o.Logger)
	if err != nil {
		return fmt.Errorf("start the relay on %s: %w", via.Name, err)
	}
	defer p.Close()
	rr, code, rerr, err := exchange[RelayReport](p, req, relayMarker)
	if err != nil {
		return fmt.Errorf("send the relay request to %s: %w", via.Name, err)
	}
	if rr != nil {
		r.setPush(rr.PushResult)
	}
	stderr := wire.InertLines(strings.TrimSpace(p.Stderr()))
	switch {
	case code == 255:
		return fmt.Errorf("relay on %s: %w: %s", via.Name, remote.ErrSSH, stderr)
	case rr == nil && rerr != nil:
		return fmt.Errorf("relay on %s: %w", via.Name, rerr)
	case rr == nil:
		return fmt.Errorf("relay on %s (exit %d) gave no report: %s", via.Name, code, stderr)
	case rr.Error != "" && rr.SSH:
		return fmt.Errorf("via %s: %w: %s", via.Name, remote.ErrSSH, wire.InertLines(rr.Error))
	case rr.Error != "":
		return fmt.Errorf("via %s: %s", via.Name, wire.InertLines(rr.Error))
	case code != 0:
		return fmt.Errorf("relay on %s exited %d: %s", via.Name, code, stderr)
	}
	return nil
}

// ServeReplicaRelay is a replica's side of a relay ("goldsync
// replica-relay --stdio"): it reads one RelayRequest (JSON) from in,
// pushes its own copy of the image to the child the request names (its
// receiver started through the child's rsh, from here), and writes a
// RelayReport to out after a marker line. It refuses when this replica
// does not hold the generation the request names. An end of in after the
// request (the primary gone) cancels the push. The request comes from
// the primary, which this server already trusts with the image's whole
// content and with running commands here.
func ServeReplicaRelay(ctx context.Context, in io.Reader, out io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dec := json.NewDecoder(io.LimitReader(in, maxJobBytes))
	var req RelayRequest
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("replica relay: read the request: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, in)
		cancel()
	}()
	res, err := relay(ctx, &req, log)
	rep := RelayReport{PushResult: res}
	if err != nil {
		rep.Error = err.Error()
		rep.SSH = errors.Is(err, remote.ErrSSH)
	}
	data, merr := json.Marshal(rep)
	if merr != nil {
		return merr
	}
	if _, werr := fmt.Fprintf(out, "%s%s\n", relayMarker, data); werr != nil && err == nil {
		err = werr
	}
	return err
}

// relay checks a request and pushes.
func relay(ctx context.Context, req *RelayRequest, log *slog.Logger) (PushResult, error) {
	for _, p := range []struct{ what, p string }{{"root", req.Root}, {"state dir", req.StateDir}} {
		if !filepath.IsAbs(p.p) || filepath.Clean(p.p) != p.p || p.p == "/" {
			return PushResult{}, fmt.Errorf("replica relay: %s %q: want a clean absolute path", p.what, p.p)
		}
	}
	if _, _, ok := imaging.ParseGenerationToken(req.Token); !ok {
		return PushResult{}, fmt.Errorf("replica relay: token %q: not a generation", req.Token)
	}
	held, err := os.ReadFile(imaging.State(req.StateDir).Token)
	if err != nil || strings.TrimSpace(string(held)) != req.Token {
		return PushResult{}, fmt.Errorf("replica relay: this replica does not hold generation %s (its last update was cut off, or it was changed since): %v", req.Token, err)
	}
	src := imaging.DirSourceOptions{
		Changes:   relayChanges{since: req.Since, token: req.Token, full: req.Full, paths: req.Paths},
		CacheFile: imaging.State(req.StateDir).Manifest, ReadOnlyCache: true,
	}
	return push(ctx, req.Child, req.Root, src, log)
}
