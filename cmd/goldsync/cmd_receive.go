package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/imaging"

	"github.com/goldsync/goldsync/imaging/proto"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/stdio"
	"github.com/goldsync/goldsync/internal/units"
	"github.com/goldsync/goldsync/internal/version"
)

func newReceiveCmd(g *globalFlags) *cobra.Command {
	f := &pullFlags{}
	var stdio bool
	var image string
	cmd := &cobra.Command{
		Use:   "receive --stdio (--image NAME | [flags] DEST)",
		Short: "apply a push from a golden node's agent (started by goldsync-agent push through ssh)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !stdio {
				return exitcode.With(exitcode.Usage, errors.New("receive needs --stdio (it is started by goldsync-agent push)"))
			}
			if image != "" {
				if err := restrictedReceive(cmd, g, f, image, args); err != nil {
					return err
				}
				return runReceive(cmd, g, f, f.dest, true)
			}
			if len(args) != 1 {
				return exitcode.With(exitcode.Usage, errors.New("receive needs DEST, or --image NAME"))
			}
			return runReceive(cmd, g, f, args[0], false)
		},
	}
	cmd.Flags().BoolVar(&stdio, "stdio", false, "speak the protocol on stdin and stdout")
	cmd.Flags().StringVar(&image, "image", "", "receive into the config's image `NAME` only, with its settings (for a forced command in authorized_keys)")
	f.register(cmd)
	return cmd
}

func runReceive(cmd *cobra.Command, g *globalFlags, f *pullFlags, dest string, restricted bool) (err error) {
	if err := f.settle(cmd); err != nil {
		return err
	}
	excludes, err := f.excludePatterns()
	if err != nil {
		return err
	}
	if err := cluster.CheckDest(dest); err != nil {
		return err
	}
	ctx, cancel := cluster.WithDeadline(cmd.Context(), f.deadline)
	defer cancel()
	defer func() { err = exitcode.Deadline(ctx, err) }()
	log := g.logger(os.Stderr)
	rw := stdio.New()
	client, err := proto.NewClient(ctx, rw, ".", proto.ClientOptions{Software: version.ServerPrefix + version.Stamp(), IdleTimeout: f.timeout, ProgressTimeout: f.progressTO, MaxListBytes: f.MaxListBytes, Logger: log})
	if err != nil {
		return exitcode.With(exitcode.Start, err)
	}
	defer client.Close()
	// A push serves a golden node's root: the default excludes apply
	// unless turned off. In the restricted mode the image's config has
	// them already (default_excludes).
	opts := f.Options(excludes, !restricted)
	opts.Logger = log
	opts.Incremental = true
	opts.Generations = f.gen.policy("push")
	res, err := imaging.Sync(ctx, client, dest, opts)
	if err == nil && !f.DryRun {
		if aerr := client.Ack(ctx, res.Token); aerr != nil {
			err = fmt.Errorf("confirm to the agent: %w", aerr)
		}
	}
	if res != nil && !g.quiet {
		fmt.Fprintf(os.Stderr, "goldsync receive: %s: %d entries scanned, %d created, %d updated, %d metadata only, %d deleted, %s received, %.3fs\n",
			dest, res.Entries, res.Created, res.Updated, res.MetaOnly, res.Deleted, units.Bytes(res.BytesReceived), res.Duration.Seconds())
	}
	if err != nil {
		return exitcode.Sync(err)
	}
	return nil
}

// restrictedReceive fills f from the config's image name: the restricted
// mode of a forced command in authorized_keys. Nothing the client chose
// reaches it: a DEST or any other receive flag is refused (only --stdio,
// --image and the global flags are allowed), and SSH_ORIGINAL_COMMAND is
// never read for anything but a debug line.
func restrictedReceive(cmd *cobra.Command, g *globalFlags, f *pullFlags, name string, args []string) error {
	if len(args) > 0 {
		return exitcode.With(exitcode.Usage, fmt.Errorf("receive --image %s takes no DEST: the image's root comes from the config", name))
	}
	var extra []string
	cmd.LocalFlags().Visit(func(fl *pflag.Flag) {
		if fl.Name != "stdio" && fl.Name != "image" {
			extra = append(extra, "--"+fl.Name)
		}
	})
	if len(extra) > 0 {
		return exitcode.With(exitcode.Usage, fmt.Errorf("receive --image %s takes its settings from the config, not %s", name, strings.Join(extra, " ")))
	}
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	img, ok := cfg.Image(name)
	if !ok {
		return exitcode.With(exitcode.Usage, fmt.Errorf("no image %q in %s", name, cfg.Path))
	}
	if orig := os.Getenv("SSH_ORIGINAL_COMMAND"); orig != "" {
		g.logger(os.Stderr).Debug("restricted receive: the client's command is ignored", "image", name, "asked", orig)
	}
	*f = pullFlags{dest: img.Root, excludes: img.Excludes, timeout: img.Timeout, deadline: cluster.DefaultDeadline,
		PullSettings: cluster.PullSettings{StateDir: img.StateDir, MaxDelete: img.MaxDelete, NoDelete: img.NoDelete, Retention: img.Retention}}
	if f.Retention == 0 {
		f.Retention = defaultRetention // the config's zero is the default
	}
	return nil
}
