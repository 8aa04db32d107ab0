#!/bin/bash
# goldsync dracut module: after dracut has mounted the image read-only at
# $NEWROOT (root=nfs:SERVER:PATH:OPTS), mount this node's snapshot and bind
# its paths (pre-pivot hook). Inert without goldsync.snapshot= on the kernel
# command line. Written by `goldsync-agent boot install`; do not edit.

# Only when asked for: /etc/dracut.conf.d/90-goldsync.conf adds it.
check() {
	return 255
}

depends() {
	echo nfs network
	return 0
}

install() {
	inst_multiple mount mkdir cp cat sleep
	inst_hook pre-pivot 50 "$moddir/goldsync-pre-pivot.sh"
}
