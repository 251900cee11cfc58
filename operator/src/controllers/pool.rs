//! The SealingPool controller: places waiting steps on nodes (the only writer of a sector's
//! `running` step, so per-node limits hold however many sectors reconcile at once), runs the
//! pledge loop, and reports the pool's counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};

use super::conditions::{Desired, set};
use super::{Context, Error, create_pod};
use crate::core::outcome::start;
use crate::core::schedule::{NodeState, PhaseLimit, Waiting, pledge_shortfall, schedule};
use crate::core::work::{Step, Work, hold, work};
use crate::core::{Plan, State};
use crate::crd::{NodeUsage, SealingPool, SealingPoolStatus, Sector, SectorSpec};
use crate::pods::{params_pod, params_pod_name, phase};

pub const LABEL_PLEDGED: &str = "sealing.filecoin.io/pledged";

/// Placements written but perhaps not yet seen in the sector cache: without them a quick second
/// reconcile would count a slot as free that is already given away.
#[derive(Default)]
pub struct RecentPlacements(Mutex<HashMap<ObjectRef<Sector>, (Step, u32, String)>>);

impl RecentPlacements {
    fn record(&self, sector: ObjectRef<Sector>, step: Step, attempt: u32, node: String) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(sector, (step, attempt, node));
        }
    }

    /// The placement of `sector` the cache has not caught up with, if any.
    fn pending(&self, sector: &Sector) -> Option<(Step, String)> {
        let mut map = self.0.lock().ok()?;
        let key = ObjectRef::from_obj(sector);
        let (step, attempt, node) = map.get(&key)?.clone();
        let seen = sector.status.as_ref().map_or(0, |s| s.record.attempts_of(step.as_str()));
        if seen >= attempt {
            map.remove(&key);
            None
        } else {
            Some((step, node))
        }
    }
}

pub async fn reconcile(pool: Arc<SealingPool>, ctx: Arc<Context>, sectors: Store<Sector>) -> Result<Action, Error> {
    let ns = pool.namespace().ok_or(Error::Metadata("namespace"))?;
    let name = pool.name_any();
    let now = Timestamp::now();
    let members: Vec<Arc<Sector>> = sectors
        .state()
        .into_iter()
        .filter(|s| s.namespace().as_deref() == Some(ns.as_str()) && s.spec.pool == name)
        .collect();

    let selector = pool.spec.node_selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let nodes = nodes.list(&ListParams::default().labels(&selector)).await?.items;
    let limit = |step: Step| {
        let settings = phase(&pool.spec.phases, step);
        PhaseLimit { per_node: settings.concurrency_per_node, gpus: settings.gpus }
    };

    let params = prepare_params(&pool, &ctx, &nodes).await?;
    let mut states: Vec<NodeState> = nodes
        .iter()
        .filter(|n| ready(n))
        .map(|n| NodeState {
            name: n.name_any(),
            gpus: gpus(n, &pool.spec.gpu_resource),
            params_ready: params.get(&n.name_any()).is_some_and(|p| p == PARAMS_READY),
            ..Default::default()
        })
        .collect();
    let mut waiting = Vec::new();
    for sector in &members {
        let record = sector.status.as_ref().map(|s| s.record.clone()).unwrap_or_default();
        let placed = record.running.as_ref().map(|r| (r.step, r.node.clone())).or_else(|| ctx.placements.pending(sector));
        let home = record.node.as_ref().filter(|_| !record.state.is_terminal());
        if let Some(node) = home.and_then(|home| states.iter_mut().find(|n| &n.name == home)) {
            node.sectors += 1;
        }
        if let Some((step, node)) = placed {
            if let Some(node) = states.iter_mut().find(|n| n.name == node) {
                *node.running.entry(step).or_default() += 1;
                node.gpus_in_use += limit(step).gpus;
            }
            continue;
        }
        if sector.spec.paused || sector.metadata.deletion_timestamp.is_some() || hold(&record, now).is_some() {
            continue;
        }
        if let Some(Work::Pod(step)) = work(sector.spec.plan, record.state) {
            let queued = sector.metadata.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second().max(0) as u64);
            waiting.push(Waiting { sector: sector.name_any(), step, node: record.node.clone(), queued });
        }
    }

    let placements = schedule(&states, &limit, &waiting);
    let api: Api<Sector> = Api::namespaced(ctx.client.clone(), &ns);
    for placement in &placements {
        let Some(sector) = members.iter().find(|s| s.name_any() == placement.sector) else { continue };
        let record = sector.status.as_ref().map(|s| s.record.clone()).unwrap_or_default();
        let next = start(&record, placement.step, &placement.node, now);
        let attempt = next.running.as_ref().map_or(0, |r| r.attempt);
        let mut updated = (**sector).clone();
        updated.status.get_or_insert_with(Default::default).record = next;
        // The cached resourceVersion makes this fail if the sector changed meanwhile; the next
        // reconcile places it from fresh data.
        match api.replace_status(&placement.sector, &PostParams::default(), &updated).await {
            Ok(_) => ctx.placements.record(ObjectRef::from_obj(&**sector), placement.step, attempt, placement.node.clone()),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }

    pledge(&pool, &ctx).await?;

    let mut status = summarize(&pool, &members, &states, waiting.len().saturating_sub(placements.len()));
    for node in &mut status.nodes {
        node.params = params.get(&node.name).cloned().unwrap_or_default();
    }
    pool_conditions(&pool, &mut status, &selector, now);
    let pools: Api<SealingPool> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = serde_json::json!({ "status": status });
    pools.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    let soon = !waiting.is_empty() || !placements.is_empty();
    Ok(Action::requeue(if soon { Duration::from_secs(5) } else { Duration::from_secs(60) }))
}

