package netboot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/snapshot"
)

// NodeOptions are the per-node boot parameters, pxeboot's options.
type NodeOptions struct {
	// RamdiskSize is ramdisk_size= in KiB (pxeboot -r); 0 leaves it out.
	RamdiskSize int
	// Ethernet is the interface the client boots from, ETHERNET=
	// (pxeboot -e); empty means eth0.
	Ethernet string
	// NISDomain is NISDOMAIN= (pxeboot -N); empty leaves it out.
	NISDomain string
	// Append is extra kernel arguments, blank-separated, put last
	// (pxeboot -s), e.g. "console=ttyS0,115200n8r".
	Append string
	// SnapshotName is SNAPSHOT=, the node's directory under the snapshot
	// directory (pxeboot -S); empty means the node's host name. It can only
	// be set when writing the configs of a single node.
	SnapshotName string
}

// Validate checks that every option is safe to write into a boot config:
// the words of Append, the interface, NIS domain and snapshot name may not
// hold blanks, quotes, '$', '#' or other characters a boot loader reads
// specially.
func (o NodeOptions) Validate() error {
	var errs []error
	if o.RamdiskSize < 0 {
		errs = append(errs, fmt.Errorf("ramdisk size %d is negative", o.RamdiskSize))
	}
	for _, f := range []struct{ name, val string }{
		{"interface", o.Ethernet}, {"NIS domain", o.NISDomain}, {"snapshot name", o.SnapshotName},
	} {
		if f.val != "" && (!safeWord(f.val) || len(f.val) > 255) {
			errs = append(errs, fmt.Errorf("bad %s %q: blanks, quotes and $ ; # { } | & < > ` \\ are not allowed", f.name, shortStr(f.val)))
		}
	}
	if o.SnapshotName != "" && (strings.Contains(o.SnapshotName, "/") || o.SnapshotName == "." || o.SnapshotName == "..") {
		errs = append(errs, fmt.Errorf("bad snapshot name %q: must be a single directory name", shortStr(o.SnapshotName)))
	}
	for _, w := range strings.Fields(o.Append) {
		if !safeWord(w) {
			errs = append(errs, fmt.Errorf("bad kernel argument %q: quotes and $ ; # { } | & < > ` \\ are not allowed", shortStr(w)))
		}
	}
	return errors.Join(errs...)
}

// Boot loaders, for the loader-specific part of the kernel command line.
const (
	loaderPXELinux = "pxelinux"
	loaderGrub     = "grub"
	loaderIPXE     = "ipxe"
)

// SnapshotPath returns the node's snapshot directory on the server,
// OS.SnapshotDir/NAME, NAME being opts.SnapshotName or the host name.
func SnapshotPath(o OS, n snapshot.Node, opts NodeOptions) string {
	snap := opts.SnapshotName
	if snap == "" {
		snap = n.Host
	}
	return o.SnapshotDir + "/" + snap
}

// KernelArgs returns the kernel command line a boot loader passes to a
// node, the initrd argument aside, for the OS's boot style:
//
//   - disklessrc (pxeboot's): root=/dev/ram0 init=disklessrc
//     NFSROOT=SERVER:LOCATION [ramdisk_size=N] ETHERNET=IF SNAPSHOT=NAME
//     [NISDOMAIN=D] APPEND...
//   - nfsroot with initramfs-tools: root=/dev/nfs boot=nfs
//     nfsroot=SERVER:IMAGEROOT,OPTS ip=dhcp ro
//     goldsync.snapshot=SERVER:SNAPSHOTDIR/NAME APPEND...
//   - nfsroot with dracut: root=nfs:SERVER:IMAGEROOT:OPTS rd.neednet=1
//     ip=dhcp ro goldsync.snapshot=SERVER:SNAPSHOTDIR/NAME APPEND...
//
// OPTS are OS.NFSOptions or DefaultNFSOptions. The nfsroot style never
// names an interface: the initramfs configures the one the node booted
// from, named by BOOTIF=, which pxelinux appends itself (ipappend 2) and
// GRUB and iPXE configs pass explicitly (see GrubConfig, IPXEScript). It
// ignores RamdiskSize, Ethernet and NISDomain, which only disklessrc
// reads.
func KernelArgs(o OS, n snapshot.Node, opts NodeOptions) []string {
	return kernelArgs(o, n, opts, loaderPXELinux)
}

