#!/usr/bin/env bash
# Makes sure the 2 KiB proof parameters the tests need exist in the parameter cache
# (FIL_PROOFS_PARAMETER_CACHE, default /var/tmp/filecoin-proof-parameters), generating only
# what is missing or damaged. Idempotent: a second run takes seconds (it checks digests).
#
#   scripts/params.sh            PoRep, window PoSt, winning PoSt, snap and the aggregation SRS
#                                (~40 min the first time)
#   scripts/params.sh --no-snap  without the snap set (~25 min the first time); slow_snap fails then
#
# Builds sealer-pod in release mode first (cargo reuses an existing build).
set -euo pipefail
cd "$(dirname "$0")/.."

kinds=(--kind window-post --kind winning-post --kind porep --kind aggregate)
if [[ "${1:-}" != "--no-snap" ]]; then
  kinds+=(--kind snap)
fi

cargo build --release -p sealer-pod --quiet
bin="${CARGO_TARGET_DIR:-target}/release/sealer-pod"
"$bin" --result-path /dev/null params generate --sector-size 2KiB "${kinds[@]}"
"$bin" --result-path /dev/null params check --sector-size 2KiB "${kinds[@]}"
