#!/bin/sh
# mkgolden.sh FLAVOUR DIR: debootstrap a Debian bookworm golden root for the
# end-to-end boot test into DIR (which must not exist): a kernel, systemd,
# openssh-server, and the initramfs tool FLAVOUR (initramfs-tools or dracut).
# The test caches the result; this is the slow part of a first run.
set -eu
flavour=$1 dir=$2
mirror=${GOLDSYNC_E2E_MIRROR:-http://deb.debian.org/debian}
case $flavour in
initramfs-tools)
	debootstrap --variant=minbase \
		--include=linux-image-amd64,systemd-sysv,busybox,openssh-server,procps,iproute2,hello \
		bookworm "$dir" "$mirror"
	;;
dracut)
	# dracut replaces initramfs-tools: start from the same packages, then
	# swap the initramfs tool with apt inside the root.
	debootstrap --variant=minbase \
		--include=systemd-sysv,openssh-server,procps,iproute2,nfs-common \
		bookworm "$dir" "$mirror"
	mkdir -p "$dir/etc/dracut.conf.d"
	# Generic images: the golden node's initramfs boots other hardware.
	echo 'hostonly="no"' >"$dir/etc/dracut.conf.d/10-generic.conf"
	unshare --mount --propagation private sh -c "
		mount -t proc proc '$dir/proc' && mount --rbind /dev '$dir/dev' && mount --rbind /sys '$dir/sys' &&
		DEBIAN_FRONTEND=noninteractive chroot '$dir' apt-get install -y -q --no-install-recommends dracut dracut-network dbus linux-image-amd64
	"
	;;
*)
	echo "mkgolden.sh: unknown flavour $flavour" >&2
	exit 2
	;;
esac
# The live-update test installs this package on the golden node later.
if [ "$flavour" = initramfs-tools ]; then
	cp "$dir"/var/cache/apt/archives/hello_*.deb "$dir/root/hello.deb"
	chroot "$dir" dpkg --purge hello
fi
rm -rf "$dir/var/cache/apt/archives/"*.deb
