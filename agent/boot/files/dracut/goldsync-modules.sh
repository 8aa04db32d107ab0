#!/bin/sh
# goldsync dracut cmdline hook (sourced by dracut): load NFSv3 before the
# root is mounted. The kernel asks for nfsv3 only when a v3 mount is made,
# and that on-demand load failed in Debian 12's dracut initramfs
# ("mount.nfs: Protocol not supported"). Written by
# `goldsync-agent boot install`; do not edit.
modprobe -q nfsv3 2>/dev/null || :
