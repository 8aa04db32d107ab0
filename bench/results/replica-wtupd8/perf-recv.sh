#!/bin/bash
# TIMES yum-size changes (forth, back) to the replicas; perf stat counts, over the
# replicas' sshd listeners and all below them (the receivers), task-clock and syscalls.
N=${N:-20000}
CFG=$LAB_PRIMARY_DIR/goldsync-cpu-$N.toml
GOLD=$LAB_GOLDEN_DIR/tree-$N
IMG=$LAB_PRIMARY_DIR/image-$N
J=$LAB_PRIMARY_DIR/journal-$N
AGENT=$LAB_GOLDEN_DIR/goldsync-agent
sed -i "s#^receiver = .*#receiver = \"$BIN/goldsync\"#" "$CFG"
sed -i "/^replica_ssh_persist/d" "$CFG"
read -r -a RD <<< "$LAB_REPLICA_DIRS"
ROOTS=""
for d in "${RD[@]}"; do ROOTS="$ROOTS $(cat "$(dirname "$d")/sshd/sshd.pid")"; done
sshdpids() {
  cat /proc/[0-9]*/stat 2>/dev/null | sed 's/ (.*) / x /' | awk -v roots="$ROOTS" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) isroot[r[i]] = 1 }
    { pp[$1] = $4 }
    END { out = ""; for (p in pp) { q = p; while (!(q in isroot) && q > 1) q = pp[q]; if (q in isroot) out = out (out == "" ? "" : ",") p }; print out }'
}
for i in $(seq ${TIMES:-2}); do
  if [ -d "$J" ]; then "$BIN/gentree" revert -journal "$J" "$GOLD" > /dev/null && rm -rf "$J"; else "$BIN/gentree" mutate -change yum -journal "$J" "$GOLD" > /dev/null; fi
  "$BIN/goldsync" pull --no-progress -e "$LAB_RSH" --agent-path "$AGENT" "$LAB_GOLDEN:$GOLD" "$IMG" > /dev/null
  perf stat -x, -e task-clock,syscalls:sys_enter_nanosleep,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_read,context-switches -p "$(sshdpids)" -o /tmp/perf-recv.$$ & ps=$!
  sleep 0.2
  echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
  $BIN/fanout -config "$CFG" | grep -E "receive:" | sed 's/.*cpu/cpu/' | tr '\n' ';'; echo
  sleep 0.1; kill -INT $ps; wait $ps
  awk -F, '/^[0-9]/ {printf "%s=%s ", $3, $1} END {print ""}' /tmp/perf-recv.$$
done
