package exitcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/export"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/proto"
	"github.com/goldsync/goldsync/remote"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// TestCodes pins the code of each cause: the numbers are an interface
// (cron, monitoring) and must not move.
func TestCodes(t *testing.T) {
	ctx := context.Background()
	step := func(s cluster.Step, err error) error { return &cluster.StepError{Step: s, Err: err} }
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	for _, c := range []struct {
		name string
		got  int
		want int
	}{
		{name: "nil", got: Of(ctx, nil), want: 0},
		{name: "plain error", got: Of(ctx, errors.New("x")), want: 1},
		{name: "With", got: Of(ctx, wrap(With(Drift, errors.New("x")))), want: 40},
		{name: "locked", got: Of(ctx, wrap(imaging.ErrLocked)), want: 16},
		{name: "guard", got: Of(ctx, wrap(imaging.ErrGuard)), want: 25},
		{name: "partial", got: Of(ctx, wrap(imaging.ErrPartial)), want: 23},
		{name: "selection", got: Of(ctx, cluster.CheckDest("/nonexistent/dir/dest")), want: 3},
		{name: "sync: unsafe state dir", got: Of(ctx, Sync(wrap(imaging.ErrUnsafeStateDir))), want: 3},
		{name: "sync: stalled", got: Of(ctx, Sync(wrap(proto.ErrStalled))), want: 30},
		{name: "sync: a directory moved away mid-fetch", got: Of(ctx, Sync(wrap(fsx.ErrMoved))), want: 11},
		{name: "sync: bad source", got: Of(ctx, Sync(wrap(imaging.ErrBadSource))), want: 12},
		{name: "sync: EOF", got: Of(ctx, Sync(wrap(io.ErrUnexpectedEOF))), want: 12},
		{name: "sync: ENOSPC", got: Of(ctx, Sync(wrap(syscall.ENOSPC))), want: 11},
		{name: "rollback: no generation", got: Of(ctx, Rollback(wrap(imaging.ErrNoGeneration))), want: 3},
		{name: "rollback: drift", got: Of(ctx, Rollback(wrap(imaging.ErrDrift))), want: 40},
		{name: "connect: refused", got: Of(ctx, Connect(&proto.RefusedError{Msg: `"no such dir"`})), want: 3},
		{name: "connect: version", got: Of(ctx, Connect(wrap(remote.ErrVersion))), want: 2},
		{name: "connect: ssh", got: Of(ctx, Connect(wrap(remote.ErrSSH))), want: 255},
		{name: "connect: other", got: Of(ctx, Connect(errors.New("x"))), want: 5},
		{name: "lists: bad line", got: Of(ctx, Lists(wrap(snapshot.ErrNodes))), want: 1},
		{name: "lists: missing", got: Of(ctx, Lists(wrap(syscall.ENOENT))), want: 3},
		{name: "netboot: missing", got: Of(ctx, Netboot(wrap(syscall.ENOENT))), want: 3},
		{name: "netboot: purge", got: Of(ctx, Netboot(fmt.Errorf("%w: %w", netboot.ErrPurge, syscall.EBUSY))), want: 11},
		{name: "netboot: other", got: Of(ctx, Netboot(errors.New("x"))), want: 1},
		{name: "loaders: missing", got: Of(ctx, Loaders(wrap(syscall.ENOENT))), want: 3},
		{name: "loaders: other", got: Of(ctx, Loaders(wrap(syscall.EIO))), want: 11},
		{name: "cluster: config", got: Cluster(ctx, step(cluster.StepConfig, errors.New("x"))), want: 1},
		{name: "cluster: lock held", got: Cluster(ctx, step(cluster.StepLock, imaging.ErrLocked)), want: 16},
		{name: "cluster: lock unsafe", got: Cluster(ctx, step(cluster.StepLock, wrap(imaging.ErrUnsafeStateDir))), want: 3},
		{name: "cluster: generations", got: Cluster(ctx, step(cluster.StepGenerations, errors.New("x"))), want: 11},
		{name: "cluster: lock other", got: Cluster(ctx, step(cluster.StepLock, errors.New("x"))), want: 11},
		{name: "cluster: connect ssh", got: Cluster(ctx, step(cluster.StepConnect, remote.ErrSSH)), want: 255},
		{name: "cluster: pull guard", got: Cluster(ctx, step(cluster.StepPull, imaging.ErrGuard)), want: 25},
		{name: "cluster: snapshots partial", got: Cluster(ctx, step(cluster.StepSnapshots, imaging.ErrPartial)), want: 23},
		{name: "cluster: no manifest", got: Cluster(ctx, step(cluster.StepManifest, cluster.ErrNoManifest)), want: 3},
		{name: "cluster: deadline", got: Cluster(ctx, wrap(cluster.ErrDeadline)), want: 30},
		{name: "pull: usage", got: Of(ctx, Pull(ctx, step(cluster.StepExcludes, errors.New("x")))), want: 1},
		{name: "pull: connect ssh", got: Of(ctx, Pull(ctx, step(cluster.StepConnect, wrap(remote.ErrSSH)))), want: 255},
		{name: "pull: handshake", got: Of(ctx, Pull(ctx, step(cluster.StepHandshake, wrap(proto.ErrStalled)))), want: 5},
		{name: "pull: lost connection", got: Of(ctx, Pull(ctx, step(cluster.StepPull, io.EOF))), want: 12},
		{name: "pull: first pull refused", got: Of(ctx, Pull(ctx, wrap(imaging.ErrGuard))), want: 25},
		{name: "pull: DEST", got: Of(ctx, Pull(ctx, step(cluster.StepImage, errors.New("x")))), want: 3},
		{name: "pull: deadline", got: Of(ctx, Pull(ctx, fmt.Errorf("%w: %w", cluster.ErrDeadline, step(cluster.StepPull, io.EOF)))), want: 30},
		{name: "cluster: listen", got: Cluster(ctx, step(cluster.StepListen, errors.New("x"))), want: 5},
		{name: "cluster: serve confinement", got: Cluster(ctx, step(cluster.StepServe, wrap(export.ErrConfinement))), want: 5},
		{name: "cluster: serve", got: Cluster(ctx, step(cluster.StepServe, errors.New("x"))), want: 11},
		{name: "cluster: metrics", got: Cluster(ctx, step(cluster.StepMetrics, errors.New("x"))), want: 11},
	} {
		if c.got != c.want {
			t.Errorf("%s: code %d, want %d", c.name, c.got, c.want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if got := Of(cancelled, With(Stream, io.EOF)); got != Signal {
		t.Errorf("a cancelled run: code %d, want %d", got, Signal)
	}
}

// TestTable checks that the table documents every code once, in order.
func TestTable(t *testing.T) {
	for i := 1; i < len(Table); i++ {
		if Table[i].Code <= Table[i-1].Code {
			t.Errorf("table: %d after %d", Table[i].Code, Table[i-1].Code)
		}
	}
}

// TestMessage checks what a failed command says: the error made inert,
// nothing for a silent one, the signal's cause whatever the error.
func TestMessage(t *testing.T) {
	ctx := context.Background()
	stopped, cancel := context.WithCancelCause(ctx)
	cancel(InterruptedBy(syscall.SIGTERM))
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		msg  string
		code int
	}{
		{name: "plain", ctx: ctx, err: With(Select, errors.New("no such dir")), msg: "no such dir", code: Select},
		{name: "escape sequence", ctx: ctx, err: errors.New("peer says \x1b[2J"), msg: "peer says \\x1b[2J", code: Usage},
		{name: "silent", ctx: ctx, err: &Error{Code: Drift, Err: errors.New("drifted"), Silent: true}, code: Drift},
		{name: "signal", ctx: stopped, err: With(Stream, io.EOF), msg: "interrupted by SIGTERM", code: Signal},
	} {
		if msg, code := Message(tc.ctx, tc.err); msg != tc.msg || code != tc.code {
			t.Errorf("%s: Message = %q, %d; want %q, %d", tc.name, msg, code, tc.msg, tc.code)
		}
	}
}

// TestFailureOf checks the --json failure object: none for a silent
// error, the code and message otherwise.
func TestFailureOf(t *testing.T) {
	ctx := context.Background()
	if f := FailureOf(ctx, &Error{Code: Drift, Err: errors.New("x"), Silent: true}); f != nil {
		t.Errorf("silent error: %+v, want none", f)
	}
	if f := FailureOf(ctx, With(Select, errors.New("no such dir"))); f == nil || f.OK || f.Error != "no such dir" || f.ExitCode != Select {
		t.Errorf("FailureOf = %+v", f)
	}
}
