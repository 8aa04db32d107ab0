package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/term"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// defaultTFTPBoot is the TFTP root of RHEL's netboot (pxeos, pxeboot).
const defaultTFTPBoot = "/tftpboot"

// tftpFlag registers --tftpboot for a netboot command: its value is
// resolved by configTFTP when the command runs.
func tftpFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "tftpboot", "", "TFTP root `DIR` (default: the cluster config's tftpboot, else "+defaultTFTPBoot+")")
}

// configTFTP sets *dir, when --tftpboot was not given, to the cluster
// config's tftpboot, or to /tftpboot when there is no config file (none
// named with --config and none at the default path). A config that does
// not load is an error: its tftpboot is unknown.
func configTFTP(g *globalFlags, dir *string) error {
	if *dir != "" {
		return nil
	}
	cfg, err := config.Load(g.config)
	switch {
	case errors.Is(err, config.ErrNoFile) && g.config == "":
		*dir = defaultTFTPBoot
		return nil
	case err != nil:
		return exitcode.With(exitcode.Usage, fmt.Errorf("%w (or give --tftpboot)", err))
	}
	*dir = cfg.Cluster.TFTPBoot
	return nil
}

// newSnapshotCmds returns the snapshot, os, node and render commands: the
// work of Red Hat's system-config-netboot tools (pxeos, pxeboot,
// updateDiskless) over the snapshot and snapshot/netboot packages.
func newSnapshotCmds(g *globalFlags) []*cobra.Command {
	return []*cobra.Command{
		group("snapshot", "build the per-node read-write snapshot trees", newSnapshotBuildCmd(g)),
		group("os", "add, list and remove bootable OS images (pxeos)", newOSAddCmd(g), newOSListCmd(g), newOSRemoveCmd(g)),
		group("node", "add, list and remove diskless nodes (pxeboot)", newNodeAddCmd(g), newNodeRemoveCmd(g), newNodeListCmd(g)),
		group("render", "print dhcpd.conf, /etc/exports and nfs-ganesha snippets", newRenderDhcpdCmd(g), newRenderExportsCmd(g), newRenderGaneshaCmd(g)),
		group("netboot", "install the boot loaders into the TFTP tree", newNetbootInstallCmd(g)),
	}
}

// group is a command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short}
	c.AddCommand(subs...)
	return c
}

func newNetbootInstallCmd(g *globalFlags) *cobra.Command {
	var tftp string
	cmd := &cobra.Command{
		Use:   "install [--tftpboot DIR]",
		Short: "copy pxelinux, GRUB, shim and iPXE from this server's packages into the TFTP tree",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := configTFTP(g, &tftp); err != nil {
				return err
			}
			res, err := installLoaders(cmd, g, tftp)
			if g.jsonOut && res != nil {
				if perr := printJSON(res); perr != nil && err == nil {
					err = perr
				}
			}
			return err
		},
	}
	tftpFlag(cmd, &tftp)
	return cmd
}

// installLoaders installs the boot loaders and reports on stderr/stdout.
func installLoaders(cmd *cobra.Command, g *globalFlags, tftp string) (*netboot.LoaderResult, error) {
	res, err := netboot.InstallLoaders(cmd.Context(), netboot.LoaderOptions{TFTPBoot: tftp})
	if res != nil && !g.jsonOut {
		for _, n := range res.Notices {
			notice(g, "%s", n)
		}
		if !g.quiet {
			_ = res.WriteText(stdout, tftp, g.verbose > 0)
		}
	}
	return res, exitcode.Loaders(err)
}

// buildFlags are the flags of every command that builds snapshots: the
// request they fill.
type buildFlags struct {
	cluster.BuildRequest
	itemize bool
}

func (f *buildFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.Files, "files", nil, "read a files list from `FILE` (repeatable; default SNAPSHOT-DIR/files and SNAPSHOT-DIR/files.custom)")
	fl.StringArrayVar(&f.Rwtabs, "rwtab", nil, "also read a RHEL readonly-root rwtab `FILE` (repeatable)")
	fl.StringArrayVar(&f.Statetabs, "statetab", nil, "also read a RHEL readonly-root statetab `FILE` (repeatable)")
	fl.BoolVarP(&f.DryRun, "dry-run", "n", false, "show what would change, change nothing")
	fl.BoolVarP(&f.itemize, "itemize-changes", "i", false, "print each change, rsync-style, prefixed by the node")
	fl.IntVar(&f.Parallel, "parallel", 0, "build `N` nodes at once (default 2 × CPUs)")
	fl.StringVar(&f.StateDir, "state-dir", "", "records and lock `DIR` (default: .<snapshot-dir>.goldsync beside SNAPSHOT-DIR)")
}

