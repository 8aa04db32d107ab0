// Command goldsync keeps the images of diskless Linux clusters in sync with
// a golden node: it pulls the node's root into an image, builds per-node
// snapshot trees and writes the netboot files. See `goldsync help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/profile"
)

func main() {
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
		if hint := rsyncLineHint(os.Args[1:], msg); hint != "" {
			fmt.Fprintln(os.Stderr, "goldsync:", hint)
		}
	}
	os.Exit(code)
}

// rsyncLineHint helps an admin who pasted an rsync line with the command
// renamed (goldsync -aHAXS SRC/ DEST/): goldsync wants a subcommand first.
func rsyncLineHint(args []string, msg string) string {
	if len(args) == 0 || !(strings.HasPrefix(msg, "unknown shorthand flag") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown command")) {
		return ""
	}
	if a := args[0]; strings.HasPrefix(a, "-") || strings.Contains(a, "/") || strings.Contains(a, ":") {
		return "the command comes first, as in: goldsync pull " + strings.Join(args, " ") + " (see goldsync --help)"
	}
	return ""
}
