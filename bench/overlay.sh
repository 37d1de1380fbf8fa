#!/usr/bin/env bash
# The overlay benchmark (issue 16), one command (root; Debian 12 with etcd-server and iperf3,
# which scripts/install-deps.sh installs):
#   bench/overlay.sh [N] [ocinet-bench flags]    N containers per lane, default 100
# Builds the hook and ocinet-agent static (scripts/build-release.sh, side by side as installed:
# the hook starts the agent from its own directory), then runs `ocinet-bench --overlay` inside a
# private network and mount namespace: the lab's underlay bridge, etcd and every cluster host
# live in namespaces the run makes and removes; nothing on the real host's network is touched.
# Writes bench/results-overlay.json and bench/results-overlay.md (the tables for
# bench/README.md). Bench only: not part of scripts/test.sh or CI.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100}
cd "$here"
for tool in etcd etcdctl iperf3; do
  command -v "$tool" >/dev/null || { echo "bench/overlay.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
bin_dir=$(scripts/build-release.sh -q -p ocinet-hook -p ocinet-agent)
cargo build --release -q -p ocinet-bench
# The builds leave hundreds of MB of dirty pages: written back now, not during the runs.
sync
exec bench/in-private-host.sh \
  "${CARGO_TARGET_DIR:-target}/release/ocinet-bench" --overlay --n "$n" --hook "$bin_dir/ocinet-hook" \
  --out bench/results-overlay.json --table bench/results-overlay.md "${@:2}"
