//! The node agent's configuration file: which Nodes to register, where each node's disk lives
//! locally, and which local binary each container image stands for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read node agent config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("node agent config {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("node agent config: {0}")]
    Invalid(String),
}

/// Top-level configuration (YAML, camelCase keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    /// Each node's local disk is `<rootDir>/<node name>`; a hostPath `/x` on node `n` is
    /// `<rootDir>/n/x` unless `/x` is under one of `passThroughPaths`.
    pub root_dir: PathBuf,
    /// Absolute host paths that every node sees as they are (e.g. the proof parameter cache).
    #[serde(default)]
    pub pass_through_paths: Vec<PathBuf>,
    /// How often the node Lease is renewed and the Ready condition refreshed.
    #[serde(default = "default_heartbeat_seconds")]
    pub heartbeat_seconds: u64,
    /// The API server address given to containers as KUBERNETES_SERVICE_HOST/PORT; defaults
    /// to the address the agent itself talks to.
    #[serde(default)]
    pub api_server: Option<String>,
    pub nodes: Vec<NodeConfig>,
    #[serde(default)]
    pub images: Vec<ImageConfig>,
}

fn default_heartbeat_seconds() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeConfig {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
    /// Capacity reported in the Node status (and used as allocatable), e.g.
    /// `{cpu: "4", memory: 8Gi, nvidia.com/gpu: "1"}`. `pods` defaults to 110.
    pub capacity: BTreeMap<String, Quantity>,
}

