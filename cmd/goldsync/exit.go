package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goldsync/goldsync/imaging"
)

// Exit codes: one per cause, rsync's number wherever rsync has one (see
// rsync(1) EXIT VALUES), goldsync's own above them. exitTable documents
// them for --help, `goldsync help exit-codes` and the man page.
const (
	exitOK         = 0
	exitUsage      = 1  // syntax or usage error, bad config
	exitProtocol   = 2  // protocol incompatibility (agent version)
	exitSelect     = 3  // errors selecting input/output files or dirs
	exitStart      = 5  // error starting the agent protocol
	exitSocket     = 10 // error in socket I/O (a listener)
	exitIO         = 11 // error in file I/O (disk full...)
	exitStream     = 12 // error in the protocol data stream (bad or hostile peer)
	exitLocked     = 16 // another sync of this image holds the lock (goldsync-specific)
	exitSignal     = 20 // interrupted
	exitPartial    = 23 // partial transfer: some paths not applied
	exitMaxDelete  = 25 // the safety guard refused the run (--max-delete, empty source)
	exitTimeout    = 30 // the peer stalled
	exitDrift      = 40 // verify found drift (goldsync-specific)
	exitConnection = 255
)

// exitTable is the exit-status table, one line a code.
var exitTable = []struct {
	code int
	text string
}{
	{exitOK, "success"},
	{exitUsage, "syntax or usage error (bad flag, bad exclude pattern, bad config)"},
	{exitProtocol, "protocol incompatibility (an agent of another version that could not be replaced)"},
	{exitSelect, "errors selecting input/output files or directories (missing source, a file as DEST, unsafe state dir)"},
	{exitStart, "error starting the agent protocol"},
	{exitSocket, "error in socket I/O (goldsync serve rsync's listener)"},
	{exitIO, "error in file I/O (for example a full disk)"},
	{exitStream, "error in the protocol data stream (the agent died, a broken or hostile peer)"},
	{exitLocked, "another run on the same image holds its lock (goldsync-specific)"},
	{exitSignal, "interrupted by SIGINT or SIGTERM"},
	{exitPartial, "partial transfer: some paths could not be applied, or deletions were skipped"},
	{exitMaxDelete, "the delete guard refused the run (--max-delete, empty source, a non-empty DEST never pulled into without --delete); nothing changed"},
	{exitTimeout, "timeout: the peer sent nothing for --timeout, only keepalives for --progress-timeout, or --deadline passed"},
	{exitDrift, "verify found drift (goldsync-specific)"},
	{exitConnection, "ssh failed (host unreachable, authentication, host key)"},
}

// exitStatusText is exitTable as indented text.
func exitStatusText() string {
	var b strings.Builder
	for _, e := range exitTable {
		fmt.Fprintf(&b, "  %3d  %s\n", e.code, e.text)
	}
	return b.String()
}

// exitError carries an explicit exit code.
type exitError struct {
	code   int
	err    error
	silent bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// errInterrupted is the cancel cause of a run stopped by a signal.
var errInterrupted = errors.New("interrupted")

// interruptedBy is the cause a signal handler cancels the run with.
func interruptedBy(sig os.Signal) error {
	return fmt.Errorf("%w by %s", errInterrupted, signalName(sig))
}

func signalName(sig os.Signal) string {
	switch sig.String() {
	case "terminated":
		return "SIGTERM"
	case "interrupt":
		return "SIGINT"
	}
	return sig.String()
}

// exitCode maps the error of a command to its exit code. A cancelled ctx
// means a signal stopped the run, whatever error it left behind.
func exitCode(ctx context.Context, err error) int {
	var ee *exitError
	switch {
	case ctx.Err() != nil:
		return exitSignal
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, imaging.ErrLocked):
		return exitLocked
	case errors.Is(err, imaging.ErrGuard):
		return exitMaxDelete
	case errors.Is(err, imaging.ErrPartial):
		return exitPartial
	}
	return exitUsage
}
