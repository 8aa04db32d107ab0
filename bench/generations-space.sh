#!/bin/bash
# Ten pulls of a ~960 MB tree (/usr/share + /usr/bin) with yum-size changes
# between them, then du of the image and of its state dir.
set -e
# Needs goldsync (GS, default bin/goldsync) with goldsync-agent beside it.
D=${D:-/tmp/gen-demo}
GS=${GS:-$PWD/bin/goldsync}
rm -rf $D/golden $D/image $D/.image.goldsync
mkdir -p $D/golden
cp -a /usr/share /usr/bin $D/golden/
$GS pull --keep-generations 20 $D/golden/ $D/image >/dev/null
files=($(cd $D/golden && find bin -type f -size +20k | sort))
for g in $(seq 2 10); do
  # "yum update": replace 40 binaries (new content, temp+rename),
  # install a package dir of ~5 MB, remove one installed earlier.
  for i in $(seq 0 39); do
    f=${files[$(( (g*131 + i*17) % ${#files[@]} ))]}
    cp -p $D/golden/$f $D/golden/$f.new && head -c 4096 /dev/urandom >> $D/golden/$f.new && mv $D/golden/$f.new $D/golden/$f
  done
  mkdir -p $D/golden/lib/pkg-$g && head -c 5M /dev/urandom > $D/golden/lib/pkg-$g/lib.so
  [ $g -gt 3 ] && rm -rf $D/golden/lib/pkg-$((g-2))
  /usr/bin/time -f "pull $g: %es" $GS pull --keep-generations 20 $D/golden/ $D/image >/dev/null
done
$GS generations $D/image
du -sh $D/image
du -sch $D/image $D/.image.goldsync | tail -1
