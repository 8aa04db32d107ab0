// Command goldsync keeps the images of diskless Linux clusters in sync with
// a golden node: it pulls the node's root into an image, builds per-node
// snapshot trees and writes the netboot files. See `goldsync help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/gctune"
	"github.com/goldsync/goldsync/internal/profile"
)

func main() {
	gctune.ApplyHeadroom(gctune.Headroom)
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		cancel(exitcode.InterruptedBy(sig))
		signal.Stop(sigs) // a second signal kills as usual
	}()
	stopProfile := profile.Start()
	err := newRootCmd().ExecuteContext(ctx)
	stopProfile()
	if err == nil {
		return
	}
	msg, code := exitcode.Message(ctx, err)
	if msg != "" {
		fmt.Fprintln(os.Stderr, "goldsync:", msg)
		if hint := exitcode.CommandFirstHint(os.Args[1:], msg, commandNames()); hint != "" {
			fmt.Fprintln(os.Stderr, "goldsync:", hint)
		}
	}
	os.Exit(code)
}

// commandNames returns the names of goldsync's subcommands.
func commandNames() []string {
	var names []string
	for _, c := range newRootCmd().Commands() {
		names = append(names, c.Name())
	}
	return names
}
