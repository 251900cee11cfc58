#!/usr/bin/env bash
# Starts a local Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC, client-cert
# authentication, service-account token signing), kube-scheduler and kube-controller-manager,
# each with its own client certificate. Writes an admin kubeconfig to $STATE/kubeconfig and
# waits until the API server is ready, the scheduler and controller-manager are healthy, and
# the controller-manager has created the default ServiceAccount.
#
#   SEALING_STATE_DIR   state directory (default /tmp/sealing-e2e-control-plane)
#   SEALING_START_KWOK  1 = also run kwok for Nodes annotated kwok.x-k8s.io/node=fake
#   SEALING_*_PORT      fixed ports (APISERVER, ETCD, ETCD_PEER, SCHEDULER, CONTROLLER_MANAGER, KWOK);
#                       free ports are chosen when unset, so several runs can share a machine.
# Prints the kubeconfig path on stdout. Stop everything with down.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${SEALING_STATE_DIR:-/tmp/sealing-e2e-control-plane}
log() { echo "up.sh: $*" >&2; }

bin=$("$here/build.sh")
for tool in openssl curl; do
  command -v "$tool" >/dev/null || { log "$tool is required (apt-get install $tool)"; exit 1; }
done

# A previous run that was not stopped must not hold ports or data.
if [[ -d "$state" ]]; then
  "$here/down.sh" >&2 || true
  # A mount left by a real node could be a bind mount of a host directory.
  if awk -v d="$state/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    log "mounts remain under $state (see /proc/self/mountinfo); not removing it"
    exit 1
  fi
  rm -rf "$state"
fi
mkdir -p "$state"/{pki,logs,pids,etcd}
start=$SECONDS

# A random port in 20000-59999 that nothing accepts connections on.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
api_port=${SEALING_APISERVER_PORT:-$(free_port)}
etcd_port=${SEALING_ETCD_PORT:-$(free_port)}
etcd_peer_port=${SEALING_ETCD_PEER_PORT:-$(free_port)}
sched_port=${SEALING_SCHEDULER_PORT:-$(free_port)}
kcm_port=${SEALING_CONTROLLER_MANAGER_PORT:-$(free_port)}

# --- PKI: one CA for serving and client certificates, and the service-account signing key.
pki=$state/pki
openssl_quiet() { openssl "$@" 2>/dev/null; }
openssl_quiet req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 -subj "/CN=sealing-e2e-ca"
sign() { # name subject extensions
  openssl_quiet req -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "$2"
  openssl_quiet x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -out "$pki/$1.crt" -days 3650 -extfile <(printf '%s\n' "$3")
}
sign apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
sign admin "/O=system:masters/CN=sealing-e2e-admin" "extendedKeyUsage=clientAuth"
sign scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
sign controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
openssl_quiet genrsa -out "$pki/sa.key" 2048
openssl_quiet rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

kubeconfig() { # file user
  local b64="base64 -w0"
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: sealing-e2e
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $($b64 "$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $($b64 "$pki/$2.crt")
    client-key-data: $($b64 "$pki/$2.key")
contexts:
- name: sealing-e2e
  context: {cluster: sealing-e2e, user: $2}
current-context: sealing-e2e
KC
}
kubeconfig "$state/kubeconfig" admin
kubeconfig "$state/scheduler.kubeconfig" scheduler
kubeconfig "$state/controller-manager.kubeconfig" controller-manager

launch() { # name command...
  local name=$1; shift
  setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$state/pids/$name"
}

fail() {
  log "$1"
  local f
  for f in "$state"/logs/*.log; do
    log "--- last lines of $f"; tail -n 15 "$f" >&2 || true
  done
  "$here/down.sh" >&2 || true
  exit 1
}

wait_for() { # what seconds command...
  local what=$1 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    local name
    for name in "$state"/pids/*; do
      kill -0 "$(cat "$name")" 2>/dev/null || fail "$(basename "$name") exited while waiting for $what"
    done
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.2
  done
}

launch etcd "$bin/etcd" --name default --data-dir "$state/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "default=http://127.0.0.1:$etcd_peer_port" --listen-metrics-urls "" \
  --unsafe-no-fsync --log-level warn
wait_for "etcd" 60 curl -sf "http://127.0.0.1:$etcd_port/readyz"

launch kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
  --kubelet-preferred-address-types InternalIP \
  --profiling=false
api() { curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$api_port$1"; }
wait_for "kube-apiserver /readyz" 120 api /readyz

launch kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig "$state/scheduler.kubeconfig" \
  --authentication-kubeconfig "$state/scheduler.kubeconfig" --authorization-kubeconfig "$state/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$sched_port" --cert-dir "$state/scheduler-certs" \
  --leader-elect=false --profiling=false
launch kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$state/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$kcm_port" --cert-dir "$state/controller-manager-certs" \
  --leader-elect=false --profiling=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key"
wait_for "kube-scheduler /healthz" 60 curl -sfk "https://127.0.0.1:$sched_port/healthz"
wait_for "kube-controller-manager /healthz" 60 curl -sfk "https://127.0.0.1:$kcm_port/healthz"
wait_for "the default ServiceAccount" 60 api /api/v1/namespaces/default/serviceaccounts/default

if [[ "${SEALING_START_KWOK:-0}" == 1 ]]; then
  stages=()
  for f in "$bin"/kwok-stages/*.yaml; do stages+=(--config "$f"); done
  kwok_port=${SEALING_KWOK_PORT:-$(free_port)}
  launch kwok "$bin/kwok" --kubeconfig "$state/kubeconfig" "${stages[@]}" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr=10.244.0.0/16 --node-ip=127.0.0.1 --node-lease-duration-seconds=40 \
    --server-address "127.0.0.1:$kwok_port"
  wait_for "kwok /healthz" 60 curl -sf "http://127.0.0.1:$kwok_port/healthz"
fi

cat >"$state/env" <<ENV
KUBECONFIG=$state/kubeconfig
SEALING_K8S_BIN=$bin
SEALING_APISERVER_URL=https://127.0.0.1:$api_port
SEALING_ETCD_URL=http://127.0.0.1:$etcd_port
ENV
log "control plane ready in $((SECONDS - start))s (API server https://127.0.0.1:$api_port, state $state)"
echo "$state/kubeconfig"
