#!/bin/bash
# one measured yum pull at 1M through a local "ssh": BIN=dir
T=/var/tmp/goldsync-bench/trees/syn1000000-s1; D=/var/tmp/goldsync-bench/dst/syn1000000-s1/goldsync; J=/tmp/prof1m/j
cat > /tmp/agentw.sh <<EOW
#!/bin/sh
exec $BIN/rusage -o /tmp/prof1m/remote.jsonl -tag agent-\$(basename $BIN) -- $BIN/goldsync-agent "\$@" --state-dir /var/tmp/goldsync-bench/agent-state
EOW
chmod +x /tmp/agentw.sh
/work/main/bin/gentree revert -journal $J $T >/dev/null 2>&1
$BIN/goldsync pull -e /tmp/fakessh --agent-path /tmp/agentw.sh localhost:$T $D >/dev/null 2>&1
/work/main/bin/gentree mutate -seed 1 -change yum -journal $J $T >/dev/null 2>&1
$BIN/rusage -o /tmp/prof1m/local.jsonl -tag server-$(basename $BIN) -- $BIN/goldsync pull -e /tmp/fakessh --agent-path /tmp/agentw.sh localhost:$T $D >/dev/null 2>&1
echo "$(basename $BIN) rc=$?"
