package main

import (
	"context"
	"errors"

	"github.com/goldsync/goldsync/imaging"
)

// Exit codes, in the spirit of rsync's (see `goldsync help exit-codes`).
const (
	exitOK         = 0
	exitUsage      = 1  // syntax or usage error, bad config
	exitProtocol   = 2  // protocol incompatibility (agent version)
	exitSelect     = 3  // errors selecting input/output files or dirs
	exitStart      = 5  // error starting the agent protocol
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

func exitCode(ctx context.Context, err error) int {
	var ee *exitError
	switch {
	case ctx.Err() != nil:
		return exitSignal // SIGINT or SIGTERM cancelled the run
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
