# shellcheck shell=bash disable=SC2034 # its variables are for the scripts that source it
# Shared by up.sh and down.sh (sourced, not run).
#
# A node takes a slot 0..63 on this machine; the slot names everything of the node that lives
# outside its directory: bridge sealbr<slot> (its alias holds the node directory, which claims
# the slot), pod subnet 10.123.<slot>.0/24, node address 10.122.0.<slot+1>/32 on lo, cgroup root
# /sealing-node<slot> in every hierarchy, iptables chain SEALING-NODE<slot> (nat and filter),
# containerd's shim sockets in /run/sealing-node<slot> (their directory must be short).
# Slots are claimed and released under $global_lock, so nodes of several control planes can
# share the machine.

state=${SEALING_STATE_DIR:-/tmp/sealing-e2e-control-plane}
nodes_root=$state/nodes
global_lock=/run/lock/sealing-e2e-nodes.lock
# What the first node changed on the host (restored when the last node stops).
host_state=/run/lock/sealing-e2e-nodes.host
max_slots=64
# Seconds a process (or the node's pods) gets to stop before it is killed.
grace=${SEALING_NODE_STOP_GRACE_SECONDS:-15}

slot_vars() { # slot: sets bridge subnet gateway node_ip cgroup chain shim_sockets
  local i=$1
  bridge=sealbr$i
  subnet=10.123.$i.0/24
  gateway=10.123.$i.1
  node_ip=10.122.0.$((i + 1))
  cgroup=sealing-node$i
  chain=SEALING-NODE$i
  shim_sockets=/run/sealing-node$i
}

# The mount points of the cgroup hierarchies (v1 and the hybrid unified one).
cgroup_mounts() {
  awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts
}

# Whether process $1's command line names a path under directory $2.
names_dir() {
  { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qF -- "$2/"
}

# Pids (other than this script and its callers) whose command line names a path under $1.
pids_naming() {
  local dir=$1 p pid
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ $pid == "$$" || $pid == "$PPID" ]] && continue
    names_dir "$pid" "$dir" && ! grep -qE '(up|down)\.sh' "$p/cmdline" 2>/dev/null && echo "$pid"
  done
  return 0
}

# Pids in cgroup $1 (and below) of any hierarchy.
pids_in_cgroup() {
  local m
  for m in $(cgroup_mounts); do
    if [[ -d "$m/$1" ]]; then find "$m/$1" -name cgroup.procs -exec cat {} + 2>/dev/null || true; fi
  done | sort -un
}

# Mount points at or under $1, deepest first.
mounts_under() {
  awk -v d="$1" '{ gsub(/\\040/, " ", $5) } $5 == d || index($5, d "/") == 1 { print length($5), $5 }' \
    /proc/self/mountinfo | sort -rn | cut -d' ' -f2-
}

# SIGTERM, then SIGKILL after $grace seconds, for process $1 if its command line names $2/.
stop_pid() {
  local pid=$1 dir=$2 what=$3
  names_dir "$pid" "$dir" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while names_dir "$pid" "$dir" && ((SECONDS < deadline)); do sleep 0.1; done
  if names_dir "$pid" "$dir"; then
    log "$what (pid $pid) ignored SIGTERM for ${grace}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while names_dir "$pid" "$dir"; do sleep 0.1; done
  fi
}

# Removes the iptables chain of a slot (nat and filter) and the rules jumping to it.
remove_chain() {
  local table parent
  for table in nat filter; do
    parent=PREROUTING
    [[ $table == filter ]] && parent=INPUT
    while iptables -w -t "$table" -D "$parent" -i "$bridge" -j "$chain" 2>/dev/null; do :; done
    if iptables -w -t "$table" -n -L "$chain" >/dev/null 2>&1; then
      iptables -w -t "$table" -F "$chain"
      iptables -w -t "$table" -X "$chain"
    fi
  done
}

# Kills every process in the slot's cgroups and removes them, deepest first.
remove_cgroups() {
  local deadline=$((SECONDS + 30)) pids m
  while :; do
    pids=$(pids_in_cgroup "$cgroup")
    [[ -z "$pids" ]] && break
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $pids 2>/dev/null || true
    ((SECONDS < deadline)) || { log "processes $pids in cgroup /$cgroup survive SIGKILL"; return 1; }
    sleep 0.2
  done
  for m in $(cgroup_mounts); do
    [[ -d "$m/$cgroup" ]] || continue
    # A cgroup whose last task just exited can be busy for a moment.
    local tries=0
    until find "$m/$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null; do
      ((++tries < 50)) || { log "cannot remove cgroup $m/$cgroup"; return 1; }
      sleep 0.1
    done
  done
}

# Removes what a slot holds outside the node's directory: cgroups (and their processes), the
# iptables chain, the node address, the shim sockets (a killed shim leaves its own), and last
# the bridge with the veths on it, which frees the slot.
release_slot_resources() {
  remove_cgroups
  remove_chain
  ip addr del "$node_ip/32" dev lo 2>/dev/null || true
  rm -rf "$shim_sockets"
  if [[ -d /sys/class/net/$bridge ]]; then
    local port
    for port in /sys/class/net/"$bridge"/brif/*; do
      if [[ -e "$port" ]]; then ip link del "$(basename "$port")" 2>/dev/null || true; fi
    done
    ip link del "$bridge"
  fi
}

# Whether slot $1 is taken (its bridge exists).
slot_taken() { [[ -d /sys/class/net/sealbr$1 ]]; }

any_slot_taken() {
  local i
  for ((i = 0; i < max_slots; i++)); do slot_taken "$i" && return 0; done
  return 1
}

# Called with $global_lock held when no slot is taken any more: undoes what the first node
# changed on the host.
restore_host() {
  [[ -f "$host_state" ]] || return 0
  local created_var_lib_kubelet=0 ip_forward=
  # shellcheck disable=SC1090
  source "$host_state"
  if ((created_var_lib_kubelet)); then rmdir /var/lib/kubelet 2>/dev/null || true; fi
  [[ -n "$ip_forward" ]] && echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward
  rm -f "$host_state"
}
