#!/usr/bin/env bash
# Inside the bench's private host: puts K veth pairs, both ends up with IPv6 on, beside what
# the bench will make, then runs the command.   bench/with-other-links.sh K COMMAND [ARGS...]
set -euo pipefail
k=$1
shift
if [ "$k" -gt 0 ]; then
  batch=$(mktemp)
  for i in $(seq "$k"); do
    printf 'link add oth%da type veth peer name oth%db\nlink set oth%da up\nlink set oth%db up\n' \
      "$i" "$i" "$i" "$i"
  done >"$batch"
  ip -batch "$batch"
  rm -f "$batch"
  # Their link-local addresses and routes settle (duplicate address detection) first.
  sleep 5
  echo "other links: $k veth pairs, $(ip -6 route show table all | wc -l) IPv6 routes" >&2
fi
exec "$@"
