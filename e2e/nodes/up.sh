#!/usr/bin/env bash
# Starts a real node against the local control plane of e2e/control-plane/up.sh (the one in
# $SEALING_STATE_DIR): its own containerd (root, state, socket, runc root), a CNI bridge and pod
# subnet, a node address on lo, a cgroup root, and a kubelet (in its own mount namespace, so
# that each kubelet has its own /var/lib/kubelet/device-plugins) that registers Node NAME.
# Waits until the Node is Ready (and advertises its GPUs), then prints the node's directory,
# $SEALING_STATE_DIR/nodes/NAME, whose node.env names everything the node holds. Stop it with
# down.sh NAME; a node of that name that is still running is stopped first.
#
#   up.sh NAME [--gpu N] [--label KEY=VALUE]... [--taint KEY[=VALUE]:EFFECT]...
#
#   --gpu N    N fake nvidia.com/gpu from a device plugin (containers given GPUs see
#              NVIDIA_VISIBLE_DEVICES), the GPU labels of the node agent's gpu-1 and the taint
#              nvidia.com/gpu=present:NoSchedule
#
# Every node has the images docker.io/local/pause:e2e (the sandbox) and docker.io/local/shell:e2e
# (static busybox; pods name it local/shell:e2e). Needs root, runc, the CNI plugins in
# /usr/lib/cni, iptables and busybox-static (scripts/setup.sh installs them).
set -eEuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "nodes/up.sh: $*" >&2; }
usage() { log "usage: up.sh NAME [--gpu N] [--label KEY=VALUE]... [--taint KEY[=VALUE]:EFFECT]..."; exit 2; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

(($# >= 1)) || usage
name=$1
shift
gpus=0 labels=() taints=()
while (($#)); do
  case $1 in
    --gpu) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { log "--gpu needs a positive count"; usage; }; gpus=$2; shift 2 ;;
    --label) [[ ${2:-} == *=* ]] || { log "--label needs KEY=VALUE"; usage; }; labels+=("$2"); shift 2 ;;
    --taint) [[ ${2:-} =~ ^[^:=]+(=[^:]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$ ]] || { log "--taint needs KEY[=VALUE]:EFFECT"; usage; }; taints+=("$2"); shift 2 ;;
    *) log "unknown argument $1"; usage ;;
  esac
done
[[ $name =~ ^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$ ]] || { log "node name '$name' is not a DNS label of at most 40 characters"; exit 2; }

[[ $(id -u) == 0 ]] || { log "a node runs containers, mounts and a bridge: run as root"; exit 1; }
[[ -f "$state/env" && -f "$state/pki/ca.key" ]] ||
  { log "no control plane in $state (start it with e2e/control-plane/up.sh, with the same SEALING_STATE_DIR)"; exit 1; }
[[ $state != *[[:space:]]* ]] || { log "SEALING_STATE_DIR must not contain white space: $state"; exit 1; }
runc=$(command -v runc || true)
missing=()
[[ -n "$runc" ]] || missing+=(runc)
for plugin in bridge host-local loopback; do [[ -x /usr/lib/cni/$plugin ]] || missing+=("containernetworking-plugins (/usr/lib/cni/$plugin)"); done
command -v iptables >/dev/null || missing+=(iptables)
for tool in ip:iproute2 unshare:util-linux flock:util-linux openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then missing+=("busybox-static (a static /bin/busybox)"); fi
((${#missing[@]} == 0)) || { log "missing: ${missing[*]} (scripts/setup.sh installs them)"; exit 1; }

dir=$nodes_root/$name
# A unix socket path is at most 107 bytes; the longest of ours is the device plugin's.
((${#dir} <= 70)) || { log "the node directory $dir is too long for its unix sockets (70 characters at most); choose a shorter SEALING_STATE_DIR"; exit 1; }
if [[ -f "$dir/node.env" ]]; then
  "$here/down.sh" "$name" >&2
fi

bin=$("$here/../control-plane/build.sh")
api_url=$(sed -n 's/^SEALING_APISERVER_URL=//p' "$state/env")
api_port=${api_url##*:}
[[ $api_port =~ ^[0-9]+$ ]] || { log "$state/env names no SEALING_APISERVER_URL"; exit 1; }
kubectl() { "$bin/kubectl" --kubeconfig "$state/kubeconfig" "$@"; }
start=$SECONDS

# --- The images every node has, made once per control plane.
images=$nodes_root/.images
mkdir -p "$images"
(
  flock 8
  if [[ ! -f "$images/pause.tar" ]]; then
    r=$(mktemp -d "$images/rootfs.XXXXXX")
    cp "$bin/pause" "$r/pause"
    "$here/mkimage.sh" "$r" docker.io/local/pause:e2e '["/pause"]' null "$images/pause.tar"
    rm -rf "$r"
  fi
  if [[ ! -f "$images/shell.tar" ]]; then
    r=$(mktemp -d "$images/rootfs.XXXXXX")
    mkdir -p "$r"/{bin,etc,root,tmp}
    chmod 1777 "$r/tmp"
    cp /bin/busybox "$r/bin/busybox"
    applets=$(/bin/busybox --list-full 2>/dev/null || /bin/busybox --list | sed 's|^|bin/|')
    for a in $applets; do
      [[ -e "$r/$a" ]] && continue
      mkdir -p "$r/$(dirname "$a")"
      ln -s /bin/busybox "$r/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\n' >"$r/etc/group"
    "$here/mkimage.sh" "$r" docker.io/local/shell:e2e null '["sh"]' "$images/shell.tar"
    rm -rf "$r"
  fi
) 8>"$images/.lock"

# --- A slot, claimed by creating its bridge; node.env is written under the same lock, so
# down.sh can always release what was claimed.
mkdir -p "$dir"/{logs,pids,pki,cni/net.d,cni/ipam,containerd,kubelet,pod-logs}
exec 9>"$global_lock"
flock 9
slot=
for ((i = 0; i < max_slots; i++)); do
  if slot_taken "$i"; then
    # A slot whose node directory is gone was left by a node that was never stopped.
    owner=$(cat "/sys/class/net/sealbr$i/ifalias" 2>/dev/null || true)
    [[ -n "$owner" && -f "$owner/node.env" ]] && continue
    log "reclaiming slot $i, left behind by ${owner:-an unknown node}"
  fi
  slot=$i
  break
done
[[ -n "$slot" ]] || { log "all $max_slots node slots of this machine are taken"; exit 1; }
slot_vars "$slot"
# Whatever a stopped node could not remove goes now.
release_slot_resources
# The first node records the host as it was (a record left by nodes never stopped stays).
if [[ ! -f "$host_state" ]]; then
  created=0
  [[ -d /var/lib/kubelet ]] || created=1
  printf 'created_var_lib_kubelet=%s\nip_forward=%s\n' "$created" "$(cat /proc/sys/net/ipv4/ip_forward)" >"$host_state"
fi
# The kubelets' mount point (see below).
mkdir -p /var/lib/kubelet
ip link add "$bridge" type bridge
ip link set "$bridge" alias "$dir"
cat >"$dir/node.env" <<ENV
NODE_NAME=$name
NODE_DIR=$dir
NODE_SLOT=$slot
NODE_BRIDGE=$bridge
NODE_SUBNET=$subnet
NODE_IP=$node_ip
NODE_CGROUP=/$cgroup
NODE_CHAIN=$chain
NODE_SHIM_SOCKETS=$shim_sockets
NODE_GPUS=$gpus
CONTAINERD_SOCKET=$dir/containerd.sock
ENV
flock -u 9
exec 9>&-

fail() {
  log "$1"
  local f
  for f in "$dir"/logs/*.log; do
    [[ -f "$f" ]] || continue
    log "--- last lines of $f"; tail -n 15 "$f" >&2 || true
  done
  "$here/down.sh" "$name" >&2 || true
  exit 1
}
trap 'fail "failed at line $LINENO"' ERR

launch() { # name command...
  local what=$1; shift
  setsid "$@" >"$dir/logs/$what.log" 2>&1 </dev/null &
  echo $! >"$dir/pids/$what"
}

wait_for() { # what seconds command...
  local what=$1 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    local p
    for p in "$dir"/pids/*; do
      names_dir "$(cat "$p")" "$dir" || fail "$(basename "$p") exited while waiting for $what"
    done
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.2
  done
}

# --- Network: the bridge (the CNI plugin gives it the gateway address), the node address, and
# the API server for pods. Without kube-proxy, the kubernetes Service (10.0.0.1:443) is a DNAT
# to the loopback-bound API server, which needs route_localnet on the bridge; the filter chain
# keeps every other loopback service out of reach of the pods.
ip link set "$bridge" up
echo 1 >"/proc/sys/net/ipv4/conf/$bridge/route_localnet"
ip addr add "$node_ip/32" dev lo
iptables -w -t nat -N "$chain"
iptables -w -t nat -A "$chain" -d 10.0.0.1/32 -p tcp --dport 443 -j DNAT --to-destination "127.0.0.1:$api_port"
iptables -w -t nat -A PREROUTING -i "$bridge" -j "$chain"
iptables -w -t filter -N "$chain"
iptables -w -t filter -A "$chain" -d 127.0.0.0/8 -m conntrack ! --ctstate DNAT -j DROP
iptables -w -t filter -A INPUT -i "$bridge" -j "$chain"
cat >"$dir/cni/net.d/10-bridge.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "sealing-$name", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet", "gateway": "$gateway"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$dir/cni/ipam"}}]}
JSON

# --- cgroups: the kubelet wants its root in every hierarchy; cpuset children start empty.
for m in $(cgroup_mounts); do
  mkdir -p "$m/$cgroup"
  if [[ -f "$m/cpuset.cpus" ]]; then
    cat "$m/cpuset.cpus" >"$m/$cgroup/cpuset.cpus"
    cat "$m/cpuset.mems" >"$m/$cgroup/cpuset.mems"
  fi
done

# --- containerd. Config version 4 takes its sockets from the server plugins' tables (a [grpc]
# table is ignored); the shims' socket directory would otherwise be the machine-wide
# /run/containerd/s. No CAP_SYS_RESOURCE in this sandbox: the kubelet's negative
# oom_score_adj would fail every container, so containerd clamps it. NRI is off: its socket
# is machine-wide.
cat >"$dir/containerd/config.toml" <<TOML
version = 4
root = "$dir/containerd/root"
state = "$dir/containerd/state"
temp = "$dir/containerd/tmp"
imports = []
disabled_plugins = ["io.containerd.nri.v1.nri"]
[plugins.'io.containerd.server.v1.grpc']
  address = "$dir/containerd.sock"
[plugins.'io.containerd.server.v1.ttrpc']
  address = "$dir/containerd.sock.ttrpc"
[plugins.'io.containerd.internal.v1.opt']
  path = "$dir/containerd/opt"
[plugins.'io.containerd.shim.v1.manager']
  socket_dir = "$shim_sockets"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = 'docker.io/local/pause:e2e'
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = '$runc'
      Root = '$dir/runc'
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '$dir/cni/net.d'
TOML
# The shim is found on PATH.
launch containerd env PATH="$bin:$PATH" "$bin/containerd" --config "$dir/containerd/config.toml"
# Its client warns about cgroup v1 on every call.
ctr() { "$bin/ctr" --address "$dir/containerd.sock" --namespace k8s.io "$@" 2>>"$dir/logs/ctr.log"; }
wait_for "containerd" 30 ctr version
# Before the kubelet starts: containerd must never try to pull the sandbox image.
ctr images import "$images/pause.tar" >/dev/null
ctr images import "$images/shell.tar" >/dev/null

# --- The kubelet: a client certificate of the system:nodes group, bound to the system:node
# role (the API server authorizes with RBAC only, no Node authorizer).
pki=$dir/pki
openssl req -newkey rsa:2048 -nodes -keyout "$pki/node.key" -out "$pki/node.csr" \
  -subj "/O=system:nodes/CN=system:node:$name" 2>/dev/null
openssl x509 -req -in "$pki/node.csr" -CA "$state/pki/ca.crt" -CAkey "$state/pki/ca.key" \
  -set_serial "0x$(openssl rand -hex 8)" -days 3650 -out "$pki/node.crt" \
  -extfile <(printf 'extendedKeyUsage=clientAuth\n') 2>/dev/null
cat >"$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: sealing-e2e
  cluster:
    server: $api_url
    certificate-authority-data: $(base64 -w0 "$state/pki/ca.crt")
users:
- name: node
  user:
    client-certificate-data: $(base64 -w0 "$pki/node.crt")
    client-key-data: $(base64 -w0 "$pki/node.key")
contexts:
- name: sealing-e2e
  context: {cluster: sealing-e2e, user: node}
current-context: sealing-e2e
KC
kubectl create clusterrolebinding "sealing-node-$name" --clusterrole=system:node \
  --user="system:node:$name" --dry-run=client -o yaml | kubectl apply -f - >/dev/null

if ((gpus)); then
  labels+=(nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB "nvidia.com/gpu.count=$gpus" nvidia.com/gpu.memory=40960)
  taints+=(nvidia.com/gpu=present:NoSchedule)
fi
taint_list=()
for t in "${taints[@]}"; do
  key=${t%%:*} effect=${t##*:} value=
  [[ $key == *=* ]] && value=${key#*=} key=${key%%=*}
  taint_list+=("{key: \"$key\", value: \"$value\", effect: $effect}")
done
# Loopback node addresses are refused, hence the node's own address on lo. failCgroupV1: this
# host is cgroup v1. The API server reaches the kubelet (logs, exec) as an anonymous user.
# No iptables chains of the kubelet's own: they would be shared by every node of the machine.
cat >"$dir/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$cgroup
containerRuntimeEndpoint: unix://$dir/containerd.sock
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: $node_ip
healthzPort: 10248
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
  x509: {clientCAFile: $state/pki/ca.crt}
authorization: {mode: AlwaysAllow}
failSwapOn: false
podLogsDir: $dir/pod-logs
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
makeIPTablesUtilChains: false
nodeStatusUpdateFrequency: 10s
serializeImagePulls: false
maxPods: 50
registerWithTaints: [$(IFS=,; echo "${taint_list[*]}")]
YAML
node_labels=$(IFS=,; echo "${labels[*]}")
# The device plugin directory is fixed at /var/lib/kubelet/device-plugins and emptied by every
# kubelet that starts; in its own mount namespace each kubelet sees its root directory there.
# The root directory is a shared mount, so the volumes the kubelet mounts under it reach
# containerd in the host's namespace.
mount --bind "$dir/kubelet" "$dir/kubelet"
mount --make-shared "$dir/kubelet"
# shellcheck disable=SC2016 # expanded by that shell
launch kubelet unshare --mount --propagation unchanged -- \
  /bin/sh -c 'mount --bind "$0" /var/lib/kubelet && exec "$@"' "$dir/kubelet" \
  "$bin/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubeconfig" \
  --root-dir "$dir/kubelet" --cert-dir "$pki" --hostname-override "$name" --node-ip "$node_ip" \
  ${node_labels:+--node-labels "$node_labels"} --v=2

# Registered before the kubelet's first node status, the GPUs are in it (later, they wait for
# the next update, 10 s); the plugin retries until the kubelet listens.
((gpus == 0)) || launch fake-gpu-plugin "$bin/fake-gpu-plugin" -dir "$dir/kubelet/device-plugins" -count "$gpus"
ready() {
  [[ $(kubectl get node "$name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]] &&
    [[ $(kubectl get node "$name" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}') == "${gpus#0}" ]]
}
what="Node $name to be Ready"
((gpus == 0)) || what+=" with $gpus nvidia.com/gpu"
wait_for "$what" 120 ready
trap - ERR
log "node $name ready in $((SECONDS - start))s (slot $slot, $node_ip, pods in $subnet, directory $dir)"
echo "$dir"
