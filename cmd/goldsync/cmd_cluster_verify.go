package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/internal/exitcode"
)

type verifyFlags struct {
	stateDir string
	against  string
	rsh      string
	excludes []string
}

func newVerifyCmd(g *globalFlags) *cobra.Command {
	f := &verifyFlags{}
	cmd := &cobra.Command{
		Use:   "verify [flags] IMAGE",
		Short: "re-read an image and list what drifted from its manifest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return jsonFailure(g, cmd.Context(), runVerify(cmd.Context(), g, f, args[0]))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.stateDir, "state-dir", "", "the image's state `DIR` (default: from the config, else .<image>.goldsync beside it)")
	fl.StringVar(&f.against, "against", "", "also compare with the golden tree `SRC` ([user@]host:/path or a directory)")
	fl.StringVarP(&f.rsh, "rsh", "e", "", "remote shell `COMMAND` for --against (default: the image's rsh, else ssh)")
	fl.StringArrayVar(&f.excludes, "exclude", nil, "leave out paths matching `PATTERN` (added to the config's excludes)")
	return cmd
}

func runVerify(ctx context.Context, g *globalFlags, f *verifyFlags, arg string) error {
	o := cluster.VerifyOptions{StateDir: f.stateDir, Excludes: f.excludes, Against: f.against, Rsh: f.rsh, Logger: g.logger(os.Stderr)}
	if err := o.Target(arg, g.config != "", func() (*config.Config, error) { return loadConfig(g) }); err != nil {
		return exitcode.ClusterErr(ctx, err)
	}
	rep, err := cluster.Verify(ctx, o)
	if err != nil {
		return exitcode.ClusterErr(ctx, err)
	}
	if err := g.show(rep, func(w io.Writer) error { return rep.WriteText(w, g.quiet) }); err != nil {
		return err
	}
	if !rep.Clean {
		return &exitcode.Error{Code: exitcode.Drift, Err: fmt.Errorf("%s drifted: %s", rep.Name(), cluster.CountsText(rep.Counts)), Silent: g.jsonOut || !g.quiet}
	}
	return nil
}
