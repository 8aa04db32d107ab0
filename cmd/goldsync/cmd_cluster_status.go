package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/internal/exitcode"
)

func newStatusCmd(g *globalFlags) *cobra.Command {
	var maxAge time.Duration
	cmd := &cobra.Command{
		Use:   "status [IMAGE]...",
		Short: "show each image's last sync and how many node snapshots are behind it",
		RunE: func(cmd *cobra.Command, args []string) error {
			return jsonFailure(g, cmd.Context(), runStatus(cmd.Context(), g, args, maxAge))
		},
	}
	cmd.Flags().DurationVar(&maxAge, "max-age", 0, "exit 30 when an image's last sync finished longer ago than `DURATION`; 0: no limit (an image never synced exits 30 anyway)")
	return cmd
}

func runStatus(ctx context.Context, g *globalFlags, names []string, maxAge time.Duration) error {
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	reports, err := cluster.Status(cfg, cluster.StatusOptions{Images: names, MaxAge: maxAge})
	if err != nil {
		return exitcode.ClusterErr(ctx, err)
	}
	if err := g.show(reports, func(w io.Writer) error { return cluster.WriteStatus(w, reports, time.Now()) }); err != nil {
		return err
	}
	return exitcode.Status(reports, maxAge, g.jsonOut)
}
