#!/usr/bin/env bash
# The Docker plugin's costs (root), in a private network and mount namespace:
#   bench/docker.sh [N] [RUNS]
# 0. A call that starts the plugin, as systemd's socket activation does.
# 1. ocinet-docker's (release) answers to N containers' calls as dockerd makes them, without
#    dockerd (bench/docker-plugin.py): CreateEndpoint+Join, ProgramExternalConnectivity (one
#    port), Revoke+Leave+DeleteEndpoint.
# 2. `docker run --rm IMAGE true` (Docker Engine 20.10, /usr/sbin/dockerd) RUNS times each,
#    interleaved, on an ocinet network, on a network of Docker's own bridge driver, and with
#    --network none. dockerd runs with --iptables=false (as the tests: nothing on the real
#    host), so Docker's bridge driver here skips its iptables work: a lower bound of its cost.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-200}
runs=${2:-20}
bin=$("$here/scripts/build-release.sh" -q -p ocinet-docker)/ocinet-docker
[ -d "$here/bundles/rootfs/bin" ] || sh "$here/bundles/build-rootfs.sh" >/dev/null
exec unshare --net --mount --propagation private bash -s "$here" "$bin" "$n" "$runs" <<'INNER'
set -euo pipefail
here=$1 bin=$2 n=$3 runs=$4
ip link set lo up
sysctl -qw net.ipv4.ip_forward=1
work=$(mktemp -d)
mount -t tmpfs ocinet-docker-bench "$work"
mkdir -p /run/docker/plugins && mount -t tmpfs ocinet-docker-bench /run/docker/plugins
mkdir -p "$work/etc/networks" "$work/exec"
trap 'kill $(jobs -p) 2>/dev/null; sleep 1; umount -l "$work" 2>/dev/null' EXIT
"$bin" --root "$work/state" --config-dir "$work/etc" 2>"$work/plugin.log" &
for _ in $(seq 100); do [ -S /run/docker/plugins/ocinet.sock ] && break; sleep 0.05; done
echo "== socket activation"
python3 "$here/bench/docker-activation.py" "$bin" "$work" 20
echo "== plugin requests, N=$n, one port each"
python3 "$here/bench/docker-plugin.py" /run/docker/plugins/ocinet.sock "$n" 1

dk="/usr/bin/docker -H unix://$work/docker.sock"
/usr/sbin/dockerd -H "unix://$work/docker.sock" --data-root /var/tmp/ocinet-docker-bench \
  --exec-root "$work/exec" --pidfile "$work/dockerd.pid" --storage-driver vfs --bridge=none \
  --iptables=false --ip-forward=false --exec-opt native.cgroupdriver=cgroupfs 2>"$work/dockerd.log" &
for _ in $(seq 200); do $dk version >/dev/null 2>&1 && break; sleep 0.05; done
tar -C "$here/bundles/rootfs" -c . | $dk import - ocinet-bench >/dev/null
$dk network create -d ocinet --subnet 10.61.0.0/24 oc >/dev/null
$dk network create -d bridge --subnet 10.62.0.0/24 br >/dev/null
declare -A times
for _ in $(seq "$runs"); do
  for net in oc br none; do
    t0=$(date +%s%N)
    $dk run --rm --network "$net" ocinet-bench true
    t1=$(date +%s%N)
    times[$net]+="$(( (t1 - t0) / 1000 )) "
  done
done
echo "== docker run --rm IMAGE true, $runs runs each, interleaved"
for net in oc br none; do
  printf '%s: ' "$net"
  python3 -c 'import sys,statistics; xs=sorted(int(x)/1000 for x in sys.argv[1:]); print("p50 %.0f ms, p90 %.0f ms, min %.0f ms" % (xs[len(xs)//2], xs[int(len(xs)*.9)], xs[0]))' ${times[$net]}
done
$dk network rm oc br >/dev/null
kill "$(cat "$work/dockerd.pid")"
while [ -e "$work/dockerd.pid" ]; do sleep 0.1; done
rm -rf /var/tmp/ocinet-docker-bench
INNER
