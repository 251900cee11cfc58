//! The `SealingPool` resource: where and how a miner's sectors are sealed.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Affinity, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::retry::RetryPolicy;
use crate::core::SectorSize;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sealing.filecoin.io",
    version = "v1alpha1",
    kind = "SealingPool",
    namespaced,
    status = "SealingPoolStatus",
    shortname = "pool",
    shortname = "sp",
    category = "filecoin",
    cel,
    printcolumn(name = "Miner", type_ = "string", json_path = ".spec.miner"),
    printcolumn(name = "Size", type_ = "string", json_path = ".spec.sectorSize"),
    printcolumn(name = "Nodes", type_ = "integer", json_path = ".status.nodeCount"),
    printcolumn(name = "Sealing", type_ = "integer", json_path = ".status.sealing"),
    printcolumn(name = "Waiting", type_ = "integer", json_path = ".status.waiting"),
    printcolumn(name = "Paused", type_ = "integer", json_path = ".status.paused"),
    printcolumn(name = "Errors", type_ = "integer", json_path = ".status.errors"),
    printcolumn(name = "Finished", type_ = "integer", json_path = ".status.finished"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Pledge", type_ = "boolean", json_path = ".spec.pledge.enabled", priority = 1),
    printcolumn(name = "Aborted", type_ = "integer", json_path = ".status.aborted", priority = 1),
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct SealingPoolSpec {
    /// The miner actor whose sectors this pool seals (t01000, f01000).
    #[x_kube(
        validation = Rule::new(crate::crd::rules::MINER_ADDRESS).message(crate::crd::rules::MINER_ADDRESS_MESSAGE),
        validation = Rule::new(crate::crd::rules::IMMUTABLE).message("is immutable")
    )]
    #[schemars(length(max = 24))]
    pub miner: String,
    #[x_kube(validation = Rule::new(crate::crd::rules::IMMUTABLE).message("is immutable"))]
    pub sector_size: SectorSize,
    /// The sealer-pod image every step runs.
    #[x_kube(validation = Rule::new("self.size() > 0").message("must name the sealer-pod image"))]
    #[schemars(length(max = 512))]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self in ['Always', 'IfNotPresent', 'Never']").message("must be Always, IfNotPresent or Never"))]
    #[schemars(length(max = 16))]
    pub image_pull_policy: Option<String>,
    /// Nodes the pool's pods may run on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Added to every step pod, e.g. to tolerate a GPU node taint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// The extended resource that counts GPUs.
    #[serde(default = "default_gpu_resource")]
    #[schemars(length(max = 253))]
    pub gpu_resource: String,
    pub storage: Storage,
    /// The user step pods run as; it must be able to write the scratch and store directories.
    #[serde(default = "default_uid")]
    #[x_kube(validation = Rule::new("self >= 1").message("must not be 0: step pods do not run as root"))]
    pub run_as_user: i64,
    #[serde(default)]
    pub phases: Phases,
    #[serde(default)]
    pub pledge: Pledge,
    #[serde(default)]
    pub params: ParamsSettings,
    #[serde(default)]
    pub retry: RetrySettings,
}

fn default_uid() -> i64 {
    1000
}

fn default_gpu_resource() -> String {
    "nvidia.com/gpu".into()
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// Directory on each node under which a sector's scratch data lives while it seals.
    #[x_kube(validation = Rule::new(crate::crd::rules::ABSOLUTE_PATH).message(crate::crd::rules::ABSOLUTE_PATH_MESSAGE))]
    #[schemars(length(max = 4096))]
    pub scratch_path: String,
    /// Directory sealed sectors are persisted to (long-term storage, mounted on the nodes).
    #[x_kube(validation = Rule::new(crate::crd::rules::ABSOLUTE_PATH).message(crate::crd::rules::ABSOLUTE_PATH_MESSAGE))]
    #[schemars(length(max = 4096))]
    pub store_path: String,
}

