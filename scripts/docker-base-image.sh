#!/usr/bin/env bash
# Builds the tests' base image without any image registry: a Debian root file system made by
# debootstrap (python3 + venv), saved as a tarball that `docker import` turns into an image.
# Like Debian's slim images, it holds no documentation, manual pages or translations (about
# 50 MB of the 170 a plain minbase has), and keeps dpkg from installing them later.
# Usage: docker-base-image.sh OUT.tar   (reuses OUT.tar when it is already there)
set -euo pipefail
out=${1:?usage: docker-base-image.sh OUT.tar}
[ -s "$out" ] && exit 0
command -v debootstrap >/dev/null || { echo "docker-base-image: debootstrap is not installed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$root" \
  "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$work/log" 2>&1 || { tail -20 "$work/log" >&2; exit 1; }
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* "$root/var/cache/debconf/"*-old \
  "$root/var/log/"*.log "$root/var/log/apt/"* "$root/usr/share/lintian" "$root/usr/share/linda"
# documentation, manual pages and translations: nothing at run time reads them (copyright
# files stay, as Debian's slim images keep them)
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/groff/"*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
cat >"$root/etc/dpkg/dpkg.cfg.d/01-gitml-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
CFG
mkdir -p "$(dirname "$out")"
tar -C "$root" -cf "$out.part" .
mv "$out.part" "$out"
