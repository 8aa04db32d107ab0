#!/usr/bin/env bash
# ci-deps.sh installs the Debian packages goldsync's test suite needs, only
# those that are missing, and prepares sshd's privilege-separation directory.
# Run as root it installs; run as anyone else it reports what is missing and
# exits 0, so `make test` can call it unconditionally. Idempotent: when
# everything is there it only runs dpkg-query.
#
# Usage: scripts/ci-deps.sh [e2e] [extra-package...]
# "e2e" adds what the diskless boot tests (make e2e) need: QEMU with its PXE
# ROMs, SeaBIOS and OVMF, the boot loaders goldsync installs into a TFTP tree
# (pxelinux, syslinux, signed GRUB and shim), nfs-ganesha and rpcbind.
set -euo pipefail

packages=(
	openssh-server # /usr/sbin/sshd for internal/sshtest
	openssh-client # ssh, ssh-keygen
	rsync          # the reference tool and the rsync transport
	attr           # getfattr/setfattr
	acl            # getfacl/setfacl
	debootstrap    # real root trees for fidelity tests
	tmux
	iproute2
	e2fsprogs   # chattr/lsattr, mkfs.ext4 for loop images
	libcap2-bin # getcap, to check file capabilities in treetest
	coreutils   # sha256sum: the agent cache check in remote
)
if [[ ${1:-} == e2e ]]; then
	shift
	packages+=(
		qemu-system-x86 ipxe-qemu seabios ovmf
		pxelinux syslinux-common grub-efi-amd64-signed shim-signed
		nfs-ganesha nfs-ganesha-vfs rpcbind
		util-linux # unshare, nsenter
	)
fi
packages+=("$@")

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "ci-deps: dpkg-query not found; not a Debian system, install by hand: ${packages[*]}" >&2
	exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$pkg")
	fi
done

if [[ $(id -u) -ne 0 ]]; then
	if ((${#missing[@]})); then
		echo "ci-deps: not root, not installing; missing packages: ${missing[*]}" >&2
		echo "ci-deps: as root: apt-get install --no-install-recommends ${missing[*]}" >&2
	fi
	if [[ ! -d /run/sshd ]]; then
		echo "ci-deps: not root; /run/sshd is missing, sshd-based tests will fail (as root: install -d -m 0755 /run/sshd)" >&2
	fi
	exit 0
fi

if ((${#missing[@]})); then
	echo "ci-deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's sshd refuses to start without its privilege-separation directory,
# which lives on tmpfs and is normally made by the service unit, not the package.
if [[ ! -d /run/sshd ]]; then
	install -d -m 0755 -o root -g root /run/sshd
fi
