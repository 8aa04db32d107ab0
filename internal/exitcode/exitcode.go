// Package exitcode maps goldsync's errors to the exit codes of its
// commands: one code per cause, rsync's number wherever rsync has the
// cause (rsync(1) EXIT VALUES), goldsync's own above them. The libraries
// return typed errors (sentinels, *cluster.StepError, *proto.RefusedError);
// this package alone decides what each means for a process's exit, so
// every command gives the same cause the same code. Table documents the
// codes for --help, `goldsync help exit-codes` and the man pages.
//
// It sits above cluster (it knows the steps of a cluster run) and below
// the commands; it prints nothing.
package exitcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/export"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/proto"
	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/remote"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// The exit codes.
const (
	OK         = 0
	Usage      = 1  // syntax or usage error, bad config
	Protocol   = 2  // protocol incompatibility (agent version)
	Select     = 3  // errors selecting input/output files or dirs
	Start      = 5  // error starting the agent protocol
	Socket     = 10 // error in socket I/O (a listener)
	IO         = 11 // error in file I/O (disk full...)
	Stream     = 12 // error in the protocol data stream (bad or hostile peer)
	Locked     = 16 // another sync of this image holds the lock (goldsync-specific)
	Signal     = 20 // interrupted
	Partial    = 23 // partial transfer: some paths not applied
	MaxDelete  = 25 // the safety guard refused the run (--max-delete, empty source)
	Timeout    = 30 // the peer stalled
	Drift      = 40 // verify found drift (goldsync-specific)
	Connection = 255
)

// Table is the exit-status table, one line a code, in order.
var Table = []struct {
	Code int
	Text string
}{
	{OK, "success"},
	{Usage, "syntax or usage error (bad flag, bad exclude pattern, bad config)"},
	{Protocol, "protocol incompatibility (an agent of another version that could not be replaced)"},
	{Select, "errors selecting input/output files or directories (missing source, a file as DEST, unsafe state dir)"},
	{Start, "error starting the agent protocol"},
	{Socket, "error in socket I/O (goldsync serve rsync's listener)"},
	{IO, "error in file I/O (for example a full disk)"},
	{Stream, "error in the protocol data stream (the agent died, a broken or hostile peer)"},
	{Locked, "another run on the same image holds its lock (goldsync-specific)"},
	{Signal, "interrupted by SIGINT or SIGTERM"},
	{Partial, "partial transfer: some paths could not be applied, or deletions were skipped"},
	{MaxDelete, "the delete guard refused the run (--max-delete, empty source, a non-empty DEST never pulled into without --delete); nothing changed"},
	{Timeout, "timeout: the peer sent nothing for --timeout, only keepalives for --progress-timeout, or --deadline passed; for status, an image never synced or not within --max-age"},
	{Drift, "verify found drift (goldsync-specific)"},
	{Connection, "ssh failed (host unreachable, authentication, host key)"},
}

// Text is Table as indented text, a line a code.
func Text() string {
	var b strings.Builder
	for _, e := range Table {
		fmt.Fprintf(&b, "  %3d  %s\n", e.Code, e.Text)
	}
	return b.String()
}

