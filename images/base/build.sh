#!/usr/bin/env bash
# Builds the base image into the image cache, once per recipe:
#   ${HIVE_IMAGE_CACHE:-/var/cache/hive/images}/base-<hash12>/{rootfs,image.json}
#   ${HIVE_IMAGE_CACHE}/base -> base-<hash12>
# <hash12> covers this script and the recipe, so changing either builds a new image and
# sandboxes created from an older build keep theirs. Packages come through the host's own
# apt sources (its deb822 file is handed to mmdebstrap); no mirror is named here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=$(basename "$here")
cache=${HIVE_IMAGE_CACHE:-/var/cache/hive/images}
# shellcheck source=/dev/null
source "$here/recipe"
hash=$(cat "$here/recipe" "$here/build.sh" | sha256sum | cut -c1-12)
target="$cache/$name-$hash"

if [[ -f "$target/image.json" && -d "$target/rootfs/usr" ]]; then
  echo "==> image $name: cached ($target)"
else
  command -v mmdebstrap >/dev/null || { echo "==> image $name: installing mmdebstrap"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null; }
  sources=()
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
    [[ -s "$f" ]] && sources+=("$f")
  done
  ((${#sources[@]})) || { echo "error: the host has no apt sources to build the image from" >&2; exit 1; }
  aptopts=()
  for f in /etc/apt/apt.conf.d/*; do
    # Carry over the host's acquire settings (proxies, date checks), nothing else.
    grep -q '^Acquire::' "$f" 2>/dev/null && aptopts+=("--aptopt=$f")
  done

  mkdir -p "$cache"
  staging=$(mktemp -d "$cache/.$name-$hash.XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  echo "==> image $name: building $SUITE/$VARIANT with ${PACKAGES// /, } (takes a few minutes, once)"
  start=$(date +%s)
  mmdebstrap --quiet --variant="$VARIANT" --include="${PACKAGES// /,}" \
    "${aptopts[@]}" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='echo sandbox > "$1/etc/hostname"' \
    --customize-hook='printf "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" > "$1/etc/hosts"' \
    --customize-hook='printf "# network mode none: no resolver\n" > "$1/etc/resolv.conf"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log; chmod 1777 "$1/tmp"' \
    "$SUITE" "$staging/rootfs" "${sources[@]}"
  cat > "$staging/image.json" <<JSON
{"env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"], "entrypoint": [], "cmd": [], "workdir": "/"}
JSON
  chmod 755 "$staging"
  mv "$staging" "$target"
  trap - EXIT
  echo "==> image $name: built in $(( $(date +%s) - start ))s, $(du -sh "$target/rootfs" | cut -f1)"
fi
ln -sfn "$(basename "$target")" "$cache/$name.tmp" && mv -T "$cache/$name.tmp" "$cache/$name"
