#!/usr/bin/env bash
# A small loop, not the benchmark: times N setups then N teardowns of ocinet-hook (release),
# driven as a runtime drives it, inside a private network namespace. Usage (root):
#   bench/hook-loop.sh [N] [network-json]
# Prints p50/p90/max in ms for setup and teardown.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100}
netjson=${2:-}
hook=$here/target/release/ocinet-hook
[ -x "$hook" ] || { echo "build first: cargo build --release" >&2; exit 1; }
exec unshare --net --mount --propagation private bash -s "$here" "$hook" "$n" "$netjson" <<'INNER'
set -euo pipefail
here=$1 hook=$2 n=$3 netjson=$4
ip link set lo up
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/etc/networks" "$work/bundle"
net=ocinet
if [ -n "$netjson" ]; then net=bench; echo "$netjson" > "$work/etc/networks/bench.json"; fi
printf '{"ociVersion":"1.0.2","annotations":{"io.ocinet.network":"bridge:%s"},"root":{"path":"rootfs"}}' "$net" > "$work/bundle/config.json"
pids=()
for i in $(seq "$n"); do unshare --net sleep 600 & pids+=($!); done
sleep 0.5
ms() { sort -n | awk '{a[NR]=$1} END {printf "p50 %.2f ms  p90 %.2f ms  max %.2f ms (n=%d)\n", a[int(NR*0.5)+1]/1e6, a[int(NR*0.9)+1]/1e6, a[NR]/1e6, NR}'; }
run() { # stage id pid
  local t0 t1
  t0=$(date +%s%N)
  printf '{"ociVersion":"1.0.2","id":"%s","status":"creating","pid":%s,"bundle":"%s"}' "$2" "$3" "$work/bundle" \
    | "$hook" --root "$work/state" --config-dir "$work/etc" "$1"
  t1=$(date +%s%N)
  echo $((t1 - t0))
}
i=0; for p in "${pids[@]}"; do i=$((i+1)); run createRuntime "c$i" "$p"; done > "$work/setup"
i=0; for p in "${pids[@]}"; do i=$((i+1)); run poststop "c$i" 0; done > "$work/teardown"
echo "setup:    $(ms < "$work/setup")"
echo "teardown: $(ms < "$work/teardown")"
INNER
