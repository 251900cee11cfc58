//! Pod volumes as local directories: each simulated node has its own disk under the agent's
//! root directory, so two nodes on one machine never share a hostPath.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, KeyToPath, Pod, Volume};

use super::env::{NodeFacts, field_value};
use super::sources::{ObjectData, PodSources};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume}: {path} must be an absolute path without '..'")]
    BadPath { volume: String, path: String },
    #[error("volume {volume}: hostPath {path} (locally {local}) does not exist or is not a {kind}")]
    HostPathType {
        volume: String,
        path: String,
        local: PathBuf,
        kind: &'static str,
    },
    #[error(
        "volume {volume}: {kind} volumes are not supported by the node agent (supported: hostPath, emptyDir, configMap, secret)"
    )]
    Unsupported { volume: String, kind: &'static str },
    #[error("container {container}: volumeMount {volume} names no volume of the pod")]
    UnknownVolume { container: String, volume: String },
    #[error("volume {volume}: {kind} {name:?} was not found")]
    MissingObject {
        volume: String,
        kind: &'static str,
        name: String,
    },
    #[error("volume {volume}: {kind} {name:?} has no key {key:?}")]
    MissingKey {
        volume: String,
        kind: &'static str,
        name: String,
        key: String,
    },
    #[error("volume {volume}: {message}")]
    Item { volume: String, message: String },
    #[error("volume {volume}: preparing {path}: {source}")]
    Io {
        volume: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How a node's paths map onto this machine.
#[derive(Debug, Clone)]
pub struct NodeDisk {
    /// `<rootDir>/<node name>`
    pub root: PathBuf,
    pub pass_through: Vec<PathBuf>,
}

impl NodeDisk {
    /// The local path that the node's absolute path `path` stands for.
    pub fn local(&self, path: &Path) -> PathBuf {
        if self.pass_through.iter().any(|p| path.starts_with(p)) {
            return path.to_owned();
        }
        let relative: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        self.root.join(relative)
    }

    /// Where kubelet keeps a pod's own files (emptyDirs, materialised ConfigMaps, logs).
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root.join("var/lib/kubelet/pods").join(uid)
    }
}

/// A bind mount into a container's mount namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// Prepares the pod's volumes on the node's disk and returns, per volume name, its local
/// directory.
pub fn prepare_volumes(
    pod: &Pod,
    disk: &NodeDisk,
    sources: &PodSources,
    facts: &NodeFacts,
) -> Result<Vec<(String, PathBuf)>, VolumeError> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    volumes
        .map(|v| {
            let own_dir = disk.pod_dir(uid).join("volumes").join(&v.name);
            Ok((
                v.name.clone(),
                prepare_volume(v, pod, disk, &own_dir, sources, facts)?,
            ))
        })
        .collect()
}

