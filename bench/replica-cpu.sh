#!/bin/bash
# Replica update CPU: what one journal-driven replica update costs in CPU
# seconds (user + system), split by process, for a yum-size change of the
# golden tree of bench/replicas.sh (same lab, tree and change). Load
# independent: CPU seconds, not wall time.
#
#   bash bench/replica-cpu.sh   # as root; N=20000 files, ROUNDS=3 (forth, back, ...)
#   REPLICAS=8 bash bench/replica-cpu.sh   # the same update to 8 replicas at once
#
# Per update (of r1 alone, or of REPLICAS replicas at once: then each
# figure is the sum over the replicas) it prints the CPU of
#   primary goldsync  the process running cluster.Replicate (bin/fanout)
#   ssh client        its children (the ssh to the replica)
#   sshd              the replica's sshd: the login, the session and the
#                     shell, less the receiver (the CPU of its listener and
#                     every process below it, reaped or alive: a connection
#                     the primary keeps up across runs stays alive)
#   receiver          "goldsync receive --stdio" on the replica: the CPU
#                     time and peak memory it reports itself at the end of
#                     its line (no wrapper in front of it, as on a site;
#                     its exit's teardown falls in "sshd")
#   ssh master        the primary's ssh master connections to the replicas
#                     kept across runs (PERSIST): they outlive the run, so
#                     they are not among the ssh clients
# and, after each update, which replicas folded their manifest log into a
# new base in it ("folded": their base's generation changed).
# PERSIST=10m sets the image's replica_ssh_persist (binaries that know it):
# the first update logs in, the later ones run over the kept master;
# COLD=1 ends the kept masters before each update and counts the end of
# its connection (every update logs in, as without PERSIST, plus "ssh -G").
# RECV_ENV="NAME=VALUE ..." sets the receivers' environment (GOGC=...).
# PROFILE=DIR writes Go CPU profiles of the primary (fanout.*.cpu) and of
# each receiver (goldsync.*.cpu) into DIR (GOLDSYNC_PROFILE). Both put a
# wrapper (sh, env) in front of each receiver; so does RUSAGE=1, the
# measure of the passes before the sixth: bin/rusage in front of each
# receiver (its CPU from wait4), the wrapper's own CPU counted in "sshd".
# The replicas' side (sshd and all below it) is counted by "perf stat -e
# task-clock" on the sshd listeners when perf is installed (nanoseconds),
# else from /proc (10 ms ticks).
set -e
N=${N:-20000}
ROUNDS=${ROUNDS:-3}
REPLICAS=${REPLICAS:-1}
LAB=${LAB:-/var/tmp/gs-replab}
BIN=${BIN:-$PWD/bin}
BIN=$(cd "$BIN" && pwd)
if [ -z "$LAB_RSH" ]; then
  exec "$BIN/replab" -replicas "$REPLICAS" -dir "$LAB" -- bash "$0" "$@"
fi
GS=$BIN/goldsync
GOLD=$LAB_GOLDEN_DIR/tree-$N
IMG=$LAB_PRIMARY_DIR/image-$N
J=$LAB_PRIMARY_DIR/journal-$N
read -r -a R <<< "$LAB_REPLICAS"
read -r -a RD <<< "$LAB_REPLICA_DIRS"
RIMG=()
SSHD_PIDS=()
for d in "${RD[@]}"; do
  RIMG+=("$d/image-$N")
  SSHD_PIDS+=("$(cat "$(dirname "$d")/sshd/sshd.pid")")
done
RU=$LAB_PRIMARY_DIR/remote-usage.jsonl
AGENT=$LAB_GOLDEN_DIR/goldsync-agent
printf '#!/bin/sh\nexec %s --state-dir %s "$@"\n' "$BIN/goldsync-agent" "$LAB_GOLDEN_DIR/agent-state" > "$AGENT"
chmod +x "$AGENT"
PULL=("$GS" pull --no-progress -e "$LAB_RSH" --agent-path "$AGENT" "$LAB_GOLDEN:$GOLD" "$IMG")
PROF=()
if [ -n "$PROFILE" ]; then
  mkdir -p "$PROFILE"
  PROF=(env "GOLDSYNC_PROFILE=$PROFILE/")
