#!/usr/bin/env bash
# Installs what ocinet needs to build, run and test on Debian 12 (as root). libc6-dev: the C
# runtime to link against, and libc.a for the static release build (scripts/build-release.sh).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# etcd-server's package enables and starts a system etcd: the tests start their own, in their
# own namespaces, and need none. Turned off below, unless it was there before this script.
etcd_before=$(dpkg-query -W -f='${Status}' etcd-server 2>/dev/null || true)
# docker.io (Docker Engine 20.10): the Docker plugin's tests start their own dockerd in a
# private host; a system dockerd would make docker0 and iptables rules on the real host.
docker_before=$(dpkg-query -W -f='${Status}' docker.io 2>/dev/null || true)
# etcd-server, etcd-client: the overlay's cluster state in the tests; protobuf-compiler and
# libprotobuf-dev (its well-known .proto files): the etcd
# client crate's build; iperf3: the benchmark's throughput; containernetworking-plugins: the
# reference CNI chain (bench) and the stock plugins chained after ocinet-cni (tests); radvd:
# an IPv6 router's advertisements in a test's neighbour namespace; dnsmasq-base: the host's
# resolver in the names tests; dnsperf, aardvark-dns: the resolver's benchmark.
apt-get install -y -q --no-install-recommends \
  runc crun iproute2 nftables busybox-static util-linux procps ca-certificates gcc libc6-dev \
  podman netavark containerd containernetworking-plugins etcd-server etcd-client protobuf-compiler libprotobuf-dev iperf3 radvd \
  dnsmasq-base dnsperf aardvark-dns docker.io
if [ "$etcd_before" != "install ok installed" ]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now etcd.service >/dev/null 2>&1 || true
  else
    /etc/init.d/etcd stop >/dev/null 2>&1 || true
    update-rc.d etcd disable >/dev/null 2>&1 || true
  fi
fi
if [ "$docker_before" != "install ok installed" ]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
  else
    /etc/init.d/docker stop >/dev/null 2>&1 || true
    update-rc.d docker disable >/dev/null 2>&1 || true
  fi
fi
if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found: ocinet needs Rust 1.89 or newer (rustup)" >&2
  exit 1
fi
# The musl target, for the per-container binaries' release build (scripts/build-release.sh
# says why); without it they are linked with glibc, so a toolchain that cannot add it is fine.
musl=$(rustc -vV | sed -n 's/^host: //p' | sed 's/-.*//')-unknown-linux-musl
if command -v rustup >/dev/null && [ ! -d "$(rustc --print sysroot)/lib/rustlib/$musl/lib" ]; then
  rustup target add "$musl" >/dev/null 2>&1 ||
    echo "install-deps: could not add the $musl target; release hooks will use glibc" >&2
fi
