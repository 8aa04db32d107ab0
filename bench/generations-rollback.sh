#!/bin/bash
# Rollback of a yum-size change on a 100k-file synthetic tree against rsync
# re-pulling the same state from a saved copy.
set -e
# Needs goldsync (GS) with goldsync-agent beside it, and gentree (GENTREE).
B=${B:-/var/tmp/gs-gen-bench}
GS=${GS:-$PWD/bin/goldsync}
GENTREE=${GENTREE:-$PWD/bin/gentree}
mkdir -p $B
cd $B
rm -rf golden golden-at1 image image-rsync .image.goldsync journal
T() { /usr/bin/time -f "$1: %es (user %Us sys %Ss, max RSS %MKB)" "${@:2}"; }
$GENTREE tree -n 100000 golden > /dev/null
echo "entries: $(find golden | wc -l), size: $(du -sh golden | cut -f1)"
T "pull 1 (full)" $GS pull golden/ image > /dev/null
cp -a golden golden-at1
$GENTREE mutate -change yum -journal journal golden > mutate.json
T "pull 2 (yum change)" $GS pull golden/ image > /dev/null
cp -a image image-rsync
$GS diff image 1 2 | wc -l | sed 's/^/itemized changes 1->2: /'
T "rollback 2->1" $GS rollback image 1
echo "rsync -n lines image vs golden-at1: $(rsync -aHAXSn --numeric-ids --delete -i golden-at1/ image/ | wc -l)"
T "rsync re-pull of state 1 from the saved copy" rsync -aHAXS --numeric-ids --delete golden-at1/ image-rsync/
T "rollback 1->2 (forward)" $GS rollback image 2
echo "rsync -n lines image vs golden: $(rsync -aHAXSn --numeric-ids --delete -i golden/ image/ | wc -l)"
T "rsync re-pull of state 2 from the saved copy" rsync -aHAXS --numeric-ids --delete golden/ image-rsync/
$GS generations image
du -sh image; du -sh image .image.goldsync | tail -1; du -sh --count-links .image.goldsync/generations/objects
