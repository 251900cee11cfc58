//! Step pods: one pod per (sector, step, attempt), named so a repeated reconcile finds the pod it
//! already created instead of starting a second one.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvVar, HostPathVolumeSource, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, Pod, PodSecurityContext, PodSpec, ResourceRequirements, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Resource;
use kube::api::ObjectMeta;

use crate::core::outcome::PodEnd;
use crate::core::record::{RunningStep, SectorRecord};
use crate::core::work::Step;
use crate::crd::{ParamsSource, PhaseSettings, Phases, PieceSource, ProvingDeadline, SealingPool, Sector};

pub const MANAGED_BY: &str = "sealing-operator";
pub const LABEL_SECTOR: &str = "sealing.filecoin.io/sector";
pub const LABEL_POOL: &str = "sealing.filecoin.io/pool";
pub const LABEL_STEP: &str = "sealing.filecoin.io/step";
pub const LABEL_ATTEMPT: &str = "sealing.filecoin.io/attempt";

/// Where the step container sees the pool's scratch and store directories. The pool's
/// directories are mounted whole and the step creates the sector's own directory below them: a
/// hostPath the kubelet creates is root's, which an unprivileged step could not write.
const SCRATCH_MOUNT: &str = "/scratch";
const STORE_MOUNT: &str = "/store";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PodError {
    #[error("the sector has no {0} yet, which the {1} step needs")]
    Missing(&'static str, &'static str),
    #[error("the sector object has no {0}")]
    Metadata(&'static str),
}

/// `<sector>-<step>-<attempt>`; pod names may be 253 characters, sector names too, so a long
/// sector name is shortened.
pub fn pod_name(sector: &str, step: Step, attempt: u32) -> String {
    suffixed(sector, &format!("-{}-{attempt}", step.as_str()))
}

/// `sector` + `suffix`, the sector name shortened to keep within 253 characters.
fn suffixed(sector: &str, suffix: &str) -> String {
    let keep = 253usize.saturating_sub(suffix.len()).min(sector.len());
    format!("{}{suffix}", sector[..keep].trim_end_matches(['-', '.']))
}

pub fn phase(phases: &Phases, step: Step) -> &PhaseSettings {
    match step {
        Step::AddPiece => &phases.add_piece,
        Step::TreeD => &phases.tree_d,
        Step::PC1 => &phases.pc1,
        Step::PC2 => &phases.pc2,
        Step::C1 => &phases.c1,
        Step::C2 => &phases.c2,
        Step::SnapEncode => &phases.snap_encode,
        Step::SnapProve => &phases.snap_prove,
        Step::CheckSealed => &phases.check_sealed,
        Step::Persist => &phases.persist,
    }
}

/// Steps after Persist work on the sector's copy in long-term storage.
fn works_in_store(step: Step) -> bool {
    matches!(step, Step::C1 | Step::C2)
}

/// The sector's directory directly below the pool's scratch and store paths, `<namespace>_<name>`
/// (neither may contain `_`, so it is unambiguous); the step creates it inside the mounted pool
/// directory, which must exist.
pub fn sector_subdir(sector: &Sector) -> Result<String, PodError> {
    let ns = sector.metadata.namespace.as_deref().ok_or(PodError::Metadata("namespace"))?;
    let name = sector.metadata.name.as_deref().ok_or(PodError::Metadata("name"))?;
    Ok(format!("{ns}_{name}"))
}

pub fn step_pod(sector: &Sector, pool: &SealingPool, record: &SectorRecord, running: &RunningStep) -> Result<Pod, PodError> {
    let step = running.step;
    let name = sector.metadata.name.as_deref().ok_or(PodError::Metadata("name"))?;
    let subdir = sector_subdir(sector)?;
    let number = record.sector_number.ok_or(PodError::Missing("sector number", step.as_str()))?;
    let spec = &sector.spec;
    let storage = &pool.spec.storage;

    let sector_dir = if works_in_store(step) {
        format!("{STORE_MOUNT}/{subdir}")
    } else {
        format!("{SCRATCH_MOUNT}/{subdir}")
    };
    let mut args: Vec<String> = vec![
        step.as_str().into(),
        "--sector-dir".into(),
        sector_dir,
        "--miner".into(),
        spec.miner.clone(),
        "--sector-number".into(),
        number.to_string(),
        "--sector-size".into(),
        spec.sector_size.as_str().into(),
        "--seal-proof".into(),
        spec.seal_proof().name(),
    ];
    let ticket = || record.ticket.as_ref().map(|t| t.value.clone()).ok_or(PodError::Missing("ticket", step.as_str()));
    let seed = || record.seed.as_ref().map(|s| s.value.clone()).ok_or(PodError::Missing("seed", step.as_str()));

    let mut volumes = vec![host_path("scratch", &storage.scratch_path, "DirectoryOrCreate")];
    let mut mounts = vec![mount("scratch", SCRATCH_MOUNT, false)];
    match step {
        Step::AddPiece => {
            for (i, piece) in spec.pieces.iter().enumerate() {
                let source = match &piece.source {
                    PieceSource { url: Some(url), .. } => url.clone(),
                    PieceSource { path: Some(path), .. } => {
                        let volume = format!("piece-{i}");
                        volumes.push(host_path(&volume, path, "File"));
                        mounts.push(mount(&volume, path, true));
                        path.clone()
                    }
                    PieceSource { url: None, path: None } => return Err(PodError::Missing("piece source", "add-piece")),
                };
                args.extend(["--piece".into(), source, "--piece-cid".into(), piece.cid.clone()]);
            }
        }
        Step::PC1 => args.extend(["--ticket".into(), ticket()?]),
        Step::C1 => args.extend(["--ticket".into(), ticket()?, "--seed".into(), seed()?]),
        Step::Persist => args.extend(["--store-dir".into(), format!("{STORE_MOUNT}/{subdir}")]),
        Step::CheckSealed => {
            let comm_r = record.comm_r.clone().ok_or(PodError::Missing("CommR", "check-sealed"))?;
            args.extend(["--comm-r".into(), comm_r]);
        }
        _ => {}
    }
    if matches!(step, Step::Persist) || works_in_store(step) {
        volumes.push(host_path("store", &storage.store_path, "DirectoryOrCreate"));
        mounts.push(mount("store", STORE_MOUNT, false));
    }
    let cache = &pool.spec.params.cache_path;
    let mut env = vec![EnvVar { name: "FIL_PROOFS_PARAMETER_CACHE".into(), value: Some(cache.clone()), ..Default::default() }];
    if step.needs_params() {
        volumes.push(host_path("params", cache, "Directory"));
        mounts.push(mount("params", cache, true));
    }
    // PC1 writes the SDR parent cache; keep it on the node's scratch, which the step may write.
    env.push(EnvVar {
        name: "FIL_PROOFS_PARENT_CACHE".into(),
        value: Some(format!("{SCRATCH_MOUNT}/.filecoin-parents")),
        ..Default::default()
    });
    env.push(EnvVar { name: "RUST_LOG".into(), value: Some("info".into()), ..Default::default() });

    let metadata = owned_metadata(
        pod_name(name, step, running.attempt),
        sector,
        [
            (LABEL_SECTOR, name.to_owned()),
            (LABEL_POOL, spec.pool.clone()),
            (LABEL_STEP, step.as_str().to_owned()),
            (LABEL_ATTEMPT, running.attempt.to_string()),
        ],
    )?;
    let container = Container {
        name: "step".into(),
        args: Some(args),
        env: Some(env),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    Ok(pool_pod(pool, metadata, Some(&running.node), container, volumes, Some(phase(&pool.spec.phases, step))))
}

/// A pod of the pool's image on `node`, as every pod the operator starts is: never restarted,
/// no service-account token, unprivileged, with the pool's placement and tolerations.
/// `node` pins the pod; without it kube-scheduler picks any node the pool allows. A phase's pod
/// gets the phase's resources and PriorityClass.
fn pool_pod(
    pool: &SealingPool,
    metadata: ObjectMeta,
    node: Option<&str>,
    container: Container,
    volumes: Vec<Volume>,
    phase: Option<&PhaseSettings>,
) -> Pod {
    let container = Container {
        resources: phase.map(|settings| resources(pool, settings)),
        image: Some(pool.spec.image.clone()),
        image_pull_policy: pool.spec.image_pull_policy.clone(),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(SecurityContext { allow_privilege_escalation: Some(false), ..Default::default() }),
        ..container
    };
    Pod {
        metadata,
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            node_selector: (!pool.spec.node_selector.is_empty()).then(|| pool.spec.node_selector.clone()),
            affinity: match node {
                Some(node) => Some(pin_to_node(pool.spec.affinity.clone(), node)),
                None => pool.spec.affinity.clone(),
            },
            tolerations: (!pool.spec.tolerations.is_empty()).then(|| pool.spec.tolerations.clone()),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(pool.spec.run_as_user),
                run_as_group: Some(pool.spec.run_as_user),
                ..Default::default()
            }),
            containers: vec![container],
            volumes: Some(volumes),
            priority_class_name: phase.and_then(|settings| settings.priority_class_name.clone()),
            ..Default::default()
        }),
        status: None,
    }
}

