#!/usr/bin/env bash
# Installs what the build and the tests need from the operating system, on a fresh Debian
# machine: the tools the local control plane uses (openssl, curl, unshare/mount from util-linux),
# what the real nodes of e2e/nodes run on (runc, the CNI plugins, iptables, iproute2, a static
# busybox for their shell image) and the compilers' helpers (the static C library for the pause
# binary). Rust (cargo) and Go are expected on PATH; the script says so clearly when they are
# not. Idempotent and quick when everything is there.
set -euo pipefail

log() { echo "setup.sh: $*" >&2; }

packages=()
for tool in openssl:openssl curl:curl unshare:util-linux mount:mount pkg-config:pkg-config cc:gcc \
  runc:runc iptables:iptables ip:iproute2; do
  command -v "${tool%%:*}" >/dev/null || packages+=("${tool#*:}")
done
[[ -x /usr/lib/cni/bridge ]] || packages+=(containernetworking-plugins)
if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then packages+=(busybox-static); fi
if command -v cc >/dev/null && [[ $(cc -print-file-name=libc.a) != /* ]]; then packages+=(libc6-dev); fi
if ((${#packages[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing packages ${packages[*]}; install them with: sudo apt-get install ${packages[*]}"
    exit 1
  fi
  log "installing ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

command -v cargo >/dev/null || { log "cargo is not on PATH: install Rust 1.95 or newer (https://rustup.rs)"; exit 1; }
command -v go >/dev/null || { log "go is not on PATH: install Go 1.26 or newer; it builds the local control plane"; exit 1; }
