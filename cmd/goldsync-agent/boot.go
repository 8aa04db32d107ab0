package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/agent/boot"
)

func newBootCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "boot",
		Short: "install goldsync's diskless-boot piece into this node's initramfs",
		Long: `A diskless node boots the image's kernel and initramfs. goldsync's piece in
that initramfs (the successor of RHEL 5's disklessrc) mounts the node's
snapshot read-write after the root is mounted read-only over NFS, binds the
node's paths over the image, and hands over to init. It is installed here, on
the golden node, so the golden node's own update-initramfs or dracut builds it
into every initramfs, kernel updates included; the image server's
"goldsync os add" then takes kernel and initramfs from the pulled image.`,
	}
	cmd.AddCommand(newBootInstallCmd(g))
	return cmd
}

func newBootInstallCmd(g *globalFlags) *cobra.Command {
	var flavors []string
	var noRegen bool
	cmd := &cobra.Command{
		Use:   "install [--initramfs initramfs-tools|dracut] [--no-regenerate]",
		Short: "install the boot piece and rebuild the initramfs images",
		Long: `Install writes goldsync's client piece where the golden node's initramfs tool
finds it and rebuilds the existing initramfs images:

  initramfs-tools  /etc/initramfs-tools/hooks/goldsync
                   /etc/initramfs-tools/scripts/nfs-bottom/goldsync
                   then update-initramfs -u -k all
  dracut           /usr/lib/dracut/modules.d/95goldsync/
                   /etc/dracut.conf.d/90-goldsync.conf
                   then dracut -f --regenerate-all

The piece does nothing unless the kernel command line has
goldsync.snapshot=SERVER:PATH (written by "goldsync node add" for nodes of
an OS of boot style nfsroot), so the golden node itself, booting from disk,
is unaffected. It is idempotent. With --root DIR it installs into that tree
and runs the initramfs tool in a chroot of it.

After installing: pull the image again on the image server, then re-run
"goldsync os add" so the TFTP tree gets the new initramfs.`,
		Example: `  goldsync-agent boot install
  goldsync-agent --root /srv/golden boot install --initramfs dracut`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
			res, err := boot.Install(cmd.Context(), opts)
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
