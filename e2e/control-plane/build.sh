#!/usr/bin/env bash
# Builds kube-apiserver, kube-scheduler, kube-controller-manager (k8s.io/kubernetes through a
# wrapper module that pins every staging module), etcd and kwok from the Go module proxy into
#   ${SEALING_CACHE_DIR:-$HOME/.cache/sealing-operator}/k8s/<k8s>-etcd<ver>-kwok<ver>/bin
# and prints that directory on stdout. A no-op when the binaries are already there.
# Go's own GOMODCACHE/GOCACHE stay at their defaults so a second machine run reuses them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${SEALING_CACHE_DIR:-$HOME/.cache/sealing-operator}
key="${K8S_VERSION}-etcd${ETCD_VERSION}-kwok${KWOK_VERSION}"
dest="$cache_root/k8s/$key"
bin="$dest/bin"
binaries=(kube-apiserver kube-scheduler kube-controller-manager kubectl etcd kwok)

log() { echo "build.sh: $*" >&2; }

have_all() {
  local d=$1 b
  for b in "${binaries[@]}"; do [[ -x "$d/$b" ]] || return 1; done
  [[ -f "$d/kwok-stages/.complete" ]]
}

if have_all "$bin"; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { log "go is not on PATH; install Go >= 1.26 (the Kubernetes ${K8S_VERSION%.*} modules declare go 1.26.0)"; exit 1; }

mkdir -p "$dest"
# One build at a time per cache entry; a second caller waits and then finds the binaries.
exec 9>"$dest/.lock"
flock 9
if have_all "$bin"; then
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
  for c in kube-apiserver kube-scheduler kube-controller-manager kubectl; do
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
  go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION"
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
  for c in kube-apiserver kube-scheduler kube-controller-manager kubectl; do
    if [[ -x "$bin/$c" ]]; then continue; fi
    log "building $c $K8S_VERSION"
    go build -trimpath -ldflags "-s -w$ldf" -o "$bin/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$bin/$c.tmp" "$bin/$c"
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

"$bin/kube-apiserver" --version >&2
"$bin/etcd" --version | head -1 >&2
log "built into $bin in $((SECONDS - start))s"
echo "$bin"
