#!/usr/bin/env bash
# Installs what is needed, builds ocinet (release) and runs the demo: two runc containers on
# ocinet's bridge, inside a private network namespace that stands in for the host.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
bundles/build-rootfs.sh >/dev/null
cargo build --release --locked --workspace --bins --examples
exec target/release/examples/demo
