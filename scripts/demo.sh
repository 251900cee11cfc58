#!/usr/bin/env bash
# The main job on one machine, without Docker:
#   - a local Kubernetes control plane (e2e/control-plane: etcd, kube-apiserver, scheduler,
#     controller-manager, built from the Go module proxy once and cached),
#   - a node agent that registers two nodes, gpu-1 (one GPU) and cpu-1, and runs their pods as
#     local processes,
#   - the chain simulator (2k devnet rules; it verifies every proof with filecoin-proofs-api),
#   - the operator, running with the service account and RBAC of manifests/,
# then the sample pool and a committed-capacity sector. Watch it seal:
#
#   scripts/demo.sh            # start (or restart) everything; prints how to watch
#   export KUBECONFIG=/tmp/sealing-demo/control-plane/kubeconfig
#   kubectl get sectors -w     # Empty ... PC1Done ... PCSubmitted ... ProofSubmitted, Finished
#   scripts/demo.sh stop       # stop everything
#
# The first run builds the workspace and generates the 2 KiB proof parameters (about 40 minutes
# on 2 cores); a 2 KiB C2 then takes about 2 minutes, so a sector finishes in about 4.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=${SEALING_DEMO_DIR:-/tmp/sealing-demo}
log() { echo "demo.sh: $*" >&2; }

stop() {
  for name in operator node-agent chain-sim; do
    if [[ -f "$demo/$name.pid" ]]; then
      kill "$(cat "$demo/$name.pid")" 2>/dev/null || true
      rm -f "$demo/$name.pid"
    fi
  done
  if [[ -d "$demo/control-plane" ]]; then
    SEALING_STATE_DIR="$demo/control-plane" e2e/control-plane/down.sh || true
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {
  local what=$1 url=$2
  for _ in $(seq 1 60); do
    curl -sf -o /dev/null "$url" && return 0
    sleep 1
  done
  log "$what did not come up; see its log in $demo"
  exit 1
}

if [[ "${1:-start}" == stop ]]; then
  stop
  log "stopped"
  exit 0
fi

stop
scripts/setup.sh
scripts/params.sh
cargo build --release --locked -p sealing-operator -p sealer-pod -p sealing-e2e -p chain-sim
build="${CARGO_TARGET_DIR:-target}/release"
# The steps run as an unprivileged user, who may not reach the build directory (under a 0700
# home, say): like an image, their binaries are readable by everyone.
bin="$demo/bin"
mkdir -p "$bin" "$demo/store" "$demo/nodes"
chmod 755 "$demo"
for b in sealer-pod node-agent chain-sim sealing-operator kubectl-sealing; do
  install -m 0755 "$build/$b" "$bin/$b"
done
chmod 777 "$demo/store"

log "starting the control plane"
kubeconfig=$(SEALING_STATE_DIR="$demo/control-plane" e2e/control-plane/up.sh)
export KUBECONFIG=$kubeconfig

cat >"$demo/node-agent.yaml" <<YAML
rootDir: $demo/nodes
passThroughPaths: [/var/tmp/filecoin-proof-parameters, $demo/store]
heartbeatSeconds: 5
nodes:
  - name: gpu-1
    labels: {sealing.filecoin.io/pool: devnet, nvidia.com/gpu.product: NVIDIA-A100-SXM4-40GB, nvidia.com/gpu.count: "1"}
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
    capacity: {cpu: "4", memory: 16Gi, nvidia.com/gpu: "1"}
  - name: cpu-1
    labels: {sealing.filecoin.io/pool: devnet}
    capacity: {cpu: "4", memory: 16Gi}
images:
  - {image: sealer-pod, entrypoint: [$bin/sealer-pod]}
YAML
# The steps run unprivileged; like a storage admin would, give them the pool's scratch directory.
for node in gpu-1 cpu-1; do
  mkdir -p "$demo/nodes/$node/var/lib/sealing/scratch"
  chmod 777 "$demo/nodes/$node/var/lib/sealing/scratch"
done
nohup "$bin/node-agent" --config "$demo/node-agent.yaml" --kubeconfig "$kubeconfig" >"$demo/node-agent.log" 2>&1 &
echo $! >"$demo/node-agent.pid"

chain_port=$(free_port)
# A 2k devnet whose proving period is 192 one-second epochs, in 16 deadlines of 12 epochs: every
# deadline comes round in about three minutes, and a window PoSt has 12 s to land.
cat >"$demo/chain-sim.json" <<JSON
{"epochDurationMs": 1000, "policy": {"preCommitChallengeDelay": 10, "maxPreCommitRandomnessLookback": 3780,
 "sealRandomnessLookback": 900, "interactivePorepConfidence": 6, "minSectorExpiration": 518400,
 "maxSectorExpirationExtension": 3680640, "windowPost": {"period_deadlines": 16, "proving_period": 192,
 "challenge_window": 12, "challenge_lookback": 4, "fault_declaration_cutoff": 8}}}
JSON
nohup "$bin/chain-sim" --listen "127.0.0.1:$chain_port" --config "$demo/chain-sim.json" >"$demo/chain-sim.log" 2>&1 &
echo $! >"$demo/chain-sim.pid"

kubectl apply -f crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s crd/sectors.sealing.filecoin.io crd/sealingpools.sealing.filecoin.io crd/provingdeadlines.sealing.filecoin.io >/dev/null
kubectl apply -k manifests/ >/dev/null
# The operator runs below as a local process, with the same service account and RBAC.
kubectl -n sealing-system scale deployment sealing-operator --replicas=0 >/dev/null

token=$(kubectl -n sealing-system create token sealing-operator --duration=24h)
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
kubectl config --kubeconfig "$demo/operator.kubeconfig" set-cluster demo --server="$server" --insecure-skip-tls-verify=true >/dev/null
kubectl config --kubeconfig "$demo/operator.kubeconfig" set-credentials operator --token="$token" >/dev/null
kubectl config --kubeconfig "$demo/operator.kubeconfig" set-context demo --cluster=demo --user=operator --namespace=sealing-system >/dev/null
kubectl config --kubeconfig "$demo/operator.kubeconfig" use-context demo >/dev/null
cat >"$demo/operator.yaml" <<YAML
chain:
  endpoint: http://127.0.0.1:$chain_port/rpc/v1
  preCommitChallengeDelay: 10
  seedConfidence: 2
  pollIntervalSeconds: 1
batching:
  maxSectors: 8
  maxWaitEpochs: 2
YAML
health_port=$(free_port)
KUBECONFIG="$demo/operator.kubeconfig" POD_NAMESPACE=sealing-system RUST_LOG=info \
  nohup "$bin/sealing-operator" run --config "$demo/operator.yaml" --listen "127.0.0.1:$health_port" >"$demo/operator.log" 2>&1 &
echo $! >"$demo/operator.pid"
wait_http "the operator" "http://127.0.0.1:$health_port/readyz"

sed "s|storePath: .*|storePath: $demo/store|; s|source: generate|source: preloaded|" manifests/samples/pool.yaml | kubectl apply -f - >/dev/null
kubectl apply -f manifests/samples/sector-cc.yaml >/dev/null

cat <<EOF

The demo is running (logs in $demo). Watch the sector seal:

  export KUBECONFIG=$kubeconfig
  kubectl get sectors -w
  kubectl describe sector cc-1
  kubectl get sealingpools
  kubectl sealing list          # with $bin on PATH

Stop it with: scripts/demo.sh stop
EOF
