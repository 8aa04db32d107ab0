#!/bin/bash
# goldsync dracut module: after dracut has mounted the image read-only at
# $NEWROOT (root=nfs:SERVER:PATH:OPTS), mount this node's snapshot and bind
# its paths (pre-pivot hook). Inert without goldsync.snapshot= on the kernel
# command line. Written by `goldsync-agent boot install`; do not edit.

# Only when asked for: /etc/dracut.conf.d/90-goldsync.conf adds it.
check() {
	return 255
}

# The root and the snapshot are NFS mounts made once the network is up.
# dracut 059's systemd-networkd handler never runs the netroot hook, so an
# NFS root is not mounted with it (seen on Debian 12): where NetworkManager's
# initrd generator is not installed, ask for the classic dhclient handler,
# network-legacy (Debian's dracut-network depends on isc-dhcp-client).
depends() {
	local nm
	for nm in /usr/libexec/nm-initrd-generator /usr/lib/nm-initrd-generator /usr/lib/NetworkManager/nm-initrd-generator; do
		if [ -x "${dracutsysrootdir-}$nm" ]; then
			echo nfs network
			return 0
		fi
	done
	echo nfs network-legacy network
	return 0
}

installkernel() {
	instmods nfsv3
}

install() {
	inst_multiple mount mkdir cp cat sleep modprobe
	inst_hook cmdline 10 "$moddir/goldsync-modules.sh"
	inst_hook pre-pivot 50 "$moddir/goldsync-pre-pivot.sh"
}
