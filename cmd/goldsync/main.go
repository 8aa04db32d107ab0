// Command goldsync keeps the images of diskless Linux clusters in sync with
// a golden node: it pulls the node's root into an image, builds per-node
// snapshot trees and writes the netboot files. See `goldsync help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/internal/profile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := profile.Start()
	err := newRootCmd().ExecuteContext(ctx)
	stopProfile()
	code := 0
	if err != nil {
		code = exitCode(ctx, err) // before stop(): only a signal cancels ctx
	}
	stop()
	if err != nil {
		var ee *exitError
		if !errors.As(err, &ee) || !ee.silent {
			// Errors can carry what a peer sent: nothing in them may
			// drive the terminal.
			fmt.Fprintln(os.Stderr, "goldsync:", wire.InertLines(err.Error()))
		}
		os.Exit(code)
	}
}
