#!/bin/sh
# goldsync dracut cmdline hook (sourced by dracut): load NFSv3 before the
# root is mounted, and say so on the console when it cannot be loaded.
# Written by `goldsync-agent boot install`; do not edit.
if ! _gs_out=$(modprobe nfsv3 2>&1); then
	echo "goldsync: modprobe nfsv3 failed: $_gs_out" >/dev/kmsg 2>/dev/null || :
fi
unset _gs_out
