// Command goldsync-agent runs on a golden node. The image server starts
// `goldsync-agent serve --stdio` through ssh to pull the node's root; after
// package installs the agent pushes changes (see `goldsync-agent help`).
package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	stdiostream "github.com/goldsync/goldsync/internal/stdio"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/internal/cli"
	"github.com/goldsync/goldsync/internal/version"
	"github.com/goldsync/goldsync/remote/rsh"

	"github.com/goldsync/goldsync/internal/gctune"
	"github.com/goldsync/goldsync/internal/profile"
)

// stopGC stops the floor main puts under the collector's headroom.
var stopGC = func() {}

// afterScan is the agent's ServeOptions.OnFetch: once files are fetched
// (a full pull), the collector goes back to gctune.Percent, where the
// floor took the golden node's peak RSS above its bound.
func afterScan() {
	stopGC()
	gctune.Apply()
}

func main() {
	// A floor under the collector's headroom while the agent scans, back
	// to gctune.Percent once it fetches (serveOptions).
	stopGC = gctune.ApplyHeadroom(gctune.AgentHeadroom)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := profile.Start()
	err := newRootCmd().Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	if err != nil {
		// The error may quote the server's or ssh's stderr: inert.
		fmt.Fprintln(os.Stderr, "goldsync-agent:", wire.InertLines(err.Error()))
		if errors.Is(err, rsh.ErrSSH) {
			os.Exit(255) // as ssh and goldsync: the remote shell failed
		}
		os.Exit(1)
	}
}

type globalFlags struct {
	stateDir string
	root     string
	verbose  int
}

func (g *globalFlags) logger() *slog.Logger {
	level := slog.LevelWarn
	if g.verbose == 1 {
		level = slog.LevelInfo
	} else if g.verbose > 1 {
		level = slog.LevelDebug
	}
	// stderr only: stdout carries the protocol.
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// newRootCmd is the agent's command line (internal/cli: cobra's layout
// and behaviour without cobra, which would double the binary).
func newRootCmd() *cli.Command {
	g := &globalFlags{}
	root := &cli.Command{
		Use:     "goldsync-agent",
		Short:   "goldsync's agent on the golden node",
		Version: version.Describe(),
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.stateDir, "state-dir", "", "agent state `DIR` (default /var/lib/goldsync as root, ~/.cache/goldsync/state otherwise)")
	pf.StringVar(&g.root, "root", "/", "the golden tree's root `DIR`")
	pf.CountVarP(&g.verbose, "verbose", "v", "log more on stderr")
	root.AddCommand(newServeCmd(g))
	root.AddCommand(newPushCmd(g))
	root.AddCommand(newWatchCmd(g))
	root.AddCommand(newBootCmd(g))
	root.AddCommand(newManCmd())
	help, _ := fs.Sub(helpFiles, "help")
	cli.SetHelp(root, help)
	return root
}

// helpFiles are the commands' Long and Example texts (cli.SetHelp),
// read by --help and the man pages alike.
//
//go:embed help/*.txt
var helpFiles embed.FS

func newServeCmd(g *globalFlags) *cli.Command {
	var stdio bool
	cmd := &cli.Command{
		Use:   "serve --stdio",
		Short: "serve one pull on stdin/stdout (started by the image server through ssh)",
		Args:  cli.NoArgs,
		Run: func(ctx context.Context, _ *cli.Command, _ []string) error {
			if !stdio {
				return fmt.Errorf("serve needs --stdio (the only transport)")
			}
			return agent.Serve(ctx, stdiostream.New(), agent.ServeOptions{StateDir: g.stateDir, Logger: g.logger(), OnFetch: afterScan})
		},
	}
	cmd.Flags().BoolVar(&stdio, "stdio", false, "use stdin and stdout as the stream")
	return cmd
}
