package main

import (
	"context"
	"time"

	"github.com/goldsync/goldsync/cluster"
)

// defaultDeadline bounds a pull, a receive or one image of a sync.
const defaultDeadline = cluster.DefaultDeadline

// withDeadline returns ctx bounded by d (none when d <= 0).
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return cluster.WithDeadline(ctx, d)
}

// deadlineErr says so when err came from ctx's deadline, with the exit
// code of a stalled peer.
func deadlineErr(ctx context.Context, err error) error {
	if e := cluster.DeadlineErr(ctx, err); e != err {
		return withCode(exitTimeout, e)
	}
	return err
}
