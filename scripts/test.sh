#!/usr/bin/env bash
# Installs the system packages, builds, lints and runs every test (unit and integration).
# Integration tests start real runc/crun containers, each test inside its own private network
# and mount namespaces: needs root, changes nothing on the real host's network.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
bundles/build-rootfs.sh >/dev/null
cargo build --workspace --all-targets --locked
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The fuzz targets are outside the workspace (cargo fuzz builds them with a nightly toolchain):
# checked here so that they keep building against the library.
(cd fuzz && cargo check --bins --locked)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
# The release build as it is installed (static; the hook and the CNI plugin on musl when the
# toolchain has it): the demo runs real containers on it and fails on the first miss.
scripts/demo.sh >target/demo.log 2>&1 || { cat target/demo.log; exit 1; }
