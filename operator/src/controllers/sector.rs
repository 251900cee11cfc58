//! The Sector controller: applies pause/resume/abort, runs the operator's own tasks, creates the
//! step pod the pool placed, reads its result into the status, and reports every transition and
//! error as an Event. Chain tasks are the chain bridge's; placement is the pool controller's.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, ResourceExt};

use super::conditions::{Desired, set};
use super::{Context, Error, Note, create_pod, publish};
use crate::core::control::{ControlAction, abort, control_action, pause, resume};
use crate::core::outcome::{Completion, complete, step_outcome, step_result};
use crate::core::record::{PauseReason, SectorRecord};
use crate::core::retry::{Outcome, RetryPolicy};
use crate::core::work::{Hold, OperatorTask, Work, hold, work};
use crate::core::{ErrorLevel, Event, Plan, State, StepError, apply};
use crate::crd::{DELETE_COMMITTED_DATA, DataRemoval, ResumeResult, SealingPool, Sector, SectorStatus};
use crate::pods::{LABEL_SECTOR, pod_name, removal_pod, removal_pod_name, step_pod};

pub const FINALIZER: &str = "sealing.filecoin.io/sector-data";

pub async fn reconcile(sector: Arc<Sector>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = sector.namespace().ok_or(Error::Metadata("namespace"))?;
    let api: Api<Sector> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, sector, |event| async {
        match event {
            Finalizer::Apply(sector) => apply_sector(sector, &ctx).await,
            Finalizer::Cleanup(sector) => cleanup(sector, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

pub fn error_policy(_sector: Arc<Sector>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "sector reconcile failed");
    Action::requeue(super::retry_after(error))
}

async fn apply_sector(sector: Arc<Sector>, ctx: &Context) -> Result<Action, Error> {
    let ns = sector.namespace().ok_or(Error::Metadata("namespace"))?;
    let name = sector.name_any();
    let now = Timestamp::now();
    let spec = &sector.spec;
    let plan = spec.plan;
    let old = sector.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let mut notes = Vec::new();

    let pools: Api<SealingPool> = Api::namespaced(ctx.client.clone(), &ns);
    let pool = match pools.get_opt(&spec.pool).await? {
        Some(pool) if pool.spec.miner == spec.miner && pool.spec.sector_size == spec.sector_size => Some(pool),
        Some(pool) => {
            let message = format!(
                "SealingPool {} seals {} sectors of {}, but this sector is a {} sector of {}",
                spec.pool, pool.spec.sector_size, pool.spec.miner, spec.sector_size, spec.miner
            );
            notes.push(Note { warning: true, reason: "PoolMismatch", message });
            None
        }
        None => {
            let message = format!("SealingPool {} does not exist in namespace {ns}; the sector waits for it", spec.pool);
            notes.push(Note { warning: true, reason: "PoolNotFound", message });
            None
        }
    };
    let policy = pool.as_ref().map(|p| RetryPolicy::from(&p.spec.retry)).unwrap_or_default();

    apply_control(&sector, &mut status, now, &mut notes);

    if let (Some(pool), Some(running)) = (&pool, status.record.running.clone()) {
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let pod_name = pod_name(&name, running.step, running.attempt);
        if status.record.state.is_terminal() {
            delete_if_present(&pods, &pod_name).await?;
            status.record.running = None;
        } else {
            match pods.get_opt(&pod_name).await? {
                None => {
                    // Not created while the previous pod of this name is still going away.
                    if create_pod(&pods, &step_pod(&sector, pool, &status.record, &running)?).await? {
                        notes.push(Note {
                            warning: false,
                            reason: "StepStarted",
                            message: format!("{} attempt {} on node {}", running.step.as_str(), running.attempt, running.node),
                        });
                    }
                }
                Some(pod) => {
                    if let Some(end) = crate::pods::ended(&pod) {
                        let outcome = step_outcome(running.step, &end);
                        let (record, how) = complete(plan, &status.record, outcome, &policy, now)?;
                        status.record = record;
                        notes.push(completion_note(&status.record, running.step.as_str(), &how));
                    }
                }
            }
        }
    }

    if pool.is_some() {
        run_operator_tasks(&sector, &mut status.record, now, &mut notes)?;
    }
    // An aborted sector's data is removed once its pods are gone.
    if let (Some(pool), Some(node), State::Aborted, None) = (&pool, status.record.node.clone(), status.record.state, &status.data_removal)
        && let Some(removal) = remove_data(&sector, pool, &node, removes_store(&sector), ctx).await?
    {
        notes.push(removal_note(&removal));
        status.data_removal = Some(removal);
    }

    update_conditions(&sector, &mut status, now);
    if status != old {
        let mut updated = (*sector).clone();
        updated.status = Some(status.clone());
        let api: Api<Sector> = Api::namespaced(ctx.client.clone(), &ns);
        api.replace_status(&name, &PostParams::default(), &updated).await?;
    }
    if status.record.state != old.record.state {
        let from = old.record.state;
        let to = status.record.state;
        notes.push(Note { warning: to == State::Aborted, reason: "StateChanged", message: format!("{from} -> {to}") });
    }
    publish(ctx, &*sector, notes).await;
    Ok(next_check(&status.record, now))
}

/// Pause, resume and abort as the spec asks.
fn apply_control(sector: &Sector, status: &mut SectorStatus, now: Timestamp, notes: &mut Vec<Note>) {
    let spec = &sector.spec;
    let last = status.last_resume.as_ref().map(|r| r.requested_at.as_str());
    let Some(action) = control_action(&status.record, &spec.control(), last) else { return };
    let result = match &action {
        ControlAction::Pause => pause(&status.record, now),
        ControlAction::Abort => abort(spec.plan, &status.record, now),
        ControlAction::Resume(at) => resume(spec.plan, &status.record, *at, now),
    };
    let request = spec.resume.as_ref().filter(|r| Some(r.requested_at.as_str()) != last);
    match (&action, result) {
        (ControlAction::Resume(at), result) if request.is_some() => {
            let accepted = result.is_ok();
            let message = match &result {
                Ok(record) => format!("resumed at {}", record.state),
                Err(e) => e.to_string(),
            };
            notes.push(Note { warning: !accepted, reason: if accepted { "Resumed" } else { "ResumeRejected" }, message: message.clone() });
            if let Ok(record) = result {
                status.record = record;
            }
            status.last_resume = request.map(|r| ResumeResult { requested_at: r.requested_at.clone(), state: *at, accepted, message });
        }
        (action, Ok(record)) => {
            let (reason, message) = match action {
                ControlAction::Pause => ("Paused", "paused as requested (spec.paused)".to_owned()),
                ControlAction::Abort => ("Aborted", "aborted as requested (spec.abort)".to_owned()),
                ControlAction::Resume(_) => ("Resumed", format!("resumed at {}", record.state)),
            };
            notes.push(Note { warning: false, reason, message });
            status.record = record;
        }
        (_, Err(e)) => notes.push(Note { warning: true, reason: "ControlRejected", message: e.to_string() }),
    }
}

/// The work the operator does without a pod or the chain, repeated while the sector moves.
fn run_operator_tasks(sector: &Sector, record: &mut SectorRecord, now: Timestamp, notes: &mut Vec<Note>) -> Result<(), Error> {
    let spec = &sector.spec;
    while hold(record, now).is_none() && record.running.is_none() {
        let event = match work(spec.plan, record.state) {
            Some(Work::Operator(OperatorTask::Allocate)) => match (spec.plan, spec.sector_number) {
                (Plan::Sealer, Some(number)) => Event::Allocate { sector_number: number },
                // Allocation from the chain, and a rebuild's lookups on chain, are the chain bridge's.
                (Plan::Sealer, None) | (Plan::Rebuild, _) => return Ok(()),
                (plan, _) => {
                    let error = StepError::new(
                        ErrorLevel::Permanent,
                        OperatorTask::Allocate.as_str(),
                        format!("the {plan} plan is not supported yet (ProveReplicaUpdates3 is missing); abort the sector"),
                    );
                    let (next, _) = crate::core::retry::on_error(record, error, &RetryPolicy::default(), now);
                    *record = next;
                    notes.push(Note { warning: true, reason: "PermanentError", message: format!("the {plan} plan is not supported yet") });
                    return Ok(());
                }
            },
            Some(Work::Operator(OperatorTask::AcquireDeals)) => Event::AcquireDeals,
            Some(Work::Operator(OperatorTask::ConfirmPersisted)) => Event::SubmitPersistance,
            // The chain bridge refuses to rebuild an upgraded sector, so there is no snap data.
            Some(Work::Operator(OperatorTask::DecideSnap)) => Event::SkipSnap,
            _ => return Ok(()),
        };
        *record = apply(spec.plan, record, event, now)?;
    }
    Ok(())
}

/// A rebuild that finished: its store copy replaces the sealed replica on chain.
pub fn rebuilt(sector: &Sector) -> bool {
    sector.spec.plan == Plan::Rebuild && sector.status.as_ref().is_some_and(|s| s.record.state == State::Finished)
}

fn completion_note(record: &SectorRecord, step: &str, how: &Completion) -> Note {
    let error = record.last_error.as_ref().map(|e| e.message.clone()).unwrap_or_default();
    match how {
        Completion::Advanced => Note { warning: false, reason: "StepSucceeded", message: step.to_owned() },
        Completion::Failed(Outcome::Retry { after }) => {
            Note { warning: true, reason: "TemporaryError", message: format!("{step}: {error}; retrying after {after}") }
        }
        Completion::Failed(Outcome::Paused) => {
            Note { warning: true, reason: "PermanentError", message: format!("{step}: {error}; the sector is paused") }
        }
        Completion::Failed(Outcome::Aborted) => {
            Note { warning: true, reason: "AbortError", message: format!("{step}: {error}; the sector is aborted") }
        }
    }
}

fn update_conditions(sector: &Sector, status: &mut SectorStatus, now: Timestamp) {
    let generation = sector.metadata.generation;
    let record = &status.record;
    let error = record.last_error.as_ref().map(|e| format!("{} error in {}: {}", e.level, e.step, e.message));
    let paused = match &record.paused {
        Some(p) if p.reason == PauseReason::Error => Desired {
            type_: "Paused",
            status: true,
            reason: "Error",
            message: format!("{}; fix the cause, then resume (kubectl sealing resume {})", error.clone().unwrap_or_default(), sector.name_any()),
        },
        Some(_) => Desired { type_: "Paused", status: true, reason: "Requested", message: "paused by spec.paused".into() },
        None => Desired { type_: "Paused", status: false, reason: "Running", message: String::new() },
    };
    let sealing = match (record.state, hold(record, now)) {
        (State::Finished, _) => Desired { type_: "Sealing", status: false, reason: "Finished", message: "the sector is sealed and on chain".into() },
        (State::Aborted, _) => Desired { type_: "Sealing", status: false, reason: "Aborted", message: error.unwrap_or_else(|| "aborted".into()) },
        (_, Some(Hold::Paused)) => Desired { type_: "Sealing", status: false, reason: "Paused", message: String::new() },
        (state, Some(Hold::BackingOff { until })) => Desired {
            type_: "Sealing",
            status: true,
            reason: "BackingOff",
            message: format!("in {state}; retrying after {until}: {}", error.unwrap_or_default()),
        },
        (state, None) => {
            let doing = match (&record.running, work(sector.spec.plan, state)) {
                (Some(r), _) => format!("running {} (attempt {}) on {}", r.step.as_str(), r.attempt, r.node),
                (None, Some(Work::Pod(step))) => format!("waiting for a slot to run {}", step.as_str()),
                (None, Some(w)) => format!("waiting for {w}"),
                (None, None) => String::new(),
            };
            Desired { type_: "Sealing", status: true, reason: state.as_str(), message: doing }
        }
    };
    set(&mut status.conditions, paused, generation, now);
    set(&mut status.conditions, sealing, generation, now);
    status.observed_generation = generation;
}

fn next_check(record: &SectorRecord, now: Timestamp) -> Action {
    match hold(record, now) {
        Some(Hold::BackingOff { until }) => {
            let wait = until.duration_since(now).unsigned_abs();
            Action::requeue(wait.min(Duration::from_secs(300)) + Duration::from_millis(100))
        }
        _ => Action::requeue(Duration::from_secs(300)),
    }
}

async fn delete_if_present(pods: &Api<Pod>, name: &str) -> Result<(), Error> {
    match pods.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A deleted Sector: its pods go with it (owner references) and a pod on its node removes its
/// scratch data, and its copy in long-term storage unless the sector is committed on chain
/// (then only with the `DELETE_COMMITTED_DATA` annotation). The deletion waits for that pod.
async fn cleanup(sector: Arc<Sector>, ctx: &Context) -> Result<Action, Error> {
    let ns = sector.namespace().ok_or(Error::Metadata("namespace"))?;
    let status = sector.status.clone().unwrap_or_default();
    let store = removes_store(&sector);
    let done = status.data_removal.as_ref().is_some_and(|r| r.removed && (r.store || !store));
    let pools: Api<SealingPool> = Api::namespaced(ctx.client.clone(), &ns);
    let note = match (done, status.record.node.as_deref()) {
        (true, _) => Note { warning: false, reason: "Deleted", message: "deleted; its data was removed when it was aborted".into() },
        (false, None) => Note { warning: false, reason: "Deleted", message: "deleted; it had no data on any node".into() },
        (false, Some(node)) => match pools.get_opt(&sector.spec.pool).await? {
            None => Note {
                warning: true,
                reason: "DataLeft",
                message: format!("deleted; SealingPool {} is gone, so its data on node {node} is left in place", sector.spec.pool),
            },
            Some(pool) => match remove_data(&sector, &pool, node, store, ctx).await? {
                None => return Err(Error::Removing(removal_pod_name(&sector.name_any(), store))),
                Some(removal) => removal_note(&removal),
            },
        },
    };
    publish(ctx, &*sector, vec![note]).await;
    Ok(Action::await_change())
}

/// Whether removing the sector's data includes its copy in long-term storage: not that of a
/// sector committed on chain (or rebuilt for one), which window PoSt proves.
fn removes_store(sector: &Sector) -> bool {
    let committed = rebuilt(sector) || sector.status.as_ref().is_some_and(|s| s.record.commit.as_ref().is_some_and(|c| c.landed_ok()));
    let asked = sector.annotations().get(DELETE_COMMITTED_DATA).is_some_and(|v| v == "true");
    !committed || asked
}

/// Starts (or follows) the pod removing the sector's data on `node`; the removal once it ended.
/// A step pod still running could write after it: it is stopped first, and waited for.
async fn remove_data(sector: &Sector, pool: &SealingPool, node: &str, store: bool, ctx: &Context) -> Result<Option<DataRemoval>, Error> {
    let ns = sector.namespace().ok_or(Error::Metadata("namespace"))?;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let name = removal_pod_name(&sector.name_any(), store);
    let Some(pod) = pods.get_opt(&name).await? else {
        let selector = format!("{LABEL_SECTOR}={}", sector.name_any());
        let running: Vec<Pod> = pods.list(&ListParams::default().labels(&selector)).await?.items.into_iter().filter(|p| crate::pods::ended(p).is_none()).collect();
        for pod in &running {
            delete_if_present(&pods, &pod.name_any()).await?;
        }
        if running.is_empty() {
            create_pod(&pods, &removal_pod(sector, pool, node, store)?).await?;
        }
        return Ok(None);
    };
    let Some(end) = crate::pods::ended(&pod) else { return Ok(None) };
    let subdir = crate::pods::sector_subdir(sector)?;
    let storage = &pool.spec.storage;
    let (removed, message) = match step_result("remove", &end) {
        Ok(_) if store => (true, format!("removed {}/{subdir} on node {node} and {}/{subdir}", storage.scratch_path, storage.store_path)),
        Ok(_) => (
            true,
            format!(
                "removed {}/{subdir} on node {node}; kept {}/{subdir}: the sector is committed on chain (annotate {DELETE_COMMITTED_DATA}=true to remove it)",
                storage.scratch_path, storage.store_path
            ),
        ),
        Err(e) => (false, format!("pod {name} could not remove the data, left in place: {}", e.message)),
    };
    Ok(Some(DataRemoval { time: Timestamp::now(), removed, message, store }))
}

fn removal_note(removal: &DataRemoval) -> Note {
    let reason = if removal.removed { "DataRemoved" } else { "DataLeft" };
    Note { warning: !removal.removed, reason, message: removal.message.clone() }
}
