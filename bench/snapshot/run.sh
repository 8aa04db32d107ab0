#!/bin/sh
# Times goldsync snapshot build against the shell loop admins write today
# (shell-loop.sh: cp -a --parents of every listed path, node by node), on
# the same image, list and nodes, in the same run.
#
# usage: run.sh [-r ROOT] [-w WORKDIR] [-o RESULTS] N...
#
#   ROOT     the image root (default /tmp/goldsync-bench-root, made with
#            debootstrap --variant=minbase bookworm, or synth-root.sh)
#   WORKDIR  where snapshots are built (default /tmp/goldsync-bench-work);
#            put it on the image's filesystem, as /diskless is in practice:
#            reflinks (XFS, btrfs) need both on one filesystem
#   N        node counts, e.g. 128 1024
#
# For each N it times, with warm caches (the image is read once first):
#   goldsync   first build of N snapshots (the default files list)
#   rebuild    goldsync again with nothing changed
#   shell      shell-loop.sh into a fresh directory
# and prints a table with the ratio goldsync/shell. Each build's output is
# deleted before the next, so the disk needs room for one set only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
root=/tmp/goldsync-bench-root
work=/tmp/goldsync-bench-work
results=
while getopts r:w:o: opt; do
	case $opt in
	r) root=$OPTARG ;;
	w) work=$OPTARG ;;
	o) results=$OPTARG ;;
	*) echo "usage: $0 [-r ROOT] [-w WORKDIR] [-o RESULTS] N..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- 128
[ -d "$root" ] || { echo "no image root $root (see the header of $0)" >&2; exit 2; }

mkdir -p "$work"
bin=$work/goldsync
(cd "$repo" && go build -o "$bin" ./cmd/goldsync)

# The default files list, as goldsync writes it into a snapshot dir.
rm -rf "$work/list"
mkdir -p "$work/list"
printf '1.1.1.1 listnode\n' > "$work/list/nodes"
"$bin" -q snapshot build --image "$root" --snapshot-dir "$work/list" --nodes "$work/list/nodes" >/dev/null 2>&1
list=$work/files
cp "$work/list/files" "$list"
rm -rf "$work/list" "$work/.list.goldsync"

# Warm the page cache with the image's listed paths.
tar -C "$root" -cf - . 2>/dev/null | cat >/dev/null

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

fs=$(stat -f -c %T "$work")
printf 'image %s (%s), work %s (%s), %s CPUs, list %s\n' "$root" "$(du -sh "$root" | cut -f1)" "$work" "$fs" "$(nproc)" "$list"
printf '%6s %12s %12s %12s %8s %10s\n' nodes goldsync rebuild shell ratio per-node
for n in "$@"; do
	nodes=$work/nodes.$n
	i=1
	: > "$nodes"
	while [ $i -le "$n" ]; do
		printf '10.%d.%d.%d node%04d\n' $((i / 65536 + 8)) $((i / 256 % 256)) $((i % 256)) $i >> "$nodes"
		i=$((i + 1))
	done
	gs=$work/gs.$n sh=$work/sh.$n
	rm -rf "$gs" "$work/.gs.$n.goldsync" "$sh"
	mkdir -p "$gs"
	cp "$list" "$gs/files"
	sync

	t0=$(now)
	"$bin" -q snapshot build --image "$root" --snapshot-dir "$gs" --nodes "$nodes"
	t1=$(now)
	"$bin" -q snapshot build --image "$root" --snapshot-dir "$gs" --nodes "$nodes"
	t2=$(now)
	size=$(du -s --apparent-size "$gs/node0001" | cut -f1)
	rm -rf "$gs" "$work/.gs.$n.goldsync"
	sync

	t3=$(now)
	"$here/shell-loop.sh" "$root" "$sh" "$nodes" "$list"
	t4=$(now)
	shsize=$(du -s --apparent-size "$sh/node0001" | cut -f1)
	rm -rf "$sh"
	sync

	g=$(elapsed "$t0" "$t1") r=$(elapsed "$t1" "$t2") s=$(elapsed "$t3" "$t4")
	printf '%6d %11.2fs %11.2fs %11.2fs %8.2f %8dKiB\n' "$n" "$g" "$r" "$s" "$(echo "$g / $s" | bc -l)" "$size"
	[ "$size" = "$shsize" ] || echo "  note: a node's snapshot is $size KiB by goldsync, $shsize KiB by the shell loop" >&2
	if [ -n "$results" ]; then
		printf '%s,%s,%d,%.3f,%.3f,%.3f\n' "$(date -u +%FT%TZ)" "$fs" "$n" "$g" "$r" "$s" >> "$results"
	fi
done
