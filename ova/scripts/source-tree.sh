#!/bin/bash
# Which files of a Berth source tree go into the appliance, and which time stamps it, in a git
# checkout and in an unpacked source archive (a release tarball, `git archive`, a GitHub download).
#
#   source-tree.sh files <repo>          NUL-separated relative paths on stdout
#   source-tree.sh epoch <repo>          SOURCE_DATE_EPOCH on stdout
#   source-tree.sh copy  <repo> <dest>   copies the files into <dest> (created if missing)
#
# Each prints one line to stderr saying which source it used:
#   files: the git working tree (tracked and untracked, not ignored: git ls-files -co --exclude-standard)
#          when <repo> is the top of a git checkout; otherwise the package's file list
#          (npm pack --dry-run: package.json "files" or npm's default rules with .npmignore/.gitignore)
#          plus package-lock.json, which npm never packs but `npm ci` needs.
#   epoch: $SOURCE_DATE_EPOCH when set; else the last commit's time in a git checkout; else the
#          newest modification time among the files above (an archive keeps the commit's times).
set -euo pipefail
cmd=${1:-}; REPO=${2:-}
[ -n "$cmd" ] && [ -d "$REPO" ] || { echo "usage: source-tree.sh files|epoch|copy <repo> [dest]" >&2; exit 2; }
REPO=$(cd "$REPO" && pwd)

# A git checkout whose top is <repo> (not a source archive unpacked inside some other checkout).
is_checkout() {
  command -v git >/dev/null || return 1
  local top; top=$(git -C "$REPO" rev-parse --show-toplevel 2>/dev/null) || return 1
  [ "$(cd "$top" && pwd -P)" = "$(cd "$REPO" && pwd -P)" ]
}

files() {
  if is_checkout; then
    echo "source files: git working tree of $REPO (git ls-files)" >&2
    (cd "$REPO" && git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done)
  else
    command -v npm >/dev/null || { echo "not a git checkout and no npm to list the package's files" >&2; exit 1; }
    echo "source files: not a git checkout; the package's file list (npm pack --dry-run) + package-lock.json" >&2
    local json; json=$(cd "$REPO" && npm pack --dry-run --json --ignore-scripts --silent 2>/dev/null) || { echo "npm pack --dry-run failed in $REPO" >&2; exit 1; }
    (cd "$REPO" && node -e '
      const fs = require("fs");
      const files = JSON.parse(process.argv[1])[0].files.map((f) => f.path);
      for (const extra of ["package-lock.json", "npm-shrinkwrap.json"]) if (fs.existsSync(extra) && !files.includes(extra)) files.push(extra);
      process.stdout.write(files.sort().map((f) => f + "\0").join(""));
    ' "$json")
  fi
}

epoch() {
  if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    [[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || { echo "SOURCE_DATE_EPOCH must be seconds since 1970: $SOURCE_DATE_EPOCH" >&2; exit 1; }
    echo "source date: SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH from the environment" >&2
    echo "$SOURCE_DATE_EPOCH"
  elif is_checkout && git -C "$REPO" rev-parse -q --verify HEAD >/dev/null; then
    local t; t=$(git -C "$REPO" log -1 --format=%ct HEAD)
    echo "source date: $t, the last commit's time (git log)" >&2
    echo "$t"
  else
    local t; t=$(files 2>/dev/null | (cd "$REPO" && xargs -0 -r stat -c %Y --) | sort -n | tail -1)
    [ -n "$t" ] || { echo "no files to date in $REPO" >&2; exit 1; }
    echo "source date: $t, the newest file time (no git history; set SOURCE_DATE_EPOCH to choose)" >&2
    echo "$t"
  fi
}

case $cmd in
  files) files ;;
  epoch) epoch ;;
  copy)
    DEST=${3:?usage: source-tree.sh copy <repo> <dest>}
    mkdir -p "$DEST"
    list=$(mktemp); trap 'rm -f "$list"' EXIT
    files > "$list"
    (cd "$REPO" && tar --null --no-recursion -T "$list" -cf -) | tar xf - -C "$DEST"
    echo "source files: $(tr -cd '\0' < "$list" | wc -c) copied to $DEST" >&2
    ;;
  *) echo "unknown command $cmd (files, epoch, copy)" >&2; exit 2 ;;
esac
