package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
)

// newReplicaRelayCmd is a replica's side of tree fan-out
// (cluster.ServeReplicaRelay): goldsync sync on the primary runs it
// through ssh on a replica that feeds others.
func newReplicaRelayCmd(g *globalFlags) *cobra.Command {
	var stdio bool
	cmd := &cobra.Command{
		Use:    "replica-relay --stdio",
		Short:  "push this replica's image to a replica it feeds (started by goldsync sync on the primary)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !stdio {
				return withCode(exitUsage, errors.New("replica-relay needs --stdio (goldsync sync on the primary starts it)"))
			}
			return cluster.ServeReplicaRelay(cmd.Context(), os.Stdin, os.Stdout, g.logger(os.Stderr))
		},
	}
	cmd.Flags().BoolVar(&stdio, "stdio", false, "read the request on stdin, write the report on stdout")
	return cmd
}
