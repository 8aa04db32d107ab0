#!/bin/bash
# run inside replab: one update (mutate or revert), perf record -a around the fan-out
set -e
N=20000; BIN=${BIN:-/var/tmp/bins/cur}
GOLD=$LAB_GOLDEN_DIR/tree-$N; IMG=$LAB_PRIMARY_DIR/image-$N; J=$LAB_PRIMARY_DIR/journal-$N
AGENT=$LAB_GOLDEN_DIR/goldsync-agent
CFG=$LAB_PRIMARY_DIR/goldsync-cpu-$N.toml
for round in $(seq ${ROUNDS:-2}); do
if [ -d "$J" ]; then "$BIN/gentree" revert -journal "$J" "$GOLD" >/dev/null && rm -rf "$J"; else "$BIN/gentree" mutate -change yum -journal "$J" "$GOLD" >/dev/null; fi
"$BIN/goldsync" pull --no-progress -e "$LAB_RSH" --agent-path "$AGENT" "$LAB_GOLDEN:$GOLD" "$IMG" >/dev/null
sleep 0.5
if [ -n "$PERFOUT" ]; then
perf record -a -g -F 5000 -o $PERFOUT.$round -- "$BIN/fanout" -config "$CFG" | tail -1
else
perf stat -a -e task-clock,page-faults -o /tmp/pstat.$round -- "$BIN/fanout" -config "$CFG" | tail -1; grep -E "task-clock|faults" /tmp/pstat.$round
fi
done
