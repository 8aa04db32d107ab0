#!/bin/bash
# floor-local.sh: a local full pull of SRC into an empty dir, measured without
# depending on the machine's load: CPU seconds and peak RSS per side (rusage in
# front of each process), and, with TRACE=1, system calls per side (perf trace -s,
# summed by command name: goldsync = the image server, goldsync-agent = the golden
# node's side; tar's two ends alike). Issue 14.
#
#   BIN=DIR [SRC=...] [OUT=DIR] [TRACE=1] [TAR=1] [PROFILE=DIR] bash bench/floor-local.sh
#
# BIN holds goldsync and goldsync-agent. The agent keeps its hash cache in
# OUT/agent-state, removed before each run (as benchrun's full scenario:
# the golden node reads and hashes every file it sends). Each run pulls into a new directory
# OUT/dst.N, left in place: this VM's ext4 has no journal, and its inode
# allocator skips inodes deleted in the last 60 s (360 s while their inode
# table block is dirty) by reading each one (recently_deleted, found with
# perf record -g): a pull right after an rm -rf of the last destination spent
# 60 % of its CPU there, and tar the same. CLEAN=1 removes OUT's destinations.
set -euo pipefail
SRC=${SRC:-/var/tmp/goldsync-bench/trees/syn10000-s1}
OUT=${OUT:-/var/tmp/floor/run}
RUSAGE=${RUSAGE:-/var/tmp/floor/rusage}
TAG=${TAG:-$(basename "$BIN")}
mkdir -p "$OUT/bin-$TAG"
# goldsync looks for goldsync-agent beside its executable: put a wrapper there
# that measures the agent on its own.
cp -f "$BIN/goldsync" "$OUT/bin-$TAG/goldsync"
cat >"$OUT/bin-$TAG/goldsync-agent" <<W
#!/bin/sh
exec $RUSAGE -o $OUT/usage.jsonl -tag $TAG-agent -- $BIN/goldsync-agent "\$@" --state-dir $OUT/agent-state
W
chmod +x "$OUT/bin-$TAG/goldsync-agent"
sync
files=$(find "$SRC" -type f | wc -l)
if [ "${CLEAN:-0}" = 1 ]; then rm -rf "$OUT"/dst.* "$OUT"/.dst.*; exit 0; fi
n=0
while [ -e "$OUT/dst.$n" ]; do n=$((n + 1)); done
DST=$OUT/dst.$n
run() { # name, command...
	local name=$1; shift
	mkdir -p "$DST"; rm -rf "$OUT/agent-state"; sync
	echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) $name $DST" >>"$OUT/log"
	if [ "${TRACE:-0}" = 1 ]; then
		perf trace -m 8192 -s -o "$OUT/trace-$name.txt" -- "$@" >/dev/null 2>>"$OUT/log"
		python3 - "$OUT/trace-$name.txt" "$files" "$name" <<'P' | tee -a "$OUT/log"
import re, sys, collections
path, files, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
per = collections.defaultdict(collections.Counter)
comm = None
for line in open(path):
    m = re.match(r'\s*(\S.*?) \((\d+)\), \d+ events', line)
    if m:
        comm = m.group(1); continue
    m = re.match(r'\s+([a-z_0-9]+)\s+(\d+)\s+(\d+)\s', line)
    if m and comm:
        per[comm][m.group(1)] += int(m.group(2))
        per[comm][m.group(1) + '!err'] += int(m.group(3))
for c, cnt in sorted(per.items()):
    tot = sum(v for k, v in cnt.items() if not k.endswith('!err'))
    top = sorted(((v, k) for k, v in cnt.items() if not k.endswith('!err')), reverse=True)[:14]
    print(f"{name} {c}: {tot} syscalls, {tot/files:.1f}/file ({files} files): " +
          ", ".join(f"{k} {v}" + (f" ({cnt[k+'!err']} err)" if cnt[k+'!err'] else "") for v, k in top))
P
	else
		"$RUSAGE" -o "$OUT/usage.jsonl" -tag "$name" -- "$@" >/dev/null
	fi
}
if [ "${TAR:-0}" = 1 ]; then
	run tar bash -c "$RUSAGE -o $OUT/usage.jsonl -tag tar-c -- tar -C $SRC --xattrs --acls --numeric-owner --sparse -cf - . | $RUSAGE -o $OUT/usage.jsonl -tag tar-x -- tar -C $DST --xattrs --xattrs-include='*' --acls --numeric-owner -xpf -"
else
	if [ -n "${PROFILE:-}" ]; then export GOLDSYNC_PROFILE=$PROFILE; fi
	run "$TAG" "$OUT/bin-$TAG/goldsync" pull --no-progress "$SRC" "$DST"
fi