/// A phase's CPU, memory and GPU requests.
fn resources(pool: &SealingPool, settings: &PhaseSettings) -> ResourceRequirements {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    if let Some(cpu) = &settings.cpu {
        requests.insert("cpu".to_owned(), cpu.clone());
    }
    if let Some(memory) = &settings.memory {
        requests.insert("memory".to_owned(), memory.clone());
        limits.insert("memory".to_owned(), memory.clone());
    }
    if settings.gpus > 0 {
        limits.insert(pool.spec.gpu_resource.clone(), Quantity(settings.gpus.to_string()));
    }
    ResourceRequirements {
        requests: (!requests.is_empty()).then_some(requests),
        limits: (!limits.is_empty()).then_some(limits),
        ..Default::default()
    }
}

/// A pod's metadata: in `owner`'s namespace, owned by it (so it goes with it), labelled as the
/// operator's and with `labels`.
fn owned_metadata<K: Resource<DynamicType = ()>, const N: usize>(name: String, owner: &K, labels: [(&str, String); N]) -> Result<ObjectMeta, PodError> {
    let reference = owner.controller_owner_ref(&()).ok_or(PodError::Metadata("uid"))?;
    let mut all = BTreeMap::from([("app.kubernetes.io/managed-by".to_owned(), MANAGED_BY.to_owned())]);
    all.extend(labels.into_iter().map(|(k, v)| (k.to_owned(), v)));
    Ok(ObjectMeta {
        name: Some(name),
        namespace: owner.meta().namespace.clone(),
        labels: Some(all),
        owner_references: Some(vec![reference]),
        ..Default::default()
    })
}

