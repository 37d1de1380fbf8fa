#!/usr/bin/env bash
# Builds release binaries statically linked (glibc static-pie) and prints the directory that
# holds them. Usage: scripts/build-release.sh [cargo build args, e.g. --bins --examples]
# Why static: the hook starts on every container start; without the dynamic loader (two
# libraries mapped and bound) it starts in about the time of /bin/true (bench/ab.sh: setup p50
# 2.39 -> 2.01 ms). Nothing in ocinet needs dlopen or glibc's NSS. --target keeps the flag off
# build scripts and proc-macros, which cannot be static.
set -euo pipefail
cd "$(dirname "$0")/.."
triple=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --target "$triple" "$@" >&2
echo "$PWD/target/$triple/release"
