#!/bin/bash
# full pull through local rsh, agent profiled: BIN=dir SIZE=200000|50000|1000000 TAG=x
T=/var/tmp/goldsync-bench/trees/syn$SIZE-s1; D=/var/tmp/prof-dst/$SIZE
mkdir -p /tmp/pf; rm -rf $D /tmp/agst-$SIZE; mkdir -p /tmp/agst-$SIZE /var/tmp/prof-dst
cat > /tmp/agentw-$TAG.sh <<EOW
#!/bin/sh
${PROF:+export GOLDSYNC_PROFILE=/tmp/pf/$TAG-$SIZE GODEBUG=memprofilerate=8192}
exec $BIN/rusage -o /tmp/pf/ff.jsonl -tag agent-$TAG-$SIZE -- $BIN/goldsync-agent "\$@" --state-dir /tmp/agst-$SIZE
EOW
chmod +x /tmp/agentw-$TAG.sh
sync; echo 3 > /proc/sys/vm/drop_caches
$BIN/rusage -o /tmp/pf/ff.jsonl -tag server-$TAG-$SIZE -- $BIN/goldsync pull --no-progress -e /tmp/fakessh --agent-path /tmp/agentw-$TAG.sh localhost:$T $D >/dev/null 2>/tmp/pf/$TAG-$SIZE.err
echo "$TAG $SIZE rc=$?"
