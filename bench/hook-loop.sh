#!/usr/bin/env bash
# A small loop, not the benchmark: times N setups then N teardowns of ocinet-hook (release),
# driven as a runtime drives it, inside a private network namespace. Usage (root):
#   bench/hook-loop.sh [N] [network-json]
# With PORTS=1 each container publishes one TCP port (20000+i:80).
# Prints p50/p90/max in ms for setup and teardown, and setup p50 of the first and last 10%.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100}
netjson=${2:-}
hook=$("$here/scripts/build-release.sh" -q -p ocinet-hook)/ocinet-hook
exec unshare --net --mount --propagation private bash -s "$here" "$hook" "$n" "$netjson" "${PORTS:-0}" <<'INNER'
set -euo pipefail
here=$1 hook=$2 n=$3 netjson=$4 ports=$5
ip link set lo up
mkdir -p /run/netns && mount -t tmpfs ocinet-bench /run/netns  # ip netns names stay in this mount namespace
work=$(mktemp -d)
mount -t tmpfs ocinet-loop "$work"  # state on tmpfs, as /run/ocinet is on Debian (and as the bench has it)
trap 'kill $(jobs -p) 2>/dev/null; umount "$work"; rmdir "$work"' EXIT
mkdir -p "$work/etc/networks" "$work/bundle"
net=ocinet
if [ -n "$netjson" ]; then net=bench; echo "$netjson" > "$work/etc/networks/bench.json"; fi
for i in $(seq "$n"); do
  mkdir -p "$work/bundle/$i"
  extra=""
  [ "$ports" = 1 ] && extra=$(printf ',"io.ocinet.ports":"%d:80"' $((20000 + i)))
  printf '{"ociVersion":"1.0.2","annotations":{"io.ocinet.network":"bridge:%s"%s},"root":{"path":"rootfs"}}' "$net" "$extra" > "$work/bundle/$i/config.json"
done
pids=()
for i in $(seq "$n"); do unshare --net sleep 600 & pids+=($!); done
sleep 0.5
ms() { sort -n | awk '{a[NR]=$1} END {printf "p50 %.2f ms  p90 %.2f ms  max %.2f ms (n=%d)\n", a[int(NR*0.5)+1]/1e6, a[int(NR*0.9)+1]/1e6, a[NR]/1e6, NR}'; }
run() { # stage index pid
  local t0 t1
  t0=$(date +%s%N)
  printf '{"ociVersion":"1.0.2","id":"c%s","status":"creating","pid":%s,"bundle":"%s"}' "$2" "$3" "$work/bundle/$2" \
    | "$hook" --root "$work/state" --config-dir "$work/etc" "$1"
  t1=$(date +%s%N)
  echo $((t1 - t0))
}
i=0; for p in "${pids[@]}"; do i=$((i+1)); run createRuntime "$i" "$p"; done > "$work/setup"
i=0; for p in "${pids[@]}"; do i=$((i+1)); run poststop "$i" 0; done > "$work/teardown"
echo "setup:    $(ms < "$work/setup")"
tenth=$(( (n + 9) / 10 ))
echo "setup, first 10%: $(head -n "$tenth" "$work/setup" | ms)"
echo "setup, last 10%:  $(tail -n "$tenth" "$work/setup" | ms)"
echo "teardown: $(ms < "$work/teardown")"
INNER