// kernelArgs are the arguments a boot loader passes, initrd aside.
func kernelArgs(o OS, n snapshot.Node, opts NodeOptions, loader string) []string {
	if o.style() == StyleNFSRoot {
		return nfsrootArgs(o, n, opts, loader)
	}
	eth := opts.Ethernet
	if eth == "" {
		eth = "eth0"
	}
	snap := opts.SnapshotName
	if snap == "" {
		snap = n.Host
	}
	args := []string{"root=/dev/ram0", "init=disklessrc", "NFSROOT=" + o.NFSServer + ":" + o.Location}
	if opts.RamdiskSize > 0 {
		args = append(args, "ramdisk_size="+strconv.Itoa(opts.RamdiskSize))
	}
	args = append(args, "ETHERNET="+eth, "SNAPSHOT="+snap)
	if opts.NISDomain != "" {
		args = append(args, "NISDOMAIN="+opts.NISDomain)
	}
	return append(args, strings.Fields(opts.Append)...)
}

// SnapshotArg is the kernel argument naming the node's snapshot for
// goldsync's client piece: goldsync.snapshot=SERVER:/path/to/snapshot/NAME.
const SnapshotArg = "goldsync.snapshot"

func nfsrootArgs(o OS, n snapshot.Node, opts NodeOptions, loader string) []string {
	var args []string
	nfsOpts := o.nfsOptions()
	switch o.Initramfs {
	case Dracut:
		args = []string{"root=nfs:" + o.NFSServer + ":" + o.ImageRoot + ":" + nfsOpts, "rd.neednet=1"}
	default:
		root := "nfsroot=" + o.NFSServer + ":" + o.ImageRoot
		if nfsOpts != "" {
			root += "," + nfsOpts
		}
		args = []string{"root=/dev/nfs", "boot=nfs", root}
	}
	args = append(args, "ip=dhcp", "ro", SnapshotArg+"="+o.NFSServer+":"+SnapshotPath(o, n, opts))
	args = append(args, strings.Fields(opts.Append)...)
	switch {
	case loader == loaderPXELinux:
		// ipappend 2 adds BOOTIF= from the interface that booted.
	case n.MAC != nil:
		args = append(args, "BOOTIF=01-"+strings.ReplaceAll(strings.ToLower(n.MAC.String()), ":", "-"))
	case loader == loaderIPXE:
		args = append(args, "BOOTIF=01-${netX/mac:hexhyp}")
	}
	return args
}

// PXELinuxConfig renders a node's pxelinux config, in the format pxeboot
// wrote:
//
//	default rhel5compute
//
//	label rhel5compute
//	    kernel rhel5compute/vmlinuz
//	    append initrd=rhel5compute/initrd.img root=/dev/ram0 init=disklessrc NFSROOT=server:/diskless/i386/RHEL5-AS ramdisk_size=28753 ETHERNET=eth0 SNAPSHOT=node001 NISDOMAIN=my_nis_domain console=ttyS0,115200n8r
//
// An nfsroot OS's label also gets "ipappend 2", so pxelinux appends
// BOOTIF=01-<MAC of the booting interface> for the initramfs.
//
// It does not validate: WriteNodeConfigs checks o, n and opts first (see
// OS.Validate, NodeOptions.Validate, snapshot.CheckNodes).
func PXELinuxConfig(o OS, n snapshot.Node, opts NodeOptions) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "default %s\n\nlabel %s\n", o.Name, o.Name)
	fmt.Fprintf(&b, "    kernel %s\n", o.KernelFile)
	fmt.Fprintf(&b, "    append initrd=%s %s\n", o.InitrdFile, strings.Join(kernelArgs(o, n, opts, loaderPXELinux), " "))
	if o.style() == StyleNFSRoot {
		b.WriteString("    ipappend 2\n")
	}
	return b.Bytes()
}

// GrubConfig renders a node's GRUB 2 config for UEFI network boot. Paths
// are absolute from the TFTP root, which is GRUB's $root when it was loaded
// over TFTP. An nfsroot OS's kernel line ends with BOOTIF= when the node's
// MAC is known. It does not validate; see PXELinuxConfig.
func GrubConfig(o OS, n snapshot.Node, opts NodeOptions) []byte {
	var b bytes.Buffer
	b.WriteString(headerComment(o, n))
	b.WriteString("set default=0\nset timeout=0\n\n")
	fmt.Fprintf(&b, "menuentry '%s' {\n", o.Name)
	fmt.Fprintf(&b, "    linux /%s/%s %s\n", InstallDir, o.KernelFile, strings.Join(kernelArgs(o, n, opts, loaderGrub), " "))
	fmt.Fprintf(&b, "    initrd /%s/%s\n", InstallDir, o.InitrdFile)
	b.WriteString("}\n")
	return b.Bytes()
}