/// Resources and concurrency of one sealing phase.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PhaseSettings {
    /// How many pods of this phase may run on one node at once.
    #[serde(default = "one")]
    #[x_kube(validation = Rule::new("self >= 1").message("must be at least 1"))]
    pub concurrency_per_node: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// GPUs each pod of this phase requests (0 on CPU-only clusters).
    #[serde(default)]
    #[x_kube(validation = Rule::new("self <= 16").message("must be at most 16"))]
    pub gpus: u32,
    /// PriorityClass of this phase's pods. Give window PoSt a higher one than the sealing phases
    /// (manifests/ ships `sealing-window-post`) and kube-scheduler preempts a sealing pod rather
    /// than let a deadline wait for a GPU; the preempted step is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(crate::crd::rules::DNS_SUBDOMAIN).message(crate::crd::rules::DNS_SUBDOMAIN_MESSAGE))]
    #[schemars(length(max = 253))]
    pub priority_class_name: Option<String>,
}

fn one() -> u32 {
    1
}

impl PhaseSettings {
    fn cpu_phase() -> Self {
        Self { concurrency_per_node: 1, cpu: None, memory: None, gpus: 0, priority_class_name: None }
    }

    fn gpu_phase() -> Self {
        Self { gpus: 1, ..Self::cpu_phase() }
    }
}

/// Per-phase settings. PC2, C2 and window PoSt use a GPU by default; set `gpus: 0` for CPU-only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Phases {
    #[serde(default = "PhaseSettings::cpu_phase")]
    pub add_piece: PhaseSettings,
    #[serde(default = "PhaseSettings::cpu_phase")]
    pub tree_d: PhaseSettings,
    #[serde(default = "PhaseSettings::cpu_phase")]
    pub pc1: PhaseSettings,
    #[serde(default = "PhaseSettings::gpu_phase")]
    pub pc2: PhaseSettings,
    #[serde(default = "PhaseSettings::cpu_phase")]
    pub c1: PhaseSettings,
    #[serde(default = "PhaseSettings::gpu_phase")]
    pub c2: PhaseSettings,
    #[serde(default = "PhaseSettings::cpu_phase")]
    pub snap_encode: PhaseSettings,
    #[serde(default = "PhaseSettings::gpu_phase")]
    pub snap_prove: PhaseSettings,
    #[serde(default = "PhaseSettings::cpu_phase")]
    pub check_sealed: PhaseSettings,
    #[serde(default = "PhaseSettings::cpu_phase")]
    pub persist: PhaseSettings,
    #[serde(default = "PhaseSettings::gpu_phase")]
    pub window_post: PhaseSettings,
}

impl Default for Phases {
    fn default() -> Self {
        Self {
            add_piece: PhaseSettings::cpu_phase(),
            tree_d: PhaseSettings::cpu_phase(),
            pc1: PhaseSettings::cpu_phase(),
            pc2: PhaseSettings::gpu_phase(),
            c1: PhaseSettings::cpu_phase(),
            c2: PhaseSettings::gpu_phase(),
            snap_encode: PhaseSettings::cpu_phase(),
            snap_prove: PhaseSettings::gpu_phase(),
            check_sealed: PhaseSettings::cpu_phase(),
            persist: PhaseSettings::cpu_phase(),
            window_post: PhaseSettings::gpu_phase(),
        }
    }
}

/// The pledge loop: keep committed-capacity sectors sealing (lotus' `PledgeSector`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("!self.enabled || self.sectorsInFlight >= 1").message("spec.pledge.sectorsInFlight must be at least 1 when the pledge loop is enabled"))]
#[serde(rename_all = "camelCase")]
pub struct Pledge {
    #[serde(default)]
    pub enabled: bool,
    /// Committed-capacity sectors kept sealing at once.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self <= 10000").message("must be at most 10000"))]
    pub sectors_in_flight: u32,
    /// Lifetime of pledged sectors in days (180 to 1278).
    #[serde(default = "default_pledge_days")]
    #[x_kube(validation = Rule::new("self >= 180 && self <= 1278").message("must be between 180 and 1278 days"))]
    pub expiration_days: u32,
}

