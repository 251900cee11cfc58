#!/usr/bin/env bash
# Every test of the project, on a fresh machine or a warm one:
#   1. operating-system prerequisites (scripts/setup.sh),
#   2. the local control plane binaries, built from the Go module proxy once and cached,
#   3. the 2 KiB proof parameters, generated once into /var/tmp/filecoin-proof-parameters,
#   4. `cargo test --release` over the whole workspace: the sealing core, the CRDs, sealer-pod
#      sealing real sectors, the chain client and simulator, and the end-to-end suite on a real
#      kube-apiserver with the node agent.
# Caches live under $SEALING_CACHE_DIR (default ~/.cache/sealing-operator), including the cargo
# target directory, so a second run on the same machine rebuilds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

export SEALING_CACHE_DIR="${SEALING_CACHE_DIR:-$HOME/.cache/sealing-operator}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SEALING_CACHE_DIR/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

step "prerequisites"
scripts/setup.sh

step "local control plane binaries"
e2e/control-plane/build.sh >/dev/null

step "proof parameters (2 KiB)"
scripts/params.sh

step "build"
cargo build --release --workspace --all-targets --locked

step "tests"
# The chain simulator's end-to-end test drives the real sealer-pod binary.
export SEALER_POD_BIN="$CARGO_TARGET_DIR/release/sealer-pod"
cargo test --release --workspace --locked
