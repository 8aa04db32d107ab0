package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/internal/stdio"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/proto"
	"github.com/goldsync/goldsync/internal/version"
)

func newReceiveCmd(g *globalFlags) *cobra.Command {
	f := &pullFlags{}
	var stdio bool
	cmd := &cobra.Command{
		Use:   "receive --stdio [flags] DEST",
		Short: "apply a push from a golden node's agent (started by goldsync-agent push through ssh)",
		Long: `Receive is the image server's side of a push. goldsync-agent push on the
golden node runs "goldsync receive --stdio DEST" here through ssh and serves
its tree over that stream; receive drives it exactly like a pull — it asks
for the changes since the journal token it applied last (a full scan when the
agent cannot vouch for them), applies them through the same live-safe engine,
records the new token, and only then confirms to the agent, which clears its
journal up to that point.

stdout carries the protocol; the summary and errors go to stderr.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !stdio {
				return withCode(exitUsage, errors.New("receive needs --stdio (it is started by goldsync-agent push)"))
			}
			return runReceive(cmd, g, f, args[0])
		},
	}
	cmd.Flags().BoolVar(&stdio, "stdio", false, "speak the protocol on stdin and stdout")
	f.register(cmd)
	return cmd
}

func runReceive(cmd *cobra.Command, g *globalFlags, f *pullFlags, dest string) error {
	ctx := cmd.Context()
	log := g.logger(os.Stderr)
	from, err := readPatterns(f.excludeFrom)
	if err != nil {
		return err
	}
	rw := stdio.New()
	client, err := proto.NewClient(ctx, rw, ".", proto.ClientOptions{Software: "goldsync/" + version.Build(), IdleTimeout: f.timeout, Logger: log})
	if err != nil {
		return withCode(exitStart, err)
	}
	defer client.Close()
	opts := imaging.Options{
		Excludes: append(append([]string(nil), f.excludes...), from...), DryRun: f.dryRun, NoDelete: f.noDelete,
		MaxDelete: f.maxDelete, StateDir: f.stateDir, Retention: f.retention, Fsync: f.fsync, Logger: log,
		Incremental: true, Generations: f.gen.policy("push"),
	}
	res, err := imaging.Sync(ctx, client, dest, opts)
	if err == nil && !f.dryRun {
		if aerr := client.Ack(ctx, res.Token); aerr != nil {
			err = fmt.Errorf("confirm to the agent: %w", aerr)
		}
	}
	if res != nil && !g.quiet {
		fmt.Fprintf(os.Stderr, "goldsync receive: %s: %d entries scanned, %d created, %d updated, %d metadata only, %d deleted, %s received, %.3fs\n",
			dest, res.Entries, res.Created, res.Updated, res.MetaOnly, res.Deleted, human(res.BytesReceived), res.Duration.Seconds())
	}
	if err != nil {
		return classifySync(err)
	}
	return nil
}
