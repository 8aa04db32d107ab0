// Command goldsync keeps the images of diskless Linux clusters in sync with
// a golden node: it pulls the node's root into an image, builds per-node
// snapshot trees and writes the netboot files. See `goldsync help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
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
		if hint := commandFirstHint(os.Args[1:], msg, commandNames()); hint != "" {
			fmt.Fprintln(os.Stderr, "goldsync:", hint)
		}
	}
	os.Exit(code)
}

// commandFirstHint helps an admin whose line does not start with the
// command: one who put a flag before it (goldsync -n pull SRC DEST), or
// pasted an rsync line with the command renamed (goldsync -aHAXS SRC/
// DEST/), which gets pull. commands are the subcommands' names.
func commandFirstHint(args []string, msg string, commands []string) string {
	if len(args) == 0 || !(strings.HasPrefix(msg, "unknown shorthand flag") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown command")) {
		return ""
	}
	for i, a := range args {
		if i > 0 && slices.Contains(commands, a) {
			line := append(append([]string{a}, args[:i]...), args[i+1:]...)
			return "the command comes first, as in: goldsync " + strings.Join(line, " ") + " (see goldsync " + a + " --help)"
		}
	}
	if a := args[0]; strings.HasPrefix(a, "-") || strings.Contains(a, "/") || strings.Contains(a, ":") {
		return "the command comes first, as in: goldsync pull " + strings.Join(args, " ") + " (see goldsync --help)"
	}
	return ""
}

// commandNames returns the names of goldsync's subcommands.
func commandNames() []string {
	var names []string
	for _, c := range newRootCmd().Commands() {
		names = append(names, c.Name())
	}
	return names
}
