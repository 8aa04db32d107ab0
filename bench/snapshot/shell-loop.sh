#!/bin/sh
# The loop admins write today to make per-node snapshot trees (what Red
# Hat's pxeboot did for each node): for every node and every listed path
# that exists in the image, cp -a --parents it into SNAP/NODE/.
#
# usage: shell-loop.sh IMAGE SNAP NODES-FILE LIST-FILE
set -u
image=$1 snap=$2 nodes=$3 list=$4
mkdir -p "$snap"
snap=$(cd "$snap" && pwd) # cp runs in the image: make it absolute
paths=$(sed -e 's/#.*//' "$list" | tr -s ' \t' '\n\n' | grep '^/')
while read -r ip host _; do
	case $ip in ''|'#'*) continue ;; esac
	mkdir -p "$snap/$host"
	for p in $paths; do
		p=${p%/}
		[ -e "$image$p" ] || [ -L "$image$p" ] || continue
		(cd "$image" && cp -a --parents ".$p" "$snap/$host/")
	done
done < "$nodes"
