#!/usr/bin/env bash
# Runs the chain client (filecoin-chain) and chain simulator (chain-sim) tests, the slow
# end-to-end one with real proofs included. Needs the 2 KiB PoRep and window PoSt parameters in
# the parameter cache (sealer-pod's parameter script makes them) and builds sealer-pod for the
# end-to-end test. A second run reuses the cargo target directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_TARGET_DIR="$target"

cargo build --release --locked -p sealer-pod
export SEALER_POD_BIN="${SEALER_POD_BIN:-$target/release/sealer-pod}"
cargo test --release --locked -p filecoin-chain -p chain-sim
