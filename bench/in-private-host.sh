#!/usr/bin/env bash
# Runs a command (the bench) in a private network and mount namespace standing in for the host:
#   bench/in-private-host.sh COMMAND [ARGS...]
# The bench refuses to run in the caller's (the real host's) network namespace, known by its
# inode. The hook names each container's namespace in /run/netns: a tmpfs of this mount
# namespace. Every backend's state (ocinet's root, CNI's host-local dataDir, netavark's config)
# goes to a tmpfs too, as ocinet's default root /run/ocinet is on tmpfs on Debian.
set -euo pipefail
OCINET_BENCH_OUTER_NETNS=$(stat -L -c %i /proc/self/ns/net)
export OCINET_BENCH_OUTER_NETNS
exec unshare --net --mount --propagation private \
  sh -c 'mkdir -p /run/netns /run/ocinet-bench && mount -t tmpfs ocinet-bench /run/netns &&
    mount -t tmpfs ocinet-bench /run/ocinet-bench && TMPDIR=/run/ocinet-bench exec "$@"' sh "$@"
