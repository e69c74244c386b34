#!/bin/bash
# A GPT/UEFI raw disk from a prepared rootfs, without loop devices or mounts:
# ESP (FAT32 via mkfs.vfat -C + mtools, systemd-boot from the rootfs) + ext4 root (mkfs.ext4 -d).
# usage: build-image.sh ROOTFS OUTDIR [DISK_MIB]
set -euo pipefail
ROOTFS=$1; OUT=$2; DISK_MIB=${3:-4096}
ESP_MIB=${ESP_MIB:-256}
ROOT_UUID=${ROOT_UUID:-b3e7a0c1-0000-4000-8000-0000000b0001}
ROOT_PARTUUID=${ROOT_PARTUUID:-b3e7a0c1-0000-4000-8000-0000000b0002}
ESP_PARTUUID=${ESP_PARTUUID:-b3e7a0c1-0000-4000-8000-0000000b0003}
DISK_GUID=${DISK_GUID:-b3e7a0c1-0000-4000-8000-0000000b0004}
CMDLINE=${CMDLINE:-"root=PARTUUID=$ROOT_PARTUUID rw quiet console=tty0 console=ttyS0,115200"}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH MTOOLS_SKIP_CHECK=1
mkdir -p "$OUT"; rm -f "$OUT"/{esp.img,root.img,disk.raw}

ROOT_MIB=$(( DISK_MIB - ESP_MIB - 2 ))          # 1 MiB at each end for the GPTs
ESP_START=2048; ESP_SECT=$(( ESP_MIB * 2048 ))
ROOT_START=$(( ESP_START + ESP_SECT )); ROOT_SECT=$(( ROOT_MIB * 2048 ))

kver=$(ls "$ROOTFS"/boot/vmlinuz-* | sed 's#.*/vmlinuz-##' | sort -V | tail -n1)
efi="$ROOTFS/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
[ -f "$efi" ] || { echo "no systemd-boot in the rootfs ($efi): install systemd-boot-efi" >&2; exit 1; }

# 1. root file system straight from the directory
mkfs.ext4 -q -F -L berth-root -U "$ROOT_UUID" -E root_owner=0:0,hash_seed="$ROOT_UUID" -d "$ROOTFS" "$OUT/root.img" "${ROOT_MIB}M"

# 2. EFI system partition
mkfs.vfat -F 32 -n ESP -i b3e7a0c1 -C "$OUT/esp.img" $(( ESP_MIB * 1024 )) >/dev/null
mmd   -i "$OUT/esp.img" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -i "$OUT/esp.img" "$efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$OUT/esp.img" "$ROOTFS/boot/vmlinuz-$kver"    ::/vmlinuz
mcopy -i "$OUT/esp.img" "$ROOTFS/boot/initrd.img-$kver" ::/initrd.img
printf 'default berth.conf\ntimeout 0\nconsole-mode keep\neditor no\n' > "$OUT/loader.conf"
printf 'title Berth appliance (Debian 12, %s)\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' "$kver" "$CMDLINE" > "$OUT/berth.conf"
mcopy -i "$OUT/esp.img" "$OUT/loader.conf" ::/loader/loader.conf
mcopy -i "$OUT/esp.img" "$OUT/berth.conf" ::/loader/entries/berth.conf
rm -f "$OUT/loader.conf" "$OUT/berth.conf"

# 3. GPT on a sparse file; partitions written at their offsets
truncate -s "${DISK_MIB}M" "$OUT/disk.raw"
sfdisk -q "$OUT/disk.raw" <<SF
label: gpt
label-id: $DISK_GUID
unit: sectors
first-lba: 2048
start=$ESP_START, size=$ESP_SECT, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$ESP_PARTUUID, name="ESP"
start=$ROOT_START, size=$ROOT_SECT, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$ROOT_PARTUUID, name="root"
SF
dd if="$OUT/esp.img"  of="$OUT/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$OUT/root.img" of="$OUT/disk.raw" bs=1M seek=$(( 1 + ESP_MIB )) conv=notrunc,sparse status=none
rm -f "$OUT/esp.img" "$OUT/root.img"
sfdisk -l "$OUT/disk.raw"
