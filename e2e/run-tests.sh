#!/usr/bin/env bash
# The e2e part of the project's test command: installs what the local control plane and the
# real nodes need, builds (or reuses from the cache) kube-apiserver, kube-scheduler,
# kube-controller-manager, kubectl, kubelet, etcd, kwok and containerd, then runs the
# sealing-e2e tests, which start the control plane and a node agent once and tear them down
# at the end.
#
#   e2e/run-tests.sh [cargo test args...]      e.g. e2e/run-tests.sh -- pods::
#   SEALING_E2E_PROFILE=debug                  test a debug build (default: release)
#   SEALING_E2E_KUBECONFIG=PATH                run against that cluster instead (see kind/run.sh)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { echo "run-tests.sh: $*" >&2; }

missing=()
for tool in openssl curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [[ -z "${SEALING_E2E_KUBECONFIG:-}" ]]; then
  # What the real nodes of e2e/nodes run on.
  for tool in runc iptables; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then missing+=(busybox-static); fi
fi
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "missing ${missing[*]}; install them (e.g. apt-get install ${missing[*]})"
    exit 1
  fi
fi
if [[ -z "${SEALING_E2E_KUBECONFIG:-}" ]]; then
  command -v go >/dev/null || { log "Go >= 1.26 is required to build the control plane (none on PATH)"; exit 1; }
  if [[ $(id -u) != 0 ]]; then
    log "the node agent runs containers in their own mount namespaces and needs root"
    exit 1
  fi
  start=$SECONDS
  bin=$(e2e/control-plane/build.sh)
  log "control plane binaries ready in $((SECONDS - start))s: $bin"
fi

profile=()
[[ "${SEALING_E2E_PROFILE:-release}" == release ]] && profile=(--release)
start=$SECONDS
# The agent runs the real sealer-pod for the sealer-pod image.
cargo build "${profile[@]}" -p sealer-pod --bins
cargo test "${profile[@]}" -p sealing-e2e "$@"
log "e2e tests finished in $((SECONDS - start))s"
