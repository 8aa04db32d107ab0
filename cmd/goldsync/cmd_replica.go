package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/internal/exitcode"
)

// newReplicaBuildCmd is the replica's side of a replica update's second
// half (cluster.ServeReplicaBuild); goldsync sync on the primary runs it
// through ssh.
func newReplicaBuildCmd(g *globalFlags) *cobra.Command {
	var stdio bool
	cmd := &cobra.Command{
		Use:    "replica-build --stdio",
		Short:  "build a replica's node snapshots and boot files (started by goldsync sync on the primary)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !stdio {
				return exitcode.With(exitcode.Usage, errors.New("replica-build needs --stdio (goldsync sync on the primary starts it)"))
			}
			return cluster.ServeReplicaBuild(cmd.Context(), os.Stdin, os.Stdout, g.logger(os.Stderr))
		},
	}
	cmd.Flags().BoolVar(&stdio, "stdio", false, "read the job on stdin, write the report on stdout")
	return cmd
}
