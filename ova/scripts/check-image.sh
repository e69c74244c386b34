#!/bin/bash
# Offline checks of the system disk: fsck of the root partition, the files Berth needs, the ESP.
# usage: check-image.sh DISK.raw
set -euo pipefail
RAW=$1
export MTOOLS_SKIP_CHECK=1
start=$(sfdisk -J "$RAW" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).partitiontable.partitions[1].start))')
img="$RAW?offset=$(( start * 512 ))"
e2fsck -fn "$img" >/dev/null
for f in /usr/local/bin/node /opt/berth/dist/src/main.js /opt/berth/package.json /opt/berth-appliance/setup.js \
         /opt/berth-appliance/http80.js /etc/systemd/system/berth.service /etc/systemd/system/berth-setup.service \
         /usr/local/sbin/berth-support-bundle; do
  debugfs -R "stat $f" "$img" 2>/dev/null | grep -q 'Type: regular' || { echo "missing on the root file system: $f" >&2; exit 1; }
done
debugfs -R 'stat /usr/local/bin/node' "$img" 2>/dev/null | grep -q 'Mode:  0755' || { echo "/usr/local/bin/node is not 0755" >&2; exit 1; }
debugfs -R 'ls /opt/berth/prisma/migrations' "$img" 2>/dev/null | grep -q '[0-9]_' || { echo "no migrations in /opt/berth/prisma/migrations" >&2; exit 1; }
mdir -i "$RAW@@1M" ::/EFI/BOOT/BOOTX64.EFI >/dev/null
mtype -i "$RAW@@1M" ::/loader/entries/berth.conf | grep -q 'root=PARTUUID='
echo "system disk: fsck clean, Berth files present, ESP bootable"
