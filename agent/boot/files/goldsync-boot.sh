# goldsync-boot.sh: the client half of goldsync, run in the initramfs of a
# diskless node after its root has been mounted read-only over NFS and before
# the image's init starts (initramfs-tools: scripts/nfs-bottom; dracut:
# pre-pivot). It is the successor of RHEL 5's disklessrc:
#
#   1. mount the node's snapshot, SERVER:PATH from goldsync.snapshot=, read-write
#      at /run/goldsync/snapshot;
#   2. read .goldsync/boot.list there (written by `goldsync snapshot build`):
#        bind  /path    bind the snapshot's copy over the image's (files,
#                       files.custom, statetab: kept across reboots)
#        empty /path    an empty tmpfs directory (or file) over it (rwtab)
#        dirs  /path    a tmpfs copy of the directory structure (rwtab)
#   3. leave a log in /run/goldsync/boot.log.
#
# It does nothing unless the kernel command line has goldsync.snapshot=, so a
# golden node booting from disk with the same initramfs is unaffected.
# Other parameters: goldsync.nfsopts=OPTS (mount options of the snapshot,
# comma-separated), goldsync.retries=N (seconds to retry the snapshot mount,
# default 60), goldsync=off (disable).
#
# The flavour wrapper defines gs_mount_nfs SERVER:PATH DIR OPTS and calls
# goldsync_boot NEWROOT. POSIX sh plus `local`: it runs under klibc's sh,
# busybox ash, dash and bash. Written by goldsync; do not edit: reinstall with
# `goldsync-agent boot install`.

GS_RUN=/run/goldsync
GS_SNAP=$GS_RUN/snapshot
GS_RW=$GS_RUN/rw
GS_LOG=$GS_RUN/boot.log

gs_log() {
	echo "goldsync: $*" >>"$GS_LOG"
	echo "goldsync: $*" >/dev/console 2>/dev/null || echo "goldsync: $*" >&2
}

# gs_cmdline sets GS_SNAPSHOT, GS_NFSOPTS, GS_RETRIES and GS_OFF from
# /proc/cmdline.
gs_cmdline() {
	GS_SNAPSHOT= GS_NFSOPTS= GS_RETRIES=60 GS_OFF=
	local a
	for a in $(cat /proc/cmdline); do
		case $a in
		goldsync.snapshot=*) GS_SNAPSHOT=${a#goldsync.snapshot=} ;;
		goldsync.nfsopts=*) GS_NFSOPTS=${a#goldsync.nfsopts=} ;;
		goldsync.retries=*) GS_RETRIES=${a#goldsync.retries=} ;;
		goldsync=off | goldsync=0) GS_OFF=1 ;;
		esac
	done
	case $GS_RETRIES in '' | *[!0-9]*) GS_RETRIES=60 ;; esac
}

# gs_safe_path NEWROOT PATH succeeds when every component of PATH below
# NEWROOT exists and none is a symbolic link: an image's /var/run -> /run
# must not make a bind land in the initramfs instead of the new root.
gs_safe_path() {
	local root=$1 rest=${2#/} cur=$1 comp
	while [ -n "$rest" ]; do
		comp=${rest%%/*}
		if [ "$comp" = "$rest" ]; then rest=; else rest=${rest#*/}; fi
		[ -n "$comp" ] || continue
		case $comp in . | ..) return 1 ;; esac
		cur=$cur/$comp
		[ -L "$cur" ] && return 1
		[ -e "$cur" ] || return 1
	done
	return 0
}

# gs_good_path PATH succeeds for an absolute path without . or .. components.
gs_good_path() {
	case $1 in /*) ;; *) return 1 ;; esac
	case "$1/" in */./* | */../* | *//*) return 1 ;; esac
	return 0
}

# gs_bind KIND PATH NEWROOT: one boot.list entry.
gs_bind() {
	local kind=$1 p=${2%/} newroot=$3 src target
	target=$newroot$p
	if ! gs_good_path "$p" || [ -z "$p" ]; then
		gs_log "boot.list: bad path '$2' skipped"
		return 0
	fi
	if ! gs_safe_path "$newroot" "$p"; then
		gs_log "$p: missing in the image or under a symbolic link there; not mounted"
		return 0
	fi
	case $kind in
	bind)
		src=$GS_SNAP$p
		if [ -L "$src" ] || [ ! -e "$src" ]; then
			gs_log "$p: not in the snapshot (or a symbolic link there); not mounted"
			return 0
		fi
		;;
	empty | dirs)
		src=$GS_RW$p
		if [ -d "$target" ]; then
			mkdir -p "$src" || return 0
			if [ "$kind" = dirs ] && [ -d "$GS_SNAP$p" ] && [ ! -L "$GS_SNAP$p" ]; then
				cp -a "$GS_SNAP$p/." "$src/" 2>/dev/null || gs_log "$p: copying the directory structure failed"
			fi
		else
			mkdir -p "${src%/*}" && : >"$src" || return 0
		fi
		;;
	*)
		gs_log "boot.list: unknown kind '$kind' for $p skipped"
		return 0
		;;
	esac
	local sd=n td=n
	[ -d "$src" ] && sd=y
	[ -d "$target" ] && td=y
	if [ "$sd" != "$td" ]; then
		gs_log "$p: a directory on one side and not on the other; not mounted"
		return 0
	fi
	if mount -o bind "$src" "$target"; then
		GS_COUNT=$((GS_COUNT + 1))
	else
		gs_log "$p: bind mount failed"
		GS_FAILED=$((GS_FAILED + 1))
	fi
}

# goldsync_boot NEWROOT does the whole job.
goldsync_boot() {
	local newroot=$1 i kind path rest opts
	gs_cmdline
	[ -n "$GS_SNAPSHOT" ] && [ -z "$GS_OFF" ] || return 0
	mkdir -p "$GS_SNAP" "$GS_RW"
	gs_log "mounting snapshot $GS_SNAPSHOT"
	opts=${GS_NFSOPTS}
	i=0
	while ! gs_mount_nfs "$GS_SNAPSHOT" "$GS_SNAP" "$opts"; do
		i=$((i + 1))
		if [ "$i" -ge "$GS_RETRIES" ]; then
			gs_log "cannot mount the snapshot $GS_SNAPSHOT: booting with the image read-only everywhere"
			: >"$GS_RUN/failed"
			return 0
		fi
		sleep 1
	done
	mount -t tmpfs -o mode=0755,nosuid,nodev goldsync-rw "$GS_RW" || gs_log "tmpfs for rwtab paths failed"
	if [ ! -f "$GS_SNAP/.goldsync/boot.list" ] || [ -L "$GS_SNAP/.goldsync" ] || [ -L "$GS_SNAP/.goldsync/boot.list" ]; then
		gs_log "no .goldsync/boot.list in the snapshot (run goldsync snapshot build on the server): nothing bound"
		: >"$GS_RUN/failed"
		return 0
	fi
	GS_COUNT=0 GS_FAILED=0
	while read -r kind path rest; do
		case $kind in '' | '#'*) continue ;; esac
		[ -n "$rest" ] && path="$path $rest"
		gs_bind "$kind" "$path" "$newroot"
	done <"$GS_SNAP/.goldsync/boot.list"
	gs_log "mounted $GS_COUNT paths from the snapshot, $GS_FAILED failed"
	[ "$GS_FAILED" -eq 0 ] || : >"$GS_RUN/failed"
	: >"$GS_RUN/done"
	return 0
}
