package netboot

import (
	"fmt"
	"os"
	"strings"
)

// Boot styles: how an OS's initrd mounts the image and the node's snapshot.
const (
	// StyleNFSRoot boots a modern initramfs (initramfs-tools or dracut)
	// with the kernel's root on NFS, read-only, and goldsync's client
	// piece mounting the node's snapshot (goldsync.snapshot=) read-write
	// and binding the listed paths from it.
	StyleNFSRoot = "nfsroot"
	// StyleDisklessrc boots RHEL 5's mkinitrd initrd, whose disklessrc
	// reads NFSROOT=, SNAPSHOT= and ETHERNET= (pxeboot's command line).
	StyleDisklessrc = "disklessrc"
)

// Initramfs generators of the nfsroot style.
const (
	// InitramfsTools is Debian's and Ubuntu's generator (mkinitramfs); its
	// nfs boot script mounts the root with klibc's nfsmount.
	InitramfsTools = "initramfs-tools"
	// Dracut is Red Hat's, Fedora's and SUSE's generator; its nfs module
	// mounts the root with mount.nfs.
	Dracut = "dracut"
)

// Default NFS mount options of the read-only root, one per generator
// because their syntaxes differ. Both ask for NFSv3 over TCP (v3 is what
// every server, nfs-ganesha included, serves to a klibc client, and needs
// no idmapping) and:
//
//   - nolock: the root is read-only and shared by every node, so there is
//     nothing to lock, and no lock daemon (rpc.statd) runs in the
//     initramfs;
//   - an attribute cache of exactly 10 seconds (actimeo=10 for mount.nfs;
//     klibc's nfsmount, which initramfs-tools runs, knows no actimeo and
//     fails the mount on it, so there the four acregmin, acregmax,
//     acdirmin and acdirmax are set, which is what actimeo does): a client
//     caches a file's attributes, and a directory's entries, for at most
//     10 seconds, so a file the image server changes (a pull, a push from
//     the golden node) is seen by every running node within about 10
//     seconds, without a reboot. Smaller values cost more GETATTR calls on
//     the server per node; the kernel's defaults (3 to 60 s) would let a
//     node see a change up to a minute late.
//
// The end-to-end boot test (e2e/) measures what a running node sees.
const (
	// DefaultInitramfsToolsNFSOptions are klibc nfsmount's options, as in
	// nfsroot=SERVER:PATH,OPTIONS.
	DefaultInitramfsToolsNFSOptions = "tcp,v3,nolock,acregmin=10,acregmax=10,acdirmin=10,acdirmax=10"
	// DefaultDracutNFSOptions are mount.nfs options, as in
	// root=nfs:SERVER:PATH:OPTIONS.
	DefaultDracutNFSOptions = "vers=3,tcp,nolock,actimeo=10"
)

// klibcOptions are the options klibc's nfsmount accepts (usr/kinit/
// nfsmount/main.c): it fails the mount, and so the boot, on any other.
var klibcOptions = map[string]bool{
	// name=value
	"port=": true, "nfsvers=": true, "vers=": true, "rsize=": true, "wsize=": true, "timeo=": true,
	"retrans=": true, "acregmin=": true, "acregmax=": true, "acdirmin=": true, "acdirmax=": true,
	// flags
	"soft": true, "hard": true, "intr": true, "nointr": true, "posix": true, "noposix": true,
	"cto": true, "nocto": true, "ac": true, "noac": true, "lock": true, "nolock": true,
	"acl": true, "noacl": true, "v2": true, "v3": true, "udp": true, "tcp": true,
	"broken_suid": true, "ro": true, "rw": true,
}

// checkKlibcOptions checks options against klibcOptions.
func checkKlibcOptions(opts string) error {
	if opts == "" {
		return nil
	}
	for _, opt := range strings.Split(opts, ",") {
		key := opt
		if i := strings.IndexByte(opt, '='); i >= 0 {
			key = opt[:i+1]
		}
		if !klibcOptions[key] {
			hint := ""
			if key == "actimeo=" {
				hint = " (set acregmin, acregmax, acdirmin and acdirmax instead)"
			}
			return fmt.Errorf("NFS option %q: klibc's nfsmount, which initramfs-tools mounts the root with, does not know it and would fail the boot%s", shortStr(opt), hint)
		}
	}
	return nil
}

// DefaultNFSOptions returns the default root mount options of an
// initramfs generator, "" for an unknown one.
func DefaultNFSOptions(initramfs string) string {
	switch initramfs {
	case InitramfsTools:
		return DefaultInitramfsToolsNFSOptions
	case Dracut:
		return DefaultDracutNFSOptions
	}
	return ""
}

// nfsOptions returns o's root mount options, or its generator's default.
func (o OS) nfsOptions() string {
	if o.NFSOptions != "" {
		return o.NFSOptions
	}
	return DefaultNFSOptions(o.Initramfs)
}

// style returns o's style, StyleDisklessrc when unset (records written
// before styles existed).
func (o OS) style() string {
	if o.Style == "" {
		return StyleDisklessrc
	}
	return o.Style
}

