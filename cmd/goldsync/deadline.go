package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// defaultDeadline bounds a pull, a receive or one image of a sync: a golden
// node that keeps the session alive but never finishes must not hold the
// image's lock (and, in a sync, every later image) for ever.
const defaultDeadline = 12 * time.Hour

// errDeadline is the cause of a run's context when its deadline passed.
var errDeadline = errors.New("deadline passed")

// withDeadline returns ctx bounded by d (none when d <= 0).
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("%w (%v)", errDeadline, d))
}

// deadlineErr says so when err came from ctx's deadline, with the exit
// code of a stalled peer.
func deadlineErr(ctx context.Context, err error) error {
	if err == nil || !errors.Is(context.Cause(ctx), errDeadline) {
		return err
	}
	return withCode(exitTimeout, fmt.Errorf("%w: %w", context.Cause(ctx), err))
}