// IPXEScript renders a node's iPXE script. Paths are absolute from the TFTP
// root, so they resolve against the server the script came from. An
// nfsroot OS's kernel line ends with BOOTIF=, from the node's MAC or, when
// that is not known, from iPXE's ${netX/mac:hexhyp} (the booting
// interface). It does not validate; see PXELinuxConfig.
func IPXEScript(o OS, n snapshot.Node, opts NodeOptions) []byte {
	var b bytes.Buffer
	b.WriteString("#!ipxe\n")
	b.WriteString(headerComment(o, n))
	initrd := o.InitrdFile[strings.LastIndexByte(o.InitrdFile, '/')+1:]
	fmt.Fprintf(&b, "kernel /%s/%s initrd=%s %s\n", InstallDir, o.KernelFile, initrd, strings.Join(kernelArgs(o, n, opts, loaderIPXE), " "))
	fmt.Fprintf(&b, "initrd /%s/%s\n", InstallDir, o.InitrdFile)
	b.WriteString("boot\n")
	return b.Bytes()
}

// headerComment is the first line of a node's GRUB and iPXE configs: who
// it is for (host, IP, MAC when known), read back by ListNodeConfigs.
func headerComment(o OS, n snapshot.Node) string {
	who := n.IP.String()
	if n.MAC != nil {
		who += ", MAC " + n.MAC.String()
	}
	return fmt.Sprintf("# %s (%s): OS %s, written by goldsync\n", n.Host, who, o.Name)
}

// GrubSharedName is the GRUB config, in GrubDir and in GrubPrefixDir,
// that network GRUB reads when it has no node-specific file: it sources
// the node's config by its dotted IPv4 address.
const GrubSharedName = "grub.cfg"

// GrubPrefixDir is where Debian's and Ubuntu's signed network GRUB
// (grubnetx64.efi.signed, which InstallLoaders installs) reads its config,
// relative to the TFTP root: its built-in prefix is /grub, whatever
// directory it was loaded from, and it reads $prefix/grub.cfg without
// trying grub.cfg-<HEXIP> first. WriteNodeConfigs writes GrubSharedConfig
// there too, unless a grub.cfg that goldsync did not write is there
// already (an installer's menu, say): then add GrubSharedConfig's lines to
// it by hand.
const GrubPrefixDir = "grub"

// GrubSharedConfig is the content of GrubSharedName: the node's config
// from GrubDir, by its path from the TFTP root (GRUB's $root after a
// network boot, whichever directory GRUB was loaded from and whatever its
// $prefix). It tests nothing first: GRUB's [ -e ] and [ -f ] are false
// for every file on TFTP, which cannot be listed (seen with Debian's
// signed grubnetx64.efi under OVMF: the node stopped at grub>).
const GrubSharedConfig = `# Written by goldsync: boot this node's own config, named by its IPv4 address.
source /` + GrubDir + `/grub.cfg-$net_default_ip
`

// grubSharedMarker starts GrubSharedConfig: a grub.cfg that starts with it
// is goldsync's to rewrite.
const grubSharedMarker = "# Written by goldsync"

// ownGrubPrefixConfig reports whether WriteNodeConfigs may write
// GrubPrefixDir/grub.cfg: it is absent, or goldsync wrote it.
func ownGrubPrefixConfig(root *os.Root) bool {
	data, err := root.ReadFile(GrubPrefixDir + "/" + GrubSharedName)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	return err == nil && bytes.HasPrefix(data, []byte(grubSharedMarker))
}

// IPXEChainName is the iPXE script, in IPXEDir, that every iPXE client can
// be pointed at (DHCP filename "linux-install/ipxe/boot.ipxe"): it chains
// to the client's own script, named by its IPv4 address.
const IPXEChainName = "boot.ipxe"

// IPXEChainScript is the content of IPXEChainName.
const IPXEChainScript = "#!ipxe\n# Written by goldsync: boot this node's own script, named by its IPv4 address.\nchain ${ip}.ipxe\n"

// NodeConfigPaths returns the boot files of a node, relative to the TFTP
// root: pxelinux.cfg/<HEXIP>, grub/grub.cfg-<HEXIP>, grub/grub.cfg-<IPv4>
// (the same GRUB config, for GrubSharedConfig) and ipxe/<IPv4>.ipxe under
// linux-install. It returns nil for a node without an IPv4 address.
func NodeConfigPaths(n snapshot.Node) []string {
	hex := snapshot.HexIP(n.IP)
	if hex == "" {
		return nil
	}
	dotted := n.IP.Unmap().String()
	return []string{
		PXELinuxDir + "/" + hex,
		GrubDir + "/grub.cfg-" + hex,
		GrubDir + "/grub.cfg-" + dotted,
		IPXEDir + "/" + dotted + ".ipxe",
	}
}

