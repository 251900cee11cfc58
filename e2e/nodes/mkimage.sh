#!/usr/bin/env bash
# Writes a one-layer OCI image archive of a directory, without Docker or a registry, in the form
# `ctr images import` accepts (the image is named by its io.containerd.image.name annotation).
#
#   mkimage.sh ROOTFS_DIR IMAGE_REF ENTRYPOINT_JSON CMD_JSON OUT.tar
#   e.g. mkimage.sh rootfs docker.io/local/shell:e2e null '["sh"]' shell.tar
#
# The layer is reproducible (sorted, owned by root, mtime 0), so the same rootfs gives the same
# image digest.
set -euo pipefail

log() { echo "mkimage.sh: $*" >&2; }
(($# == 5)) || { log "usage: mkimage.sh ROOTFS_DIR IMAGE_REF ENTRYPOINT_JSON CMD_JSON OUT.tar"; exit 2; }
rootfs=$1 ref=$2 entrypoint=$3 cmd=$4 out=$5
[[ -d "$rootfs" ]] || { log "$rootfs is not a directory"; exit 1; }
case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) log "unsupported machine $(uname -m)"; exit 1 ;;
esac

w=$(mktemp -d "${TMPDIR:-/tmp}/mkimage.XXXXXX")
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/blobs/sha256"

# Moves file $1 into blobs/ and sets $digest and $size.
blob() {
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$w/blobs/sha256/$digest"
}

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$rootfs" -cf "$w/layer.tar" .
diff_id=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
gzip -n -1 "$w/layer.tar"
blob "$w/layer.tar.gz"
layer_digest=$digest layer_size=$size

printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":%s,"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$arch" "$entrypoint" "$cmd" "$diff_id" >"$w/config.json"
blob "$w/config.json"
config_digest=$digest config_size=$size

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$w/manifest.json"
blob "$w/manifest.json"

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$digest" "$size" "$arch" "$ref" "${ref##*:}" >"$w/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci-layout"
tar -C "$w" -cf "$out.partial" oci-layout index.json blobs
mv "$out.partial" "$out"
