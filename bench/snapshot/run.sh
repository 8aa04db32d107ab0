#!/bin/sh
# Times goldsync snapshot build against the shell loop admins write today
# (shell-loop.sh: cp -a --parents of every listed path, node by node), on
# the same image, list and nodes, in the same run.
#
# usage: run.sh [-r ROOT] [-w WORKDIR] [-f ext4|xfs] [-s SIZE] [-b GOLDSYNC] [-o RESULTS.csv] N...
#
#   ROOT      the image root (default /tmp/goldsync-bench-root, made with
#             debootstrap --variant=minbase bookworm; synth-root.sh makes
#             a smaller one)
#   WORKDIR   scratch space (default /tmp/goldsync-bench-work)
#   -f FS     build on a fresh FS filesystem (a loop device in WORKDIR,
#             made again for every run, the image copied in first, as
#             /diskless holds both image and snapshots): needs root.
#             xfs is made with reflink=1. Without -f, runs in WORKDIR
#             directly and waits 35 s after each deletion (ext4 allocates
#             inodes slowly near recently deleted ones).
#   -s SIZE   size of the loop filesystem (default 60G; sparse)
#   GOLDSYNC  a goldsync binary to time (default: built from this tree)
#   N         node counts, e.g. 128 1024
#
# For each N it times, with warm caches (the image was just copied or read):
#   goldsync  first build of N snapshots with the default files list
#   rebuild   goldsync again with nothing changed
#   shell     shell-loop.sh
# and prints wall times, CPU times (user+sys of the process and its
# children: less sensitive to a busy machine) and the ratios
# goldsync/shell.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
root=/tmp/goldsync-bench-root
work=/tmp/goldsync-bench-work
results= bin= fs= size=60G
while getopts r:w:f:s:b:o: opt; do
	case $opt in
	r) root=$OPTARG ;;
	w) work=$OPTARG ;;
	f) fs=$OPTARG ;;
	s) size=$OPTARG ;;
	b) bin=$OPTARG ;;
	o) results=$OPTARG ;;
	*) echo "usage: $0 [-r ROOT] [-w WORKDIR] [-f ext4|xfs] [-s SIZE] [-b GOLDSYNC] [-o RESULTS.csv] N..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- 128
[ -d "$root" ] || { echo "no image root $root (see the header of $0)" >&2; exit 2; }
root=$(cd "$root" && pwd)

mkdir -p "$work"
work=$(cd "$work" && pwd)
if [ -z "$bin" ]; then
	bin=$work/goldsync
	(cd "$repo" && go build -o "$bin" ./cmd/goldsync)
fi

# The default files list, as goldsync writes it into a snapshot dir.
rm -rf "$work/list" "$work/.list.goldsync"
mkdir -p "$work/list"
printf '10.0.0.1 listnode\n' > "$work/list/nodes"
"$bin" -q snapshot build --image "$root" --snapshot-dir "$work/list" --nodes "$work/list/nodes" >/dev/null 2>&1
list=$work/files
cp "$work/list/files" "$list"
rm -rf "$work/list" "$work/.list.goldsync"

mnt=$work/mnt
# fresh: prints the directory to build in, holding image/ (the image):
# a new loop filesystem with -f, else WORKDIR after a pause.
fresh() {
	if [ -n "$fs" ]; then
		if mountpoint -q "$mnt"; then umount "$mnt"; fi
		rm -f "$work/fs.img"
		truncate -s "$size" "$work/fs.img"
		case $fs in
		xfs) mkfs.xfs -q -m reflink=1 "$work/fs.img" ;;
		ext4) mkfs.ext4 -q -F "$work/fs.img" ;;
		*) echo "unknown filesystem $fs" >&2; exit 2 ;;
		esac
		mkdir -p "$mnt"
		mount -o loop "$work/fs.img" "$mnt"
		cp -a "$root" "$mnt/image"
		sync
		echo "$mnt"
	else
		sleep 35
		rm -rf "$work/run"
		mkdir -p "$work/run"
		ln -s "$root" "$work/run/image"
		# Warm the page cache with the image.
		tar -C "$root" -cf - . 2>/dev/null | cat >/dev/null
		echo "$work/run"
	fi
}
cleanup() {
	if [ -n "$fs" ]; then
		if mountpoint -q "$mnt"; then umount "$mnt"; fi
		rm -f "$work/fs.img"
	else
		rm -rf "$work/run"
	fi
}
trap cleanup EXIT

# timed OUT CMD...: runs CMD, writes "wall cpu" seconds to OUT.
timed() {
	out=$1
	shift
	/usr/bin/time -f '%e %U %S' -o "$out.t" "$@"
	awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$out.t" > "$out"
	rm -f "$out.t"
}

printf 'image %s (%s, %s entries), %s, %s CPUs, goldsync %s, load %s\n' "$root" "$(du -sh "$root" | cut -f1)" \
	"$(find "$root" | wc -l)" "${fs:-$(stat -f -c %T "$work") in $work}" "$(nproc)" "$bin" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%6s | %9s %9s | %9s %9s | %9s %9s | %6s %6s | %s\n' nodes goldsync cpu rebuild cpu shell cpu wall cpu per-node
printf '%6s | %9s %9s | %9s %9s | %9s %9s | %6s %6s |\n' '' s s s s s s ratio ratio
for n in "$@"; do
	nodes=$work/nodes.$n
	i=1
	: > "$nodes"
	while [ $i -le "$n" ]; do
		printf '10.%d.%d.%d node%04d\n' $((i / 65536 + 8)) $((i / 256 % 256)) $((i % 256)) $i >> "$nodes"
		i=$((i + 1))
	done

	d=$(fresh)
	mkdir -p "$d/snapshot"
	cp "$list" "$d/snapshot/files"
	timed "$work/t.build" "$bin" -q snapshot build --image "$d/image" --snapshot-dir "$d/snapshot" --nodes "$nodes"
	timed "$work/t.rebuild" "$bin" -q snapshot build --image "$d/image" --snapshot-dir "$d/snapshot" --nodes "$nodes"
	gsize=$(du -s --apparent-size "$d/snapshot/node0001" | cut -f1)
	used=$(df -k --output=used "$d" | tail -1)
	cleanup

	d=$(fresh)
	timed "$work/t.shell" "$here/shell-loop.sh" "$d/image" "$d/snapshot" "$nodes" "$list"
	ssize=$(du -s --apparent-size "$d/snapshot/node0001" | cut -f1)
	sused=$(df -k --output=used "$d" | tail -1)
	cleanup

	read -r g gc < "$work/t.build"
	read -r r rc < "$work/t.rebuild"
	read -r s sc < "$work/t.shell"
	printf '%6d | %9.2f %9.2f | %9.2f %9.2f | %9.2f %9.2f | %6.2f %6.2f | %dKiB\n' "$n" "$g" "$gc" "$r" "$rc" "$s" "$sc" \
		"$(echo "$g / $s" | bc -l)" "$(echo "$gc / $sc" | bc -l)" "$gsize"
	[ "$gsize" = "$ssize" ] || echo "  note: a node's snapshot is $gsize KiB by goldsync, $ssize KiB by the shell loop" >&2
	[ -z "$fs" ] || echo "  disk used after the build: goldsync $((used / 1024)) MiB, shell loop $((sused / 1024)) MiB" >&2
	if [ -n "$results" ]; then
		printf '%s,%s,%s,%d,%s,%s,%s,%s,%s,%s\n' "$(date -u +%FT%TZ)" "$root" "${fs:-dir}" "$n" "$g" "$gc" "$r" "$rc" "$s" "$sc" >> "$results"
	fi
done