fn prepare_volume(
    v: &Volume,
    pod: &Pod,
    disk: &NodeDisk,
    own_dir: &Path,
    sources: &PodSources,
    facts: &NodeFacts,
) -> Result<PathBuf, VolumeError> {
    let io = |path: &Path| {
        let volume = v.name.clone();
        let path = path.to_owned();
        move |source| VolumeError::Io {
            volume,
            path,
            source,
        }
    };
    let own_dir = own_dir.to_owned();
    if let Some(hp) = &v.host_path {
        let path = Path::new(&hp.path);
        if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            return Err(VolumeError::BadPath {
                volume: v.name.clone(),
                path: hp.path.clone(),
            });
        }
        let local = disk.local(path);
        let wrong = |kind| VolumeError::HostPathType {
            volume: v.name.clone(),
            path: hp.path.clone(),
            local: local.clone(),
            kind,
        };
        match hp.type_.as_deref().unwrap_or("") {
            // Unchecked hostPaths are created as directories, as Docker does.
            "" | "DirectoryOrCreate" => std::fs::create_dir_all(&local).map_err(io(&local))?,
            "Directory" if !local.is_dir() => return Err(wrong("directory")),
            "File" if !local.is_file() => return Err(wrong("file")),
            "FileOrCreate" if !local.exists() => {
                if let Some(parent) = local.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                std::fs::File::create(&local).map_err(io(&local))?;
            }
            "Socket" if !is_kind(&local, |t| std::os::unix::fs::FileTypeExt::is_socket(&t)) => {
                return Err(wrong("socket"));
            }
            _ => {}
        }
        return Ok(local);
    }
    if v.empty_dir.is_some() {
        std::fs::create_dir_all(&own_dir).map_err(io(&own_dir))?;
        // World-writable like kubelet's, so any runAsUser can use it.
        std::fs::set_permissions(&own_dir, std::fs::Permissions::from_mode(0o777))
            .map_err(io(&own_dir))?;
        return Ok(own_dir);
    }
    if let Some(cm) = &v.config_map {
        let data = sources.config_maps.get(&cm.name);
        write_object_files(
            &v.name,
            "ConfigMap",
            &cm.name,
            data,
            cm.items.as_deref(),
            cm.optional,
            cm.default_mode,
            &own_dir,
        )?;
        return Ok(own_dir);
    }
    if let Some(secret) = &v.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        let data = sources.secrets.get(&name);
        write_object_files(
            &v.name,
            "Secret",
            &name,
            data,
            secret.items.as_deref(),
            secret.optional,
            secret.default_mode,
            &own_dir,
        )?;
        return Ok(own_dir);
    }
    if let Some(projected) = &v.projected {
        std::fs::create_dir_all(&own_dir).map_err(io(&own_dir))?;
        let mode = projected.default_mode;
        for source in projected.sources.iter().flatten() {
            if let Some(t) = &source.service_account_token {
                let token = sources
                    .tokens
                    .get(&(v.name.clone(), t.path.clone()))
                    .ok_or_else(|| VolumeError::Item {
                        volume: v.name.clone(),
                        message: format!("no token was issued for {}", t.path),
                    })?;
                write_file(
                    &v.name,
                    &own_dir,
                    &t.path,
                    token.as_bytes(),
                    mode.unwrap_or(0o644),
                )?;
            } else if let Some(cm) = &source.config_map {
                let data = sources.config_maps.get(&cm.name);
                write_object_files(
                    &v.name,
                    "ConfigMap",
                    &cm.name,
                    data,
                    cm.items.as_deref(),
                    cm.optional,
                    mode,
                    &own_dir,
                )?;
            } else if let Some(secret) = &source.secret {
                let data = sources.secrets.get(&secret.name);
                write_object_files(
                    &v.name,
                    "Secret",
                    &secret.name,
                    data,
                    secret.items.as_deref(),
                    secret.optional,
                    mode,
                    &own_dir,
                )?;
            } else if let Some(d) = &source.downward_api {
                write_downward_api(
                    &v.name,
                    pod,
                    facts,
                    d.items.as_deref().unwrap_or_default(),
                    mode,
                    &own_dir,
                )?;
            } else {
                return Err(VolumeError::Unsupported {
                    volume: v.name.clone(),
                    kind: "projected clusterTrustBundle/podCertificate",
                });
            }
        }
        return Ok(own_dir);
    }
    if let Some(d) = &v.downward_api {
        std::fs::create_dir_all(&own_dir).map_err(io(&own_dir))?;
        write_downward_api(
            &v.name,
            pod,
            facts,
            d.items.as_deref().unwrap_or_default(),
            d.default_mode,
            &own_dir,
        )?;
        return Ok(own_dir);
    }
    let kind = if v.persistent_volume_claim.is_some() {
        "persistentVolumeClaim"
    } else if v.nfs.is_some() {
        "nfs"
    } else if v.csi.is_some() {
        "csi"
    } else if v.ephemeral.is_some() {
        "ephemeral"
    } else {
        "this kind of"
    };
    Err(VolumeError::Unsupported {
        volume: v.name.clone(),
        kind,
    })
}

fn is_kind(path: &Path, check: impl Fn(std::fs::FileType) -> bool) -> bool {
    std::fs::metadata(path)
        .map(|m| check(m.file_type()))
        .unwrap_or(false)
}

/// Writes `rel` under `dir` (creating its parents) with `mode`.
fn write_file(
    volume: &str,
    dir: &Path,
    rel: &str,
    bytes: &[u8],
    mode: i32,
) -> Result<(), VolumeError> {
    let rel_path = Path::new(rel);
    if rel_path.is_absolute() || rel_path.components().any(|c| c == Component::ParentDir) {
        return Err(VolumeError::BadPath {
            volume: volume.to_owned(),
            path: rel.to_owned(),
        });
    }
    let path = dir.join(rel_path);
    let io = |path: &Path| {
        let volume = volume.to_owned();
        let path = path.to_owned();
        move |source| VolumeError::Io {
            volume,
            path,
            source,
        }
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(&path, bytes).map_err(io(&path))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode as u32)).map_err(io(&path))
}

