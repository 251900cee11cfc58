#!/usr/bin/env bash
# Builds kube-apiserver, kube-scheduler, kube-controller-manager, kubectl and kubelet
# (k8s.io/kubernetes through a wrapper module that pins every staging module), etcd and kwok
# from the Go module proxy into
#   ${SEALING_CACHE_DIR:-$HOME/.cache/sealing-operator}/k8s/<k8s>-etcd<ver>-kwok<ver>/bin
# and prints that directory on stdout. The real nodes of e2e/nodes need, in the same directory:
# containerd, containerd-shim-runc-v2 and ctr ($CONTAINERD_VERSION, recorded in
# .containerd-version), the sandbox's pause binary (C, from the Kubernetes module) and
# fake-gpu-plugin (e2e/nodes/fake-gpu-plugin, rebuilt when its source changes). A no-op when
# everything is there; otherwise only what is missing is built.
# Go's own GOMODCACHE/GOCACHE stay at their defaults so a second machine run reuses them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${SEALING_CACHE_DIR:-$HOME/.cache/sealing-operator}
key="${K8S_VERSION}-etcd${ETCD_VERSION}-kwok${KWOK_VERSION}"
dest="$cache_root/k8s/$key"
bin="$dest/bin"
kubernetes_binaries=(kube-apiserver kube-scheduler kube-controller-manager kubectl kubelet)
containerd_binaries=(containerd containerd-shim-runc-v2 ctr)
binaries=("${kubernetes_binaries[@]}" etcd kwok "${containerd_binaries[@]}" pause)
plugin_src="$here/../nodes/fake-gpu-plugin/main.go"

log() { echo "build.sh: $*" >&2; }

# The source hash the cached fake-gpu-plugin must have been built from.
plugin_hash=$(sha256sum "$plugin_src" | cut -d' ' -f1)

containerd_current() {
  local c
  for c in "${containerd_binaries[@]}"; do [[ -x "$bin/$c" ]] || return 1; done
  [[ $(cat "$bin/.containerd-version" 2>/dev/null) == "$CONTAINERD_VERSION" ]]
}

plugin_current() {
  [[ -x "$bin/fake-gpu-plugin" && $(cat "$bin/.fake-gpu-plugin.sha256" 2>/dev/null) == "$plugin_hash" ]]
}

have_all() {
  local b
  for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
  [[ -f "$bin/kwok-stages/.complete" ]] && containerd_current && plugin_current
}

if have_all; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { log "go is not on PATH; install Go >= 1.26 (the Kubernetes ${K8S_VERSION%.*} modules declare go 1.26.0)"; exit 1; }

mkdir -p "$dest"
# One build at a time per cache entry; a second caller waits and then finds the binaries.
exec 9>"$dest/.lock"
flock 9
if have_all; then
  echo "$bin"
  exit 0
fi

# The host's Go, never a downloaded toolchain; 2 parallel compiles keep memory and the
# shared 2-core machine usable.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false -p=${SEALING_GO_PARALLEL:-2}"

