#!/usr/bin/env bash
# Builds release binaries statically linked (not position-independent) and prints the
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
# Why musl for ocinet-hook and ocinet-cni (when the toolchain has the x86_64 musl target;
# scripts/install-deps.sh adds it): they start once per container and exit. glibc's start
# measures the CPU's caches with some 80 `cpuid` instructions, each a trap to the hypervisor on
# a virtual machine (~7 us here): 0.6 ms of CPU per start, more than the hook's own work (A/B:
# setup p50 1.88 -> 1.45 ms). The long-running helpers keep glibc (its allocator serves the
# resolver's load better than musl's).
set -euo pipefail
cd "$(dirname "$0")/.."
triple=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
  cargo build --release --locked --target "$triple" "$@" >&2
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$PWD/$target ;; esac
out=$target/$triple/release

# Which of the per-container binaries this call built.
starters=()
all=0
want() { case " ${starters[*]-} " in *" $1 "*) ;; *) starters+=("$1") ;; esac; }
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --workspace | --all | --bins) all=1 ;;
    -p | --package) [ $((i + 1)) -lt ${#args[@]} ] && case ${args[i + 1]} in ocinet-hook | ocinet-cni) want "${args[i + 1]}" ;; esac ;;
    -p* | --package=*) p=${args[i]#-p}; p=${p#--package=}; case $p in ocinet-hook | ocinet-cni) want "$p" ;; esac ;;
  esac
done
[ $all = 1 ] && starters=(ocinet-hook ocinet-cni)

musl=${triple%%-*}-unknown-linux-musl
if [ ${#starters[@]} -gt 0 ]; then
  if [ -d "$(rustc --print sysroot)/lib/rustlib/$musl/lib" ]; then
    packages=()
    for p in "${starters[@]}"; do packages+=(-p "$p"); done
    RUSTFLAGS="${RUSTFLAGS:-} -C relocation-model=static" \
      cargo build --release --locked --target "$musl" "${packages[@]}" >&2
    for p in "${starters[@]}"; do
      # A new file, not a write through cargo's hard link to its own glibc build.
      cp --remove-destination "$target/$musl/release/$p" "$out/$p"
    done
  else
    echo "build-release: no $musl target in this toolchain (rustup target add $musl):" \
      "${starters[*]} linked with glibc, which starts slower on a virtual machine" >&2
  fi
fi
echo "$out"
