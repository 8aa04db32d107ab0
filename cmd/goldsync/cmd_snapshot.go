package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// defaultTFTPBoot is the TFTP root of RHEL's netboot (pxeos, pxeboot).
const defaultTFTPBoot = "/tftpboot"

// newSnapshotCmds returns the snapshot, os, node and render commands: the
// work of Red Hat's system-config-netboot tools (pxeos, pxeboot,
// updateDiskless) over the snapshot and snapshot/netboot packages.
func newSnapshotCmds(g *globalFlags) []*cobra.Command {
	snap := &cobra.Command{
		Use:   "snapshot",
		Short: "build the per-node read-write snapshot trees",
		Long: `Each diskless node keeps the paths it may write (logs, /etc/ssh, /var/lib...)
in its own snapshot tree, SNAPSHOT-DIR/<host>/, exported read-write over NFS
and mounted over the read-only image at boot. The paths are listed in
SNAPSHOT-DIR/files and SNAPSHOT-DIR/files.custom.`,
	}
	snap.AddCommand(newSnapshotBuildCmd(g))

	osCmd := &cobra.Command{
		Use:   "os",
		Short: "add, list and remove bootable OS images (pxeos)",
		Long: `An OS is a kernel and initrd copied from an image into the TFTP tree, plus
where the image is exported from: what Red Hat's pxeos managed. Records live
in TFTPBOOT/linux-install/goldsync/os/NAME.json.`,
	}
	osCmd.AddCommand(newOSAddCmd(g), newOSListCmd(g), newOSRemoveCmd(g))

	node := &cobra.Command{
		Use:   "node",
		Short: "add, list and remove diskless nodes (pxeboot)",
		Long: `A node is a pxelinux config (and GRUB and iPXE configs) naming its OS and
snapshot, plus its snapshot tree: what Red Hat's pxeboot managed. The list of
nodes is read back from the pxelinux configs themselves
(TFTPBOOT/linux-install/pxelinux.cfg/<HEXIP>), so it cannot disagree with
what the nodes boot.`,
	}
	node.AddCommand(newNodeAddCmd(g), newNodeRemoveCmd(g), newNodeListCmd(g))

	render := &cobra.Command{
		Use:   "render",
		Short: "print dhcpd.conf, /etc/exports and nfs-ganesha snippets",
		Long: `Render prints configuration for the services goldsync does not run itself:
ISC dhcpd host declarations, and the NFS exports of an image for the kernel
nfsd (/etc/exports) or nfs-ganesha. Nothing is written: redirect the output
where it belongs, or include it.`,
	}
	render.AddCommand(newRenderDhcpdCmd(g), newRenderExportsCmd(g), newRenderGaneshaCmd(g))

	nb := &cobra.Command{
		Use:   "netboot",
		Short: "install the boot loaders into the TFTP tree",
	}
	nb.AddCommand(newNetbootInstallCmd(g))
	return []*cobra.Command{snap, osCmd, node, render, nb}
}

