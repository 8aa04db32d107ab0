#!/bin/sh
# Synthesizes a small image root for snapshot benchmarks when debootstrap
# is not at hand: the directories of the default files list, filled with a
# few thousand small files of a few hundred bytes to 16 KiB, like a
# compute node's /etc, /var/lib and /var/log, plus a couple of larger
# ones. Deterministic: the same tree every time.
#
# usage: synth-root.sh DIR
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
mkdir -p etc/ssh etc/sysconfig/network-scripts etc/lvm/archive etc/lvm/backup etc/lvm/cache \
	var/lib var/log var/cache var/spool/cron var/spool/mail var/tmp var/account var/yp \
	var/run var/lock root home tmp usr/bin
for f in adjtime mtab ntp.conf resolv.conf sysconfig/network; do
	echo "# $f" > "etc/$f"
done
i=0
while [ $i -lt 40 ]; do
	echo "DEVICE=eth$i" > etc/sysconfig/network-scripts/ifcfg-eth$i
	i=$((i + 1))
done
for k in rsa dsa ecdsa ed25519; do
	head -c 1679 /dev/zero | tr '\0' 'k' > etc/ssh/ssh_host_${k}_key
	chmod 600 etc/ssh/ssh_host_${k}_key
	echo "ssh-$k AAAA" > etc/ssh/ssh_host_${k}_key.pub
done
echo "PermitRootLogin no" > etc/ssh/sshd_config
# /var/lib: package databases and service state, 2400 files in 60 dirs.
d=0
while [ $d -lt 60 ]; do
	mkdir -p var/lib/pkg$d/info
	f=0
	while [ $f -lt 40 ]; do
		head -c $(( (d * 40 + f) % 16 * 1024 + 200 )) /dev/zero | tr '\0' 'x' > var/lib/pkg$d/info/file$f.list
		f=$((f + 1))
	done
	d=$((d + 1))
done
head -c $((8 << 20)) /dev/zero | tr '\0' 'r' > var/lib/rpm-Packages
# /var/cache and /var/log.
i=0
while [ $i -lt 300 ]; do
	echo "cache entry $i" > var/cache/entry$i
	i=$((i + 1))
done
for l in messages secure maillog cron boot.log dmesg wtmp lastlog; do
	head -c 65536 /dev/zero | tr '\0' 'l' > var/log/$l
done
i=0
while [ $i -lt 100 ]; do
	echo "rotated $i" > var/log/messages.$i
	i=$((i + 1))
done
echo "0 * * * * true" > var/spool/cron/root
echo "alias ll='ls -l'" > root/.bashrc
echo "not in the lists" > usr/bin/tool
touch -d 2020-01-01 -h $(find . -print)
