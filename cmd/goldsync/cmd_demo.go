package main

import (
	"context"
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
		Long: `Demo runs goldsync's whole job on an embedded sample, in a temporary
directory, and prints a summary:

  1. a small golden root is generated (etc, usr/bin with a setuid binary and a
     hard link, var/log, boot with two kernels, proc and sys with junk);
  2. it is pulled into an image through the agent protocol (a goldsync-agent
     child process when one is beside goldsync, else in-process), without
     the default excludes of a root (/proc/*, /sys/*, /dev/*, /run/*, /tmp/*...);
  3. the golden node changes ("yum install dstat") and is pulled again;
  4. the seed's node list gets per-node snapshots from the default files list;
  5. "os add" copies the newest kernel and initrd into tftpboot;
  6. "node add" writes pxelinux.cfg/<HEX IP>, GRUB and iPXE files: node001 to
     node003 boot the seed's way (disklessrc), node004 the modern way
     (nfsroot: the image mounted read-only over NFS by the kernel, the
     snapshot by goldsync's initramfs piece).

The directory is removed afterwards unless --keep is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), g, dir, keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the demo directory")
	cmd.Flags().StringVar(&dir, "dir", "", "use `DIR` instead of a new temp dir")
	return cmd
}

func runDemo(ctx context.Context, g *globalFlags, dir string, keep bool) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "goldsync-demo-")
		if err != nil {
			return err
		}
		dir = d
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	if err := demo.Run(ctx, dir, stdout, g.logger(os.Stderr)); err != nil {
		return err
	}
	if keep {
		printf("\nkept: %s\n", dir)
	}
	return nil
}
