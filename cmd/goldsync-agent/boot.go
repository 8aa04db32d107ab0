package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/goldsync/goldsync/agent/boot"
	"github.com/goldsync/goldsync/internal/cli"
)

func newBootCmd(g *globalFlags) *cli.Command {
	cmd := &cli.Command{
		Use:   "boot",
		Short: "install goldsync's diskless-boot piece into this node's initramfs",
	}
	cmd.AddCommand(newBootInstallCmd(g))
	return cmd
}

func newBootInstallCmd(g *globalFlags) *cli.Command {
	var flavors []string
	var noRegen bool
	cmd := &cli.Command{
		Use:   "install [--initramfs initramfs-tools|dracut] [--no-regenerate]",
		Short: "install the boot piece and rebuild the initramfs images",
		Args:  cli.NoArgs,
		Run: func(ctx context.Context, _ *cli.Command, _ []string) error {
			opts := boot.InstallOptions{Root: g.root, NoRegenerate: noRegen, Logger: g.logger()}
			installed := boot.Detect(g.root)
			for _, f := range flavors {
				fl := boot.Flavor(f)
				if _, err := boot.Files(fl); err != nil {
					return err
				}
				if !slices.Contains(installed, fl) {
					// The piece would sit where no tool reads it.
					if !noRegen {
						return fmt.Errorf("%s is not installed in %s: install it first (its initramfs images carry the piece), or pass --no-regenerate to write the piece anyway", fl, g.root)
					}
					fmt.Fprintf(os.Stderr, "goldsync-agent: warning: %s is not installed in %s: no initramfs carries the piece until it is\n", fl, g.root)
				}
				opts.Flavors = append(opts.Flavors, fl)
			}
			res, err := boot.Install(ctx, opts)
			if res != nil {
				for _, p := range res.Written {
					fmt.Fprintf(os.Stdout, "wrote /%s\n", p)
				}
				for _, c := range res.Regenerated {
					fmt.Fprintf(os.Stdout, "ran %s\n", c)
				}
			}
			if err != nil {
				return err
			}
			names := make([]string, len(res.Flavors))
			for i, f := range res.Flavors {
				names[i] = string(f)
			}
			fmt.Fprintf(os.Stdout, "goldsync boot piece installed for %s (%d files written, %d already right)\n",
				strings.Join(names, " and "), len(res.Written), len(res.Unchanged))
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&flavors, "initramfs", nil, "install for `TOOL` (initramfs-tools, dracut; default: every one installed)")
	cmd.Flags().BoolVar(&noRegen, "no-regenerate", false, "do not rebuild the existing initramfs images now")
	return cmd
}