pub fn error_policy(_pool: Arc<SealingPool>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "pool reconcile failed");
    Action::requeue(super::retry_after(error))
}

const PARAMS_READY: &str = "Ready";
const PARAMS_RETRY_SECONDS: i64 = 60;

/// Makes sure every node of the pool has the proof parameters, with one params pod per node,
/// and says per node whether they are ready.
async fn prepare_params(pool: &SealingPool, ctx: &Context, nodes: &[Node]) -> Result<BTreeMap<String, String>, Error> {
    let ns = pool.namespace().ok_or(Error::Metadata("namespace"))?;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut states = BTreeMap::new();
    for node in nodes {
        let node = node.name_any();
        let name = params_pod_name(&pool.name_any(), &node);
        let state = match pods.get_opt(&name).await? {
            None => {
                create_pod(&pods, &params_pod(pool, &node)?).await?;
                "Preparing".to_owned()
            }
            Some(pod) => match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
                Some("Succeeded") => PARAMS_READY.to_owned(),
                Some("Failed") => {
                    let terminated = pod
                        .status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .and_then(|cs| cs.first())
                        .and_then(|c| c.state.as_ref())
                        .and_then(|s| s.terminated.clone());
                    let message = terminated.as_ref().and_then(|t| t.message.clone()).unwrap_or_default();
                    let ended = terminated.and_then(|t| t.finished_at).map(|t| t.0);
                    // Try again a while after a failure (parameters copied in, a gateway back up).
                    if ended.is_some_and(|t| Timestamp::now().duration_since(t).as_secs() >= PARAMS_RETRY_SECONDS) {
                        match pods.delete(&name, &Default::default()).await {
                            Ok(_) => {}
                            Err(kube::Error::Api(e)) if e.code == 404 => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    format!("Failed, retrying within {PARAMS_RETRY_SECONDS}s: {}", message.trim())
                }
                _ => "Preparing".to_owned(),
            },
        };
        states.insert(node, state);
    }
    Ok(states)
}

/// Keeps `sectorsInFlight` committed-capacity sectors sealing (lotus' pledge loop).
async fn pledge(pool: &SealingPool, ctx: &Context) -> Result<(), Error> {
    let settings = &pool.spec.pledge;
    if !settings.enabled {
        return Ok(());
    }
    let ns = pool.namespace().ok_or(Error::Metadata("namespace"))?;
    let api: Api<Sector> = Api::namespaced(ctx.client.clone(), &ns);
    // Counted from the API server: the cache may not hold the sectors created a moment ago,
    // and counting them short would pledge too many.
    let pledged = api.list(&ListParams::default().labels(&format!("{LABEL_PLEDGED}=true"))).await?.items;
    let in_flight = pledged
        .iter()
        .filter(|s| s.spec.pool == pool.name_any())
        .filter(|s| !s.status.as_ref().is_some_and(|st| st.record.state.is_terminal()))
        .count() as u32;
    for _ in 0..pledge_shortfall(in_flight, settings.sectors_in_flight) {
        let sector = Sector {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-cc-", pool.name_any())),
                labels: Some(BTreeMap::from([(LABEL_PLEDGED.to_owned(), "true".to_owned())])),
                ..Default::default()
            },
            spec: SectorSpec {
                miner: pool.spec.miner.clone(),
                sector_number: None,
                sector_size: pool.spec.sector_size,
                seal_proof: None,
                plan: Plan::Sealer,
                pool: pool.name_any(),
                pieces: Vec::new(),
                expiration_days: settings.expiration_days,
                paused: false,
                resume: None,
                abort: false,
            },
            status: None,
        };
        api.create(&PostParams::default(), &sector).await?;
    }
    Ok(())
}

