//! Pod volumes as local directories: each simulated node has its own disk under the agent's
//! root directory, so two nodes on one machine never share a hostPath.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod, Volume};

use super::env::{EnvSources, ObjectData};

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
/// directory (`None` for volumes deliberately not mounted: the service account token).
pub fn prepare_volumes(
    pod: &Pod,
    disk: &NodeDisk,
    sources: &EnvSources,
) -> Result<Vec<(String, Option<PathBuf>)>, VolumeError> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    volumes
        .map(|v| {
            Ok((
                v.name.clone(),
                prepare_volume(v, disk, &disk.pod_dir(uid), sources)?,
            ))
        })
        .collect()
}

fn prepare_volume(
    v: &Volume,
    disk: &NodeDisk,
    pod_dir: &Path,
    sources: &EnvSources,
) -> Result<Option<PathBuf>, VolumeError> {
    let io = |path: &Path| {
        let volume = v.name.clone();
        let path = path.to_owned();
        move |source| VolumeError::Io {
            volume,
            path,
            source,
        }
    };
    let own_dir = pod_dir.join("volumes").join(&v.name);
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
        return Ok(Some(local));
    }
    if v.empty_dir.is_some() {
        std::fs::create_dir_all(&own_dir).map_err(io(&own_dir))?;
        // World-writable like kubelet's, so any runAsUser can use it.
        std::fs::set_permissions(&own_dir, std::fs::Permissions::from_mode(0o777))
            .map_err(io(&own_dir))?;
        return Ok(Some(own_dir));
    }
    if let Some(cm) = &v.config_map {
        let data = sources.config_maps.get(&cm.name);
        write_object_files(
            v,
            "ConfigMap",
            &cm.name,
            data,
            cm.items.as_deref(),
            cm.optional,
            cm.default_mode,
            &own_dir,
        )?;
        return Ok(Some(own_dir));
    }
    if let Some(secret) = &v.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        let data = sources.secrets.get(&name);
        write_object_files(
            v,
            "Secret",
            &name,
            data,
            secret.items.as_deref(),
            secret.optional,
            secret.default_mode,
            &own_dir,
        )?;
        return Ok(Some(own_dir));
    }
    if is_service_account_token(v) {
        // No token is mounted: test pods and sealer pods need no API credentials.
        return Ok(None);
    }
    let kind = if v.projected.is_some() {
        "projected"
    } else if v.persistent_volume_claim.is_some() {
        "persistentVolumeClaim"
    } else if v.downward_api.is_some() {
        "downwardAPI"
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

/// The `kube-api-access-*` volume the ServiceAccount admission plugin injects.
fn is_service_account_token(v: &Volume) -> bool {
    v.projected.as_ref().is_some_and(|p| {
        p.sources
            .iter()
            .flatten()
            .any(|s| s.service_account_token.is_some())
    })
}

#[allow(clippy::too_many_arguments)]
fn write_object_files(
    v: &Volume,
    kind: &'static str,
    name: &str,
    data: Option<&ObjectData>,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    default_mode: Option<i32>,
    dir: &Path,
) -> Result<(), VolumeError> {
    let io = |path: &Path| {
        let volume = v.name.clone();
        let path = path.to_owned();
        move |source| VolumeError::Io {
            volume,
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let Some(data) = data else {
        if optional == Some(true) {
            return Ok(());
        }
        return Err(VolumeError::MissingObject {
            volume: v.name.clone(),
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
        let rel_path = Path::new(rel);
        if rel_path.is_absolute() || rel_path.components().any(|c| c == Component::ParentDir) {
            return Err(VolumeError::BadPath {
                volume: v.name.clone(),
                path: rel.to_owned(),
            });
        }
        let bytes = data.get(key).ok_or_else(|| VolumeError::MissingKey {
            volume: v.name.clone(),
            kind,
            name: name.to_owned(),
            key: key.to_owned(),
        })?;
        let path = dir.join(rel_path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mut f = std::fs::File::create(&path).map_err(io(&path))?;
        f.write_all(bytes).map_err(io(&path))?;
        let mode = mode.or(default_mode).unwrap_or(0o644) as u32;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io(&path))?;
    }
    Ok(())
}

/// The bind mounts of `container`, ordered so that a mount nested in another comes after it.
pub fn container_mounts(
    container: &Container,
    volumes: &[(String, Option<PathBuf>)],
) -> Result<Vec<Mount>, VolumeError> {
    let mut mounts = Vec::new();
    for vm in container.volume_mounts.iter().flatten() {
        let (_, local) = volumes.iter().find(|(n, _)| *n == vm.name).ok_or_else(|| {
            VolumeError::UnknownVolume {
                container: container.name.clone(),
                volume: vm.name.clone(),
            }
        })?;
        let Some(local) = local else { continue };
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

    fn pod(volumes: serde_json::Value, mounts: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "uid": "uid-1"},
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
                {"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}
            ]),
            json!([
                {"name": "tmp", "mountPath": "/scratch/tmp"},
                {"name": "scratch", "mountPath": "/scratch", "readOnly": true},
                {"name": "cfg", "mountPath": "/etc/cfg"},
                {"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
            ]),
        );
        let sources = EnvSources {
            config_maps: [(
                "cm".to_string(),
                [("a".to_string(), b"hello".to_vec())].into(),
            )]
            .into(),
            ..Default::default()
        };
        let volumes = prepare_volumes(&p, &d, &sources).unwrap();
        let mounts = container_mounts(&p.spec.as_ref().unwrap().containers[0], &volumes).unwrap();
        let scratch = tmp.path().join("gpu-1/var/lib/sealing/scratch");
        assert!(scratch.is_dir());
        assert_eq!(mounts.len(), 3, "the service account token is not mounted");
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
    }

    #[test]
    fn bad_volumes_fail_with_the_volume_named() {
        let tmp = tempfile::tempdir().unwrap();
        let d = disk(tmp.path());
        let missing_dir = pod(
            json!([{"name": "data", "hostPath": {"path": "/nope", "type": "Directory"}}]),
            json!([]),
        );
        let err = prepare_volumes(&missing_dir, &d, &EnvSources::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("data") && err.contains("/nope"), "{err}");

        let pvc = pod(
            json!([{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]),
            json!([]),
        );
        let err = prepare_volumes(&pvc, &d, &EnvSources::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("persistentVolumeClaim"), "{err}");

        let no_cm = pod(
            json!([{"name": "cfg", "configMap": {"name": "absent"}}]),
            json!([]),
        );
        let err = prepare_volumes(&no_cm, &d, &EnvSources::default())
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
