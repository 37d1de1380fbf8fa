#!/usr/bin/env bash
# A/B of two ocinet-hook builds, interleaved container by container (cancels machine noise):
#   bench/ab.sh OLD_HOOK NEW_HOOK [N [--a-before-names]]     (root; N default 200)
# --a-before-names: OLD_HOOK predates names and refuses the network file's `dns` field.
# ocinet-bench's A/B mode: each build on its own bridge, subnet and ports, timed from spawn to
# reaped exit, in a private network and mount namespace with every state root on tmpfs (as
# bench/run.sh). Prints both builds' setup/teardown p50/p90, first/last 10%, and B/A.
#
# OTHER_LINKS=K puts K veth pairs with IPv6 on in the private host first, standing in for other
# runtimes' links (CNI's and netavark's keep their IPv6 addresses: three routes per end). A
# change to how ocinet's links come up can win with only ocinet's links on the host and lose
# beside others' (the kernel walks the whole IPv6 table on some link events); measure both.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { echo "usage: bench/ab.sh OLD_HOOK NEW_HOOK [N [--a-before-names]]" >&2; exit 2; }
a=$(realpath "$1") b=$(realpath "$2") n=${3:-200}
cd "$here"
cargo build --release -q -p ocinet-bench
sync  # the build's dirty pages written back now, not during the runs
exec bench/in-private-host.sh bench/with-other-links.sh "${OTHER_LINKS:-0}" \
  "${CARGO_TARGET_DIR:-target}/release/ocinet-bench" --n "$n" --hook "$a" --hook-b "$b" "${@:4}"
