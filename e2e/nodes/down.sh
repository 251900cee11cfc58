#!/usr/bin/env bash
# Stops real nodes that up.sh started against the control plane in $SEALING_STATE_DIR, leaving
# nothing behind: the node's pods are deleted through the API server (the kubelet stops them,
# for up to $SEALING_NODE_STOP_GRACE_SECONDS, default 15), then the device plugin, the kubelet
# and containerd are stopped, and whatever remains is killed and removed: container processes
# and shims, mounts (volumes, root filesystems, network namespaces), the bridge and its veths,
# the iptables chain, the node address, the cgroups, the shim sockets. The Node, its pods and
# its ClusterRoleBinding are deleted from the API server when it still answers. The node's
# logs stay in its directory. Checks that nothing is left (exit 1 otherwise). Idempotent.
#
#   down.sh NAME      one node
#   down.sh --all     every node of this control plane (e2e/control-plane/down.sh runs this)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "nodes/down.sh: $*" >&2; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

(($# == 1)) || { log "usage: down.sh NAME|--all"; exit 2; }
[[ $(id -u) == 0 ]] || { log "stopping a node needs root"; exit 1; }

kubectl_bin=$(sed -n 's/^SEALING_K8S_BIN=//p' "$state/env" 2>/dev/null || true)/kubectl
kubectl() { "$kubectl_bin" --kubeconfig "$state/kubeconfig" --request-timeout=10s "$@"; }
api_answers() { [[ -x "$kubectl_bin" ]] && kubectl get --raw /readyz >/dev/null 2>&1; }

stop_node() { # directory
  dir=$1
  local NODE_NAME NODE_SLOT
  # shellcheck disable=SC1091
  source "$dir/node.env"
  local name=$NODE_NAME
  slot_vars "$NODE_SLOT"
  local api=0
  api_answers && api=1

  local kubelet_pid
  kubelet_pid=$(cat "$dir/pids/kubelet" 2>/dev/null || true)
  if ((api)) && [[ -n "$kubelet_pid" ]] && names_dir "$kubelet_pid" "$dir"; then
    # Graceful: the kubelet stops the containers and containerd tears their networks down.
    kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$name" \
      --wait --timeout="${grace}s" >/dev/null 2>&1 ||
      log "pods of $name not gone after ${grace}s; killing them"
  fi

  local what
  for what in fake-gpu-plugin kubelet containerd; do
    [[ -f "$dir/pids/$what" ]] && stop_pid "$(cat "$dir/pids/$what")" "$dir" "$what"
    rm -f "$dir/pids/$what"
  done
  if ((api)); then
    kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$name" \
      --force --grace-period=0 >/dev/null 2>&1 || true
    kubectl delete node "$name" --ignore-not-found >/dev/null
    kubectl delete clusterrolebinding "sealing-node-$name" --ignore-not-found >/dev/null
  else
    log "the API server does not answer; Node $name and its objects stay there"
  fi

  # Shims (and runc) name the node's directory; containers are found by their cgroups.
  local pid
  for pid in $(pids_naming "$dir"); do kill -KILL "$pid" 2>/dev/null || true; done
  remove_cgroups
  local deadline=$((SECONDS + grace))
  while [[ -n "$(pids_naming "$dir")" ]] && ((SECONDS < deadline)); do sleep 0.1; done

  # Root filesystems, volumes, /dev/shm, the network namespaces' bind mounts, the kubelet
  # root's shared mount; a network namespace goes with its last mount and process, and its
  # veth pair with it.
  local m
  while read -r m; do
    [[ -n "$m" ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
  done < <(mounts_under "$dir")

  exec 9>"$global_lock"
  flock 9
  release_slot_resources
  # The slot stays ours (and down.sh can try again) as long as its bridge is there.
  [[ -d /sys/class/net/$bridge ]] || rm -f "$dir/node.env"
  any_slot_taken || restore_host
  flock -u 9
  exec 9>&-

  # Never through a mount that would not go: it could be a bind mount of a host directory.
  [[ -n "$(mounts_under "$dir")" ]] ||
    find "$dir" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf --one-file-system {} +

  local left=()
  [[ -z "$(pids_naming "$dir")" ]] || left+=("processes $(pids_naming "$dir" | tr '\n' ' ')")
  [[ -z "$(mounts_under "$dir")" ]] || left+=("mounts $(mounts_under "$dir" | tr '\n' ' ')")
  [[ ! -d /sys/class/net/$bridge ]] || left+=("bridge $bridge")
  [[ ! -e $shim_sockets ]] || left+=("$shim_sockets")
  ! ip -o addr show dev lo | grep -qF " $node_ip/" || left+=("address $node_ip on lo")
  for m in $(cgroup_mounts); do [[ ! -d "$m/$cgroup" ]] || left+=("cgroup $m/$cgroup"); done
  for m in nat filter; do
    ! iptables -w -t "$m" -n -L "$chain" >/dev/null 2>&1 || left+=("iptables chain $m/$chain")
  done
  if ((${#left[@]})); then
    log "node $name left behind: ${left[*]}"
    return 1
  fi
  log "node $name stopped"
}

status=0
if [[ $1 == --all ]]; then
  for env in "$nodes_root"/*/node.env; do
    [[ -f "$env" ]] || continue
    stop_node "$(dirname "$env")" || status=1
  done
else
  [[ $1 =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || { log "node name '$1' is not a DNS label"; exit 2; }
  if [[ -f "$nodes_root/$1/node.env" ]]; then
    stop_node "$nodes_root/$1" || status=1
  else
    log "no node $1 in $nodes_root"
  fi
fi
exit "$status"