fn host_path(name: &str, path: &str, type_: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource { path: path.into(), type_: Some(type_.into()) }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount { name: name.into(), mount_path: path.into(), read_only: read_only.then_some(true), ..Default::default() }
}

/// Adds "on this node" to every required node-selector term of the pool's affinity: terms are
/// ORed, so appending a term of its own would let the pod run elsewhere.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let requirement = NodeSelectorRequirement {
        key: "kubernetes.io/hostname".into(),
        operator: "In".into(),
        values: Some(vec![node.into()]),
    };
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    let required = node_affinity
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector { node_selector_terms: vec![] });
    if required.node_selector_terms.is_empty() {
        required.node_selector_terms.push(NodeSelectorTerm::default());
    }
    for term in &mut required.node_selector_terms {
        term.match_expressions.get_or_insert_with(Vec::new).push(requirement.clone());
    }
    affinity
}

pub const LABEL_PARAMS_POOL: &str = "sealing.filecoin.io/params-for-pool";

pub fn params_pod_name(pool: &str, node: &str) -> String {
    let name = format!("{pool}-params-{node}");
    name.chars().take(253).collect::<String>().trim_end_matches(['-', '.']).to_owned()
}

/// A pod that makes sure `node` holds the proof parameters the pool's GPU steps load: it checks,
/// generates (test sizes) or fetches them as the pool's `params.source` says.
pub fn params_pod(pool: &SealingPool, node: &str) -> Result<Pod, PodError> {
    let name = pool.metadata.name.as_deref().ok_or(PodError::Metadata("name"))?;
    let settings = &pool.spec.params;
    let verb = match settings.source {
        ParamsSource::Fetch => "fetch",
        ParamsSource::Generate => "generate",
        ParamsSource::Preloaded => "check",
    };
    let mut args: Vec<String> = ["params", verb, "--sector-size", pool.spec.sector_size.as_str(), "--step", "c2"]
        .map(String::from)
        .to_vec();
    if let (ParamsSource::Fetch, Some(url)) = (settings.source, &settings.base_url) {
        args.extend(["--base-url".into(), url.clone()]);
    }
    let cache = &settings.cache_path;
    let metadata = owned_metadata(params_pod_name(name, node), pool, [(LABEL_PARAMS_POOL, name.to_owned())])?;
    let container = Container {
        name: "params".into(),
        args: Some(args),
        env: Some(vec![EnvVar { name: "FIL_PROOFS_PARAMETER_CACHE".into(), value: Some(cache.clone()), ..Default::default() }]),
        volume_mounts: Some(vec![mount("params", cache, false)]),
        ..Default::default()
    };
    Ok(pool_pod(pool, metadata, Some(node), container, vec![host_path("params", cache, "DirectoryOrCreate")], None))
}

