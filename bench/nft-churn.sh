#!/usr/bin/env bash
# Not the benchmark: how another process's nftables commits slow ocinet's setups. Inside a
# private network namespace, N setups (one published port each) with nothing else running,
# then N more while another process runs `nft` in a loop on a table of its own: with
# CHURN=delete it adds and deletes a set element (what iptables-nft does when CNI's portmap or
# netavark replace rules), with CHURN=list it only lists (the same processes, no commit).
#   bench/nft-churn.sh [N]          (root; CHURN=delete|list, default delete)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-40}
churn=${CHURN:-delete}
case $churn in
  delete) loop="nft add element ip other s '{ 10.9.9.9 }'; nft delete element ip other s '{ 10.9.9.9 }'" ;;
  list) loop="nft list table ip other; nft list set ip other s" ;;
  *) echo "nft-churn: CHURN must be delete or list" >&2; exit 2 ;;
esac
hook=$("$here/scripts/build-release.sh" -q -p ocinet-hook)/ocinet-hook
exec unshare --net --mount --propagation private bash -s "$hook" "$n" "$loop" <<'INNER'
set -euo pipefail
hook=$1 n=$2 loop=$3
ip link set lo up
mkdir -p /run/netns && mount -t tmpfs ocinet-churn /run/netns
work=$(mktemp -d)
mount -t tmpfs ocinet-churn "$work"
mkdir -p "$work/etc/networks"
echo '{"subnets":[{"subnet":"10.77.0.0/16"}],"dns":false}' >"$work/etc/networks/bench.json"
pids=()
for i in $(seq $((2 * n))); do
  mkdir -p "$work/bundle/$i"
  printf '{"ociVersion":"1.0.2","annotations":{"io.ocinet.network":"bridge:bench","io.ocinet.ports":"%d:80"},"root":{"path":"rootfs"}}' \
    $((20000 + i)) >"$work/bundle/$i/config.json"
  unshare --net sleep 600 >/dev/null 2>&1 &
  pids+=($!)
done
trap 'kill "${pids[@]}" $(jobs -p) 2>/dev/null; wait 2>/dev/null; umount "$work"' EXIT
sleep 0.5
nft add table ip other
nft add set ip other s '{ type ipv4_addr; }'
setup() {
  local t0 t1
  t0=$(date +%s%N)
  printf '{"ociVersion":"1.0.2","id":"c%s","status":"creating","pid":%s,"bundle":"%s"}' "$1" "${pids[$1 - 1]}" "$work/bundle/$1" |
    "$hook" --root "$work/state" --config-dir "$work/etc" createRuntime
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000))
}
ms() { sort -n | awk '{a[NR]=$1} END {printf "p50 %.2f ms  p90 %.2f ms (n=%d)\n", a[int(NR*0.5)+1]/1e3, a[int(NR*0.9)+1]/1e3, NR}'; }
echo "alone:        $(for i in $(seq "$n"); do setup "$i"; done | ms)"
(while :; do eval "$loop"; done) >/dev/null 2>&1 &
sleep 0.5
echo "beside churn: $(for i in $(seq $((n + 1)) $((2 * n))); do setup "$i"; done | ms)"
INNER
