package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/internal/version"
)

// globalFlags are shared by every subcommand.
type globalFlags struct {
	config    string
	verbose   int
	quiet     bool
	logFormat string
	jsonOut   bool
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "goldsync",
		Short: "keep diskless-cluster images in sync with a golden node",
		Long: `goldsync keeps the images of diskless Linux clusters in sync.

A disk-installed golden node is configured by hand. goldsync pulls its whole
root over ssh into an image directory exported read-only over NFS, with
rsync -aHAXS --numeric-ids fidelity (hard links, ACLs, xattrs, file
capabilities, devices, sparse files), mirror deletes guarded against
mistakes, and atomic, live-safe writes: clients running on the image only
ever see whole files. It then builds each node's read-write snapshot tree
from the files and files.custom lists and writes the PXE netboot files.

A config file describes a cluster (default /etc/goldsync/goldsync.toml), so
the nightly cron job is just "goldsync sync".

Exit status (rsync's numbers where rsync has the cause; see rsync(1)):

` + exitStatusText(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Describe(),
	}
	root.SetVersionTemplate("goldsync {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.config, "config", "", "cluster config file (default /etc/goldsync/goldsync.toml)")
	pf.CountVarP(&g.verbose, "verbose", "v", "say more (repeat for debug logs)")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print only errors")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format on stderr: text or json")
	pf.BoolVar(&g.jsonOut, "json", false, "print a JSON summary on stdout instead of text")
	root.AddCommand(newPullCmd(g))
	root.AddCommand(newSnapshotCmds(g)...)
	root.AddCommand(newClusterCmds(g)...)
	root.AddCommand(newServeCmds(g)...)
	root.AddCommand(newDemoCmd(g))
	root.AddCommand(newReceiveCmd(g), newReplicaBuildCmd(g), newReplicaRelayCmd(g))
	root.AddCommand(newGenerationCmds(g)...)
	root.AddCommand(exitCodesHelp())
	return root
}

// logger builds the slog logger the libraries log through.
func (g *globalFlags) logger(w io.Writer) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case g.quiet:
		level = slog.LevelError
	case g.verbose == 1:
		level = slog.LevelInfo
	case g.verbose >= 2:
		level = slog.LevelDebug
	}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(newCLIHandler(w, "goldsync", level))
}

func exitCodesHelp() *cobra.Command {
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "the exit codes goldsync uses",
		Long:  "Exit codes: one per cause, rsync's number where rsync has the cause (rsync(1) EXIT VALUES):\n\n" + exitStatusText(),
		Run:   func(cmd *cobra.Command, args []string) { cmd.Help() },
	}
}

// stdout is where results go; a variable so tests can capture it.
var stdout io.Writer = os.Stdout

func printf(format string, a ...any) { fmt.Fprintf(stdout, format, a...) }