/// What a container image stands for on this machine.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageConfig {
    /// An image reference without tag or digest (`ghcr.io/x/sealer-pod` matches
    /// `ghcr.io/x/sealer-pod:v1`), or a prefix ending in `*`.
    pub image: String,
    /// The image's ENTRYPOINT, as host paths; used when the container has no `command`.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// The image's CMD; used when the container has neither `command` nor `args`.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Paths inside the image mapped to host binaries, for containers whose `command`
    /// names the in-image path (e.g. `/usr/local/bin/sealer-pod`).
    #[serde(default)]
    pub paths: BTreeMap<String, PathBuf>,
    /// The image's ENV.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl AgentConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: AgentConfig =
            serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source,
            })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.root_dir.is_absolute() {
            return Err(ConfigError::Invalid(format!(
                "rootDir {} must be an absolute path",
                self.root_dir.display()
            )));
        }
        if self.nodes.is_empty() {
            return Err(ConfigError::Invalid(
                "nodes: at least one node is required".into(),
            ));
        }
        if self.heartbeat_seconds == 0 {
            return Err(ConfigError::Invalid(
                "heartbeatSeconds must be at least 1".into(),
            ));
        }
        for p in &self.pass_through_paths {
            if !p.is_absolute() {
                return Err(ConfigError::Invalid(format!(
                    "passThroughPaths: {} must be an absolute path",
                    p.display()
                )));
            }
        }
        let mut names = BTreeSet::new();
        for node in &self.nodes {
            if !is_dns_subdomain(&node.name) {
                return Err(ConfigError::Invalid(format!(
                    "node name {:?} is not a valid DNS subdomain (lowercase letters, digits, '-' and '.')",
                    node.name
                )));
            }
            if !names.insert(node.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "node {:?} is listed twice",
                    node.name
                )));
            }
            for (resource, q) in &node.capacity {
                kube_quantity::ParsedQuantity::try_from(q).map_err(|e| {
                    ConfigError::Invalid(format!(
                        "node {}: capacity {resource}: {:?} is not a quantity: {e}",
                        node.name, q.0
                    ))
                })?;
            }
        }
        for image in &self.images {
            if image.image.is_empty() {
                return Err(ConfigError::Invalid(
                    "images: an entry has an empty image".into(),
                ));
            }
            for exe in image
                .entrypoint
                .first()
                .map(PathBuf::from)
                .iter()
                .chain(image.paths.values())
            {
                if !exe.is_absolute() {
                    return Err(ConfigError::Invalid(format!(
                        "image {}: binary {} must be an absolute host path",
                        image.image,
                        exe.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The configuration for `image`, the most specific entry winning.
    pub fn image(&self, image: &str) -> Option<&ImageConfig> {
        let repository = strip_tag_and_digest(image);
        self.images
            .iter()
            .filter(|c| match c.image.strip_suffix('*') {
                Some(prefix) => image.starts_with(prefix),
                None => c.image == image || c.image == repository,
            })
            .max_by_key(|c| (!c.image.ends_with('*'), c.image.len()))
    }
}

/// `registry:5000/a/b:tag@sha256:..` -> `registry:5000/a/b`.
fn strip_tag_and_digest(image: &str) -> &str {
    let without_digest = image.split_once('@').map_or(image, |(name, _)| name);
    let last_component_start = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_component_start..].rfind(':') {
        Some(i) => &without_digest[..last_component_start + i],
        None => without_digest,
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Result<AgentConfig, ConfigError> {
        let c: AgentConfig = serde_yaml::from_str(yaml).map_err(|source| ConfigError::Parse {
            path: "test.yaml".into(),
            source,
        })?;
        c.validate()?;
        Ok(c)
    }

    const BASE: &str = r#"
rootDir: /tmp/nodes
nodes:
  - name: gpu-1
    labels: {nvidia.com/gpu.product: A100}
    taints: [{key: nvidia.com/gpu, effect: NoSchedule}]
    capacity: {cpu: "4", memory: 8Gi, nvidia.com/gpu: "1"}
images:
  - image: ghcr.io/x/sealer-pod
    entrypoint: [/opt/bin/sealer-pod]
    paths: {/usr/local/bin/sealer-pod: /opt/bin/sealer-pod}
  - image: "local/*"
    entrypoint: [/bin/sh]
  - image: local/special
    entrypoint: [/bin/true]
"#;

    #[test]
    fn images_match_by_repository_and_prefix_most_specific_first() {
        let c = config(BASE).unwrap();
        let ep = |img: &str| c.image(img).map(|i| i.entrypoint[0].clone());
        assert_eq!(
            ep("ghcr.io/x/sealer-pod:v1").as_deref(),
            Some("/opt/bin/sealer-pod")
        );
        assert_eq!(
            ep("ghcr.io/x/sealer-pod@sha256:abc").as_deref(),
            Some("/opt/bin/sealer-pod")
        );
        assert_eq!(
            ep("ghcr.io/x/sealer-pod").as_deref(),
            Some("/opt/bin/sealer-pod")
        );
        assert_eq!(ep("local/shell:latest").as_deref(), Some("/bin/sh"));
        assert_eq!(ep("local/special").as_deref(), Some("/bin/true"));
        assert_eq!(ep("ghcr.io/x/sealer-pod-other"), None);
        assert_eq!(ep("docker.io/library/busybox"), None);
    }

    #[test]
    fn tag_and_digest_are_stripped_but_registry_ports_kept() {
        assert_eq!(
            strip_tag_and_digest("registry:5000/a/b:tag"),
            "registry:5000/a/b"
        );
        assert_eq!(
            strip_tag_and_digest("registry:5000/a/b"),
            "registry:5000/a/b"
        );
        assert_eq!(strip_tag_and_digest("a/b:tag@sha256:00"), "a/b");
    }

    #[test]
    fn invalid_configs_are_rejected_with_the_offending_field() {
        let bad_name = BASE.replace("gpu-1", "GPU_1");
        assert!(config(&bad_name).unwrap_err().to_string().contains("GPU_1"));
        let bad_quantity = BASE.replace("memory: 8Gi", "memory: lots");
        let err = config(&bad_quantity).unwrap_err().to_string();
        assert!(err.contains("memory") && err.contains("lots"), "{err}");
        let relative = BASE.replace("rootDir: /tmp/nodes", "rootDir: nodes");
        assert!(
            config(&relative)
                .unwrap_err()
                .to_string()
                .contains("rootDir")
        );
        let unknown_key = BASE.replace("rootDir:", "rootDirectory:");
        assert!(matches!(
            config(&unknown_key),
            Err(ConfigError::Parse { .. })
        ));
        let relative_bin = BASE.replace("[/bin/true]", "[true]");
        assert!(
            config(&relative_bin)
                .unwrap_err()
                .to_string()
                .contains("local/special")
        );
    }
}
