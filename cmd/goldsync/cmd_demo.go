package main

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/internal/demo"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	var keep bool
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "run the whole job on an embedded sample in a temp dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), g, dir, keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temp directory (a --dir is always kept)")
	cmd.Flags().StringVar(&dir, "dir", "", "run in `DIR` (new or empty, kept) instead of a new temp dir")
	return cmd
}

// runDemo runs the demo in dir, or a temp dir (demo.RunIn).
func runDemo(ctx context.Context, g *globalFlags, dir string, keep bool) error {
	var out io.Writer = stdout
	if g.quiet {
		out = io.Discard // -q: only errors
	}
	return demo.RunIn(ctx, dir, keep, out, g.logger(os.Stderr))
}
