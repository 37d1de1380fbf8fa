#!/usr/bin/env bash
# The benchmark, one command (root; Debian 12):
#   bench/run.sh [N]            N containers per backend (default 100)
# Installs the anchors (CNI plugins, netavark, iptables, runc, busybox-static) unless
# SKIP_INSTALL=1, builds release, then runs ocinet-bench inside a private network and mount
# namespace: nothing on the real host's network is touched. Writes bench/results.json and
# bench/results.md (the table for bench/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100}
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends containernetworking-plugins netavark iptables \
    runc busybox-static nftables iproute2 util-linux gcc
fi
cd "$here"
[ -x bundles/rootfs/bin/busybox ] || bash bundles/build-rootfs.sh >/dev/null
# The hook as installed: static release (scripts/build-release.sh); the bench itself as usual.
bin_dir=$(scripts/build-release.sh -q -p ocinet-hook -p ocinet-cni)
cargo build --release -q -p ocinet-bench
# The builds leave hundreds of MB of dirty pages: written back now, not during the runs.
sync
exec bench/in-private-host.sh \
  "${CARGO_TARGET_DIR:-target}/release/ocinet-bench" --n "$n" --hook "$bin_dir/ocinet-hook" \
  --sample-config bundles/bridge/config.json --rootfs "$here/bundles/rootfs" \
  --out bench/results.json --table bench/results.md --plot bench/results.svg --reach "${@:2}"