func newSnapshotBuildCmd(g *globalFlags) *cobra.Command {
	f := &buildFlags{}
	var nodesFile string
	cmd := &cobra.Command{
		Use:   "build --image ROOT --snapshot-dir DIR --nodes FILE [flags]",
		Short: "create or refresh every node's snapshot tree from the image",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			nodes, err := snapshot.ReadNodesFile(nodesFile)
			if err != nil {
				return exitcode.Lists(err) // file:line
			}
			return runBuild(cmd, g, f, f.ImageRoot, f.SnapshotDir, nodes)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.ImageRoot, "image", "", "image root `DIR` to copy from (required)")
	fl.StringVar(&f.SnapshotDir, "snapshot-dir", "", "`DIR` holding one snapshot per node (required)")
	fl.StringVar(&nodesFile, "nodes", "", "nodes `FILE`: IP hostname [MAC] a line (required)")
	f.register(cmd)
	for _, name := range []string{"image", "snapshot-dir", "nodes"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func notice(g *globalFlags, format string, a ...any) {
	if !g.quiet && !g.jsonOut {
		fmt.Fprintf(os.Stderr, "goldsync: notice: "+format+"\n", a...)
	}
}

// runBuild builds the nodes' snapshots from image into snapDir
// (cluster.BuildRequest) and reports.
func runBuild(cmd *cobra.Command, g *globalFlags, f *buildFlags, image, snapDir string, nodes []snapshot.Node) error {
	r := f.BuildRequest
	r.ImageRoot, r.SnapshotDir, r.Nodes, r.Logger = image, snapDir, nodes, g.logger(os.Stderr)
	r.Notice = func(msg string) { notice(g, "%s", msg) }
	if f.itemize || (f.DryRun && !g.jsonOut) {
		r.Itemize = func(node string, c imaging.Change) { printf("%s %s\n", node, c) }
	}
	var done func()
	r.Progress, done = cluster.BuildCounter(os.Stderr, !g.quiet && !g.jsonOut && term.IsTerminal(os.Stderr))
	res, err := r.Build(cmd.Context())
	done()
	if res != nil {
		reportBuild(g, res, image, snapDir, err)
	}
	return exitcode.ClusterErr(cmd.Context(), err)
}

func reportBuild(g *globalFlags, res *snapshot.BuildResult, image, snapDir string, err error) {
	if g.jsonOut {
		_ = printJSON(res.Report(image, snapDir, err))
		return
	}
	for _, n := range res.Notices {
		notice(g, "%s", n)
	}
	_ = res.WriteTrouble(os.Stderr, "goldsync: ")
	if !g.quiet {
		_ = res.WriteSummary(stdout, image, snapDir, g.verbose > 0)
	}
}

// ---- os -----------------------------------------------------------------

func newOSAddCmd(g *globalFlags) *cobra.Command {
	var o netboot.AddOSOptions
	var noLoaders bool
	cmd := &cobra.Command{
		Use:   "add NAME --image ROOT --nfs-server HOST [--tftpboot DIR] [flags]",
		Short: "add or update an OS: copy its kernel and initrd into the TFTP tree (pxeos -a)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := configTFTP(g, &o.TFTPBoot); err != nil {
				return err
			}
			o.Name = args[0]
			o.MakeAbs()
			got, warnings, err := netboot.AddOS(cmd.Context(), o)
			if err != nil {
				return exitcode.Netboot(err)
			}
			for _, w := range warnings {
				fmt.Fprintf(os.Stderr, "goldsync: warning: %s\n", w)
			}
			if !g.jsonOut && !g.quiet {
				if o.Kernel == "" {
					printf("Kernel not specified, using %s\n", got.Kernel)
				}
				printf("%s\n", got.Summary())
			}
			if !noLoaders {
				if _, err := installLoaders(cmd, g, o.TFTPBoot); err != nil {
					return err
				}
			}
			if g.jsonOut {
				return printJSON(got)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.ImageRoot, "image", "", "image root `DIR` holding boot/vmlinuz-* (required)")
	tftpFlag(cmd, &o.TFTPBoot)
	fl.StringVar(&o.NFSServer, "nfs-server", "", "`HOST` name or IPv4 address clients mount the image from (required)")
	fl.StringVar(&o.Location, "location", "", "image base `DIR` for NFSROOT (default: the parent of --image)")
	fl.StringVar(&o.SnapshotDir, "snapshot-dir", "", "snapshot `DIR` of the OS (default: LOCATION/snapshot)")
	fl.StringVar(&o.Kernel, "kernel", "", "kernel `VERSION` to boot (default: the newest of the image)")
	fl.StringVar(&o.Style, "boot-style", "", "boot `STYLE`: nfsroot or disklessrc (default: detected from the image)")
	fl.StringVar(&o.Initramfs, "initramfs", "", "initramfs `GENERATOR` of an nfsroot image: initramfs-tools or dracut (default: detected)")
	fl.BoolVar(&noLoaders, "no-loaders", false, "do not install the boot loaders (goldsync netboot install)")
	fl.StringVar(&o.NFSOptions, "nfs-options", "", "NFS mount `OPTIONS` of the read-only root, nfsroot style (default: the generator's, see above)")
	_ = cmd.MarkFlagRequired("image")
	_ = cmd.MarkFlagRequired("nfs-server")
	return cmd
}

func newOSListCmd(g *globalFlags) *cobra.Command {
	var tftp string
	cmd := &cobra.Command{
		Use:   "list [--tftpboot DIR]",
		Short: "list the OS images (pxeos -l)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := configTFTP(g, &tftp); err != nil {
				return err
			}
			list, err := netboot.ListOS(tftp)
			if err != nil {
				return exitcode.Netboot(err)
			}
			if list == nil {
				list = []netboot.OS{} // [] in JSON
			}
			return g.show(list, writeBytes(netboot.FormatOSList(list)))
		},
	}
	tftpFlag(cmd, &tftp)
	return cmd
}