/// How a pod the operator started ended, once it has.
pub fn ended(pod: &Pod) -> Option<PodEnd> {
    let status = pod.status.as_ref()?;
    let terminated = status
        .container_statuses
        .as_ref()
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    match (terminated, status.phase.as_deref()) {
        (Some(t), Some("Succeeded" | "Failed")) => {
            Some(PodEnd { exit_code: t.exit_code, message: t.message.clone(), reason: t.reason.clone() })
        }
        // Failed before its container ran (an unknown image, an admission error).
        (None, Some("Failed")) => Some(PodEnd { exit_code: -1, message: status.message.clone(), reason: status.reason.clone() }),
        _ => None,
    }
}

pub const LABEL_DEADLINE: &str = "sealing.filecoin.io/deadline";
pub const LABEL_PROVING_TASK: &str = "sealing.filecoin.io/proving-task";
pub const LABEL_MINER: &str = "sealing.filecoin.io/miner";
/// The proving period (its start epoch) a proving pod works for.
pub const LABEL_PERIOD: &str = "sealing.filecoin.io/period-start";

/// A sealed sector a proving pod reads from long-term storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReplica {
    pub sector_number: u64,
    pub comm_r: String,
    /// The pool's store path (mounted read-only) and the sector's directory below it.
    pub store_path: String,
    pub subdir: String,
}

/// What a proving pod does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProvingTask {
    /// `proving-check`: which sectors' files are missing or do not prove (no GPU).
    Check,
    /// `window-post` with the challenge randomness (hex).
    WindowPost { randomness: String },
}

/// The sealer-pod subcommands of proving pods, also the step names in their results.
pub const PROVING_CHECK: &str = "proving-check";
pub const WINDOW_POST: &str = "window-post";

impl ProvingTask {
    pub fn verb(&self) -> &'static str {
        match self {
            ProvingTask::Check => PROVING_CHECK,
            ProvingTask::WindowPost { .. } => WINDOW_POST,
        }
    }
}