// Error is an error with the exit code it means. Silent says the command
// has told the user already (a report, a JSON object): the process exits
// with Code and prints nothing more.
type Error struct {
	Code   int
	Err    error
	Silent bool
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// With returns err carrying code (nil for a nil err).
func With(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// ErrInterrupted is the cancel cause of a run stopped by a signal.
var ErrInterrupted = errors.New("interrupted")

// InterruptedBy is the cause a signal handler cancels the run with:
// "interrupted by SIGTERM".
func InterruptedBy(sig os.Signal) error {
	name := sig.String()
	switch name {
	case "terminated":
		name = "SIGTERM"
	case "interrupt":
		name = "SIGINT"
	}
	return fmt.Errorf("%w by %s", ErrInterrupted, name)
}

// Of is the exit code of a command's error. A cancelled ctx means a
// signal stopped the run, whatever error it left behind.
func Of(ctx context.Context, err error) int {
	var ee *Error
	switch {
	case err == nil:
		return OK
	case ctx.Err() != nil:
		return Signal
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, imaging.ErrLocked):
		return Locked
	case errors.Is(err, imaging.ErrGuard):
		return MaxDelete
	case errors.Is(err, imaging.ErrPartial):
		return Partial
	case errors.Is(err, cluster.ErrSelection):
		return Select
	}
	return Usage
}

// Message is what a command that failed with err says on stderr, and its
// exit code (Of). A signal that stopped the run is the cause, whatever
// the run's parts said about the connection they lost; otherwise a
// silent error says nothing (msg ""). The message is made inert: errors
// can carry what a peer sent, and nothing in them may drive the terminal.
func Message(ctx context.Context, err error) (msg string, code int) {
	code = Of(ctx, err)
	var ee *Error
	switch {
	case err == nil:
		return "", code
	case context.Cause(ctx) != nil:
		msg = context.Cause(ctx).Error()
	case errors.As(err, &ee) && ee.Silent:
		return "", code
	default:
		msg = err.Error()
	}
	return wire.InertLines(closestFirst(msg)), code
}

// Failure is the result object a command prints with --json when it
// failed before its own report (its keys in the order they always had).
type Failure struct {
	// Error is the error's message.
	Error string `json:"error"`
	// ExitCode is the code the command exits with (Of).
	ExitCode int `json:"exit_code"`
	// OK is false: the object says the command failed.
	OK bool `json:"ok"`
}

// FailureOf is the Failure of err; nil for no error, or a silent one
// (the command has reported already).
func FailureOf(ctx context.Context, err error) *Failure {
	var ee *Error
	if err == nil || (errors.As(err, &ee) && ee.Silent) {
		return nil
	}
	return &Failure{Error: err.Error(), ExitCode: Of(ctx, err)}
}

// IsNoSpace reports a full filesystem or quota.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Sync gives an error of imaging.Sync (a pull, a receive) its code,
// rsync's where rsync has the cause.
func Sync(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, imaging.ErrGuard):
		return With(MaxDelete, err)
	case errors.Is(err, imaging.ErrLocked):
		return With(Locked, err)
	case errors.Is(err, imaging.ErrUnsafeStateDir):
		return With(Select, err)
	case errors.Is(err, imaging.ErrPartial):
		return With(Partial, err)
	case errors.Is(err, fsx.ErrMoved):
		// A directory of the image was renamed away while files were
		// written into it: a file I/O error, as rsync would have one.
		return With(IO, err)
	case errors.Is(err, proto.ErrStalled):
		return With(Timeout, err)
	case errors.Is(err, proto.ErrProtocol), errors.Is(err, imaging.ErrBadSource),
		errors.Is(err, proto.ErrRemote), errors.Is(err, proto.ErrClosed):
		return With(Stream, err)
	case IsNoSpace(err):
		return With(IO, err)
	case isLostConnection(err):
		// The ssh process or the agent died mid-stream: rsync says 12 too.
		return With(Stream, fmt.Errorf("connection to the source lost: %w", err))
	}
	return err
}

// isLostConnection recognizes the errors a dead peer leaves behind.
func isLostConnection(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrClosed) || errors.Is(err, context.Canceled)
}

// Rollback gives an error of imaging.Rollback its code.
func Rollback(err error) error {
	switch {
	case errors.Is(err, imaging.ErrIncomplete), errors.Is(err, imaging.ErrNoGeneration):
		return With(Select, err)
	case errors.Is(err, imaging.ErrDrift):
		return With(Drift, err)
	}
	return Sync(err)
}

// Connect gives an error of remote.Open (starting the source) its code.
func Connect(err error) error {
	var refused *proto.RefusedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refused):
		// The agent could not open the source's path: a selection
		// error, told as such.
		msg := refused.Msg
		if u, err := strconv.Unquote(msg); err == nil {
			msg = u // the command makes the whole message inert
		}
		return With(Select, fmt.Errorf("source: %s", msg))
	case errors.Is(err, remote.ErrVersion):
		return With(Protocol, err)
	case errors.Is(err, remote.ErrStalled), errors.Is(err, proto.ErrStalled):
		// Silent through the handshake: a timeout, as rsync's 30.
		return With(Timeout, err)
	case errors.Is(err, remote.ErrSSH):
		return With(Connection, err)
	case errors.Is(err, remote.ErrProtocol):
		return With(Start, err)
	case errors.Is(err, os.ErrNotExist):
		return With(Select, err)
	}
	return With(Start, err)
}

// Build gives an error of snapshot.Build its code.
func Build(err error) error {
	switch {
	case errors.Is(err, imaging.ErrLocked):
		return With(Locked, err)
	case IsNoSpace(err):
		return With(IO, err)
	case errors.Is(err, imaging.ErrPartial):
		return With(Partial, err)
	case errors.Is(err, fs.ErrNotExist):
		return With(Select, err)
	}
	return err
}

// Lists gives an error of reading the snapshot lists or a nodes file its
// code: a wrong line is a usage error (file:line), a missing file a
// selection error.
func Lists(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, snapshot.ErrNodes), errors.Is(err, snapshot.ErrLists):
		return With(Usage, err)
	case IsNoSpace(err):
		return With(IO, err)
	}
	return With(Select, err)
}

// Netboot gives an error of the netboot package its code: a missing file
// or record is a selection error, a snapshot RemoveNodes could not purge
// an I/O error, anything else (a wrong nodes file too) a usage error.
func Netboot(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return With(Select, err)
	case errors.Is(err, netboot.ErrPurge):
		return With(IO, err)
	}
	return With(Usage, err)
}