func newOSRemoveCmd(g *globalFlags) *cobra.Command {
	var tftp string
	cmd := &cobra.Command{
		Use:   "remove NAME [--tftpboot DIR]",
		Short: "remove an OS: its record, kernel and initrd (pxeos -d)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := configTFTP(g, &tftp); err != nil {
				return err
			}
			if err := netboot.RemoveOS(tftp, args[0]); err != nil {
				return exitcode.Netboot(err)
			}
			if cfgs, err := netboot.ListNodeConfigs(tftp); err == nil {
				if n := netboot.NodesBooting(cfgs, args[0]); n > 0 {
					notice(g, "%d node configs still boot %s", n, args[0])
				}
			}
			if !g.quiet && !g.jsonOut {
				printf("goldsync: removed OS %s\n", args[0])
			}
			return nil
		},
	}
	tftpFlag(cmd, &tftp)
	return cmd
}

// writeBytes is the text of a result rendered already.
func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(b); return err }
}

// ---- node ---------------------------------------------------------------

func newNodeAddCmd(g *globalFlags) *cobra.Command {
	f := &buildFlags{}
	var (
		osName, tftp, snapDir, nodesFile string
		nb                               netboot.NodeOptions
		noSnapshot                       bool
	)
	cmd := &cobra.Command{
		Use:   "add --os NAME [flags] (--nodes FILE | IP HOSTNAME [MAC])",
		Short: "add nodes: write their boot configs and build their snapshots (pxeboot -a)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := configTFTP(g, &tftp); err != nil {
				return err
			}
			nodes, err := snapshot.NodesFromArgs(nodesFile, args)
			if err != nil {
				return exitcode.Lists(err)
			}
			o, err := netboot.LoadOS(tftp, osName)
			if err != nil {
				return exitcode.Netboot(err)
			}
			if snapDir == "" {
				snapDir = o.SnapshotDir
			}
			if o.Style == netboot.StyleNFSRoot {
				for _, name := range []string{"ramdisk-size", "ethernet", "nis-domain"} {
					if cmd.Flags().Changed(name) {
						notice(g, "--%s ignored: OS %s boots in the %s style, and only disklessrc reads it", name, o.Name, o.Style)
					}
				}
			}
			if !f.DryRun {
				if err := netboot.WriteNodeConfigs(tftp, o, nodes, nb); err != nil {
					return exitcode.Netboot(err)
				}
				if !g.quiet && !g.jsonOut {
					printf("goldsync: wrote the boot configs of %d nodes in %s\n", len(nodes), filepath.Join(tftp, netboot.PXELinuxDir))
				}
			}
			if noSnapshot {
				return nil
			}
			return runBuild(cmd, g, f, o.ImageRoot, snapDir, nodes)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&osName, "os", "", "OS `NAME` the nodes boot (required; see goldsync os add)")
	tftpFlag(cmd, &tftp)
	fl.StringVar(&snapDir, "snapshot-dir", "", "snapshot `DIR` (default: the OS's)")
	fl.StringVar(&nodesFile, "nodes", "", "nodes `FILE`: IP hostname [MAC] a line")
	fl.IntVar(&nb.RamdiskSize, "ramdisk-size", 0, "ramdisk_size= in `KiB` (pxeboot -r)")
	fl.StringVar(&nb.Ethernet, "ethernet", "eth0", "`INTERFACE` the node boots from, ETHERNET= (pxeboot -e)")
	fl.StringVar(&nb.NISDomain, "nis-domain", "", "NISDOMAIN= `DOMAIN` (pxeboot -N)")
	fl.StringVar(&nb.Append, "append", "", "extra kernel `ARGS`, e.g. console=ttyS0,115200n8r (pxeboot -s)")
	fl.BoolVar(&noSnapshot, "no-snapshot", false, "write the boot configs only; build no snapshot")
	f.register(cmd)
	_ = cmd.MarkFlagRequired("os")
	return cmd
}