func newNetbootInstallCmd(g *globalFlags) *cobra.Command {
	var tftp string
	cmd := &cobra.Command{
		Use:   "install [--tftpboot DIR]",
		Short: "copy pxelinux, GRUB, shim and iPXE from this server's packages into the TFTP tree",
		Long: `Install copies the network boot loaders of this (Debian or Ubuntu) server's
own packages into TFTPBOOT/linux-install, where goldsync's node configs
expect them:

  /usr/lib/PXELINUX/pxelinux.0                  linux-install/pxelinux.0      (pxelinux)
  /usr/lib/syslinux/modules/bios/ldlinux.c32    linux-install/ldlinux.c32     (syslinux-common)
  /usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed
                                                linux-install/grub/grubnetx64.efi and
                                                linux-install/grub/grubx64.efi (grub-efi-amd64-signed)
  /usr/lib/shim/shimx64.efi.signed              linux-install/grub/shimx64.efi (shim-signed)
  /usr/lib/ipxe/undionly.kpxe, ipxe.efi         linux-install/ipxe/           (ipxe)

BIOS clients boot pxelinux.0, x86-64 UEFI clients shimx64.efi, which loads
grubx64.efi beside it (see "goldsync render dhcpd"). That GRUB reads
grub/grub.cfg of the TFTP root (its built-in prefix), which "goldsync node
add" writes; install says so when another tool's grub/grub.cfg is there. A loader this server
lacks is skipped with a notice naming its package. Files already up to
date are left alone; others are replaced atomically. "goldsync os add"
runs this too, unless --no-loaders.`,
		Example: `  apt-get install pxelinux syslinux-common grub-efi-amd64-signed shim-signed ipxe
  goldsync netboot install --tftpboot /srv/tftp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := installLoaders(cmd, g, tftp)
			if g.jsonOut && res != nil {
				if perr := printJSON(res); perr != nil && err == nil {
					err = perr
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&tftp, "tftpboot", defaultTFTPBoot, "TFTP root `DIR`")
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
			printf("goldsync: boot loaders in %s: %d installed, %d up to date\n", filepath.Join(tftp, netboot.InstallDir), len(res.Installed), len(res.Unchanged))
			if g.verbose > 0 {
				for _, p := range res.Installed {
					printf("  installed %s\n", p)
				}
			}
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return res, withCode(exitSelect, err)
		}
		return res, withCode(exitIO, err)
	}
	return res, nil
}

// listFlags name the lists of paths a snapshot holds.
type listFlags struct {
	files     []string
	rwtabs    []string
	statetabs []string
}

func (f *listFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.files, "files", nil, "read a files list from `FILE` (repeatable; default SNAPSHOT-DIR/files and SNAPSHOT-DIR/files.custom)")
	fl.StringArrayVar(&f.rwtabs, "rwtab", nil, "also read a RHEL readonly-root rwtab `FILE` (repeatable)")
	fl.StringArrayVar(&f.statetabs, "statetab", nil, "also read a RHEL readonly-root statetab `FILE` (repeatable)")
}

// buildFlags are the flags of every command that builds snapshots.
type buildFlags struct {
	lists    listFlags
	dryRun   bool
	itemize  bool
	parallel int
	stateDir string
}

func (f *buildFlags) register(cmd *cobra.Command) {
	f.lists.register(cmd)
	fl := cmd.Flags()
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "show what would change, change nothing")
	fl.BoolVarP(&f.itemize, "itemize-changes", "i", false, "print each change, rsync-style, prefixed by the node")
	fl.IntVar(&f.parallel, "parallel", 0, "build `N` nodes at once (default 2 × CPUs)")
	fl.StringVar(&f.stateDir, "state-dir", "", "records and lock `DIR` (default: .<snapshot-dir>.goldsync beside SNAPSHOT-DIR)")
}

func newSnapshotBuildCmd(g *globalFlags) *cobra.Command {
	f := &buildFlags{}
	var image, snapDir, nodesFile string
	cmd := &cobra.Command{
		Use:   "build --image ROOT --snapshot-dir DIR --nodes FILE [flags]",
		Short: "create or refresh every node's snapshot tree from the image",
		Long: `Build makes SNAPSHOT-DIR/<host>/<path> for every node of the nodes file and
every path of the lists, copied from the image with everything rsync -aHAXS
keeps (owners, modes, ACLs, xattrs, capabilities, hard links, holes), as
Red Hat's pxeboot did when adding a node and updateDiskless when refreshing.

The lists are SNAPSHOT-DIR/files and, if present, SNAPSHOT-DIR/files.custom
(--files replaces both): absolute paths, a trailing / for a directory, #
comments. When SNAPSHOT-DIR/files does not exist, the default list is
written there first, and the command says so; an existing files list is
never edited. --rwtab and --statetab add RHEL readonly-root lists ("dirs",
"empty" and "files" lines). A listed path missing from the image is skipped
with a notice.

A rebuild never loses a node's data. For each path: a node that lacks it
gets a copy; a node that has not changed it since the last build follows
the image; a node that changed it keeps its version, and when the image
changed it too that is reported as a conflict (the node's version is
kept). Nothing in a snapshot is ever deleted. What goldsync copied is
recorded per node in the state dir, beside the snapshot directory and
outside every export. A rebuild with nothing changed copies nothing.

Writes go through an openat2 root at each node's snapshot: a symlink a node
planted in its snapshot is never followed.

Each node gets its own identity, created only where absent and never
overwritten or copied from the image (even when a list names it, or
/etc/ssh/): /etc/hostname, /etc/machine-id (random, 0444), ssh host keys
(one pair per ssh_host_<type>_key.pub of the image's /etc/ssh, made with
this server's ssh-keygen) and a diskless /etc/fstab (comments only: the
root is NFS read-only, mounted by the initramfs).

Every build rewrites SNAPSHOT-DIR/<host>/.goldsync/boot.list, which
goldsync's client piece reads at boot: "bind /path" for every files,
files.custom and statetab path and identity file, "empty /path" and
"dirs /path" for rwtab items, parents first, directories with a trailing /.

The nodes file has one node a line, "IP hostname [MAC]", # comments.

Exit status: 0 when every node was built (conflicts are reported, not
errors), 23 when some paths or nodes could not be built, 16 when another
build of the same snapshot directory is running, 1 for bad arguments or
lists (reported as file:line).`,
		Example: `  # the seed procedure's snapshots, for the nodes of the nodes file
  goldsync snapshot build --image /diskless/i386/RHEL5-AS/root \
      --snapshot-dir /diskless/i386/RHEL5-AS/snapshot --nodes nodes

  # what a refresh would change, node by node
  goldsync snapshot build -n -i --image /diskless/i386/RHEL5-AS/root \
      --snapshot-dir /diskless/i386/RHEL5-AS/snapshot --nodes nodes

  # RHEL 6+ readonly-root lists instead of files/files.custom
  goldsync snapshot build --image /diskless/rhel7/root --snapshot-dir /diskless/rhel7/snapshot \
      --nodes nodes --files /dev/null --rwtab /diskless/rhel7/root/etc/rwtab`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			nodes, err := readNodesFile(nodesFile)
			if err != nil {
				return err
			}
			return runBuild(cmd, g, f, image, snapDir, nodes)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&image, "image", "", "image root `DIR` to copy from (required)")
	fl.StringVar(&snapDir, "snapshot-dir", "", "`DIR` holding one snapshot per node (required)")
	fl.StringVar(&nodesFile, "nodes", "", "nodes `FILE`: IP hostname [MAC] a line (required)")
	f.register(cmd)
	for _, name := range []string{"image", "snapshot-dir", "nodes"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// readNodesFile parses a nodes file; errors are file:line.
func readNodesFile(name string) ([]snapshot.Node, error) {
	nodes, err := snapshot.ReadNodesFile(name)
	switch {
	case errors.Is(err, snapshot.ErrNodes):
		return nil, withCode(exitUsage, err)
	case err != nil:
		return nil, withCode(exitSelect, err)
	}
	return nodes, nil
}

// loadLists reads the lists of paths (snapshot.LoadLists); notices go to
// stderr.
func loadLists(g *globalFlags, f listFlags, snapDir string, dryRun bool) ([]snapshot.Item, error) {
	items, err := snapshot.LoadLists(snapshot.LoadOptions{SnapshotDir: snapDir, Files: f.files, Rwtabs: f.rwtabs,
		Statetabs: f.statetabs, DryRun: dryRun, Notice: func(msg string) { notice(g, "%s", msg) }})
	switch {
	case errors.Is(err, snapshot.ErrLists):
		return nil, withCode(exitUsage, err)
	case isNoSpace(err):
		return nil, withCode(exitIO, err)
	case err != nil:
		return nil, withCode(exitSelect, err)
	}
	return items, nil
}

func notice(g *globalFlags, format string, a ...any) {
	if !g.quiet && !g.jsonOut {
		fmt.Fprintf(os.Stderr, "goldsync: notice: "+format+"\n", a...)
	}
}

// buildProgress draws "snapshot N/M nodes" on a terminal.
type buildProgress struct {
	on    bool
	mu    sync.Mutex
	last  time.Time
	drawn bool
}

func (p *buildProgress) update(bp snapshot.BuildProgress) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond || bp.NodesDone == bp.Nodes {
		p.last = now
		fmt.Fprintf(os.Stderr, "\r\033[Ksnapshot %d/%d nodes (%d image entries)", bp.NodesDone, bp.Nodes, bp.ImageEntries)
		p.drawn = true
	}
}

func (p *buildProgress) done() {
	if p.drawn {
		fmt.Fprintln(os.Stderr)
	}
}

// runBuild builds the nodes' snapshots and reports.
func runBuild(cmd *cobra.Command, g *globalFlags, f *buildFlags, image, snapDir string, nodes []snapshot.Node) error {
	// Check the image before writing anything (the default files list).
	if err := snapshot.CheckImage(image); err != nil {
		return withCode(exitSelect, err)
	}
	items, err := loadLists(g, f.lists, snapDir, f.dryRun)
	if err != nil {
		return err
	}
	opts := snapshot.BuildOptions{
		ImageRoot: image, SnapshotDir: snapDir, StateDir: f.stateDir, Nodes: nodes, Items: items,
		Parallel: f.parallel, DryRun: f.dryRun, Logger: g.logger(os.Stderr),
	}
	if f.itemize || (f.dryRun && !g.jsonOut) {
		opts.Itemize = func(node string, c imaging.Change) { printf("%s %s\n", node, c) }
	}
	prog := &buildProgress{on: !g.quiet && !g.jsonOut && isTerminal(os.Stderr)}
	opts.Progress = prog.update
	res, err := snapshot.Build(cmd.Context(), opts)
	prog.done()
	if res != nil {
		reportBuild(g, res, image, snapDir, err)
	}
	if err != nil {
		return classifyBuild(err)
	}
	return nil
}

func classifyBuild(err error) error {
	switch {
	case errors.Is(err, imaging.ErrLocked):
		return withCode(exitLocked, err)
	case isNoSpace(err):
		return withCode(exitIO, err)
	case errors.Is(err, imaging.ErrPartial):
		return withCode(exitPartial, err)
	case errors.Is(err, fs.ErrNotExist):
		return withCode(exitSelect, err)
	}
	return err
}

// buildReport is the --json output of a build.
type buildReport struct {
	Image       string  `json:"image"`
	SnapshotDir string  `json:"snapshot_dir"`
	OK          bool    `json:"ok"`
	Error       string  `json:"error,omitempty"`
	Seconds     float64 `json:"seconds"`
	*snapshot.BuildResult
}

func reportBuild(g *globalFlags, res *snapshot.BuildResult, image, snapDir string, err error) {
	if g.jsonOut {
		r := buildReport{Image: image, SnapshotDir: snapDir, OK: err == nil, Seconds: res.Duration.Seconds(), BuildResult: res}
		if err != nil {
			r.Error = err.Error()
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
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
		Use:   "add NAME --image ROOT --tftpboot DIR --nfs-server HOST [flags]",
		Short: "add or update an OS: copy its kernel and initrd into the TFTP tree (pxeos -a)",
		Long: `Add copies the kernel and initrd of the image ROOT into
TFTPBOOT/linux-install/NAME/vmlinuz and .../initrd.img and records the OS, as
pxeos -a did. The kernel is --kernel, or the newest vmlinuz-VERSION in
ROOT/boot that has an initrd (initramfs-VERSION.img, initrd-VERSION.img or
initrd.img-VERSION); "Kernel not specified, using VERSION" says which.

The boot style says what the nodes' initrd does, and so what their kernel
command line is (see "goldsync node add --help"). It is detected from the
image unless --boot-style is given:

  nfsroot     a modern initramfs: initramfs-tools (the image has
              usr/sbin/mkinitramfs) or dracut (usr/bin/dracut or
              usr/sbin/dracut), with goldsync's client piece. The kernel
              mounts ROOT read-only over NFS, the client piece mounts the
              node's snapshot read-write and binds the listed paths from it.
  disklessrc  RHEL 5's mkinitrd initrd and its disklessrc (anything else):
              pxeboot's NFSROOT=HOST:LOCATION line.

An nfsroot image needs goldsync's client piece in its initramfs; when the
image lacks it the OS is still added, with a warning: install it on the
golden node with "goldsync-agent boot install" (which also rebuilds the
initramfs there), pull again and re-run os add.

NFS options of the read-only root (--nfs-options, nfsroot only). The
defaults are "` + netboot.DefaultInitramfsToolsNFSOptions + `"
(initramfs-tools: klibc nfsmount's syntax, which has no actimeo and fails
the boot on options it does not know, so they are checked) and
"` + netboot.DefaultDracutNFSOptions + `" (dracut, mount.nfs syntax): NFSv3
over TCP; nolock, because the root is read-only and shared by every node,
so there is nothing to lock and no lock daemon in the initramfs; an
attribute cache of 10 seconds, so a node caches a file's attributes and a
directory's entries at most 10 seconds: a change the image server gets (a
pull, a push) is seen by running nodes within about 10 seconds, no reboot.
Lower values see changes sooner at the price of more GETATTR calls per
node on the server; the kernel's defaults (3-60 s) can take a minute.

The location (pxeos -L) is the image's base directory, the parent of ROOT by
default: disklessrc clients boot with NFSROOT=HOST:LOCATION and mount
LOCATION/root and LOCATION/snapshot. The snapshot directory defaults to
LOCATION/snapshot.

Unless --no-loaders, add also installs the boot loaders from this server's
packages into the TFTP tree (see "goldsync netboot install").

Adding an OS that exists replaces it (a new kernel, say); node configs
naming it need no change (re-run node add after a boot style change).`,
		Example: `  # a Debian image with initramfs-tools and goldsync's client piece: style detected
  goldsync os add debian12 --image /diskless/debian12/root --nfs-server 10.0.2.2

  # the seed procedure's pxeos -a -i rhel5compute -p NFS -D 1 -s node002 -L /diskless/i386/RHEL5-AS
  goldsync os add rhel5compute --image /diskless/i386/RHEL5-AS/root --nfs-server node002

  # a given kernel of the image, the style forced
  goldsync os add rhel5compute --image /diskless/i386/RHEL5-AS/root --nfs-server 10.8.0.2 \
      --kernel 2.6.18-164.el5 --boot-style disklessrc

  # a dracut image, attributes cached 3 seconds
  goldsync os add rocky9 --image /diskless/rocky9/root --nfs-server 10.8.0.2 \
      --boot-style nfsroot --initramfs dracut --nfs-options vers=3,tcp,nolock,actimeo=3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			// Paths as the admin typed them: relative to here, a trailing
			// slash from tab completion allowed. Records hold them absolute.
			for _, p := range []*string{&o.ImageRoot, &o.Location, &o.SnapshotDir, &o.TFTPBoot} {
				if *p != "" {
					if a, err := filepath.Abs(*p); err == nil {
						*p = a
					}
				}
			}
			got, warnings, err := netboot.AddOS(cmd.Context(), o)
			if err != nil {
				return classifyNetboot(err)
			}
			for _, w := range warnings {
				fmt.Fprintf(os.Stderr, "goldsync: warning: %s\n", w)
			}
			if o.Kernel == "" && !g.jsonOut && !g.quiet {
				printf("Kernel not specified, using %s\n", got.Kernel)
			}
			if g.jsonOut {
				if !noLoaders {
					if _, err := netboot.InstallLoaders(cmd.Context(), netboot.LoaderOptions{TFTPBoot: o.TFTPBoot}); err != nil {
						return withCode(exitIO, err)
					}
				}
				return printJSON(got)
			}
			if !g.quiet {
				style := got.Style
				if got.Initramfs != "" {
					style += ", " + got.Initramfs + ", NFS options " + got.NFSOptions
				}
				printf("goldsync: added OS %s (boot style %s): %s/%s, %s/%s\n", got.Name, style, netboot.InstallDir, got.KernelFile, netboot.InstallDir, got.InitrdFile)
			}
			if !noLoaders {
				if _, err := installLoaders(cmd, g, o.TFTPBoot); err != nil {
					return err
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.ImageRoot, "image", "", "image root `DIR` holding boot/vmlinuz-* (required)")
	fl.StringVar(&o.TFTPBoot, "tftpboot", defaultTFTPBoot, "TFTP root `DIR`")
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
		Long: `List prints every OS recorded under TFTPBOOT/linux-install/goldsync/os, in
the layout of pxeos -l, or as a JSON array with --json.`,
		Example: `  goldsync os list
  goldsync os list --json --tftpboot /srv/tftp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := netboot.ListOS(tftp)
			if err != nil {
				return classifyNetboot(err)
			}
			if g.jsonOut {
				if list == nil {
					list = []netboot.OS{}
				}
				return printJSON(list)
			}
			_, err = stdout.Write(netboot.FormatOSList(list))
			return err
		},
	}
	cmd.Flags().StringVar(&tftp, "tftpboot", defaultTFTPBoot, "TFTP root `DIR`")
	return cmd
}

func newOSRemoveCmd(g *globalFlags) *cobra.Command {
	var tftp string
	cmd := &cobra.Command{
		Use:   "remove NAME [--tftpboot DIR]",
		Short: "remove an OS: its record, kernel and initrd (pxeos -d)",
		Long: `Remove deletes the OS record and its kernel and initrd from the TFTP tree.
Node configs that still boot it are left alone (they will fail to boot it):
remove or re-add those nodes. The image and the snapshots are not touched.`,
		Example: `  goldsync os remove rhel5compute`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := netboot.RemoveOS(tftp, args[0]); err != nil {
				return classifyNetboot(err)
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
	cmd.Flags().StringVar(&tftp, "tftpboot", defaultTFTPBoot, "TFTP root `DIR`")
	return cmd
}

func classifyNetboot(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return withCode(exitSelect, err)
	}
	return withCode(exitUsage, err)
}

func printJSON(v any) error {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ---- node ---------------------------------------------------------------

// nodeArgs resolves the nodes of a command: --nodes FILE, or IP HOSTNAME
// [MAC] on the command line.
func nodeArgs(nodesFile string, args []string) ([]snapshot.Node, error) {
	switch {
	case nodesFile != "" && len(args) > 0:
		return nil, withCode(exitUsage, errors.New("give either --nodes FILE or IP HOSTNAME, not both"))
	case nodesFile != "":
		return readNodesFile(nodesFile)
	case len(args) == 2 || len(args) == 3:
		nodes, err := snapshot.ParseNodes("command line", strings.NewReader(strings.Join(args, " ")))
		if err != nil {
			return nil, withCode(exitUsage, err)
		}
		return nodes, nil
	}
	return nil, withCode(exitUsage, errors.New("want --nodes FILE, or IP HOSTNAME [MAC]"))
}

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
		Long: `Add writes, for each node, its pxelinux config
(TFTPBOOT/linux-install/pxelinux.cfg/<IP in hex>), GRUB config and iPXE
script booting OS NAME, then builds its snapshot tree in the OS's snapshot
directory (SNAPSHOT-DIR/<host>), as pxeboot -a did for one node at a time.
Every node is checked before any file is written; a node added again gets
its configs rewritten and its snapshot refreshed (see "goldsync snapshot
build": node data is never lost).

GRUB configs are written as linux-install/grub/grub.cfg-<IP in hex> and
grub.cfg-<IP>, with a shared linux-install/grub/grub.cfg that sources the
node's own by its address, also written as grub/grub.cfg at the TFTP root
(unless another tool's is there): Debian's and Ubuntu's signed network GRUB
reads only that one.

The kernel command line follows the OS's boot style (see "goldsync os add"):

  nfsroot, initramfs-tools:
    root=/dev/nfs boot=nfs nfsroot=SERVER:IMAGE-ROOT,NFS-OPTIONS ip=dhcp ro
    goldsync.snapshot=SERVER:SNAPSHOT-DIR/HOST, then --append
  nfsroot, dracut:
    root=nfs:SERVER:IMAGE-ROOT:NFS-OPTIONS rd.neednet=1 ip=dhcp ro
    goldsync.snapshot=SERVER:SNAPSHOT-DIR/HOST, then --append
  disklessrc (pxeboot's):
    root=/dev/ram0 init=disklessrc NFSROOT=SERVER:LOCATION ramdisk_size=N
    ETHERNET=IF SNAPSHOT=HOST NISDOMAIN=D, then --append

An nfsroot node configures the interface it booted from, never a fixed
one: pxelinux appends BOOTIF= itself (ipappend 2); GRUB configs pass
BOOTIF=01-<mac> when the nodes file gives the node's MAC, iPXE scripts
always (from the MAC, or from iPXE's ${netX/mac:hexhyp}). --ramdisk-size,
--ethernet and --nis-domain are disklessrc's and ignored in nfsroot.`,
		Example: `  # every node of a Debian image (nfsroot style), serial console
  goldsync node add --os debian12 --nodes nodes --append console=ttyS0

  # the seed procedure's loop of pxeboot -a -O rhel5compute -r 28753 -S $host -e eth0
  #   -N my_nis_domain -s console=ttyS0,115200n8r $ip, for all 128 nodes at once
  goldsync node add --os rhel5compute --nodes nodes --ramdisk-size 28753 --ethernet eth0 \
      --nis-domain my_nis_domain --append console=ttyS0,115200n8r

  # one node
  goldsync node add --os rhel5compute --ramdisk-size 28760 --nis-domain my_nis_domain 10.8.226.73 node003`,
		RunE: func(cmd *cobra.Command, args []string) error {
			nodes, err := nodeArgs(nodesFile, args)
			if err != nil {
				return err
			}
			o, err := netboot.LoadOS(tftp, osName)
			if err != nil {
				return classifyNetboot(err)
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
			if !f.dryRun {
				if err := netboot.WriteNodeConfigs(tftp, o, nodes, nb); err != nil {
					return classifyNetboot(err)
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
	fl.StringVar(&tftp, "tftpboot", defaultTFTPBoot, "TFTP root `DIR`")
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
		Long: `Remove deletes the pxelinux, GRUB and iPXE configs of the nodes, named by
host name or IP address (looked up in the pxelinux configs) or listed in a
nodes file. The node's snapshot tree is kept, so re-adding the node finds
its data; --purge deletes it too, with its record. The snapshot directory is
the one of the OS the node boots, or --snapshot-dir.`,
		Example: `  goldsync node remove node003
  goldsync node remove --purge 10.8.226.73
  goldsync node remove --nodes retired-nodes`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o := netboot.RemoveNodesOptions{TFTPBoot: tftp, Names: args, Purge: purge, SnapshotDir: snapDir, StateDir: stateDir}
			switch {
			case nodesFile != "" && len(args) > 0:
				return withCode(exitUsage, errors.New("give either --nodes FILE or nodes, not both"))
			case nodesFile != "":
				nodes, err := readNodesFile(nodesFile)
				if err != nil {
					return err
				}
				o.Nodes = nodes
			case len(args) == 0:
				return withCode(exitUsage, errors.New("name the nodes to remove, or --nodes FILE"))
			}
			removed, err := netboot.RemoveNodes(o)
			if !g.quiet && !g.jsonOut {
				for _, r := range removed {
					printf("goldsync: removed the boot configs of %s (%s)\n", r.Node.Host, r.Node.IP)
					if r.Snapshot != "" {
						printf("goldsync: removed the snapshot %s\n", r.Snapshot)
					}
				}
			}
			switch {
			case errors.Is(err, netboot.ErrNoSnapshotDir):
				return withCode(exitUsage, fmt.Errorf("%w (--snapshot-dir)", err))
			case errors.Is(err, netboot.ErrPurge):
				return withCode(exitIO, err)
			}
			return classifyNetboot(err)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&tftp, "tftpboot", defaultTFTPBoot, "TFTP root `DIR`")
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
		Long: `List prints one line per node that has a pxelinux config written by
goldsync (TFTPBOOT/linux-install/pxelinux.cfg/<IP in hex>): its address,
snapshot (host) name, MAC (when node add knew it), OS and config file,
sorted by address. The output is a nodes file (IP HOSTNAME [MAC]) with the
rest as comments; --json prints objects.`,
		Example: `  goldsync node list
  goldsync node list | awk '{print $1, $2}' > nodes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfgs, err := netboot.ListNodeConfigs(tftp)
			if err != nil {
				return classifyNetboot(err)
			}
			if g.jsonOut {
				if cfgs == nil {
					cfgs = []netboot.NodeConfig{}
				}
				return printJSON(cfgs)
			}
			_, err = stdout.Write(netboot.FormatNodeList(cfgs))
			return err
		},
	}
	cmd.Flags().StringVar(&tftp, "tftpboot", defaultTFTPBoot, "TFTP root `DIR`")
	return cmd
}

// ---- render -------------------------------------------------------------

func newRenderDhcpdCmd(g *globalFlags) *cobra.Command {
	var nodesFile string
	var o netboot.DhcpdOptions
	cmd := &cobra.Command{
		Use:   "dhcpd [--nodes FILE] [--next-server IP] [--filename F] [--efi-filename F]",
		Short: "print ISC dhcpd host declarations for the nodes",
		Long: `Dhcpd prints one host declaration per node of the nodes file that has a MAC
(the third column), to include at the top level of dhcpd.conf (not inside a
subnet block: dhcpd refuses option definitions there, and host declarations
are global anyway), as the seed procedure's hand-written ones: hardware ethernet,
fixed-address, filename and next-server, the TFTP server. Nodes without a
MAC get a comment saying so.

The boot file depends on the client's architecture, DHCP option 93, which
the output declares first ("option arch code 93 = unsigned integer 16;"):
x86-64 UEFI clients (00:07, 00:09) get --efi-filename (default
linux-install/grub/shimx64.efi, which loads GRUB beside it), the others
(BIOS) --filename (default linux-install/pxelinux.0). "goldsync netboot
install" puts both loaders there. When both names are the same, hosts get
that one filename. If your dhcpd.conf already declares option 93 under
another name, remove one of the two declarations.

With the nodes of the cluster config (no --nodes), a node of an image with
replicas gets its replica's address as next-server, or the primary's
nfs_server while that replica is down (see goldsync.toml(5)): render again
after a sync that changed a replica's state.`,
		Example: `  goldsync render dhcpd --nodes nodes --next-server 10.8.0.2 > /etc/dhcp/diskless-hosts.conf
  # then in dhcpd.conf, at the top level (after the subnet declarations):
  #   include "/etc/dhcp/diskless-hosts.conf";
  dhcpd -t -cf /etc/dhcp/dhcpd.conf

  # BIOS only, as before UEFI
  goldsync render dhcpd --nodes nodes --efi-filename linux-install/pxelinux.0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var cfg *config.Config
			if nodesFile == "" {
				var err error
				if cfg, err = loadConfig(g); err != nil {
					return fmt.Errorf("%w (or give --nodes)", err)
				}
				nodesFile = cfg.Cluster.Nodes
			}
			nodes, err := readNodesFile(nodesFile)
			if err != nil {
				return err
			}
			if cfg != nil {
				// Nodes of an image with replicas: next-server is their route's.
				if o.NextServers, err = cluster.DhcpdNextServers(cfg, nodes); err != nil {
					return withCode(exitUsage, err)
				}
			}
			if err := o.Validate(); err != nil {
				return withCode(exitUsage, err)
			}
			out := netboot.RenderDhcpd(nodes, o)
			if g.jsonOut {
				return printJSON(map[string]string{"dhcpd": string(out)})
			}
			_, err = stdout.Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&nodesFile, "nodes", "", "nodes `FILE`: IP hostname MAC a line (default: the cluster config's)")
	fl.StringVar(&o.NextServer, "next-server", "", "TFTP server `IP` (next-server)")
	fl.StringVar(&o.BIOSFilename, "filename", netboot.DefaultDHCPFilename, "boot `FILE` handed to BIOS clients")
	fl.StringVar(&o.EFIFilename, "efi-filename", netboot.DefaultEFIFilename, "boot `FILE` handed to x86-64 UEFI clients")
	return cmd
}

// exportFlags are the flags of render exports and render ganesha.
type exportFlags struct {
	image, snapDir, clients, nodesFile, snapClients, replica string
}

func (f *exportFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", "", "image root `DIR`, exported read-only (default: every OS of the cluster config)")
	fl.StringVar(&f.snapDir, "snapshot-dir", "", "snapshot `DIR`, exported read-write (with --image)")
	fl.StringVar(&f.clients, "clients", "", "client `SPEC`s of the image (and snapshot dir), blank-separated (default: all)")
	fl.StringVar(&f.nodesFile, "nodes", "", "nodes `FILE`: export each node's snapshot to that node only")
	fl.StringVar(&f.snapClients, "snapshot-clients", "", "client `SPEC`s also given each node's snapshot (an admin host; 127.0.0.1 behind QEMU's user network)")
	fl.StringVar(&f.replica, "replica", "", "the exports of the config's replica `NAME` (its image dir and its nodes' snapshots), to install on that replica")
}

// options checks the flags and reads the nodes file. Without --image and
// --snapshot-dir, every OS of the cluster config is exported: its image,
// and its nodes' snapshots one by one (the nodes file of the config, or
// --nodes, assigned to the OSes as sync does).
func (f *exportFlags) options(g *globalFlags) ([]netboot.ExportsOptions, error) {
	if err := netboot.CheckClients(f.clients + " " + f.snapClients); err != nil {
		return nil, withCode(exitUsage, err)
	}
	var nodes []snapshot.Node
	if f.nodesFile != "" {
		var err error
		if nodes, err = readNodesFile(f.nodesFile); err != nil {
			return nil, err
		}
	}
	if f.image == "" && f.snapDir == "" {
		cfg, err := loadConfig(g)
		if err != nil {
			return nil, fmt.Errorf("%w (or give --image and --snapshot-dir)", err)
		}
		list, err := cluster.Exports(cfg, nodes, f.clients, f.snapClients)
		if f.replica != "" {
			list, err = cluster.ReplicaExports(cfg, nodes, f.replica, f.clients, f.snapClients)
		}
		switch {
		case errors.Is(err, cluster.ErrNoExports):
			return nil, withCode(exitUsage, fmt.Errorf("%w (or give --image and --snapshot-dir)", err))
		case err != nil && !errors.Is(err, snapshot.ErrNodes) && errors.Is(err, fs.ErrNotExist):
			return nil, withCode(exitSelect, err)
		}
		return list, withCode(exitUsage, err)
	}
	if f.replica != "" {
		return nil, withCode(exitUsage, errors.New("--replica takes its paths from the cluster config: give no --image or --snapshot-dir"))
	}
	for _, p := range []struct{ flag, val string }{{"--image", f.image}, {"--snapshot-dir", f.snapDir}} {
		if !filepath.IsAbs(p.val) {
			return nil, withCode(exitUsage, fmt.Errorf("%s %q: exports need absolute paths (give --image and --snapshot-dir, or neither to use the cluster config)", p.flag, p.val))
		}
	}
	return []netboot.ExportsOptions{{ImageRoot: filepath.Clean(f.image), SnapshotDir: filepath.Clean(f.snapDir), Clients: f.clients, Nodes: nodes, SnapshotClients: f.snapClients}}, nil
}

func newRenderExportsCmd(g *globalFlags) *cobra.Command {
	f := &exportFlags{}
	cmd := &cobra.Command{
		Use:   "exports [--image ROOT --snapshot-dir DIR] [--clients SPEC] [--nodes FILE]",
		Short: "print the /etc/exports lines of an image and its snapshots (kernel nfsd)",
		Long: `Exports prints the exports(5) lines of the seed procedure: the image root
read-only and the snapshot directory read-write, both sync and
no_root_squash (diskless clients run as root on them), plus
no_subtree_check and a stable fsid= derived from the path (file handles
then survive a server reboot or a changed device number). --clients is a
blank-separated list of client specifications (hosts, networks such as
10.8.0.0/16, wildcards), each given the options; the default is "*".

With --nodes FILE, each node's snapshot (SNAPSHOT-DIR/<host>) is exported
read-write to that node's address only, instead of the whole snapshot
directory to every client: a node can then neither read nor write another
node's snapshot. --snapshot-clients adds clients to every node's snapshot
export (an admin or backup host; behind a NAT such as QEMU's user network,
the address the nodes appear from, 127.0.0.1).

Without --image and --snapshot-dir, every OS of the cluster config
(--config) is exported: its image, and each of its nodes' snapshots (the
config's nodes file, or --nodes).

goldsync's state dirs (.snapshot.goldsync beside the snapshot directory)
are deliberately outside every export. The kernel nfsd has no directory
cache of its own: clients see a pull's changes once their attribute cache
expires (10 s by default, see "goldsync os add --help"). For nfs-ganesha, see
"goldsync render ganesha".`,
		Example: `  goldsync render exports --image /diskless/i386/RHEL5-AS/root \
      --snapshot-dir /diskless/i386/RHEL5-AS/snapshot --clients 10.8.0.0/16 >> /etc/exports
  exportfs -ra

  # one snapshot export per node
  goldsync render exports --image /diskless/debian12/root \
      --snapshot-dir /diskless/debian12/snapshot --nodes nodes > /etc/exports.d/debian12.exports

  # every OS of /etc/goldsync/goldsync.toml
  goldsync render exports > /etc/exports.d/goldsync.exports`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := f.options(g)
			if err != nil {
				return err
			}
			var out []byte
			var dirs []string
			for _, o := range list {
				out = append(out, netboot.RenderExports(o)...)
				dirs = append(dirs, o.ImageRoot, o.SnapshotDir)
			}
			warnings := cluster.ExposureWarnings(dirs...)
			if g.jsonOut {
				return printJSON(map[string]any{"exports": string(out), "warnings": warnings})
			}
			for _, w := range warnings {
				fmt.Fprintf(os.Stderr, "goldsync render exports: warning: %s\n", w.Message)
			}
			_, err = stdout.Write(out)
			return err
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
		Long: `Ganesha prints an nfs-ganesha config (VFS FSAL) with the exports of an image:
the image root read-only, and the snapshot directory read-write (with
--nodes FILE: each node's snapshot read-write to that node's address only,
through a CLIENT block, which --snapshot-clients extends: an admin host, or
127.0.0.1 for nodes behind QEMU's user network, which ganesha sees as
coming from there). Every export is No_Root_Squash (diskless clients
run as root), with its path as NFSv4 pseudo path.

NFS_CORE_PARAM enables NFSv3 and v4: the nodes' initramfs mounts with v3.

MDCACHE { Dir_Chunk = 0; } is essential for live updates: ganesha's
directory cache otherwise goes on serving the old version of a file the
image server replaced by a rename (as every pull does) for minutes. With
it off, running nodes see a change once their own attribute cache expires
(10 seconds by default; see "goldsync os add --help").

Without --image and --snapshot-dir, every OS of the cluster config
(--config) is exported: its image, and each of its nodes' snapshots (the
config's nodes file, or --nodes).

Export_Id values start at --first-export-id (the first image), then its
snapshot exports in nodes-file order, then the next image's. Ganesha puts them in file handles: keep them
when rendering again (add new nodes at the end of the nodes file), and give
each image in one ganesha config its own range.`,
		Example: `  goldsync render ganesha --image /diskless/debian12/root \
      --snapshot-dir /diskless/debian12/snapshot --nodes nodes > /etc/ganesha/ganesha.conf
  systemctl restart nfs-ganesha

  # every OS of the cluster config
  goldsync --config /etc/goldsync/goldsync.toml render ganesha > /etc/ganesha/ganesha.conf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if firstID < 1 || firstID > 65535 {
				return withCode(exitUsage, fmt.Errorf("--first-export-id %d: want 1 to 65535 (Export_Id 0 is ganesha's pseudo root)", firstID))
			}
			list, err := f.options(g)
			if err != nil {
				return err
			}
			out, err := netboot.RenderGanesha(netboot.GaneshaOptions{Exports: list, FirstExportID: firstID})
			if err != nil {
				return withCode(exitUsage, err)
			}
			if g.jsonOut {
				return printJSON(map[string]string{"ganesha": string(out)})
			}
			_, err = stdout.Write(out)
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&firstID, "first-export-id", 1, "Export_Id of the image, the snapshots' follow (`N`, 1-65535)")
	return cmd
}
