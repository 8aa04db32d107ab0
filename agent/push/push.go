// Package push sends a golden node's changes to an image server: it runs
// `goldsync receive --stdio IMAGE` on the server through ssh and serves
// that receiver from the local tree, with the change journal answering
// "what changed since the token you last applied". The receiver applies
// through the same engine as a pull; the journal is acknowledged only once
// the receiver confirms.
package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/remote/rsh"
)

// Options configure Push. Zero values: root "/", the agent's default state
// dir, "ssh", "goldsync" on the server's $PATH, no extra arguments.
type Options struct {
	// Root is the golden tree to push from.
	Root string
	// StateDir is the agent's state dir (hash cache, journal).
	StateDir string
	// To is the image on the server: [user@]host:/path.
	To string
	// Rsh is the remote shell command, as rsync's -e.
	Rsh string
	// ReceiverPath is the goldsync binary on the server.
	ReceiverPath string
	// ReceiveArgs are extra arguments for `goldsync receive` (for example
	// --state-dir or --exclude).
	ReceiveArgs []string
	// Persist, when positive, shares one ssh connection between pushes
	// (OpenSSH ControlMaster, see rsh.ShareConnection): the master stays
	// up this long after a push, and the next push within that time skips
	// the login. Ignored when Rsh is not OpenSSH's ssh or sets its own
	// ControlPath.
	Persist time.Duration
	// ReplicaWait bounds the wait, once the server has confirmed the push,
	// for its receiver to exit: a receiver started as receive --image
	// (the forced command of a golden node's key) updates the image's
	// replicas before it exits. Past it Push returns with
	// Result.ReplicasPending set and the push standing. Zero means
	// DefaultReplicaWait; a negative value waits as long as ctx allows.
	ReplicaWait time.Duration
	// Logger receives progress and warnings; nil is silent.
	Logger *slog.Logger
}

// DefaultReplicaWait is Options.ReplicaWait's default: long enough for a
// package update to reach a few replicas, short enough that a replica
// that hangs (its update's own deadline is hours) does not hold the
// agent's next push.
const DefaultReplicaWait = 10 * time.Minute

// Result describes a finished push.
type Result struct {
	// Duration is the wall time from start to the server's confirmation.
	Duration time.Duration
	// Stderr is what the receiver printed (its summary).
	Stderr string
	// ReplicasPending says the receiver had not exited when ReplicaWait
	// (or ctx) ran out after the server confirmed: the push stands, the
	// connection was dropped, and the receiver goes on updating the
	// image's replicas alone (goldsync status on the server shows how
	// that went; Stderr lacks its replica lines).
	ReplicasPending bool
}

// ErrReceiver is wrapped when the server's receiver failed.
var ErrReceiver = errors.New("receiver failed")

// Push sends the changes since the server's last applied token (or the
// whole tree when the journal cannot vouch for them) and returns when the
// server has applied them, confirmed, and its receiver has exited: a
// receiver started as receive --image (the forced command of a golden
// node's key) then brings the image's replicas up to date (its summary in
// Result.Stderr), so a push returns once the replicas have it, or once
// Options.ReplicaWait has passed (then Result.ReplicasPending is set).
func Push(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Root == "" {
		opts.Root = "/"
	}
	if opts.ReceiverPath == "" {
		opts.ReceiverPath = "goldsync"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The root is checked before anything connects or is created.
	if st, err := os.Stat(opts.Root); err != nil {
		return nil, fmt.Errorf("push root: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("push root %s is not a directory", opts.Root)
	}
	sp, err := rsh.ParseSpec(opts.To)
	if err != nil {
		return nil, fmt.Errorf("push destination: %w", err)
	}
	if sp.Host == "" {
		return nil, fmt.Errorf("push destination %q: want [user@]host:/path", opts.To)
	}
	rshCmd := opts.Rsh
	if opts.Persist > 0 {
		sd := opts.StateDir
		if sd == "" {
			sd = agent.DefaultStateDir()
		}
		if rshCmd, err = rsh.ShareConnection(rshCmd, filepath.Join(sd, "ssh"), opts.Persist); err != nil {
			return nil, err
		}
	}
	args := []string{rsh.ShellQuote(opts.ReceiverPath), "receive", "--stdio"}
	for _, a := range opts.ReceiveArgs {
		args = append(args, rsh.ShellQuote(a))
	}
	args = append(args, rsh.ShellQuote(sp.Path))
	p, err := rsh.Command(ctx, rshCmd, sp, strings.Join(args, " "), log)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	serr := agent.ServeRoot(ctx, p, opts.Root, agent.ServeOptions{StateDir: opts.StateDir, DestID: "push:" + opts.To, Logger: log})
	res := &Result{}
	if serr == nil {
		// The receiver may go on after confirming: receive --image
		// updates the image's replicas, and its exit says how that went.
		wait := opts.ReplicaWait
		if wait == 0 {
			wait = DefaultReplicaWait
		}
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if wait > 0 {
			wctx, cancel = context.WithTimeout(ctx, wait)
		}
		res.ReplicasPending = !p.CloseWait(wctx)
		cancel()
	} else {
		p.Close()
	}
	res.Duration, res.Stderr = time.Since(start), p.Stderr()
	if res.ReplicasPending {
		// Killed while it updated the replicas: the push stands (the
		// receiver ignores the hangup and finishes them alone).
		log.Warn("the server still updates the image's replicas; not waiting for it", "after", time.Since(start).Round(time.Millisecond))
		return res, nil
	}
	if code := p.ExitCode(); code != 0 {
		msg := wire.InertLines(strings.TrimSpace(res.Stderr))
		if code == 255 {
			return res, fmt.Errorf("%w: %s", rsh.ErrSSH, msg)
		}
		return res, fmt.Errorf("%w (exit %d): %s", ErrReceiver, code, msg)
	}
	if serr != nil {
		return res, fmt.Errorf("push: %w", serr)
	}
	return res, nil
}
