// Package boot installs goldsync's client piece on a golden node: the part
// of goldsync that runs on a diskless node while it boots, the successor of
// RHEL 5's disklessrc.
//
// After the node's initramfs has mounted the image read-only over NFS, the
// piece mounts the node's snapshot (goldsync.snapshot=SERVER:PATH on the
// kernel command line) read-write at /run/goldsync/snapshot and, for each
// line of its .goldsync/boot.list (written by `goldsync snapshot build`),
// binds the snapshot's copy over the image's path ("bind"), or a tmpfs
// directory ("empty", "dirs"). It then hands over to the image's init. A
// log is left in /run/goldsync/boot.log, and /run/goldsync/failed marks a
// boot where something could not be mounted. Without goldsync.snapshot= it
// does nothing, so the golden node, which boots from disk with the same
// initramfs, is unaffected.
//
// Two flavours, one shell library (files/goldsync-boot.sh):
//
//   - initramfs-tools (Debian, Ubuntu): a hook in
//     /etc/initramfs-tools/hooks/goldsync and a script in
//     /etc/initramfs-tools/scripts/nfs-bottom/goldsync, run after the
//     kernel line's boot=nfs nfsroot=... has mounted the root;
//   - dracut (RHEL, Rocky, Alma, Fedora; Debian packages it too): the module
//     /usr/lib/dracut/modules.d/95goldsync with a pre-pivot hook, enabled by
//     /etc/dracut.conf.d/90-goldsync.conf, after root=nfs:... has mounted
//     the root.
//
// Both live where the golden node's own update-initramfs or dracut finds
// them, so every initramfs it builds, kernel updates included, carries the
// piece; Install regenerates the existing ones once.
//
// The package writes files and runs the golden node's initramfs tool; it
// never prints.
package boot