// WriteNodeConfigs writes the boot files of every node for OS o: its
// pxelinux config (linux-install/pxelinux.cfg/<HEXIP>), GRUB config
// (linux-install/grub/grub.cfg-<HEXIP>, and the same as
// grub.cfg-<IPv4>) and iPXE script (linux-install/ipxe/<IPv4>.ipxe), plus
// the shared iPXE chain script (IPXEChainName) and GRUB config
// (GrubSharedName, in GrubDir and, unless another tool's is there, in
// GrubPrefixDir). Files are mode 0644, directories 0755. Each file is
// replaced atomically, and none is replaced until all of them have been
// written and synced to temporary files beside them.
//
// Everything is checked before anything is written: o, opts, every node
// (snapshot.CheckNodes) and the presence of o's kernel and initrd in the
// TFTP tree. Any problem is returned, all of them joined, with no file
// written.
func WriteNodeConfigs(tftpboot string, o OS, nodes []snapshot.Node, opts NodeOptions) error {
	var errs []error
	if err := o.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := opts.Validate(); err != nil {
		errs = append(errs, err)
	}
	if opts.SnapshotName != "" && len(nodes) > 1 {
		errs = append(errs, fmt.Errorf("snapshot name %s given for %d nodes: it can only name one", opts.SnapshotName, len(nodes)))
	}
	if err := snapshot.CheckNodes(nodes); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("write node configs: %w", errors.Join(errs...))
	}
	root, err := openTFTP(tftpboot)
	if err != nil {
		return fmt.Errorf("write node configs: %w", err)
	}
	defer root.Close()
	for _, f := range []string{o.KernelFile, o.InitrdFile} {
		fi, err := root.Stat(InstallDir + "/" + f)
		if err == nil && !fi.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
		if err != nil {
			return fmt.Errorf("write node configs: OS %s: %s/%s missing or not a file (add the OS first): %w", o.Name, InstallDir, f, err)
		}
	}
	for _, d := range []string{PXELinuxDir, GrubDir, IPXEDir} {
		if err := mkdirAll(root, d); err != nil {
			return fmt.Errorf("write node configs: %w", err)
		}
	}
	files := []fsx.AtomicFile{
		{Name: IPXEDir + "/" + IPXEChainName, Data: []byte(IPXEChainScript)},
		{Name: GrubDir + "/" + GrubSharedName, Data: []byte(GrubSharedConfig)},
	}
	if ownGrubPrefixConfig(root) {
		if err := mkdirAll(root, GrubPrefixDir); err != nil {
			return fmt.Errorf("write node configs: %w", err)
		}
		files = append(files, fsx.AtomicFile{Name: GrubPrefixDir + "/" + GrubSharedName, Data: []byte(GrubSharedConfig)})
	}
	for _, n := range nodes {
		paths := NodeConfigPaths(n)
		grub := GrubConfig(o, n, opts)
		for i, data := range [][]byte{PXELinuxConfig(o, n, opts), grub, grub, IPXEScript(o, n, opts)} {
			files = append(files, fsx.AtomicFile{Name: paths[i], Data: data})
		}
	}
	if err := fsx.WriteFilesAtomic(root, files, fileMode); err != nil {
		return fmt.Errorf("write node configs: %w", err)
	}
	return nil
}

// RemoveNodeConfigs removes the boot files WriteNodeConfigs wrote for the
// nodes (only their IP addresses matter). Files already gone are fine; a
// directory where a file should be is an error. Every node is checked
// before anything is removed.
func RemoveNodeConfigs(tftpboot string, nodes []snapshot.Node) error {
	var errs []error
	for i, n := range nodes {
		if snapshot.HexIP(n.IP) == "" || n.IP.Is4In6() {
			errs = append(errs, fmt.Errorf("node %d (%s): no IPv4 address", i+1, n.Host))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove node configs: %w", errors.Join(errs...))
	}
	root, err := openTFTP(tftpboot)
	if err != nil {
		return fmt.Errorf("remove node configs: %w", err)
	}
	defer root.Close()
	for _, n := range nodes {
		for _, p := range NodeConfigPaths(n) {
			fi, err := root.Lstat(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err == nil && fi.IsDir() {
				err = fmt.Errorf("%s is a directory", p)
			}
			if err == nil {
				err = root.Remove(p)
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove node configs: %s: %w", n.Host, err))
			}
		}
	}
	return errors.Join(errs...)
}
