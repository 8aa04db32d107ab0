#!/bin/sh
# mem-pull.sh: one local pull with both sides' peak memory, as bench/README.md's
# "The 1M row" and "The image server flat at 1M" measure it.
#
#	bench/mem-pull.sh build V            # build goldsync, goldsync-agent, rusage into $M/V
#	bench/mem-pull.sh pull V SRC DST TAG # one pull of SRC into DST, figures under $M/V/TAG.*
#
# $M defaults to /var/tmp/gsmem. A local pull runs the agent as goldsync's child;
# $M/V/goldsync-agent is a wrapper running the real agent under rusage (its
# max_rss is the agent's peak RSS, the golden node's side) with its state in
# $M/V/agent-state (CLEAN=1 removes it first: a full pull with a cold cache).
# The image server's peak is its VmHWM polled every 20 ms from /proc (rusage on
# goldsync would report the larger of the two processes); /usr/bin/time's figure
# for goldsync is kept beside it in case the poll missed the process. With
# PROFILE=1 GOLDSYNC_PROFILE writes CPU and heap profiles (.peak: the live heap
# at its largest) of both processes to $M/V/prof/TAG.*. The last line printed
# sums it up (with GCTRACE=1 the agent runs with GODEBUG=gctrace=1, its
# stderr in $M/V/TAG.agent.gctrace, and agent_gcs counts its collections):
#
#	TAG server_hwm_kib=N server_time_maxrss_kib=N agent_maxrss_kib=N agent_cpu_s=N server_cpu_s=N
set -eu
M=${M:-/var/tmp/gsmem}
cmd=$1
V=$2
D=$M/$V
case $cmd in
build)
	mkdir -p "$D"
	top=$(cd "$(dirname "$0")/.." && pwd)
	# as make build builds them (the agent without cgo); the wrapper of an
	# earlier build is in the agent's way
	rm -f "$D/goldsync-agent"
	(cd "$top" && make -s build BIN="$D" && mv "$D/goldsync-agent" "$D/goldsync-agent.real")
	(cd "$top/bench" && go build -o "$D/" ./cmd/rusage)
	cat >"$D/goldsync-agent" <<EOF
#!/bin/sh
if [ -n "\${GSMEM_GCTRACE:-}" ]; then
	GODEBUG=gctrace=1
	export GODEBUG
	exec 2>>"\$GSMEM_GCTRACE"
fi
exec $D/rusage -o \${GSMEM_OUT:-$D/agent.jsonl} -tag agent -- $D/goldsync-agent.real --state-dir $D/agent-state "\$@"
EOF
	chmod +x "$D/goldsync-agent"
	;;
pull)
	SRC=$3 DST=$4 TAG=$5
	OUT=$D/$TAG
	rm -f "$OUT".agent.jsonl "$OUT".hwm "$OUT".time
	[ "${CLEAN:-0}" = 1 ] && rm -rf "$D/agent-state"
	mkdir -p "$D/agent-state" "$D/prof" "$DST"
	if [ "${PROFILE:-0}" = 1 ]; then
		GOLDSYNC_PROFILE=$D/prof/$TAG
		export GOLDSYNC_PROFILE
	fi
	GSMEM_OUT=$OUT.agent.jsonl
	export GSMEM_OUT
	rm -f "$OUT.agent.gctrace"
	if [ "${GCTRACE:-0}" = 1 ]; then
		GSMEM_GCTRACE=$OUT.agent.gctrace
		export GSMEM_GCTRACE
	fi
	/usr/bin/time -f '%e s wall %U user %S sys %M maxrss_kib' -o "$OUT.time" \
		"$D/goldsync" pull --no-progress "$SRC" "$DST" >"$OUT.log" 2>&1 &
	TPID=$!
	# the goldsync process is /usr/bin/time's child
	GPID=
	while [ -z "$GPID" ] && kill -0 $TPID 2>/dev/null; do
		GPID=$(pgrep -P $TPID || true)
		[ -n "$GPID" ] || sleep 0.01
	done
	hwm=0
	while [ -n "$GPID" ] && kill -0 "$GPID" 2>/dev/null; do
		h=$(awk '/^VmHWM/ {print $2}' /proc/"$GPID"/status 2>/dev/null || true)
		[ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
		sleep 0.02
	done
	rc=0
	wait $TPID || rc=$?
	echo "$hwm" >"$OUT.hwm"
	cat "$OUT.time"
	am=$(sed -n 's/.*"max_rss":\([0-9]*\).*/\1/p' "$OUT.agent.jsonl" | sort -n | tail -1)
	am=$((am / 1024))
	acpu=$(sed -n 's/.*"user_ns":\([0-9]*\),"sys_ns":\([0-9]*\).*/\1 \2/p' "$OUT.agent.jsonl" | awk '{s+=$1+$2} END {printf "%.2f", s/1e9}')
	tm=$(awk '{print $8}' "$OUT.time")
	scpu=$(awk -v a="$acpu" '{printf "%.2f", $4+$6-a}' "$OUT.time")
	gcs=
	[ -f "$OUT.agent.gctrace" ] && gcs=" agent_gcs=$(grep -c '^gc ' "$OUT.agent.gctrace" || true)"
	echo "$TAG rc=$rc server_hwm_kib=$hwm server_time_maxrss_kib=$tm agent_maxrss_kib=$am agent_cpu_s=$acpu server_cpu_s=$scpu$gcs load=$(cut -d' ' -f1-3 /proc/loadavg)"
	;;
*)
	echo "usage: $0 build V | pull V SRC DST TAG" >&2
	exit 2
	;;
esac
