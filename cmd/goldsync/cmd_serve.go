package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/export"
	"github.com/goldsync/goldsync/internal/exitcode"
)

// rsyncChildCmd is the hidden subcommand the export starts, one process
// per connection, to serve it confined.
const rsyncChildCmd = "rsync-export-child"

// newServeCmds returns the read-only rsync-protocol export command and its
// hidden child.
func newServeCmds(g *globalFlags) []*cobra.Command {
	return []*cobra.Command{newServeCmd(g), newRsyncChildCmd()}
}

func newServeCmd(g *globalFlags) *cobra.Command {
	var r cluster.ServeRequest
	cmd := &cobra.Command{
		Use:   "serve --rsync-listen ADDR [--image NAME=PATH]... [IMAGE...]",
		Short: "export images read-only over the rsync daemon protocol",
		RunE: func(cmd *cobra.Command, args []string) error {
			// The --image pairs, or the config's images and [export]
			// settings; flags given win.
			fl := cmd.Flags()
			r.Names, r.MaxConnectionsSet, r.MaxPerIPSet, r.AllowSet = args, fl.Changed("max-connections"), fl.Changed("max-per-ip"), fl.Changed("allow")
			r.ChildArgs, r.Logger = []string{rsyncChildCmd}, g.logger(os.Stderr)
			r.Warn = func(w string) { fmt.Fprintf(os.Stderr, "goldsync serve: WARNING: %s\n", w) }
			if !g.quiet {
				r.Say = func(line string) { fmt.Fprintf(os.Stderr, "goldsync serve: %s\n", line) }
			}
			return exitcode.ClusterErr(cmd.Context(), r.Serve(cmd.Context(), func() (*config.Config, error) { return loadConfig(g) }))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&r.Listen, "rsync-listen", "", "serve the rsync daemon protocol on `ADDR` (host:port; :873 is rsync's port)")
	fl.StringArrayVar(&r.Pairs, "image", nil, "export directory PATH as module NAME (`NAME=PATH`, repeatable; replaces the config's images)")
	fl.BoolVar(&r.Unconfined, "unconfined", false, "serve even when the kernel lacks Landlock (DANGEROUS: see --help)")
	fl.IntVar(&r.MaxConnections, "max-connections", export.DefaultMaxConnections, "transfers served at once (`N` child processes)")
	fl.IntVar(&r.MaxPerIP, "max-per-ip", export.DefaultMaxPerIP, "connections from one client address at once (`N`)")
	fl.StringSliceVar(&r.Allow, "allow", nil, "serve only clients from these networks (`CIDR`[,CIDR...], repeatable; default: the config's [export] allow, else loopback and private ranges; 0.0.0.0/0,::/0 for all)")
	fl.BoolVar(&r.ServeRootOnly, "serve-root-only", false, "also serve the contents of root-only files (owner root, not readable by others: /etc/shadow, host keys); for replica image servers")
	fl.DurationVar(&r.IdleTimeout, "timeout", export.DefaultIdleTimeout, "end a transfer whose client sends or takes nothing for this long")
	return cmd
}

// newRsyncChildCmd is what a Server starts for each connection; it is not
// for people.
func newRsyncChildCmd() *cobra.Command {
	return &cobra.Command{
		Use:    rsyncChildCmd,
		Short:  "serve one rsync connection, confined (started by goldsync serve)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !export.IsChild() {
				return exitcode.With(exitcode.Usage, errors.New(rsyncChildCmd+" is started by goldsync serve, not by hand"))
			}
			export.ChildMain(cmd.Context())
			return nil
		},
	}
}