func newNodeRemoveCmd(g *globalFlags) *cobra.Command {
	var (
		tftp, snapDir, nodesFile, stateDir string
		purge                              bool
	)
	cmd := &cobra.Command{
		Use:   "remove [--purge] (--nodes FILE | HOST|IP...)",
		Short: "remove nodes' boot configs, and with --purge their snapshots (pxeboot -d)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := configTFTP(g, &tftp); err != nil {
				return err
			}
			removed, err := netboot.RemoveNodes(netboot.RemoveNodesOptions{TFTPBoot: tftp, Names: args, NodesFile: nodesFile,
				Purge: purge, SnapshotDir: snapDir, StateDir: stateDir})
			if !g.quiet && !g.jsonOut {
				_ = netboot.WriteRemoved(stdout, removed)
			}
			if errors.Is(err, netboot.ErrNoSnapshotDir) {
				err = fmt.Errorf("%w (--snapshot-dir)", err)
			}
			return exitcode.Netboot(err)
		},
	}
	fl := cmd.Flags()
	tftpFlag(cmd, &tftp)
	fl.StringVar(&nodesFile, "nodes", "", "remove the nodes of `FILE`")
	fl.BoolVar(&purge, "purge", false, "also delete the nodes' snapshot trees and records")
	fl.StringVar(&snapDir, "snapshot-dir", "", "snapshot `DIR` for --purge (default: that of the node's OS)")
	fl.StringVar(&stateDir, "state-dir", "", "state `DIR` of the snapshot dir (default: beside it)")
	return cmd
}

func newNodeListCmd(g *globalFlags) *cobra.Command {
	var tftp string
	cmd := &cobra.Command{
		Use:   "list [--tftpboot DIR]",
		Short: "list the nodes that have a boot config",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := configTFTP(g, &tftp); err != nil {
				return err
			}
			cfgs, err := netboot.ListNodeConfigs(tftp)
			if err != nil {
				return exitcode.Netboot(err)
			}
			if cfgs == nil {
				cfgs = []netboot.NodeConfig{} // [] in JSON
			}
			return g.show(cfgs, writeBytes(netboot.FormatNodeList(cfgs)))
		},
	}
	tftpFlag(cmd, &tftp)
	return cmd
}

// ---- render -------------------------------------------------------------

