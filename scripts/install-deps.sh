#!/usr/bin/env bash
# Installs what ocinet needs to build, run and test on Debian 12 (as root). libc6-dev: the C
# runtime to link against, and libc.a for the static release build (scripts/build-release.sh).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  runc crun iproute2 nftables busybox-static util-linux procps ca-certificates gcc libc6-dev \
  podman netavark containerd
if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found: ocinet needs Rust 1.89 or newer (rustup)" >&2
  exit 1
fi