// Loaders gives an error of netboot.InstallLoaders its code: a loader
// the server's packages lack is a selection error, anything else an I/O
// error.
func Loaders(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return With(Select, err)
	}
	return With(IO, err)
}

// Cluster is the exit code of an error of the cluster package: by the
// step it comes from, then by the library's own error.
func Cluster(ctx context.Context, err error) int {
	var ee *Error
	var se *cluster.StepError
	switch {
	case err == nil:
		return OK
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, cluster.ErrDeadline):
		return Timeout
	case !errors.As(err, &se):
		return Of(ctx, err)
	}
	code := func(e error) int { return Of(ctx, e) }
	switch e := se.Err; se.Step {
	case cluster.StepConfig, cluster.StepExcludes:
		return Usage
	case cluster.StepNodes, cluster.StepLists:
		return code(Lists(e))
	case cluster.StepLock:
		switch {
		case errors.Is(e, imaging.ErrLocked):
			return Locked
		case errors.Is(e, imaging.ErrUnsafeStateDir):
			return Select
		}
		return IO
	case cluster.StepConnect:
		return code(Connect(e))
	case cluster.StepPull:
		return code(Sync(e))
	case cluster.StepRollback:
		return code(Rollback(e))
	case cluster.StepSnapshots:
		return code(Build(e))
	case cluster.StepNetboot, cluster.StepImage:
		return Select
	case cluster.StepManifest:
		if errors.Is(e, cluster.ErrNoManifest) {
			return Select
		}
		return IO
	case cluster.StepListen:
		return Start
	case cluster.StepServe:
		if errors.Is(e, export.ErrConfinement) {
			return Start
		}
		return IO
	case cluster.StepReplica:
		return code(e) // partial: the image is synced, a replica is not
	}
	return IO // boot files, metrics, generations
}

// ClusterErr gives an error of the cluster package its code (Cluster).
func ClusterErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	return With(Cluster(ctx, err), err)
}

// Pull gives an error of cluster.PullRequest (goldsync pull, receive) its
// code: a passed deadline is Timeout; starting the source is Connect's,
// a pushing agent's handshake Start, the run Sync's (with their
// messages); the others as ClusterErr.
func Pull(ctx context.Context, err error) error {
	var se *cluster.StepError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cluster.ErrDeadline):
		return With(Timeout, err)
	case !errors.As(err, &se):
		return ClusterErr(ctx, err)
	}
	switch se.Step {
	case cluster.StepConnect:
		return Connect(se.Err)
	case cluster.StepHandshake:
		return With(Start, se.Err)
	case cluster.StepPull:
		return Sync(se.Err)
	}
	return ClusterErr(ctx, err)
}

// Status is the verdict of goldsync status on reports: the code of the
// first image whose last run did not end ok (its run's code; partial 23
// and failed 11 when the record has none), else Timeout when an image
// is stale (maxAge passed since its last sync, or it never ended one) or,
// without maxAge, was never synced.
// Silent says the reports were printed as JSON, which says it all.
func Status(reports []cluster.StatusReport, maxAge time.Duration, silent bool) error {
	var stale, never []string
	for _, r := range reports {
		if r.Synced && r.Result != cluster.ResultOK {
			code := r.ExitCode
			if code == 0 {
				code = Partial
				if r.Result == cluster.ResultFailed {
					code = IO
				}
			}
			msg := r.Error
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				msg = msg[:i] + " ..."
			}
			return &Error{Code: code, Err: fmt.Errorf("image %s: last run %s: %s", r.Image, r.Result, msg), Silent: silent}
		}
		switch {
		case r.Stale:
			stale = append(stale, r.Image)
		case !r.Synced:
			never = append(never, r.Image)
		}
	}
	switch {
	case len(stale) > 0:
		return &Error{Code: Timeout, Err: fmt.Errorf("no sync ended in the last %v: %s", maxAge, strings.Join(stale, ", ")), Silent: silent}
	case len(never) > 0:
		return &Error{Code: Timeout, Err: fmt.Errorf("never synced: %s (no goldsync sync of it has ended)", strings.Join(never, ", ")), Silent: silent}
	}
	return nil
}

// Run is the error of goldsync sync for the report and error of
// cluster.Run: the code of the first image that failed (the report
// holds it), Signal when a signal stopped the run, else the code of err.
func Run(ctx context.Context, rep *cluster.Report, err error) error {
	if err == nil {
		return nil
	}
	code := OK
	if rep != nil {
		for _, r := range rep.Images {
			if r.Err != nil {
				code = r.ExitCode
				break
			}
		}
	}
	if ctx.Err() != nil {
		code = Signal
	}
	if code == OK {
		code = Cluster(ctx, err)
	}
	return With(code, err)
}
