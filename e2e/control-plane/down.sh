#!/usr/bin/env bash
# Stops the control plane that up.sh started in $SEALING_STATE_DIR, after its real nodes
# (e2e/nodes/down.sh --all): SIGTERM, then SIGKILL after a grace period, newest component
# first; then checks that none of its processes is left.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${SEALING_STATE_DIR:-/tmp/sealing-e2e-control-plane}
grace=${SEALING_STOP_GRACE_SECONDS:-15}
log() { echo "down.sh: $*" >&2; }
status=0
# The real nodes of e2e/nodes first: they hold host state (mounts, bridges, cgroups) and
# their pods are deleted through this API server.
if compgen -G "$state/nodes/*/node.env" >/dev/null; then
  SEALING_STATE_DIR=$state "$here/../nodes/down.sh" --all || status=1
fi
[[ -d "$state/pids" ]] || exit "$status"

# Only a process whose command line names our state directory is ours (pids get reused).
ours() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qF -- "$state"; }

stop() { # name
  local file=$state/pids/$1 pid
  [[ -f "$file" ]] || return 0
  pid=$(cat "$file")
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while ours "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if ours "$pid"; then
      log "$1 (pid $pid) ignored SIGTERM for ${grace}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while ours "$pid"; do sleep 0.1; done
    fi
  fi
  rm -f "$file"
}

for name in kwok kube-controller-manager kube-scheduler kube-apiserver etcd; do
  stop "$name"
done

left=()
for dir in /proc/[0-9]*; do
  pid=${dir#/proc/}
  [[ $pid == "$$" ]] && continue
  if ours "$pid" && ! grep -qE '(down|up)\.sh' "/proc/$pid/cmdline" 2>/dev/null; then
    left+=("$pid")
  fi
done
if ((${#left[@]})); then
  log "processes of $state still running: ${left[*]}"
  exit 1
fi
log "control plane in $state stopped"
exit "$status"
