#!/bin/bash
# Turns a debootstrapped rootfs into the Berth appliance: chroot only, no mounts.
# usage: customize-rootfs.sh ROOTFS NODE_BINARY APP_DIR APPLIANCE_JS_DIR
set -euo pipefail
R=$1; NODE=$2; APP=$3; AJS=$4
OVA=$(cd "$(dirname "$0")/.." && pwd)

cp -a --no-preserve=ownership "$OVA/rootfs"/. "$R"/
strip -o "$R/usr/local/bin/node" "$NODE"; chmod 0755 "$R/usr/local/bin/node"
rm -rf "$R/opt/berth" "$R/opt/berth-appliance"
cp -a "$APP" "$R/opt/berth"
mkdir -p "$R/opt/berth-appliance"
cp -a "$AJS"/*.js "$R/opt/berth-appliance/"
printf '{ "type": "module" }\n' > "$R/opt/berth-appliance/package.json"
chown -R 0:0 "$R/opt/berth" "$R/opt/berth-appliance"
chmod -R u+rwX,go+rX,go-w "$R/opt/berth" "$R/opt/berth-appliance"

echo berth > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tberth\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
echo "UUID=${ROOT_UUID:-b3e7a0c1-0000-4000-8000-0000000b0001} / ext4 defaults,errors=remount-ro 0 1" > "$R/etc/fstab"
mkdir -p "$R/var/lib/berth" "$R/var/log/journal" "$R/etc/issue.d"
printf 'Debian GNU/Linux 12 \\n \\l  (Berth appliance)\n\n' > "$R/etc/issue"

chroot "$R" /bin/sh -eu <<'IN'
id berth >/dev/null 2>&1 || useradd --system --home-dir /var/lib/berth --no-create-home --shell /usr/sbin/nologin --comment "Berth registry" berth
id admin >/dev/null 2>&1 || useradd -m -s /bin/bash -c "Appliance administrator" -G sudo,systemd-journal admin
passwd -l admin >/dev/null
passwd -l root >/dev/null
ln -sf /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
systemctl enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
  berth-setup.service berth.service berth-http.service >/dev/null 2>&1
systemctl mask apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
IN
# Node and Berth's native addon must load inside the target (glibc, libstdc++ present)
chroot "$R" /usr/local/bin/node -e 'console.log("node in rootfs:", process.version)'
chroot "$R" /bin/sh -c 'cd /opt/berth && /usr/local/bin/node -e "require(\"better-sqlite3\")(\":memory:\").prepare(\"select 1\").get(); console.log(\"better-sqlite3 loads\")"'

# kernel modules an appliance VM never loads
for kdir in "$R"/usr/lib/modules/*/; do
  [ -d "$kdir/kernel" ] || continue
  k=$kdir/kernel
  rm -rf "$k"/sound "$k"/drivers/media "$k"/drivers/net/wireless "$k"/net/wireless "$k"/net/mac80211 \
         "$k"/net/bluetooth "$k"/drivers/bluetooth "$k"/drivers/infiniband "$k"/drivers/iio \
         "$k"/drivers/staging "$k"/drivers/isdn "$k"/drivers/gpu/drm/amd "$k"/drivers/gpu/drm/nouveau \
         "$k"/drivers/gpu/drm/radeon "$k"/drivers/gpu/drm/i915 "$k"/drivers/net/ethernet/mellanox
  chroot "$R" depmod -a "$(basename "$kdir")"
done

# image hygiene: no per-instance identity, no caches
: > "$R/etc/machine-id"; rm -f "$R/var/lib/dbus/machine-id"
rm -f "$R"/etc/ssh/ssh_host_*
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/cache/apt/*.bin "$R"/var/lib/apt/lists/* "$R"/var/log/*.log \
       "$R"/tmp/* "$R"/root/.bash_history "$R"/var/cache/debconf/*-old "$R"/var/lib/dpkg/*-old
rm -rf "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/info/* "$R"/usr/share/locale/*
