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
//	linux-install/pxelinux.0                 BIOS loader (InstallLoaders)
//	linux-install/ldlinux.c32                its core module (InstallLoaders)
//	linux-install/NAME/vmlinuz               kernel of OS NAME (AddOS)
//	linux-install/NAME/initrd.img            its initrd (AddOS)
//	linux-install/pxelinux.cfg/0A088801      pxelinux config of 10.8.136.1
//	linux-install/grub/shimx64.efi           UEFI loader, Secure Boot shim (InstallLoaders)
//	linux-install/grub/grubx64.efi           network GRUB, as shim loads it (InstallLoaders)
//	linux-install/grub/grubnetx64.efi        the same, by its own name (InstallLoaders)
//	linux-install/grub/grub.cfg-0A088801     GRUB 2 (UEFI) config of 10.8.136.1
//	linux-install/grub/grub.cfg-10.8.136.1   the same, by dotted address
//	linux-install/grub/grub.cfg              sources grub.cfg-$net_default_ip
//	grub/grub.cfg                            the same, where Debian's signed GRUB reads
//	linux-install/ipxe/undionly.kpxe         iPXE, where installed (InstallLoaders)
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
// the GRUB EFI image in linux-install/grub/ (InstallLoaders does): shim
// loads grubx64.efi from its own directory, and a GRUB built to look
// beside itself finds its configs there. Debian's and Ubuntu's signed
// network GRUB has /grub built in as its prefix instead, and reads
// /grub/grub.cfg of the TFTP root without trying the node-specific names
// first, so WriteNodeConfigs writes the shared config there too
// (GrubPrefixDir; never over another tool's). The shared grub.cfg sources
// the node's config by its dotted address ($net_default_ip) from $prefix,
// else from linux-install/grub/, so goldsync writes each GRUB config under
// both names. iPXE scripts are named by
// the dotted address because iPXE's ${ip} expands to it; point iPXE
// clients at linux-install/ipxe/boot.ipxe. ListNodeConfigs reads the
// pxelinux configs back (IP from the name, OS from the default label,
// snapshot from SNAPSHOT=): the node list is the TFTP tree itself, so it
// cannot disagree with what the nodes boot.
//
// # Boot styles and kernel command lines
//
// An OS has a boot style (OS.Style), detected by AddOS from the image's
// initramfs generator unless given:
//
// StyleNFSRoot, for modern initramfs-tools (Debian, Ubuntu) and dracut
// (RHEL 6+, Fedora) images carrying goldsync's client piece (an
// initramfs-tools nfs-bottom script, a dracut module): the kernel mounts
// OS.ImageRoot read-only over NFS, then the client piece mounts the node's
// snapshot read-write (goldsync.snapshot=SERVER:SNAPSHOTDIR/HOST) and
// binds the paths of its boot list (snapshot.BootListPath) from it:
//
//	initramfs-tools: root=/dev/nfs boot=nfs nfsroot=SERVER:IMAGEROOT,OPTS ip=dhcp ro goldsync.snapshot=SERVER:SNAPDIR/HOST
//	dracut:          root=nfs:SERVER:IMAGEROOT:OPTS rd.neednet=1 ip=dhcp ro goldsync.snapshot=SERVER:SNAPDIR/HOST
//
// followed by NodeOptions.Append. No interface is named: the initramfs
// configures the one the node booted from, given as BOOTIF=01-<mac> by
// pxelinux itself ("ipappend 2" in the label), by the GRUB config when the
// nodes file has the node's MAC, and by the iPXE script (from the MAC, or
// iPXE's ${netX/mac:hexhyp}).
//
// OPTS are OS.NFSOptions, by default DefaultInitramfsToolsNFSOptions
// ("tcp,v3,nolock,acregmin=10,acregmax=10,acdirmin=10,acdirmax=10", klibc
// nfsmount's syntax: it has no actimeo and fails the boot on an option it
// does not know, so OS.Validate checks them) or DefaultDracutNFSOptions
// ("vers=3,tcp,nolock,actimeo=10", mount.nfs's). nolock because the root
// is read-only and shared by every node: there is nothing to lock and no
// lock daemon in the initramfs. The attribute cache is bounded to 10
// seconds: a node sees a file the image server changed (a pull, a push) at
// most 10 seconds after the change, without a reboot; lower values cost
// the server more GETATTR calls per node, and the kernel's defaults (3 to
// 60 s) would take up to a minute. The server's own caches matter too: see
// RenderGanesha.
//
// StyleDisklessrc, pxeboot's line for RHEL 5's mkinitrd initrd:
// NFSROOT=SERVER:LOCATION names the image's base directory (OS.Location,
// pxeos -L, e.g. /diskless/i386/RHEL5-AS), under which disklessrc mounts
// root/ read-only and snapshot/SNAPSHOT/ read-write:
//
//	root=/dev/ram0 init=disklessrc NFSROOT=SERVER:LOCATION [ramdisk_size=N] ETHERNET=IF SNAPSHOT=HOST [NISDOMAIN=D]
//
// OS records written before boot styles load as StyleDisklessrc.
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
