package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/internal/exitcode"
)

// newReplicaBuildCmd is the replica's side of a replica update's second
// half (cluster.ServeReplicaBuild); goldsync sync on the primary runs it
// through ssh.
func newReplicaBuildCmd(g *globalFlags) *cobra.Command {
	return replicaStdioCmd(g, "replica-build", "build a replica's node snapshots and boot files (started by goldsync sync on the primary)", cluster.ServeReplicaBuild)
}

// newReplicaRelayCmd is a replica's side of tree fan-out
// (cluster.ServeReplicaRelay): goldsync sync on the primary runs it
// through ssh on a replica that feeds others.
func newReplicaRelayCmd(g *globalFlags) *cobra.Command {
	return replicaStdioCmd(g, "replica-relay", "push this replica's image to a replica it feeds (started by goldsync sync on the primary)", cluster.ServeReplicaRelay)
}

// replicaStdioCmd is a hidden command the primary starts over ssh: a
// request on stdin, the report on stdout.
func replicaStdioCmd(g *globalFlags, name, short string, serve func(context.Context, io.Reader, io.Writer, *slog.Logger) error) *cobra.Command {
	var stdio bool
	cmd := &cobra.Command{
		Use:    name + " --stdio",
		Short:  short,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !stdio {
				return exitcode.With(exitcode.Usage, fmt.Errorf("%s needs --stdio (goldsync sync on the primary starts it)", name))
			}
			return serve(cmd.Context(), os.Stdin, os.Stdout, g.logger(os.Stderr))
		},
	}
	cmd.Flags().BoolVar(&stdio, "stdio", false, "read the request on stdin, write the report on stdout")
	return cmd
}
