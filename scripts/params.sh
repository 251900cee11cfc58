#!/usr/bin/env bash
# Makes sure the proof parameters the tests need exist in the parameter cache
# (FIL_PROOFS_PARAMETER_CACHE, default /var/tmp/filecoin-proof-parameters), generating only
# what is missing or damaged. Idempotent: a second run takes seconds.
#
#   scripts/params.sh              2KiB PoRep, window PoSt, winning PoSt (~25 min the first time)
#   scripts/params.sh --with-snap  also the empty-sector-update (snap) set (~12 min more)
#
# Builds sealer-pod in release mode first (cargo reuses an existing build).
set -euo pipefail
cd "$(dirname "$0")/.."

kinds=(--kind porep --kind window-post --kind winning-post)
if [[ "${1:-}" == "--with-snap" ]]; then
  kinds+=(--kind snap)
fi

cargo build --release -p sealer-pod --quiet
bin="${CARGO_TARGET_DIR:-target}/release/sealer-pod"
"$bin" --result-path /dev/null params generate --sector-size 2KiB "${kinds[@]}"
"$bin" --result-path /dev/null params check --sector-size 2KiB "${kinds[@]}"
