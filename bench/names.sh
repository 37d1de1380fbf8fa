#!/usr/bin/env bash
# Names: ocinet's resolver against aardvark-dns 1.4 (podman's), and the hook's setup on a DNS
# network against one without names. Root; everything runs in a private network and mount
# namespace (the host's real network is not touched). Usage:
#   bench/names.sh [N containers] [seconds per dnsperf run]
# 1. Setup: N containers on network `plain` ("dns": false) and N on `dnsnet` (names: the ids),
#    setups interleaved one and one, timed around the hook as a runtime runs it (release build,
#    the resolver already running after the first DNS setup).
# 2. dnsperf from a client container on each network: ocinet's resolver at dnsnet's gateway,
#    aardvark-dns at another bridge's gateway, configured with the same names and addresses;
#    both forward to the same upstream (dnsmasq on 127.0.0.2, answering fwd.test itself, named
#    by the private /etc/resolv.conf). Local names: the N containers' names in turn; forwarded:
#    names under fwd.test. qps and lost from dnsperf; p50/p99 from its per-query latencies (-v).
#    KEEP=DIR keeps dnsperf's outputs there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100}
secs=${2:-10}
bin=$("$here/scripts/build-release.sh" -q -p ocinet-hook -p ocinet-resolver)
aardvark=/usr/lib/podman/aardvark-dns
for tool in dnsperf dnsmasq "$aardvark"; do
  command -v "$tool" >/dev/null || { echo "names.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
exec unshare --net --mount --propagation private bash -s "$bin" "$n" "$secs" "$aardvark" "${KEEP:-}" <<'INNER'
set -euo pipefail
bin=$1 n=$2 secs=$3 aardvark=$4 keep=$5
ip link set lo up
sysctl -qw net.ipv4.ip_forward=1
mkdir -p /run/netns && mount -t tmpfs ocinet-bench /run/netns
work=$(mktemp -d)
mount -t tmpfs ocinet-names "$work"
cleanup() {
  for f in "$work"/*.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  kill $(jobs -p) 2>/dev/null || true
  # The resolver is ocinet's, started detached: its pid file says which.
  [ -s "$work/state/resolver/resolver.pid" ] && kill "$(cut -d' ' -f1 "$work/state/resolver/resolver.pid")" 2>/dev/null
  sleep 0.2
  umount -l "$work" 2>/dev/null; rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
hook=$bin/ocinet-hook

# The upstream both resolvers forward to, named by the private /etc/resolv.conf.
ip addr add 127.0.0.2/8 dev lo 2>/dev/null || true
dnsmasq -C /dev/null -u root --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.2 \
  -x "$work/dnsmasq.pid" --address=/fwd.test/203.0.113.7 --cache-size=0
printf 'nameserver 127.0.0.2\n' > "$work/resolv.conf"
mount --bind "$work/resolv.conf" /etc/resolv.conf

mkdir -p "$work/etc/networks"
echo '{"subnets":[{"subnet":"10.90.0.0/22"}],"dns":true}' > "$work/etc/networks/dnsnet.json"
echo '{"subnets":[{"subnet":"10.92.0.0/22"}],"dns":false}' > "$work/etc/networks/plain.json"
bundle() { # id network
  mkdir -p "$work/bundle/$1/rootfs/etc"
  printf '{"ociVersion":"1.0.2","annotations":{"io.ocinet.network":"%s"},"root":{"path":"rootfs"}}' "$2" > "$work/bundle/$1/config.json"
}
run() { # stage id pid -> nanoseconds
  local t0 t1
  t0=$(date +%s%N)
  printf '{"ociVersion":"1.0.2","id":"%s","status":"creating","pid":%s,"bundle":"%s"}' "$2" "$3" "$work/bundle/$2" \
    | "$hook" --root "$work/state" --config-dir "$work/etc" "$1"
  t1=$(date +%s%N)
  echo $((t1 - t0))
}
ms() { sort -n | awk '{a[NR]=$1} END {printf "p50 %.3f ms  p90 %.3f ms  max %.2f ms (n=%d)", a[int(NR*0.5)+1]/1e6, a[int(NR*0.9)+1]/1e6, a[NR]/1e6, NR}'; }

# 1. Setups, interleaved.
declare -a pp dp
for i in $(seq "$n"); do
  bundle "p$i" plain; bundle "c$i" dnsnet
  unshare --net sleep 3600 & pp[i]=$!
  unshare --net sleep 3600 & dp[i]=$!
done
bundle client dnsnet
unshare --net sleep 3600 & cpid=$!
sleep 0.5
run createRuntime client "$cpid" > /dev/null   # the resolver starts here, before the timed ones
: > "$work/setup-plain"; : > "$work/setup-dns"
for i in $(seq "$n"); do
  run createRuntime "p$i" "${pp[i]}" >> "$work/setup-plain"
  run createRuntime "c$i" "${dp[i]}" >> "$work/setup-dns"
done
echo "hook setup, no names (dns false):      $(ms < "$work/setup-plain")"
echo "hook setup, DNS network, resolver up:  $(ms < "$work/setup-dns")"

# 2. aardvark-dns with the same names, on its own bridge (10.91.0.0/22), its client there too.
ip link add aardbr type bridge && ip addr add 10.91.0.1/22 dev aardbr && ip link set aardbr up
unshare --net sleep 3600 & apid=$!
sleep 0.2
ip link add aardc type veth peer name eth0 netns "$apid"
ip link set aardc master aardbr up
nsenter --target "$apid" --net sh -c 'ip link set lo up; ip addr add 10.91.3.250/22 dev eth0; ip link set eth0 up'
mkdir -p "$work/aardvark"
{
  echo "10.91.0.1"
  for i in $(seq "$n"); do printf 'id%s 10.91.%d.%d  c%s\n' "$i" $(( (i + 1) / 256 )) $(( (i + 1) % 256 )) "$i"; done
  echo "idclient 10.91.3.250  client"
} > "$work/aardvark/aardnet"
"$aardvark" --config "$work/aardvark" -p 53 run > "$work/aardvark.log" 2>&1 &
for _ in $(seq 50); do ss -Hlnu 'sport = :53' | grep -q 10.91.0.1 && break; sleep 0.1; done
ss -Hlnup 'sport = :53' | grep 10.91.0.1 | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1 > "$work/aardvark.pid"

for i in $(seq "$n"); do echo "c$i A"; done > "$work/q-local"
for i in $(seq "$n"); do echo "h$i.fwd.test A"; done > "$work/q-fwd"
client_ip=$(nsenter --target "$cpid" --net ip -o -4 addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
perf() { # label pid server queries
  local out="$work/perf-$1"
  nsenter --target "$2" --net dnsperf -s "$3" -d "$4" -l "$secs" -c 1 -q 100 -v > "$out" 2>/dev/null || true
  local qps lost p50 p99
  qps=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' "$out")
  lost=$(sed -n 's/.*Queries lost: *\([0-9]*\).*/\1/p' "$out")
  read -r p50 p99 < <(awk '$1 == ">" {print $NF}' "$out" | sort -g | awk '{a[NR]=$1} END {if (NR) printf "%.3f %.3f\n", a[int(NR*0.5)+1]*1000, a[int(NR*0.99)+1]*1000; else print "- -"}')
  local codes; codes=$(sed -n "s/.*Response codes: *//p" "$out")
  [ -n "${keep:-}" ] && cp "$out" "$keep/"
  printf '%-32s qps %9s  p50 %7s ms  p99 %7s ms  lost %s  (%s)\n' "$1" "$qps" "$p50" "$p99" "$lost" "$codes"
}
echo "load now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "dnsperf, $secs s each, 1 client, 100 outstanding (client at $client_ip):"
perf "ocinet, local names" "$cpid" 10.90.0.1 "$work/q-local"
perf "aardvark-dns 1.4, local names" "$apid" 10.91.0.1 "$work/q-local"
perf "ocinet, forwarded" "$cpid" 10.90.0.1 "$work/q-fwd"
perf "aardvark-dns 1.4, forwarded" "$apid" 10.91.0.1 "$work/q-fwd"
# A check that both answered right, not only fast.
echo "answers: ocinet c1 -> $(grep -m1 -c NOERROR "$work/perf-ocinet, local names") NOERROR lines seen, aardvark -> $(grep -m1 -c NOERROR "$work/perf-aardvark-dns 1.4, local names")"

for i in $(seq "$n"); do
  run poststop "p$i" 0 > /dev/null; run poststop "c$i" 0 > /dev/null
done
run poststop client 0 > /dev/null
INNER
