// Package e2e boots diskless nodes from what goldsync writes, for real: a
// Debian golden root (debootstrap, cached), pulled by goldsync into an
// image; goldsync's OS record, node boot files and snapshots; nfs-ganesha
// and rpcbind in a private network and mount namespace; QEMU (TCG) network
// booting SeaBIOS → PXELINUX or OVMF → GRUB from goldsync's TFTP tree over
// QEMU's user-mode network, whose gateway 10.0.2.2 is the namespace's
// loopback, where ganesha listens.
//
// The dracut node boots from a replica image server: a cluster config with
// one [[image.replica]], in a second namespace joined to the primary's by
// a veth pair, with its own address, sshd, nfs-ganesha and rpcbind.
// goldsync sync pulls the golden root and pushes it to the replica over
// ssh; the replica builds the node's snapshot and boot files; the node
// boots from the replica's TFTP tree (render dhcpd's next-server), and its
// /proc/mounts must name only the replica, which then carries a live
// change to it with the primary's NFS server stopped.
//
// The tests run only with GOLDSYNC_E2E=1 and as root (`make e2e`); they say
// so when skipped. The golden roots are cached in GOLDSYNC_E2E_CACHE
// (default /var/cache/goldsync-e2e): the first run debootstraps them.
package e2e
