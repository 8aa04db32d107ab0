#!/bin/bash
# run fanout (no change) TIMES times with binaries BIN, using the config replica-cpu.sh wrote
CFG=$LAB_PRIMARY_DIR/goldsync-cpu-${N:-20000}.toml
# use the bare receiver of BIN
sed -i "s#^receiver = .*#receiver = \"$BIN/goldsync\"#" "$CFG"
sed -i "/^replica_ssh_persist/d" "$CFG"
for i in $(seq ${TIMES:-2}); do
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  $BIN/fanout -config "$CFG" | grep -E "fan-out|receive:" | sed 's/.*image-[0-9]*: //'
done
