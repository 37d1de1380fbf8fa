#!/usr/bin/env bash
# Builds release binaries statically linked (glibc, not position-independent) and prints the
# directory that holds them. Usage: scripts/build-release.sh [cargo build args, e.g. --bins --examples]
# Why static: the hook starts on every container start; without the dynamic loader (two
# libraries mapped and bound) it starts in about the time of /bin/true (bench/ab.sh: setup p50
# 2.39 -> 2.01 ms). Nothing in ocinet needs dlopen or glibc's NSS. --target keeps the flag off
# build scripts and proc-macros, which cannot be static.
# Why not PIE: a static-pie applies its ~10,000 relocations at every start, writing (so
# copying) every page that holds a pointer; a fixed-address executable maps them as they are
# (setup p50 1.74 -> 1.64 ms, A/B). What it gives up is a random address for the executable's
# own image (its stack, heap and mappings stay random); Debian ships runc and the CNI
# plugins, which also run as root on users' input, the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
triple=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
  cargo build --release --locked --target "$triple" "$@" >&2
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$PWD/$target ;; esac
echo "$target/$triple/release"
