#!/usr/bin/env bash
# A/B of two ocinet-hook builds, interleaved container by container (cancels machine noise):
#   bench/ab.sh OLD_HOOK NEW_HOOK [N]     (root; runs in a private netns)
# Each container publishes one TCP port. Prints setup/teardown p50 and first/last 10% per build.
set -euo pipefail
exec unshare --net --mount --propagation private bash -s "$1" "$2" "${3:-200}" <<'INNER'
set -euo pipefail
a=$1 b=$2 n=$3
ip link set lo up; echo 1 > /proc/sys/net/ipv4/ip_forward
mkdir -p /run/netns && mount -t tmpfs ocinet-bench /run/netns  # ip netns names stay in here
# State on tmpfs, as the default root /run/ocinet is.
work=/run/ocinet-ab && mkdir -p "$work" && mount -t tmpfs ocinet-ab "$work"
trap 'kill $(jobs -p) 2>/dev/null' EXIT
for v in 0 1; do
  mkdir -p "$work/$v/etc/networks"
  printf '{"bridge":"ab%s","subnets":[{"subnet":"10.%s.0.0/16"}]}' $v $((80 + v)) > "$work/$v/etc/networks/ab.json"
done
hooks=("$a" "$b")
declare -A pid
for i in $(seq "$n"); do for v in 0 1; do
  unshare --net sleep infinity & pid[$v.$i]=$!
  mkdir -p "$work/$v/b$i"
  printf '{"ociVersion":"1.0.2","annotations":{"io.ocinet.network":"bridge:ab","io.ocinet.ports":"%d:80"},"root":{"path":"rootfs"}}' $((10000 + 10000 * v + i)) > "$work/$v/b$i/config.json"
done; done
sleep 1
run() { # version stage i pid
  local t0 t1
  t0=$(date +%s%N)
  printf '{"ociVersion":"1.0.2","id":"v%sc%s","status":"creating","pid":%s,"bundle":"%s"}' "$1" "$3" "$4" "$work/$1/b$3" \
    | "${hooks[$1]}" --root "$work/$1/state" --config-dir "$work/$1/etc" "$2"
  t1=$(date +%s%N)
  echo $((t1 - t0)) >> "$work/$1/$2"
}
for i in $(seq "$n"); do for v in $((i % 2)) $(((i + 1) % 2)); do run $v createRuntime $i ${pid[$v.$i]}; done; done
for i in $(seq "$n"); do for v in $((i % 2)) $(((i + 1) % 2)); do run $v poststop $i 0; done; done
p50() { sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR*0.5)+1]/1e6}'; }
tenth=$(( (n + 9) / 10 ))
for v in 0 1; do
  s=$work/$v/createRuntime
  echo "${hooks[$v]}: setup p50 $(p50 < "$s") ms (first 10% $(head -n $tenth "$s" | p50), last 10% $(tail -n $tenth "$s" | p50)), teardown p50 $(p50 < "$work/$v/poststop") ms"
done
INNER
