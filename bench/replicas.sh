#!/bin/bash
# Replicas: how long a yum-size change on the golden node takes to reach one
# replica image server and all 8, with stock rsync from the primary (a loop,
# and 8 in parallel) and with goldsync's fan-out (when the cluster config has
# replicas). Everything runs in the network lab of bench/cmd/replab: the
# golden node 10.77.0.10, the primary 10.77.0.1 (this script) and replicas
# 10.77.0.11-18, each host its own network namespace and sshd on a bridge,
# all on this machine's disk and CPUs. Each figure is taken ROUNDS times
# (the change forth, then back); the load average is printed beside each
# (the machine is shared: compare CPU seconds, not only wall time).
#
#   make build && (cd bench && go build -o ../bin/ ./cmd/replab ./cmd/gentree ./cmd/rusage ./cmd/fanout)
#   bash bench/replicas.sh     # as root; N=20000 files, ROUNDS=2, FANOUT=8, REPLICAS=8
#
# REPLICAS=2 or 4 runs the lab with that many replicas (one replica ÷ all of
# them; the tree rounds are drawn for 8: use TREE=0 with fewer).
#
# GOLDSYNC=0 leaves out goldsync's rounds (bench/cmd/fanout: cluster.Replicate
# with the lab's cluster config); RSYNC=0 leaves out rsync's; TREE=0 leaves
# out goldsync's tree rounds (the same 8 replicas fed as a tree of degree 2:
# the primary feeds r1 and r2, r1 feeds r3 and r4, r2 feeds r5 and r6, r3
# feeds r7 and r8). Each goldsync round prints what the primary sent on the
# lab's bridge (its tx bytes in /proc/net/dev: not what the bridge forwards
# between replicas).
#
# After every step each replica is compared with the golden tree by
# `rsync -aHAXSn --numeric-ids --delete -i` (must list nothing).
set -e
N=${N:-20000}
ROUNDS=${ROUNDS:-2}
LAB=${LAB:-/var/tmp/gs-replab}
BIN=${BIN:-$PWD/bin}
BIN=$(cd "$BIN" && pwd)
if [ -z "$LAB_RSH" ]; then
  exec "$BIN/replab" -replicas "${REPLICAS:-8}" -dir "$LAB" -- bash "$0" "$@"
fi
GS=$BIN/goldsync
GOLD=$LAB_GOLDEN_DIR/tree-$N
IMG=$LAB_PRIMARY_DIR/image-$N
J=$LAB_PRIMARY_DIR/journal-$N
read -r -a R <<< "$LAB_REPLICAS"
read -r -a RD <<< "$LAB_REPLICA_DIRS"
RIMG=()
for d in "${RD[@]}"; do RIMG+=("$d/image-$N"); done

# sent: the primary's bytes sent on the lab's bridge so far.
sent() { awk '$1 == "lab0:" { print $10 }' /proc/net/dev; }
# T LABEL COMMAND...: time a command (or function), with its children's CPU.
T() { echo "  load: $(cut -d' ' -f1-3 /proc/loadavg)"; local TIMEFORMAT="$1: %Rs (user %Us sys %Ss)"; time "${@:2}"; }
# The replicas' side runs under rusage, which appends its CPU to $RU:
# remote_cpu prints (and forgets) what was appended since the last call.
RU=$LAB_PRIMARY_DIR/remote-usage.jsonl
: > "$RU"
rs() { rsync -aHAXS --numeric-ids --delete -e "$LAB_RSH" --rsync-path "$BIN/rusage -o $RU -tag rsync -- rsync" "$@"; }
remote_cpu() {
  echo "  replicas' side: $(jq -s 'map(.user_ns + .sys_ns) | add // 0 | . / 1e9 | tostring + "s CPU"' -r "$RU"), $(wc -l < "$RU") receivers"
  : > "$RU"
}

# The golden node's agent keeps its state in the golden host's directory.
AGENT=$LAB_GOLDEN_DIR/goldsync-agent
printf '#!/bin/sh\nexec %s --state-dir %s "$@"\n' "$BIN/goldsync-agent" "$LAB_GOLDEN_DIR/agent-state" > "$AGENT"
chmod +x "$AGENT"
PULL=("$GS" pull --no-progress -e "$LAB_RSH" --agent-path "$AGENT" "$LAB_GOLDEN:$GOLD" "$IMG")