# Each binary lands in $bin only when complete (built as .tmp, then renamed), so an
# interrupted build resumes with what is missing.
mkdir -p "$bin"
work=$(mktemp -d "${TMPDIR:-/tmp}/sealing-k8s-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

build_kubernetes() {
  local missing=0 c
  for c in "${kubernetes_binaries[@]}"; do
    [[ -x "$bin/$c" ]] || missing=1
  done
  ((missing)) || return 0
  local minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  local staging="v0.${K8S_VERSION#v1.}"
  local w="$work/kubernetes"
  mkdir -p "$w" && cd "$w"
  go mod init local/k8s-bins >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [[ -f "$gomod" ]] || { log "could not download k8s.io/kubernetes@$K8S_VERSION's go.mod"; return 1; }
  go mod edit -go="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and resolves them by relative
  # path; pin each one (derived from the tag's own go.mod) to its published tag.
  local mods
  mods=$(sed -n 's|^[[:space:]]*\(k8s.io/[A-Za-z0-9._-]*\) => \./staging/.*|\1|p' "$gomod")
  [[ -n "$mods" ]] || { log "no staging replace directives found in $gomod"; return 1; }
  local m
  for m in $mods; do go mod edit -replace="$m=$m@$staging"; done
  log "resolving k8s.io/kubernetes@$K8S_VERSION ($(wc -w <<<"$mods") staging modules pinned at $staging)"
  local tools=()
  for c in "${kubernetes_binaries[@]}"; do tools+=("k8s.io/kubernetes/cmd/$c@$K8S_VERSION"); done
  go get -tool "${tools[@]}"
  local commit date
  commit=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"Hash": "\(.*\)",*$/\1/p' | head -1)
  date=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"Time": "\(.*\)",*$/\1/p' | head -1)
  local ldf=""
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldf+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${date:-unknown}"
    [[ -n "$commit" ]] && ldf+=" -X $pkg.gitCommit=$commit"
  done
  for c in "${kubernetes_binaries[@]}"; do
    if [[ -x "$bin/$c" ]]; then continue; fi
    log "building $c $K8S_VERSION"
    local t=$SECONDS
    go build -trimpath -ldflags "-s -w$ldf" -o "$bin/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$bin/$c.tmp" "$bin/$c"
    log "built $c in $((SECONDS - t))s"
  done
}

build_etcd() {
  [[ -x "$bin/etcd" ]] && return 0
  # A separate module: etcd's dependency graph must not be unified with Kubernetes'. The
  # replace directives in etcd's own server/go.mod are ignored for a dependency, and its
  # require lines pin the same-tag api/client modules.
  local w="$work/etcd"
  mkdir -p "$w" && cd "$w"
  go mod init local/etcd-bin >/dev/null 2>&1
  log "building etcd $ETCD_VERSION"
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$bin/etcd.tmp" "$bin/etcd"
}

build_kwok() {
  [[ -x "$bin/kwok" ]] && return 0
  local w="$work/kwok"
  mkdir -p "$w" && cd "$w"
  go mod init local/kwok-bin >/dev/null 2>&1
  log "building kwok $KWOK_VERSION"
  go get -tool "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    -o "$bin/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok
  mv "$bin/kwok.tmp" "$bin/kwok"
}

build_containerd() {
  containerd_current && return 0
  # Its own module, like etcd: containerd's graph is not unified with Kubernetes'.
  local w="$work/containerd" c t=$SECONDS
  mkdir -p "$w" && cd "$w"
  go mod init local/containerd-bins >/dev/null 2>&1
  log "building containerd $CONTAINERD_VERSION (${containerd_binaries[*]})"
  local tools=()
  for c in "${containerd_binaries[@]}"; do tools+=("github.com/containerd/containerd/v2/cmd/$c@$CONTAINERD_VERSION"); done
  go get -tool "${tools[@]}"
  local commit
  commit=$(go mod download -json "github.com/containerd/containerd/v2@$CONTAINERD_VERSION" | sed -n 's/^[[:space:]]*"Hash": "\(.*\)",*$/\1/p' | head -1)
  local pkg=github.com/containerd/containerd/v2/version
  local ldf="-s -w -X $pkg.Version=$CONTAINERD_VERSION"
  [[ -n "$commit" ]] && ldf+=" -X $pkg.Revision=$commit"
  rm -f "$bin/.containerd-version"
  for c in "${containerd_binaries[@]}"; do
    # The tags of containerd's own Makefile; btrfs needs cgo, and the shim speaks only ttrpc.
    local tags=urfave_cli_no_docs,no_btrfs
    [[ $c == containerd-shim-runc-v2 ]] && tags=urfave_cli_no_docs,no_grpc
    go build -trimpath -tags "$tags" -ldflags "$ldf" -o "$bin/$c.tmp" "github.com/containerd/containerd/v2/cmd/$c"
    mv "$bin/$c.tmp" "$bin/$c"
  done
  echo "$CONTAINERD_VERSION" >"$bin/.containerd-version"
  log "built containerd $CONTAINERD_VERSION in $((SECONDS - t))s"
}

# The sandbox (pause) container's binary: Kubernetes' own pause.c, static, for the local pause image.
build_pause() {
  [[ -x "$bin/pause" ]] && return 0
  command -v cc >/dev/null || { log "a C compiler is required for the pause binary (apt-get install gcc libc6-dev)"; return 1; }
  local dir
  dir=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [[ -f "$dir/build/pause/linux/pause.c" ]] || { log "k8s.io/kubernetes@$K8S_VERSION has no build/pause/linux/pause.c"; return 1; }
  log "building pause from k8s.io/kubernetes@$K8S_VERSION"
  cc -Os -static -DVERSION="$K8S_VERSION-sealing-e2e" -o "$bin/pause.tmp" "$dir/build/pause/linux/pause.c" ||
    { log "static linking failed; the static C library is in libc6-dev (apt-get install libc6-dev)"; return 1; }
  mv "$bin/pause.tmp" "$bin/pause"
}

# The fake nvidia.com/gpu device plugin of the real nodes, against the kubelet's own
# device plugin API module (k8s.io/kubelet at the Kubernetes version's staging tag).
build_fake_gpu_plugin() {
  plugin_current && return 0
  local w="$work/fake-gpu-plugin" t=$SECONDS
  mkdir -p "$w" && cd "$w"
  go mod init local/fake-gpu-plugin >/dev/null 2>&1
  cp "$plugin_src" main.go
  log "building fake-gpu-plugin"
  go get "k8s.io/kubelet@v0.${K8S_VERSION#v1.}"
  go mod tidy
  rm -f "$bin/.fake-gpu-plugin.sha256"
  go build -trimpath -ldflags "-s -w" -o "$bin/fake-gpu-plugin.tmp" .
  mv "$bin/fake-gpu-plugin.tmp" "$bin/fake-gpu-plugin"
  echo "$plugin_hash" >"$bin/.fake-gpu-plugin.sha256"
  log "built fake-gpu-plugin in $((SECONDS - t))s"
}

# kwok does nothing without Stage objects; use the "fast" node/pod stages and the lease
# heartbeat that kwok ships in its module (what kwokctl applies by default).
kwok_stages() {
  [[ -f "$bin/kwok-stages/.complete" ]] && return 0
  local dir
  dir=$(cd "$work" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [[ -d "$dir/kustomize/stage" ]] || { log "sigs.k8s.io/kwok@$KWOK_VERSION has no kustomize/stage directory"; return 1; }
  rm -rf "$bin/kwok-stages" && mkdir -p "$bin/kwok-stages"
  local f
  for f in "$dir"/kustomize/stage/node/fast/*.yaml "$dir"/kustomize/stage/node/heartbeat-with-lease/*.yaml \
    "$dir"/kustomize/stage/pod/fast/*.yaml; do
    [[ $(basename "$f") == kustomization.yaml ]] || cp "$f" "$bin/kwok-stages/"
  done
  touch "$bin/kwok-stages/.complete"
}

start=$SECONDS
build_kubernetes
build_etcd
build_kwok
kwok_stages
build_containerd
build_pause
build_fake_gpu_plugin

"$bin/kube-apiserver" --version >&2
"$bin/etcd" --version | sed -n 1p >&2
log "built into $bin in $((SECONDS - start))s"
echo "$bin"
