#!/usr/bin/env bash
# Builds the tests' base image without any image registry: a Debian root file system made by
# debootstrap (python3 + venv), saved as a tarball that `docker import` turns into an image.
# Usage: docker-base-image.sh OUT.tar   (reuses OUT.tar when it is already there)
set -euo pipefail
out=${1:?usage: docker-base-image.sh OUT.tar}
[ -s "$out" ] && exit 0
command -v debootstrap >/dev/null || { echo "docker-base-image: debootstrap is not installed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$work/rootfs" \
  "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$work/log" 2>&1 || { tail -20 "$work/log" >&2; exit 1; }
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
mkdir -p "$(dirname "$out")"
tar -C "$work/rootfs" -cf "$out.part" .
mv "$out.part" "$out"
