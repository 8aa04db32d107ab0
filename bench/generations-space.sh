#!/bin/bash
# Ten generations of yum-size changes on a debootstrapped Debian root (with
# a kernel), then du of the image, of the state dir's generations, against
# one image; then one kernel update (new kernel and modules, old removed);
# then rollbacks to the first generation and forward again, each checked
# with rsync -n against a saved copy of the golden tree.
set -e
# Needs goldsync (GS) with goldsync-agent beside it, and gentree (GENTREE).
# ROOT is copied (cp -a), never written.
ROOT=${ROOT:-/var/cache/goldsync-e2e/bookworm-initramfs-tools-dc6f205e}
B=${B:-/var/tmp/gs-gen-bench/space}
GS=${GS:-$PWD/bin/goldsync}
GENTREE=${GENTREE:-$PWD/bin/gentree}
mkdir -p $B
cd $B
rm -rf golden golden-at1 image .image.goldsync j*
cp -a $ROOT golden
echo "golden: $(find golden | wc -l) entries, du $(du -sh golden | cut -f1)"
P() { /usr/bin/time -f "$1: %es" $GS pull --keep-generations 20 golden/ image >/dev/null; }
P "pull 1"
cp -a golden golden-at1
for g in $(seq 2 10); do
  $GENTREE mutate -change yum -seed $g -journal $B/j$g golden > j$g.json
  P "pull $g (yum change)"
done
$GS generations image
echo "== after ten generations of yum changes (load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "one image (du -sh image):                 $(du -sh image | cut -f1)"
echo "state dir alone (du -sh .image.goldsync):  $(du -sh .image.goldsync | cut -f1)"
echo "  of which generation objects:            $(du -sh .image.goldsync/generations/objects | cut -f1)"
echo "  of which manifests:                     $(du -shc .image.goldsync/generations/[0-9]*/manifest* | tail -1 | cut -f1)"
echo "image + state dir (du -sch, links once):  $(du -sch image .image.goldsync | tail -1 | cut -f1)"
echo "ten copies of the image would be:         $(( $(du -sk image | cut -f1) * 10 / 1024 )) MiB"
# A kernel update: the new version's kernel, initrd, System.map, config and
# modules (new content), the old version's removed.
old=$(ls golden/boot | sed -n 's/^vmlinuz-//p' | head -1)
new=${old/-50-/-51-}
for f in vmlinuz initrd.img System.map config; do
  cp -p golden/boot/$f-$old golden/boot/$f-$new && head -c 4096 /dev/urandom >> golden/boot/$f-$new
  rm golden/boot/$f-$old
done
cp -a golden/usr/lib/modules/$old golden/usr/lib/modules/$new
find golden/usr/lib/modules/$new -type f -name '*.ko*' -exec sh -c 'for f; do head -c 64 /dev/urandom >> "$f"; done' _ {} +
rm -rf golden/usr/lib/modules/$old
ln -sfn boot/vmlinuz-$new golden/vmlinuz; ln -sfn boot/initrd.img-$new golden/initrd.img
P "pull 11 (kernel update $old -> $new)"
echo "== after the kernel update (load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "state dir alone (du -sh .image.goldsync):  $(du -sh .image.goldsync | cut -f1)"
echo "  of which generation objects:            $(du -sh .image.goldsync/generations/objects | cut -f1)"
echo "image + state dir (du -sch, links once):  $(du -sch image .image.goldsync | tail -1 | cut -f1)"
/usr/bin/time -f "rollback to 1: %es" $GS rollback image 1 > /dev/null
echo "rsync -n lines image vs golden-at1: $(rsync -aHAXSn --numeric-ids --delete -i golden-at1/ image/ | wc -l)"
/usr/bin/time -f "rollback to 11: %es" $GS rollback image 11 > /dev/null
echo "rsync -n lines image vs golden: $(rsync -aHAXSn --numeric-ids --delete -i golden/ image/ | wc -l)"
$GS generations image | tail -3
