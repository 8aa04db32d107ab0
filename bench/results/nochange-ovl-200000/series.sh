#!/bin/sh
# series.sh S N: N alternated pairs (new first in odd pairs, old first in even ones)
cd /work/wt-ovl
S=$1 N=$2
for i in $(seq 1 $N); do
	if [ $((i % 2)) = 1 ]; then order="new old"; else order="old new"; fi
	for v in $order; do
		PULL_ARGS="-vv --log-format json" PORT=42782 M=/var/tmp/ovl nice -n 10 bash bench/ssh-pull.sh pull $v /var/tmp/gstrees/syn200000 /var/tmp/ovl/dst $S-$i >> /var/tmp/ovl/res/$S.$v.sum 2>&1
		python3 /var/tmp/ovl/tl.py /var/tmp/ovl/$v/$S-$i >> /var/tmp/ovl/res/$S.$v.tl
	done
done