# Every replica equals the golden tree.
check() {
  local bad=0
  for i in "${!R[@]}"; do
    n=$(rsync -aHAXSn --numeric-ids --delete -i "$GOLD/" "${RIMG[$i]}/" | wc -l)
    [ "$n" = 0 ] || { echo "  r$((i+1)) differs from the golden tree: $n lines"; bad=1; }
  done
  [ $bad = 0 ] && echo "  all ${#R[@]} replicas equal the golden tree"
}

if [ ! -d "$GOLD" ]; then
  echo "== making the golden tree ($N files)"
  "$BIN/gentree" tree -n "$N" "$GOLD" > /dev/null
  rm -rf "$IMG" "$J" "${RIMG[@]}"
fi
echo "entries: $(find "$GOLD" | wc -l), size: $(du -sh "$GOLD" | cut -f1)"
[ -d "$J" ] && "$BIN/gentree" revert -journal "$J" "$GOLD" > /dev/null && rm -rf "$J"
echo "== seeding: primary pull, rsync to the replicas (not timed)"
"${PULL[@]}" > /dev/null
for i in "${!R[@]}"; do rs "$IMG/" "${R[$i]}:${RIMG[$i]}/" & done
wait
: > "$RU"
check

# change flips the golden tree (a yum-size change forth, then back) and
# pulls it into the primary.
change() {
  if [ -d "$J" ]; then
    "$BIN/gentree" revert -journal "$J" "$GOLD" > /dev/null && rm -rf "$J"
    echo "-- golden: yum-size change reverted"
  else
    "$BIN/gentree" mutate -change yum -journal "$J" "$GOLD" > /dev/null
    echo "-- golden: yum-size change"
  fi
  T "primary pull" "${PULL[@]}" > /dev/null
}

# Every figure is taken for the change forth and for the change back.
for round in $(seq "$ROUNDS"); do
  [ "$RSYNC" = 0 ] && break
  for dir in forth back; do
    echo "== round $round: rsync loop, one replica after the other (r1's is the one-replica figure)"
    change
    echo "  load: $(cut -d' ' -f1-3 /proc/loadavg)"
    TIMEFORMAT="rsync loop to ${#R[@]} replicas: %Rs (user %Us sys %Ss)"
    time for i in "${!R[@]}"; do
      T "rsync to r$((i+1))" rs "$IMG/" "${R[$i]}:${RIMG[$i]}/"
    done
    remote_cpu
    check || true
  done
  for dir in forth back; do
    echo "== round $round: rsync to ${#R[@]} replicas in parallel"
    change
    echo "  load: $(cut -d' ' -f1-3 /proc/loadavg)"
    TIMEFORMAT="rsync to ${#R[@]} replicas in parallel: %Rs (user %Us sys %Ss)"
    time {
      for i in "${!R[@]}"; do rs "$IMG/" "${R[$i]}:${RIMG[$i]}/" & done
      wait
    }
    remote_cpu
    check || true
  done
done

[ "$GOLDSYNC" = 0 ] && exit 0

# goldsync: the lab's cluster config, an image with 8 replicas and no OS
# (only the image is pushed: fanout sets NoBuild). Each receiver is
# goldsync itself, as on a site: its CPU is what it reports at the end of
# its line (bin/fanout prints the line under each replica's); in the tree
# rounds the relays' own CPU (replica-relay on r1, r2, r3) is not in it.
# RUSAGE=1 puts bin/rusage in front of each receiver and relay instead,
# through a wrapper (the passes before the sixth): the wrapper's own CPU
# then runs on the same cores as the 8 updates.
CFG=$LAB_PRIMARY_DIR/goldsync-$N.toml
RECV=$GS
if [ "$RUSAGE" = 1 ]; then
  RECV=$LAB_PRIMARY_DIR/goldsync-receiver
  printf '#!/bin/sh\nexec %s -o %s -tag goldsync -- %s "$@"\n' "$BIN/rusage" "$RU" "$GS" > "$RECV"
  chmod +x "$RECV"