fn default_pledge_days() -> u32 {
    540
}

impl Default for Pledge {
    fn default() -> Self {
        Self { enabled: false, sectors_in_flight: 0, expiration_days: default_pledge_days() }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ParamsSource {
    /// Download from `baseUrl` and verify each file's digest against parameters.json.
    #[default]
    Fetch,
    /// Generate locally (test sector sizes only: 2KiB, 8MiB, 512MiB).
    Generate,
    /// Already on the nodes; only check them.
    Preloaded,
}

/// Where proof parameters come from and where nodes keep them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("self.source != 'fetch' || has(self.baseUrl)").message("spec.params.baseUrl is required when spec.params.source is fetch"),
)]
#[serde(rename_all = "camelCase")]
pub struct ParamsSettings {
    #[serde(default)]
    pub source: ParamsSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("must be an http or https URL"))]
    #[schemars(length(max = 2048))]
    pub base_url: Option<String>,
    /// The parameter cache directory on each node.
    #[serde(default = "default_params_cache")]
    #[x_kube(validation = Rule::new(crate::crd::rules::ABSOLUTE_PATH).message(crate::crd::rules::ABSOLUTE_PATH_MESSAGE))]
    #[schemars(length(max = 4096))]
    pub cache_path: String,
}

fn default_params_cache() -> String {
    "/var/tmp/filecoin-proof-parameters".into()
}

impl Default for ParamsSettings {
    fn default() -> Self {
        Self { source: ParamsSource::Preloaded, base_url: None, cache_path: default_params_cache() }
    }
}

/// How temporary errors are retried before they count as permanent.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.maxBackoffSeconds >= self.initialBackoffSeconds").message("spec.retry.maxBackoffSeconds must not be less than spec.retry.initialBackoffSeconds"))]
#[serde(rename_all = "camelCase")]
pub struct RetrySettings {
    #[serde(default = "default_max_attempts")]
    #[x_kube(validation = Rule::new("self >= 1").message("must be at least 1"))]
    pub max_attempts: u32,
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_seconds: u32,
    #[serde(default = "default_max_backoff")]
    pub max_backoff_seconds: u32,
}

fn default_max_attempts() -> u32 {
    RetryPolicy::default().max_attempts
}

fn default_initial_backoff() -> u32 {
    RetryPolicy::default().initial_backoff.as_secs() as u32
}

fn default_max_backoff() -> u32 {
    RetryPolicy::default().max_backoff.as_secs() as u32
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            initial_backoff_seconds: default_initial_backoff(),
            max_backoff_seconds: default_max_backoff(),
        }
    }
}

impl From<&RetrySettings> for RetryPolicy {
    fn from(r: &RetrySettings) -> Self {
        RetryPolicy {
            max_attempts: r.max_attempts,
            initial_backoff: Duration::from_secs(r.initial_backoff_seconds.into()),
            max_backoff: Duration::from_secs(r.max_backoff_seconds.into()),
        }
    }
}

/// What one node is doing for the pool.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeUsage {
    pub name: String,
    /// Running step pods per phase.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub running: BTreeMap<String, u32>,
    /// Sectors whose scratch data is on this node.
    #[serde(default)]
    pub sectors: u32,
    #[serde(default)]
    pub gpus_in_use: u32,
    /// Whether the node's parameter cache is ready: Ready, Preparing, or the failure.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub params: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SealingPoolStatus {
    /// Sectors of this pool per state.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub states: BTreeMap<String, u32>,
    /// Sectors with a step running now.
    #[serde(default)]
    pub sealing: u32,
    /// Sectors ready for a step that has not started (no free slot or GPU).
    #[serde(default)]
    pub waiting: u32,
    #[serde(default)]
    pub paused: u32,
    /// Sectors whose last step failed (retrying or paused on the error).
    #[serde(default)]
    pub errors: u32,
    #[serde(default)]
    pub finished: u32,
    #[serde(default)]
    pub aborted: u32,
    #[serde(default)]
    pub node_count: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