fn summarize(pool: &SealingPool, members: &[Arc<Sector>], nodes: &[NodeState], waiting: usize) -> SealingPoolStatus {
    let mut status = SealingPoolStatus { waiting: waiting as u32, observed_generation: pool.metadata.generation, ..Default::default() };
    for sector in members {
        let record = sector.status.as_ref().map(|s| s.record.clone()).unwrap_or_default();
        *status.states.entry(record.state.as_str().to_owned()).or_default() += 1;
        match record.state {
            State::Finished => status.finished += 1,
            State::Aborted => status.aborted += 1,
            _ => {
                if record.paused.is_some() {
                    status.paused += 1;
                }
                if record.last_error.is_some() {
                    status.errors += 1;
                }
                if record.running.is_some() {
                    status.sealing += 1;
                }
            }
        }
    }
    status.nodes = nodes
        .iter()
        .map(|n| NodeUsage {
            name: n.name.clone(),
            running: n.running.iter().map(|(step, count)| (step.as_str().to_owned(), *count)).collect(),
            sectors: n.sectors,
            gpus_in_use: n.gpus_in_use,
            params: String::new(),
        })
        .collect();
    status.node_count = status.nodes.len() as u32;
    status
}

fn pool_conditions(pool: &SealingPool, status: &mut SealingPoolStatus, selector: &str, now: Timestamp) {
    status.conditions = pool.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    let generation = pool.metadata.generation;
    let nodes = if status.node_count > 0 {
        Desired { type_: "NodesAvailable", status: true, reason: "NodesReady", message: format!("{} node(s) ready", status.node_count) }
    } else {
        let which = if selector.is_empty() { "any node".to_owned() } else { format!("spec.nodeSelector {selector}") };
        Desired { type_: "NodesAvailable", status: false, reason: "NoReadyNodes", message: format!("no Ready, schedulable node matches {which}") }
    };
    let waiting: Vec<String> = status
        .nodes
        .iter()
        .filter(|n| n.params != PARAMS_READY)
        .map(|n| format!("{}: {}", n.name, if n.params.is_empty() { "unknown" } else { &n.params }))
        .collect();
    let params = if waiting.is_empty() {
        Desired { type_: "ParamsReady", status: true, reason: "Ready", message: "every node has the proof parameters".into() }
    } else {
        Desired { type_: "ParamsReady", status: false, reason: "Preparing", message: waiting.join("; ") }
    };
    set(&mut status.conditions, nodes, generation, now);
    set(&mut status.conditions, params, generation, now);
}

fn ready(node: &Node) -> bool {
    let schedulable = !node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    schedulable && ready
}

fn gpus(node: &Node, resource: &str) -> u32 {
    node.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| a.get(resource))
        .and_then(|q| q.0.parse().ok())
        .unwrap_or(0)
}
