#!/bin/sh
# ssh-pull.sh: one pull over a private loopback sshd, with the CPU of every
# process of it, as bench/README.md's "The golden node's no-change CPU,
# round 4" measures it.
#
#	bench/ssh-pull.sh sshd                # start the private sshd ($M/sshd, port $PORT)
#	bench/ssh-pull.sh pull V SRC DST TAG  # one pull of 127.0.0.1:SRC into DST
#	bench/ssh-pull.sh stop                # stop that sshd
#
# V is a directory of binaries built by mem-pull.sh (M=... mem-pull.sh build V):
# the agent runs as $M/V/goldsync-agent (rusage around it, its state in
# $M/V/agent-state), reached with --agent-path. Environment does not cross
# ssh: what the agent needs (GCTRACE=1, PROFILE=1, AGENT_ENV="X=1; export X")
# goes through $M/V/ssh.env. PULL_ARGS are goldsync's own flags (-vv --log-format
# json: the run's timeline in $M/V/TAG.log). The last line printed sums it up:
#
#	TAG wall=S server_cpu=S ssh_cpu=S agent_cpu=S sshd_cpu=S agent_rss_mib=N [agent_gcs=N] load=...
#
# server_cpu is goldsync's own (its ssh client's, run under rusage, taken
# out); sshd_cpu is what the sshd daemon reaped for the session (its
# cutime+cstime, 10 ms ticks) less the agent's: the session's sshd, the
# login shell and the wrappers. Nothing else may use this sshd meanwhile.
set -eu
M=${M:-/var/tmp/gsmem}
PORT=${PORT:-42777}
S=$M/sshd
cmd=$1
case $cmd in
sshd)
	mkdir -p "$S" /run/sshd
	[ -f "$S/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$S/host_key"
	[ -f "$S/id" ] || ssh-keygen -q -t ed25519 -N '' -f "$S/id"
	cp "$S/id.pub" "$S/authorized_keys"
	echo "[127.0.0.1]:$PORT $(cat "$S/host_key.pub")" >"$S/known_hosts"
	cat >"$S/sshd_config" <<EOC
ListenAddress 127.0.0.1:$PORT
HostKey $S/host_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
LogLevel ERROR
UsePAM no
StrictModes no
PermitRootLogin yes
EOC
	cat >"$S/rsh" <<EOC
#!/bin/sh
exec /usr/bin/ssh -F none -p $PORT -i $S/id -o UserKnownHostsFile=$S/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -o LogLevel=ERROR "\$@"
EOC
	chmod +x "$S/rsh"
	/usr/sbin/sshd -f "$S/sshd_config" -E "$S/log"
	;;
stop)
	kill "$(cat "$S/sshd.pid")"
	;;
pull)
	V=$2 SRC=$3 DST=$4 TAG=$5
	D=$M/$V
	OUT=$D/$TAG
	rm -f "$OUT".agent.jsonl "$OUT".ssh.jsonl "$OUT".agent.gctrace
	mkdir -p "$D/agent-state" "$D/prof" "$DST"
	{
		echo "GSMEM_OUT=$OUT.agent.jsonl; export GSMEM_OUT"
		[ "${GCTRACE:-0}" = 1 ] && echo "GSMEM_GCTRACE=$OUT.agent.gctrace; export GSMEM_GCTRACE"
		[ "${PROFILE:-0}" = 1 ] && echo "GOLDSYNC_PROFILE=$D/prof/$TAG.agent; export GOLDSYNC_PROFILE"
		[ -n "${AGENT_ENV:-}" ] && echo "$AGENT_ENV"
		true
	} >"$D/ssh.env"
	cat >"$D/agent-ssh" <<EOW
#!/bin/sh
. $D/ssh.env
exec $D/goldsync-agent "\$@"
EOW
	chmod +x "$D/agent-ssh"
	SSHD=$(cat "$S/sshd.pid")
	c0=$(awk '{print $16+$17}' /proc/"$SSHD"/stat)
	if [ "${PROFILE:-0}" = 1 ]; then
		GOLDSYNC_PROFILE=$D/prof/$TAG.server
		export GOLDSYNC_PROFILE
	fi
	rc=0
	/usr/bin/time -f '%e s wall %U user %S sys %M maxrss_kib' -o "$OUT.time" \
		"$D/goldsync" ${PULL_ARGS:-} pull --no-progress -e "$D/rusage -o $OUT.ssh.jsonl -tag ssh -- $S/rsh" \
		--agent-path "$D/agent-ssh" "root@127.0.0.1:$SRC" "$DST" >"$OUT.log" 2>&1 || rc=$?
	sleep 0.3 # the daemon reaps the session
	c1=$(awk '{print $16+$17}' /proc/"$SSHD"/stat)
	j() { sed -n 's/.*"user_ns":\([0-9]*\),"sys_ns":\([0-9]*\).*/\1 \2/p' "$1" | awk '{s+=$1+$2} END {printf "%.2f", s/1e9}'; }
	acpu=$(j "$OUT.agent.jsonl")
	scpu=$(j "$OUT.ssh.jsonl")
	am=$(sed -n 's/.*"max_rss":\([0-9]*\).*/\1/p' "$OUT.agent.jsonl" | sort -n | tail -1)
	gcpu=$(awk -v s="$scpu" '{printf "%.2f", $4+$6-s}' "$OUT.time")
	wall=$(awk '{print $1}' "$OUT.time")
	sshd=$(awk -v a="$acpu" -v c0="$c0" -v c1="$c1" 'BEGIN {printf "%.2f", (c1-c0)/100 - a}')
	gcs=
	[ -f "$OUT.agent.gctrace" ] && gcs=" agent_gcs=$(grep -c '^gc ' "$OUT.agent.gctrace" || true)"
	echo "$TAG rc=$rc wall=$wall server_cpu=$gcpu ssh_cpu=$scpu agent_cpu=$acpu sshd_cpu=$sshd agent_rss_mib=$(awk -v a="$am" 'BEGIN {printf "%.2f", a/1048576}')$gcs load=$(cut -d' ' -f1-3 /proc/loadavg)"
	;;
*)
	echo "usage: $0 sshd | pull V SRC DST TAG | stop" >&2
	exit 2
	;;
esac