fi
FOUT=$LAB_PRIMARY_DIR/fanout.out
# fanout ARGS...: bin/fanout, its output kept in $FOUT for recv_cpu.
fanout() { "${FANOUT_CMD[@]}" "$@" > "$FOUT" || { cat "$FOUT"; return 1; }; cat "$FOUT"; }
# recv_cpu: the receivers' CPU of the last fanout (their own lines, or
# rusage's with RUSAGE=1).
recv_cpu() {
  if [ "$RUSAGE" = 1 ]; then remote_cpu; return; fi
  echo "  replicas' side: $(sed -n 's/.*goldsync receive: .*, cpu \([0-9.]*\)s, peak .*/\1/p' "$FOUT" | paste -sd+ | sed 's/^$/0/' | bc -l | sed 's/^\./0./')s CPU, $(grep -c 'goldsync receive: ' "$FOUT") receivers"
}
: > "$LAB_PRIMARY_DIR/nodes"
{
  printf '[cluster]\ntftpboot = "%s"\nnodes = "%s"\nnfs_server = "10.77.0.1"\n\n' "$LAB_PRIMARY_DIR/tftpboot" "$LAB_PRIMARY_DIR/nodes"
  printf '[[image]]\nname = "bench"\nsource = "%s"\nroot = "%s"\nrsh = "%s"\nagent_path = "%s"\nfanout = %d\n' \
    "$LAB_GOLDEN:$GOLD" "$IMG" "$LAB_RSH" "$AGENT" "${FANOUT:-8}"
  if [ -n "$PERSIST" ]; then printf 'replica_ssh_persist = "%s"\n' "$PERSIST"; fi
  for i in "${!R[@]}"; do
    printf '\n[[image.replica]]\nname = "r%d"\nssh = "%s"\npath = "%s"\nreceiver = "%s"\n' $((i+1)) "${R[$i]}" "${RIMG[$i]}" "$RECV"
  done
} > "$CFG"
FANOUT_CMD=("$BIN/fanout" -config "$CFG")
# PERSIST=10m: the image's replica_ssh_persist (the first update of a
# replica logs in, later ones run over the kept connection); the kept
# connections are ended when the script ends.
endmasters() {
  local r
  for r in "$(dirname "$IMG")/.$(basename "$IMG").goldsync/ssh"/m-*.json; do
    [ -e "$r" ] && "$(jq -r .ssh "$r")" -S "$(jq -r .socket "$r")" -O exit x 2> /dev/null
    rm -f "$r"
  done
}
trap endmasters EXIT
# The tree: the same config, with each replica's parent.
CFG_TREE=$LAB_PRIMARY_DIR/goldsync-tree-$N.toml
declare -A PARENT=([r3]=r1 [r4]=r1 [r5]=r2 [r6]=r2 [r7]=r3 [r8]=r3)
awk -v parents="$(for k in "${!PARENT[@]}"; do printf '%s=%s ' "$k" "${PARENT[$k]}"; done)" '
  BEGIN { n = split(parents, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); p[kv[1]] = kv[2] } }
  { print }
  /^name = "r[0-9]+"$/ { name = $3; gsub(/"/, "", name); if (name in p) print "from = \"" p[name] "\"" }
' "$CFG" > "$CFG_TREE"
# fan: run bin/fanout with the arguments and say what the primary sent.
fan() {
  local s0; s0=$(sent)
  fanout "$@"
  echo "  primary sent on the bridge: $(( $(sent) - s0 )) bytes"
}
echo "== goldsync: first fan-out to every replica (a full compare each; not timed)"
"${FANOUT_CMD[@]}" | tail -1
: > "$RU"
check || true
others=$(seq -s, -f 'r%g' 2 "${#R[@]}")
for round in $(seq "$ROUNDS"); do
  for dir in forth back; do
    echo "== round $round: goldsync fan-out to r1 alone (fanout ${FANOUT:-8})"
    change
    echo "  load: $(cut -d' ' -f1-3 /proc/loadavg)"
    fanout -replicas r1
    recv_cpu
    echo "-- the others catch up (not timed)"
    "${FANOUT_CMD[@]}" -replicas "$others" | tail -1
    : > "$RU"
    check || true
  done
  for dir in forth back; do
    echo "== round $round: goldsync fan-out to all ${#R[@]} replicas (fanout ${FANOUT:-8})"
    change
    echo "  load: $(cut -d' ' -f1-3 /proc/loadavg)"
    fan
    recv_cpu
    check || true
  done
  [ "$TREE" = 0 ] && continue
  for dir in forth back; do
    echo "== round $round: goldsync tree fan-out to all ${#R[@]} replicas (degree 2, fanout ${FANOUT:-8})"
    change
    echo "  load: $(cut -d' ' -f1-3 /proc/loadavg)"
    fan -config "$CFG_TREE"
    recv_cpu
    check || true
  done
done
