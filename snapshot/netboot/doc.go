// Package netboot writes what a diskless node needs to boot over the
// network, the work of Red Hat's pxeos and pxeboot: an OS's kernel and
// initrd in the TFTP tree, one boot config per node, and the dhcpd and NFS
// exports snippets that go with them.
//
// It is a subpackage of snapshot because it has its own concern (boot
// loaders and the TFTP tree) on top of snapshot's node inventory.
//
// # TFTP tree
//
// Everything lives under the TFTP root (TFTPBOOT, /tftpboot on RHEL 5), in
// linux-install/ as RHEL's netboot has it:
//
//	linux-install/pxelinux.0                 (installed by the admin)
//	linux-install/NAME/vmlinuz               kernel of OS NAME (AddOS)
//	linux-install/NAME/initrd.img            its initrd (AddOS)
//	linux-install/pxelinux.cfg/0A088801      pxelinux config of 10.8.136.1
//	linux-install/grub/grub.cfg-0A088801     GRUB 2 (UEFI) config of 10.8.136.1
//	linux-install/ipxe/10.8.136.1.ipxe       iPXE script of 10.8.136.1
//	linux-install/ipxe/boot.ipxe             chains to the node's own script
//	linux-install/goldsync/os/NAME.json      OS record (SaveOS, LoadOS, ListOS)
//
// OS records sit beside the files they describe, as pxeos kept its
// pxeos.xml under linux-install/pxelinux.cfg; the TFTP server can serve
// them, and they hold nothing secret (paths and a server name).
//
// Node configs are named by IPv4 address, the key of the nodes file:
// pxelinux and GRUB's network config search both try the upper-case hex
// address (0A088801, then shorter prefixes) after the MAC-named file
// (01-00-21-5e-40-64-5c, grub.cfg-01-...), which goldsync does not write,
// so a stale MAC-named file left by another tool takes precedence. Place
// the GRUB EFI image in linux-install/grub/: network GRUB looks for its
// configs in the directory it was loaded from. iPXE scripts are named by
// the dotted address because iPXE's ${ip} expands to it; point iPXE
// clients at linux-install/ipxe/boot.ipxe. ListNodeConfigs reads the
// pxelinux configs back (IP from the name, OS from the default label,
// snapshot from SNAPSHOT=): the node list is the TFTP tree itself, so it
// cannot disagree with what the nodes boot.
//
// The kernel command line is pxeboot's: NFSROOT=SERVER:LOCATION names the
// image's base directory (OS.Location, pxeos -L, e.g.
// /diskless/i386/RHEL5-AS), under which disklessrc mounts root/ read-only
// and snapshot/SNAPSHOT/ read-write.
//
// # Safety
//
// Every file is written atomically (temporary file, fsync, rename) through
// an *os.Root at the TFTP root, files 0644 and directories 0755. Inputs are
// validated before anything is written: OS names are [A-Za-z0-9._-]+
// without "..", and every value that reaches a boot config is a word of
// characters no boot loader reads specially. Kernels are read from the
// image through an *os.Root with symlinks resolved as if the image root
// were "/"; a link leading outside the image is an error.
//
// It does not parse the nodes or files lists (package snapshot), build
// snapshot trees, run dhcpd, exportfs or a TFTP server, or print anything.
package netboot
