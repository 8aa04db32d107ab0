#!/bin/sh
cd /work/wt-ovl
S=$1 N=$2
for i in $(seq 1 $N); do
	case $((i % 3)) in 1) order="new new2 old";; 2) order="old new new2";; 0) order="new2 old new";; esac
	for v in $order; do
		PULL_ARGS="-vv --log-format json" PORT=42782 M=/var/tmp/ovl nice -n 10 bash bench/ssh-pull.sh pull $v /var/tmp/gstrees/syn200000 /var/tmp/ovl/dst $S-$i >> /var/tmp/ovl/res/$S.$v.sum 2>&1
		python3 /var/tmp/ovl/tl.py /var/tmp/ovl/$v/$S-$i >> /var/tmp/ovl/res/$S.$v.tl
	done
done