/// A proving pod of a ProvingDeadline, in the pool's namespace, on any node the pool allows (the
/// data is in long-term storage, which every node mounts). Owned by the pool: an owner must
/// share the pod's namespace, and the deadline lives in the operator's.
pub fn proving_pod(
    deadline: &ProvingDeadline,
    pool: &SealingPool,
    name: &str,
    period_start: i64,
    task: &ProvingTask,
    replicas: &[StoredReplica],
) -> Result<Pod, PodError> {
    let deadline_name = deadline.metadata.name.as_deref().ok_or(PodError::Metadata("name"))?;
    let verb = task.verb();
    let mut args: Vec<String> =
        vec![verb.into(), "--miner".into(), deadline.spec.miner.clone(), "--sector-size".into(), pool.spec.sector_size.as_str().into()];
    if let ProvingTask::WindowPost { randomness } = task {
        args.extend(["--randomness".into(), randomness.clone()]);
    }
    let mut stores: Vec<&str> = replicas.iter().map(|r| r.store_path.as_str()).collect();
    stores.sort_unstable();
    stores.dedup();
    for replica in replicas {
        let k = stores.iter().position(|s| *s == replica.store_path).unwrap_or_default();
        let dir = format!("{STORE_MOUNT}/{k}/{}", replica.subdir);
        args.extend(["--sector".into(), format!("{},{},{dir}/sealed,{dir}/cache", replica.sector_number, replica.comm_r)]);
    }
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (k, store) in stores.iter().enumerate() {
        let volume = format!("store-{k}");
        volumes.push(host_path(&volume, store, "Directory"));
        mounts.push(mount(&volume, &format!("{STORE_MOUNT}/{k}"), true));
    }
    let cache = &pool.spec.params.cache_path;
    // Only window PoSt makes a SNARK: it loads parameters and uses the phase's GPUs; the check
    // computes vanilla proofs on the CPU.
    let mut settings = pool.spec.phases.window_post.clone();
    match task {
        ProvingTask::WindowPost { .. } => {
            volumes.push(host_path("params", cache, "Directory"));
            mounts.push(mount("params", cache, true));
        }
        ProvingTask::Check => settings.gpus = 0,
    }
    let env = vec![
        EnvVar { name: "FIL_PROOFS_PARAMETER_CACHE".into(), value: Some(cache.clone()), ..Default::default() },
        EnvVar { name: "RUST_LOG".into(), value: Some("info".into()), ..Default::default() },
    ];
    let metadata = owned_metadata(
        name.to_owned(),
        pool,
        [
            (LABEL_DEADLINE, deadline_name.to_owned()),
            (LABEL_MINER, deadline.spec.miner.clone()),
            (LABEL_PROVING_TASK, verb.to_owned()),
            (LABEL_PERIOD, period_start.to_string()),
        ],
    )?;
    let container = Container {
        name: "proving".into(),
        args: Some(args),
        env: Some(env),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    Ok(pool_pod(pool, metadata, None, container, volumes, Some(&settings)))
}

/// `<sector>-remove-scratch` or, with the store copy, `<sector>-remove-data`.
pub fn removal_pod_name(sector: &str, store: bool) -> String {
    suffixed(sector, if store { "-remove-data" } else { "-remove-scratch" })
}

/// A pod on the sector's node that deletes its scratch directory and, with `store`, its copy in
/// long-term storage.
pub fn removal_pod(sector: &Sector, pool: &SealingPool, node: &str, store: bool) -> Result<Pod, PodError> {
    let name = sector.metadata.name.as_deref().ok_or(PodError::Metadata("name"))?;
    let subdir = sector_subdir(sector)?;
    let storage = &pool.spec.storage;
    let mut args: Vec<String> = vec!["remove".into(), "--dir".into(), format!("{SCRATCH_MOUNT}/{subdir}")];
    let mut volumes = vec![host_path("scratch", &storage.scratch_path, "DirectoryOrCreate")];
    let mut mounts = vec![mount("scratch", SCRATCH_MOUNT, false)];
    if store {
        args.extend(["--dir".into(), format!("{STORE_MOUNT}/{subdir}")]);
        volumes.push(host_path("store", &storage.store_path, "DirectoryOrCreate"));
        mounts.push(mount("store", STORE_MOUNT, false));
    }
    let metadata = owned_metadata(
        removal_pod_name(name, store),
        sector,
        [(LABEL_SECTOR, name.to_owned()), (LABEL_POOL, sector.spec.pool.clone()), (LABEL_STEP, "remove".to_owned())],
    )?;
    let container = Container { name: "remove".into(), args: Some(args), volume_mounts: Some(mounts), ..Default::default() };
    Ok(pool_pod(pool, metadata, Some(node), container, volumes, None))
}