// checkStyle checks Style, Initramfs and NFSOptions together.
func (o OS) checkStyle() error {
	switch o.style() {
	case StyleDisklessrc:
		if o.Initramfs != "" {
			return fmt.Errorf("initramfs %q given for boot style %s (only %s uses one)", shortStr(o.Initramfs), StyleDisklessrc, StyleNFSRoot)
		}
	case StyleNFSRoot:
		if o.Initramfs != InitramfsTools && o.Initramfs != Dracut {
			return fmt.Errorf("boot style %s: initramfs %q: want %s or %s", StyleNFSRoot, shortStr(o.Initramfs), InitramfsTools, Dracut)
		}
	default:
		return fmt.Errorf("boot style %q: want %s or %s", shortStr(o.Style), StyleNFSRoot, StyleDisklessrc)
	}
	if err := CheckNFSOptions(o.NFSOptions); err != nil {
		return err
	}
	if o.style() == StyleNFSRoot && o.Initramfs == InitramfsTools {
		return checkKlibcOptions(o.NFSOptions)
	}
	return nil
}

// CheckNFSOptions checks NFS mount options for a kernel command line:
// comma-separated, each of letters, digits, '=', '.', '_' and '-' only
// (no ':' either, dracut's field separator). Empty is fine (the default).
func CheckNFSOptions(opts string) error {
	if opts == "" {
		return nil
	}
	if len(opts) > 255 {
		return fmt.Errorf("NFS options %q: longer than 255 bytes", shortStr(opts))
	}
	for _, opt := range strings.Split(opts, ",") {
		if opt == "" {
			return fmt.Errorf("NFS options %q: empty option", shortStr(opts))
		}
		for i := 0; i < len(opt); i++ {
			c := opt[i]
			if !(isLetter(c) || isDigit(c) || strings.IndexByte("=._-", c) >= 0) {
				return fmt.Errorf("NFS options %q: only letters, digits, '=', '.', '_' and '-' between commas", shortStr(opts))
			}
		}
	}
	return nil
}

// Where the goldsync client piece lives in an image, per generator: the
// initramfs-tools nfs-bottom script (either hook directory) and the dracut
// module's setup script.
var clientPiece = map[string][]string{
	InitramfsTools: {
		"etc/initramfs-tools/scripts/nfs-bottom/goldsync",
		"usr/share/initramfs-tools/scripts/nfs-bottom/goldsync",
	},
	Dracut: {"usr/lib/dracut/modules.d/95goldsync/module-setup.sh"},
}

// ClientPiecePaths returns where the goldsync client piece of an initramfs
// generator is looked for, relative to the image root.
func ClientPiecePaths(initramfs string) []string {
	return append([]string(nil), clientPiece[initramfs]...)
}

// ProbePaths returns the paths of an image, besides boot/ and its entries,
// that AddOS looks at: the programs that tell the initramfs generator
// (DetectStyle) and every generator's client piece (ClientPiecePaths).
func ProbePaths() []string {
	var out []string
	for _, g := range generators {
		out = append(out, g.path)
	}
	for _, g := range []string{InitramfsTools, Dracut} {
		out = append(out, clientPiece[g]...)
	}
	return out
}

// generators says which program marks which initramfs generator, in the
// order tried.
var generators = []struct{ initramfs, path string }{
	{InitramfsTools, "usr/sbin/mkinitramfs"},
	{InitramfsTools, "sbin/mkinitramfs"},
	{Dracut, "usr/bin/dracut"},
	{Dracut, "usr/sbin/dracut"},
}

// inImage reports whether name exists in the image (a file or a symlink;
// a symlinked directory on the way, such as Debian's sbin -> usr/sbin, is
// followed inside the image, never out of it). Any error means no.
func inImage(img *os.Root, name string) bool {
	_, err := img.Lstat(name)
	return err == nil
}

// DetectStyle finds the boot style of an image from its initramfs
// generator: mkinitramfs (usr/sbin or sbin) means StyleNFSRoot with
// InitramfsTools, dracut (usr/bin or usr/sbin) StyleNFSRoot with Dracut,
// neither (RHEL 5's mkinitrd) StyleDisklessrc.
func DetectStyle(imageRoot string) (style, initramfs string, err error) {
	img, err := os.OpenRoot(imageRoot)
	if err != nil {
		return "", "", fmt.Errorf("detect boot style: %w", err)
	}
	defer img.Close()
	style, initramfs = detectStyle(img)
	return style, initramfs, nil
}

func detectStyle(img *os.Root) (style, initramfs string) {
	for _, g := range generators {
		if inImage(img, g.path) {
			return StyleNFSRoot, g.initramfs
		}
	}
	return StyleDisklessrc, ""
}

// clientPieceWarning returns a warning when an nfsroot image lacks
// goldsync's client piece, "" when it has it or needs none.
func clientPieceWarning(img *os.Root, o OS) string {
	if o.style() != StyleNFSRoot {
		return ""
	}
	for _, p := range clientPiece[o.Initramfs] {
		if inImage(img, p) {
			return ""
		}
	}
	return fmt.Sprintf("OS %s boots in the %s style with %s, but the image has no goldsync client piece (%s): nodes will mount the root but not their snapshots; install it on the golden node with `goldsync-agent boot install`, then pull again and re-run os add",
		o.Name, StyleNFSRoot, o.Initramfs, strings.Join(clientPiece[o.Initramfs], " or "))
}