func newRenderDhcpdCmd(g *globalFlags) *cobra.Command {
	var nodesFile string
	var o netboot.DhcpdOptions
	cmd := &cobra.Command{
		Use:   "dhcpd [--nodes FILE] [--next-server IP] [--filename F] [--efi-filename F]",
		Short: "print ISC dhcpd host declarations for the nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := cluster.DhcpdRequest{NodesFile: nodesFile, Options: o}.Render(func() (*config.Config, error) { return loadConfig(g) })
			if err != nil {
				return exitcode.ClusterErr(cmd.Context(), err)
			}
			return g.show(map[string]string{"dhcpd": string(out)}, writeBytes(out))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&nodesFile, "nodes", "", "nodes `FILE`: IP hostname MAC a line (default: the cluster config's)")
	fl.StringVar(&o.NextServer, "next-server", "", "TFTP server `IP` (next-server) of every node (default, with the config's nodes: each node's replica or nfs_server)")
	fl.StringVar(&o.BIOSFilename, "filename", netboot.DefaultDHCPFilename, "boot `FILE` handed to BIOS clients")
	fl.StringVar(&o.EFIFilename, "efi-filename", netboot.DefaultEFIFilename, "boot `FILE` handed to x86-64 UEFI clients")
	return cmd
}

// exportFlags are the flags of render exports and render ganesha: the
// exports they ask for.
type exportFlags struct {
	cluster.ExportsRequest
}

func (f *exportFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.ImageRoot, "image", "", "image root `DIR`, exported read-only (default: every OS of the cluster config)")
	fl.StringVar(&f.SnapshotDir, "snapshot-dir", "", "snapshot `DIR`, exported read-write (with --image)")
	fl.StringVar(&f.Clients, "clients", "", "client `SPEC`s of the image (and snapshot dir), blank-separated (default: all)")
	fl.StringVar(&f.NodesFile, "nodes", "", "nodes `FILE`: export each node's snapshot to that node only")
	fl.StringVar(&f.SnapshotClients, "snapshot-clients", "", "client `SPEC`s also given each node's snapshot (an admin host; 127.0.0.1 behind QEMU's user network)")
	fl.StringVar(&f.Replica, "replica", "", "the exports of the config's replica `NAME` (its image dir and its nodes' snapshots), to install on that replica")
}

// exports are the exports the flags ask for (cluster.ExportsRequest.Load).
func (f *exportFlags) exports(ctx context.Context, g *globalFlags) ([]netboot.ExportsOptions, error) {
	list, err := f.Load(func() (*config.Config, error) { return loadConfig(g) })
	return list, exitcode.ClusterErr(ctx, err)
}

func newRenderExportsCmd(g *globalFlags) *cobra.Command {
	f := &exportFlags{}
	cmd := &cobra.Command{
		Use:   "exports [--image ROOT --snapshot-dir DIR] [--clients SPEC] [--nodes FILE]",
		Short: "print the /etc/exports lines of an image and its snapshots (kernel nfsd)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := f.exports(cmd.Context(), g)
			if err != nil {
				return err
			}
			out, warnings := cluster.RenderExports(list)
			for _, w := range warnings {
				if !g.jsonOut {
					fmt.Fprintf(os.Stderr, "goldsync render exports: warning: %s\n", w.Message)
				}
			}
			return g.show(map[string]any{"exports": string(out), "warnings": warnings}, writeBytes(out))
		},
	}
	f.register(cmd)
	return cmd
}

func newRenderGaneshaCmd(g *globalFlags) *cobra.Command {
	f := &exportFlags{}
	var firstID int
	cmd := &cobra.Command{
		Use:   "ganesha [--image ROOT --snapshot-dir DIR] [--clients SPEC] [--nodes FILE]",
		Short: "print an nfs-ganesha config exporting an image and its snapshots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if firstID < 1 || firstID > 65535 {
				return exitcode.With(exitcode.Usage, fmt.Errorf("--first-export-id %d: want 1 to 65535 (Export_Id 0 is ganesha's pseudo root)", firstID))
			}
			list, err := f.exports(cmd.Context(), g)
			if err != nil {
				return err
			}
			out, err := netboot.RenderGanesha(netboot.GaneshaOptions{Exports: list, FirstExportID: firstID})
			if err != nil {
				return exitcode.With(exitcode.Usage, err)
			}
			return g.show(map[string]string{"ganesha": string(out)}, writeBytes(out))
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&firstID, "first-export-id", 1, "Export_Id of the image, the snapshots' follow (`N`, 1-65535)")
	return cmd
}