fi
# RECV_ENV="GOGC=off ..." runs the receivers with that environment.
RENV=("${PROF[@]}")
if [ -n "$RECV_ENV" ]; then
  [ ${#RENV[@]} = 0 ] && RENV=(env)
  read -r -a renv <<< "$RECV_ENV"
  RENV+=("${renv[@]}")
fi
RECV=$LAB_PRIMARY_DIR/goldsync-receiver
if [ "$RUSAGE" = 1 ]; then
  printf '#!/bin/sh\nexec %s %s -o %s -tag goldsync -- %s "$@"\n' "${RENV[*]}" "$BIN/rusage" "$RU" "$GS" > "$RECV"
elif [ ${#RENV[@]} != 0 ]; then
  printf '#!/bin/sh\nexec %s %s "$@"\n' "${RENV[*]}" "$GS" > "$RECV"
else
  RECV=$GS
fi
[ "$RECV" = "$GS" ] || chmod +x "$RECV"
: > "$LAB_PRIMARY_DIR/nodes"
CFG=$LAB_PRIMARY_DIR/goldsync-cpu-$N.toml
{
  printf '[cluster]\ntftpboot = "%s"\nnodes = "%s"\nnfs_server = "10.77.0.1"\n\n' "$LAB_PRIMARY_DIR/tftpboot" "$LAB_PRIMARY_DIR/nodes"
  printf '[[image]]\nname = "bench"\nsource = "%s"\nroot = "%s"\nrsh = "%s"\nagent_path = "%s"\nfanout = %d\n' \
    "$LAB_GOLDEN:$GOLD" "$IMG" "$LAB_RSH" "$AGENT" "$REPLICAS"
  if [ -n "$PERSIST" ]; then printf 'replica_ssh_persist = "%s"\n' "$PERSIST"; fi
  for i in "${!R[@]}"; do
    printf '\n[[image.replica]]\nname = "r%d"\nssh = "%s"\npath = "%s"\nreceiver = "%s"\n' $((i+1)) "${R[$i]}" "${RIMG[$i]}" "$RECV"
  done
} > "$CFG"

if [ ! -d "$GOLD" ]; then
  echo "== making the golden tree ($N files)"
  "$BIN/gentree" tree -n "$N" "$GOLD" > /dev/null
  rm -rf "$IMG" "$J" "${RIMG[@]}"
fi
echo "entries: $(find "$GOLD" | wc -l)"
[ -d "$J" ] && "$BIN/gentree" revert -journal "$J" "$GOLD" > /dev/null && rm -rf "$J"
"${PULL[@]}" > /dev/null
"$BIN/fanout" -config "$CFG" | tail -1

# treecpu PID: the CPU seconds of PID and every live process below it,
# each with its reaped children (utime + stime + cutime + cstime).
treecpu() {
  cat /proc/[0-9]*/stat 2>/dev/null | sed 's/ (.*) / x /' | awk -v root="$1" -v hz="$(getconf CLK_TCK)" '
    { pp[$1] = $4; c[$1] = $14 + $15 + $16 + $17 }
    END { s = 0; for (p in pp) { q = p; while (q != root && q > 1) q = pp[q]; if (q == root) s += c[p] }; print s / hz }'
}
# sshdpids: the replicas' sshd listeners and every live process below them
# (a connection kept across runs): perf stat counts what they and their
# children from then on run.
sshdpids() {
  cat /proc/[0-9]*/stat 2>/dev/null | sed 's/ (.*) / x /' | awk -v roots="${SSHD_PIDS[*]}" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) isroot[r[i]] = 1 }
    { pp[$1] = $4 }
    END { out = ""; for (p in pp) { q = p; while (!(q in isroot) && q > 1) q = pp[q]; if (q in isroot) out = out (out == "" ? "" : ",") p }; print out }'
}
# sshdcpu: treecpu summed over the replicas' sshd listeners.
sshdcpu() {
  local s=0 p
  for p in "${SSHD_PIDS[@]}"; do s=$(echo "$s + $(treecpu "$p")" | bc -l); done
  echo "$s"
}
# The primary's kept ssh masters: their sockets are named in the records
# in the image's state dir (cluster.EndReplicaConnections ends them).
SSHREC=$(dirname "$IMG")/.$(basename "$IMG").goldsync/ssh
masters() {
  local r
  for r in "$SSHREC"/m-*.json; do
    [ -e "$r" ] && jq -r '.ssh + " " + .socket' "$r"
  done
}
mastercpu() {
  local s=0 b k pid
  while read -r b k; do
    pid=$("$b" -S "$k" -O check x 2>&1 | sed -n 's/.*pid=\([0-9]*\).*/\1/p')
    [ -n "$pid" ] && s=$(echo "$s + $(treecpu "$pid")" | bc -l)
  done < <(masters)
  echo "$s"
}
endmasters() {
  local b k
  while read -r b k; do
    "$b" -S "$k" -O exit x 2> /dev/null || true
  done < <(masters)
  rm -f "$SSHREC"/m-*.json
  sleep 0.3
}
[ -z "$PERSIST" ] && endmasters
# gens: the generation of each replica's manifest base (the 8 bytes after
# its magic); one that changed over an update is a log folded into a new
# base in that update (printed as "folded").
gens() {
  local d
  for d in "${RIMG[@]}"; do
    od -An -tx8 -j8 -N8 "$(dirname "$d")/.$(basename "$d").goldsync/manifest" 2> /dev/null | tr -d ' ' || echo none
  done
}
FOUT=$LAB_PRIMARY_DIR/fanout.out
PSTAT=$LAB_PRIMARY_DIR/perf-stat.csv
PERF=
command -v perf > /dev/null && PERF=1
trap endmasters EXIT
for round in $(seq "$ROUNDS"); do
  if [ -d "$J" ]; then
    "$BIN/gentree" revert -journal "$J" "$GOLD" > /dev/null && rm -rf "$J"
    echo "== round $round: golden: yum-size change reverted"
  else
    "$BIN/gentree" mutate -change yum -journal "$J" "$GOLD" > /dev/null
    echo "== round $round: golden: yum-size change"
  fi
  "${PULL[@]}" > /dev/null
  [ "$COLD" = 1 ] && endmasters
  : > "$RU"
  mapfile -t g0 < <(gens)
  s0=$(sshdcpu)
  m0=$(mastercpu)
  echo "  load: $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ -n "$PERF" ]; then
    perf stat -x, -e task-clock -p "$(sshdpids)" -o "$PSTAT" & pstat=$!
    sleep 0.2 # attached before the first login
  fi
  "${PROF[@]}" "$BIN/fanout" -config "$CFG" > "$FOUT" || { cat "$FOUT"; exit 1; }
  cat "$FOUT"
  m1=$(mastercpu)
  # Cold: the login's connection ends with the update (its teardown is
  # part of what the update cost), as without a kept master.
  [ "$COLD" = 1 ] && endmasters
  s1=$(sshdcpu)
  if [ -n "$PERF" ]; then
    sleep 0.1
    kill -INT "$pstat"; wait "$pstat" || true
    s0=0 s1=$(awk -F, '$3 == "task-clock" { print $1 / 1000 }' "$PSTAT")
  fi
  mapfile -t g1 < <(gens)
  folded=
  for i in "${!g0[@]}"; do [ "${g0[$i]}" = "${g1[$i]}" ] || folded+=" r$((i+1))"; done
  echo "  folded: $(wc -w <<< "$folded")${folded:+ ($folded )}"
  echo "  ssh master (primary, kept): $(echo "$m1 - $m0" | bc -l | cut -c1-5 | sed 's/^\./0./')s"
  if [ "$RUSAGE" = 1 ]; then
    recv=$(jq -s 'map(.user_ns + .sys_ns) | add // 0 | . / 1e9' "$RU")
    peak=$(jq -s 'map(.max_rss) | max // 0 | . / 1048576 | floor' "$RU")
  else
    recv=$(sed -n 's/.*goldsync receive: .*, cpu \([0-9.]*\)s, peak .*/\1/p' "$FOUT" | paste -sd+ | sed 's/^$/0/' | bc -l)
    peak=$(sed -n 's/.*goldsync receive: .*, cpu [0-9.]*s, peak \(.*\)$/\1/p' "$FOUT" | sort -h | tail -1)
    peak=${peak% MiB}
  fi
  echo "  sshd (login, session, shell): $(echo "$s1 - $s0 - $recv" | bc -l | cut -c1-5 | sed 's/^\./0./')s"
  echo "  receiver: $(echo "$recv" | sed 's/^\./0./')s (peak RSS $peak MiB)"
  for i in "${!RIMG[@]}"; do
    n=$(rsync -aHAXSn --numeric-ids --delete -i "$GOLD/" "${RIMG[$i]}/" | wc -l)
    [ "$n" = 0 ] && echo "  r$((i+1)) equals the golden tree" || echo "  r$((i+1)) differs from the golden tree: $n lines"
  done
done