/// downwardAPI items: a pod field per file; `metadata.labels`/`annotations` as `key="value"` lines.
fn write_downward_api(
    volume: &str,
    pod: &Pod,
    facts: &NodeFacts,
    items: &[DownwardAPIVolumeFile],
    default_mode: Option<i32>,
    dir: &Path,
) -> Result<(), VolumeError> {
    for item in items {
        let Some(field) = &item.field_ref else {
            return Err(VolumeError::Item {
                volume: volume.to_owned(),
                message: format!("{}: only fieldRef items are supported", item.path),
            });
        };
        let map = match field.field_path.as_str() {
            "metadata.labels" => Some(pod.metadata.labels.clone().unwrap_or_default()),
            "metadata.annotations" => Some(pod.metadata.annotations.clone().unwrap_or_default()),
            _ => None,
        };
        let value = match map {
            Some(map) => map.iter().map(|(k, v)| format!("{k}={v:?}\n")).collect(),
            None => field_value(pod, field, facts, &item.path).map_err(|e| VolumeError::Item {
                volume: volume.to_owned(),
                message: e.to_string(),
            })?,
        };
        let mode = item.mode.or(default_mode).unwrap_or(0o644);
        write_file(volume, dir, &item.path, value.as_bytes(), mode)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_object_files(
    volume: &str,
    kind: &'static str,
    name: &str,
    data: Option<&ObjectData>,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    default_mode: Option<i32>,
    dir: &Path,
) -> Result<(), VolumeError> {
    std::fs::create_dir_all(dir).map_err(|source| VolumeError::Io {
        volume: volume.to_owned(),
        path: dir.to_owned(),
        source,
    })?;
    let Some(data) = data else {
        if optional == Some(true) {
            return Ok(());
        }
        return Err(VolumeError::MissingObject {
            volume: volume.to_owned(),
            kind,
            name: name.to_owned(),
        });
    };
    let files: Vec<(&str, &str, Option<i32>)> = match items {
        Some(items) => items
            .iter()
            .map(|i| (i.key.as_str(), i.path.as_str(), i.mode))
            .collect(),
        None => data
            .keys()
            .map(|k| (k.as_str(), k.as_str(), None))
            .collect(),
    };
    for (key, rel, mode) in files {
        let bytes = data.get(key).ok_or_else(|| VolumeError::MissingKey {
            volume: volume.to_owned(),
            kind,
            name: name.to_owned(),
            key: key.to_owned(),
        })?;
        write_file(
            volume,
            dir,
            rel,
            bytes,
            mode.or(default_mode).unwrap_or(0o644),
        )?;
    }
    Ok(())
}

/// The bind mounts of `container`, ordered so that a mount nested in another comes after it.
pub fn container_mounts(
    container: &Container,
    volumes: &[(String, PathBuf)],
) -> Result<Vec<Mount>, VolumeError> {
    let mut mounts = Vec::new();
    for vm in container.volume_mounts.iter().flatten() {
        let (_, local) = volumes.iter().find(|(n, _)| *n == vm.name).ok_or_else(|| {
            VolumeError::UnknownVolume {
                container: container.name.clone(),
                volume: vm.name.clone(),
            }
        })?;
        let target = Path::new(&vm.mount_path);
        if !target.is_absolute() || target.components().any(|c| c == Component::ParentDir) {
            return Err(VolumeError::BadPath {
                volume: vm.name.clone(),
                path: vm.mount_path.clone(),
            });
        }
        let mut source = local.clone();
        if let Some(sub) = vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            let sub_path = Path::new(sub);
            if sub_path.is_absolute() || sub_path.components().any(|c| c == Component::ParentDir) {
                return Err(VolumeError::BadPath {
                    volume: vm.name.clone(),
                    path: sub.to_owned(),
                });
            }
            source = local.join(sub_path);
            if !source.exists() {
                std::fs::create_dir_all(&source).map_err(|e| VolumeError::Io {
                    volume: vm.name.clone(),
                    path: source.clone(),
                    source: e,
                })?;
            }
        }
        mounts.push(Mount {
            source,
            target: target.to_owned(),
            read_only: vm.read_only.unwrap_or(false),
        });
    }
    mounts.sort_by_key(|m| m.target.components().count());
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn disk(root: &Path) -> NodeDisk {
        NodeDisk {
            root: root.join("gpu-1"),
            pass_through: vec!["/var/tmp/filecoin-proof-parameters".into()],
        }
    }

    #[test]
    fn host_paths_live_on_the_nodes_own_disk_except_pass_through() {
        let d = disk(Path::new("/nodes"));
        assert_eq!(
            d.local(Path::new("/var/lib/sealing/scratch")),
            Path::new("/nodes/gpu-1/var/lib/sealing/scratch")
        );
        assert_eq!(
            d.local(Path::new("/var/tmp/filecoin-proof-parameters/v28.vk")),
            Path::new("/var/tmp/filecoin-proof-parameters/v28.vk")
        );
        let other = NodeDisk {
            root: "/nodes/cpu-1".into(),
            pass_through: vec![],
        };
        assert_ne!(d.local(Path::new("/data")), other.local(Path::new("/data")));
    }

    fn facts() -> NodeFacts {
        NodeFacts {
            host_ip: "127.0.0.1".into(),
            pod_ip: "127.0.0.1".into(),
            allocatable: Default::default(),
        }
    }

    fn pod(volumes: serde_json::Value, mounts: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1", "labels": {"app": "sealer"}},
            "spec": {"volumes": volumes, "containers": [{"name": "c", "image": "i", "volumeMounts": mounts}]}
        }))
        .unwrap()
    }

    #[test]
    fn volumes_are_prepared_and_mounted_in_nesting_order() {
        let tmp = tempfile::tempdir().unwrap();
        let d = disk(tmp.path());
        let p = pod(
            json!([
                {"name": "scratch", "hostPath": {"path": "/var/lib/sealing/scratch", "type": "DirectoryOrCreate"}},
                {"name": "tmp", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "a", "path": "sub/a.txt"}]}},
                {"name": "kube-api-access-x", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token"}},
                    {"configMap": {"name": "cm", "items": [{"key": "a", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
                ]}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}
                ]}}
            ]),
            json!([
                {"name": "tmp", "mountPath": "/scratch/tmp"},
                {"name": "scratch", "mountPath": "/scratch", "readOnly": true},
                {"name": "cfg", "mountPath": "/etc/cfg"},
                {"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
                {"name": "info", "mountPath": "/etc/podinfo"}
            ]),
        );
        let sources = PodSources {
            config_maps: [(
                "cm".to_string(),
                [("a".to_string(), b"hello".to_vec())].into(),
            )]
            .into(),
            tokens: [(
                ("kube-api-access-x".to_string(), "token".to_string()),
                "jwt".to_string(),
            )]
            .into(),
            ..Default::default()
        };
        let volumes = prepare_volumes(&p, &d, &sources, &facts()).unwrap();
        let mounts = container_mounts(&p.spec.as_ref().unwrap().containers[0], &volumes).unwrap();
        let scratch = tmp.path().join("gpu-1/var/lib/sealing/scratch");
        assert!(scratch.is_dir());
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[0].target, Path::new("/scratch"));
        assert!(mounts[0].read_only);
        assert_eq!(mounts[0].source, scratch);
        let pos = |t: &str| {
            mounts
                .iter()
                .position(|m| m.target == Path::new(t))
                .unwrap()
        };
        assert!(
            pos("/scratch") < pos("/scratch/tmp"),
            "the outer mount comes first"
        );
        let cfg = mounts
            .iter()
            .find(|m| m.target == Path::new("/etc/cfg"))
            .unwrap();
        assert_eq!(
            std::fs::read(cfg.source.join("sub/a.txt")).unwrap(),
            b"hello"
        );
        let file = |target: &str, name: &str| {
            let m = mounts
                .iter()
                .find(|m| m.target == Path::new(target))
                .unwrap();
            std::fs::read_to_string(m.source.join(name)).unwrap()
        };
        let sa = "/var/run/secrets/kubernetes.io/serviceaccount";
        assert_eq!(file(sa, "token"), "jwt");
        assert_eq!(file(sa, "ca.crt"), "hello");
        assert_eq!(file(sa, "namespace"), "ns");
        assert_eq!(file("/etc/podinfo", "labels"), "app=\"sealer\"\n");
        assert_eq!(file("/etc/podinfo", "name"), "p");
    }

    #[test]
    fn bad_volumes_fail_with_the_volume_named() {
        let tmp = tempfile::tempdir().unwrap();
        let d = disk(tmp.path());
        let missing_dir = pod(
            json!([{"name": "data", "hostPath": {"path": "/nope", "type": "Directory"}}]),
            json!([]),
        );
        let err = prepare_volumes(&missing_dir, &d, &PodSources::default(), &facts())
            .unwrap_err()
            .to_string();
        assert!(err.contains("data") && err.contains("/nope"), "{err}");

        let pvc = pod(
            json!([{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]),
            json!([]),
        );
        let err = prepare_volumes(&pvc, &d, &PodSources::default(), &facts())
            .unwrap_err()
            .to_string();
        assert!(err.contains("persistentVolumeClaim"), "{err}");

        let no_cm = pod(
            json!([{"name": "cfg", "configMap": {"name": "absent"}}]),
            json!([]),
        );
        let err = prepare_volumes(&no_cm, &d, &PodSources::default(), &facts())
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent"), "{err}");

        let dangling = pod(json!([]), json!([{"name": "ghost", "mountPath": "/g"}]));
        let err = container_mounts(&dangling.spec.as_ref().unwrap().containers[0], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("ghost"), "{err}");
    }
}
