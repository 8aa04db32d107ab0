package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
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
	isDir := func() bool { st, err := os.Stat(arg); return err == nil && st.IsDir() }
	if !strings.Contains(arg, "/") && arg != "." && arg != ".." && (g.config != "" || !isDir()) {
		cfg, err := loadConfig(g)
		if err != nil {
			return err
		}
		img, ok := cfg.Image(arg)
		if !ok {
			return exitcode.With(exitcode.Usage, fmt.Errorf("no image %q in %s (images: %s); write a path with a / for an image directory",
				arg, cfg.Path, strings.Join(cfg.ImageNames(), ", ")))
		}
		o.Image = img
	} else {
		root, err := filepath.Abs(arg)
		if err != nil {
			return exitcode.With(exitcode.Usage, err)
		}
		o.Root = root
	}
	rep, err := cluster.Verify(ctx, o)
	if err != nil {
		return exitcode.ClusterErr(ctx, err)
	}
	if g.jsonOut {
		if err := printJSON(rep); err != nil {
			return err
		}
	} else if err := rep.WriteText(stdout, g.quiet); err != nil {
		return err
	}
	if !rep.Clean {
		return &exitcode.Error{Code: exitcode.Drift, Err: fmt.Errorf("%s drifted: %s", rep.Name(), cluster.CountsText(rep.Counts)), Silent: g.jsonOut || !g.quiet}
	}
	return nil
}
