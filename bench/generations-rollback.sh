#!/bin/bash
# Rollback of a yum-size change on a synthetic tree (N regular files,
# default 200000: about 225k entries, 2 GiB) against rsync re-pulling the
# same state from a saved copy. Each timing is taken twice (back and forth
# twice); the load average is printed beside them (the machine is shared).
set -e
# Needs goldsync (GS) with goldsync-agent beside it, and gentree (GENTREE).
N=${N:-200000}
B=${B:-/var/tmp/gs-gen-bench/rollback-$N}
GS=${GS:-$PWD/bin/goldsync}
GENTREE=${GENTREE:-$PWD/bin/gentree}
mkdir -p $B
cd $B
T() { echo "  load: $(cut -d' ' -f1-3 /proc/loadavg)"; /usr/bin/time -f "$1: %es (user %Us sys %Ss, max RSS %MKB)" "${@:2}"; }
if [ "$REUSE" != 1 ]; then
  rm -rf golden golden-at1 image image-rsync .image.goldsync journal
  $GENTREE tree -n $N golden > /dev/null
  T "pull 1 (full)" $GS pull golden/ image > /dev/null
  cp -a golden golden-at1
  $GENTREE mutate -change yum -journal journal golden > mutate.json
  T "pull 2 (yum change)" $GS pull golden/ image > /dev/null
  cp -a image image-rsync
else
  # REUSE=1: the trees of an earlier run (image and image-rsync at state 2).
  echo "reusing the trees in $B"
fi
echo "entries: $(find golden | wc -l), size: $(du -sh golden | cut -f1)"
$GS diff image 1 2 | wc -l | sed 's/^/itemized changes 1->2: /'
for run in 1 2; do
  echo "== run $run"
  T "rollback to 1 (back)" $GS rollback image 1
  echo "rsync -n lines image vs golden-at1: $(rsync -aHAXSn --numeric-ids --delete -i golden-at1/ image/ | wc -l)"
  T "rsync re-pull of state 1 from the saved copy" rsync -aHAXS --numeric-ids --delete golden-at1/ image-rsync/
  T "rollback to 2 (forward)" $GS rollback image 2
  echo "rsync -n lines image vs golden: $(rsync -aHAXSn --numeric-ids --delete -i golden/ image/ | wc -l)"
  T "rsync re-pull of state 2 from the saved copy" rsync -aHAXS --numeric-ids --delete golden/ image-rsync/
done
$GS generations image
du -sh image; du -sch image .image.goldsync | tail -1; du -sh --count-links .image.goldsync/generations/objects
