#!/bin/bash
# no-change pull at 225k through a local rsh: BIN=dir TAG=x; state dir shared per BIN
T=/var/tmp/goldsync-bench/trees/syn200000-s1; D=/var/tmp/nc-dst/$TAG
mkdir -p /var/tmp/nc-dst /tmp/ncst-$TAG /tmp/pf
cat > /tmp/ncw-$TAG.sh <<EOW
#!/bin/sh
exec $BIN/rusage -o /tmp/pf/nc.jsonl -tag agent-$TAG -- $BIN/goldsync-agent "\$@" --state-dir /tmp/ncst-$TAG 2>>/tmp/pf/gct-$TAG.txt
EOW
chmod +x /tmp/ncw-$TAG.sh
[ -d $D ] || $BIN/goldsync pull --no-progress -e /tmp/fakessh --agent-path /tmp/ncw-$TAG.sh localhost:$T $D >/dev/null 2>&1
$BIN/rusage -o /tmp/pf/nc.jsonl -tag server-$TAG -- $BIN/goldsync pull --no-progress -e /tmp/fakessh --agent-path /tmp/ncw-$TAG.sh localhost:$T $D >/dev/null 2>&1
