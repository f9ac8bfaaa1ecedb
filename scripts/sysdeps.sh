#!/usr/bin/env bash
# Installs the system programs the tests run for real (sshd, prometheus, wrk, npm, rsync) when missing.
set -euo pipefail
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
# npm installs GitHub's OpenAPI description that tests/ci checks its fake API against
command -v npm >/dev/null 2>&1 || missing+=(npm)
# gitlab-ci-local copies the project with rsync when it runs jobs
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
# a real Docker engine (started by the tests with their own data root) and debootstrap for its
# base image: no image registry is reachable, so the base is built from Debian's packages
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
# an image registry on loopback: reproduce pulls a docker run's image by its recorded digest
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "sysdeps: missing ${missing[*]} (not root or no apt-get): the tests that need them will skip" >&2
  exit 0
fi
echo "sysdeps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
