#!/usr/bin/env bash
# Installs what is needed, builds ocinet (release, static) and runs the demo: two runc containers on
# ocinet's bridge, inside a private network namespace that stands in for the host.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
bundles/build-rootfs.sh >/dev/null
bin_dir=$(scripts/build-release.sh --workspace --bins --examples)
exec "$bin_dir/examples/demo"
