#!/usr/bin/env bash
# Runs the e2e suite on a kind cluster, for machines with Docker and kind: creates the cluster
# (one control plane, a GPU worker and a CPU worker), builds the sealer-pod, operator and shell
# images and loads them into it, advertises one fake nvidia.com/gpu on the GPU worker, deploys
# crds/ and manifests/, and runs the same tests with SEALING_E2E_KUBECONFIG pointing at kind.
# Tests that need the local node agent are reported as ignored.
#
#   e2e/kind/run.sh [cargo test args...]
#   KIND_CLUSTER_NAME   cluster name (default sealing-e2e)
#   KIND_NODE_IMAGE     node image (default kindest/node:$K8S_VERSION from versions.env)
#   KIND_KEEP=1         keep the cluster afterwards (default: delete it)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=../control-plane/versions.env
source e2e/control-plane/versions.env
name=${KIND_CLUSTER_NAME:-sealing-e2e}
node_image=${KIND_NODE_IMAGE:-kindest/node:$K8S_VERSION}
log() { echo "kind/run.sh: $*" >&2; }

for tool in docker kind kubectl cargo; do
  command -v "$tool" >/dev/null || { log "$tool is required"; exit 1; }
done

work=$(mktemp -d)
kubeconfig=$work/kubeconfig
cleanup() {
  if [[ "${KIND_KEEP:-0}" != 1 ]]; then
    kind delete cluster --name "$name" >/dev/null 2>&1 || true
  else
    log "keeping cluster $name (kubeconfig: $kubeconfig)"
  fi
}
trap cleanup EXIT

log "creating cluster $name ($node_image)"
kind create cluster --name "$name" --image "$node_image" --kubeconfig "$kubeconfig" --wait 120s --config - <<KIND
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
    labels:
      sealing.filecoin.io/e2e: "true"
      sealing.filecoin.io/pool: devnet
      nvidia.com/gpu.product: NVIDIA-A100-SXM4-40GB
      nvidia.com/gpu.count: "1"
      nvidia.com/gpu.memory: "40960"
  - role: worker
    labels:
      sealing.filecoin.io/e2e: "true"
      sealing.filecoin.io/pool: devnet
KIND
export KUBECONFIG=$kubeconfig
gpu_node=$name-worker

log "building images"
docker build -t sealer-pod:dev -f sealer-pod/Dockerfile .
docker build -t sealing-operator:dev -f operator/Dockerfile .
# The tests' shell image: busybox under the name the local node agent maps to /bin/sh.
docker pull busybox:stable
docker tag busybox:stable local/shell:e2e
kind load docker-image --name "$name" sealer-pod:dev sealing-operator:dev local/shell:e2e

log "advertising a fake GPU on $gpu_node"
# An extended resource advertised by patching the node status (Kubernetes' documented way
# to advertise extended resources without a device plugin), plus the usual GPU taint.
kubectl patch node "$gpu_node" --subresource=status --type=json \
  -p '[{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": "1"}]'
kubectl taint node "$gpu_node" nvidia.com/gpu=present:NoSchedule --overwrite
deadline=$((SECONDS + 60))
until [[ $(kubectl get node "$gpu_node" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}') == 1 ]]; do
  ((SECONDS < deadline)) || { log "$gpu_node never reported an allocatable GPU"; exit 1; }
  sleep 1
done

log "deploying crds/ and manifests/"
kubectl apply --server-side -f crds/
kubectl wait --for=condition=Established crd --all --timeout=60s
kubectl apply --server-side -k manifests/
# The operator reads its chain token at start; the suite's chain tests are local-only, so a
# placeholder lets it start (its chain bridge then reports the unreachable node and retries).
kubectl -n sealing-system create secret generic chain-api-token --from-literal=token=kind-e2e \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl -n sealing-system rollout status deployment --timeout=180s

log "running the e2e suite"
SEALING_E2E_KUBECONFIG=$kubeconfig cargo test --release -p sealing-e2e --test e2e "$@"
