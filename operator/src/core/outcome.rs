//! From a step pod's end to the sector's next record: the sealer-pod result document (its
//! termination message) becomes an event or an error, and a placement becomes a running step.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use super::error::{ErrorLevel, StepError};
use super::record::{RunningStep, SectorRecord};
use super::retry::{Outcome, RetryPolicy, on_error};
use super::state::Plan;
use super::transition::{Event, TransitionError, apply};
use super::work::Step;

/// sealer-pod's exit codes for each error level (sealer-pod/README.md).
pub const EXIT_TEMPORARY: i32 = 10;
pub const EXIT_PERMANENT: i32 = 11;
pub const EXIT_ABORT: i32 = 12;

#[derive(Deserialize)]
struct ResultDoc {
    ok: bool,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: Option<ErrorDoc>,
}

#[derive(Deserialize)]
struct ErrorDoc {
    level: ErrorLevel,
    message: String,
}

/// How a step pod ended, as the pod status reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodEnd {
    pub exit_code: i32,
    /// The termination message (sealer-pod's result document), if any.
    pub message: Option<String>,
    /// The container's termination reason, e.g. `OOMKilled` or `Error`.
    pub reason: Option<String>,
}

/// The event a finished step pod produced, or its error with the level it reported. A pod that
/// died without a readable result (killed, out of memory, a crash) is a temporary error.
pub fn step_outcome(step: Step, end: &PodEnd) -> Result<Event, StepError> {
    event_for(step, &step_result(step.as_str(), end)?)
}

/// The `result` of a finished sealer-pod run, or its error with the level it reported.
pub fn step_result(name: &str, end: &PodEnd) -> Result<Value, StepError> {
    let doc = end.message.as_deref().and_then(|m| serde_json::from_str::<ResultDoc>(m.trim()).ok());
    match doc {
        Some(ResultDoc { ok: true, result, .. }) if end.exit_code == 0 => Ok(result),
        Some(ResultDoc { ok: false, error: Some(error), .. }) => Err(StepError::new(error.level, name, error.message)),
        _ => {
            let level = match end.exit_code {
                EXIT_PERMANENT => ErrorLevel::Permanent,
                EXIT_ABORT => ErrorLevel::Abort,
                _ => ErrorLevel::Temporary,
            };
            let why = end.reason.as_deref().unwrap_or("no result");
            let tail = end.message.as_deref().map(|m| format!(": {}", m.trim())).unwrap_or_default();
            Err(StepError::new(level, name, format!("step pod exited with code {} ({why}){tail}", end.exit_code)))
        }
    }
}

fn event_for(step: Step, result: &Value) -> Result<Event, StepError> {
    let field = |key: &str| -> Result<String, StepError> {
        result.get(key).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
            StepError::new(
                ErrorLevel::Permanent,
                step.as_str(),
                format!("the step's result lacks {key:?}; is the sealer image the same version as the operator? result: {result}"),
            )
        })
    };
    Ok(match step {
        Step::AddPiece => Event::AddPiece,
        Step::TreeD => Event::BuildTreeD { comm_d: field("comm_d")? },
        Step::PC1 => Event::PC1,
        Step::PC2 => Event::PC2 { comm_r: field("comm_r")?, comm_d: field("comm_d")? },
        Step::C1 => Event::C1,
        Step::C2 => Event::C2 { proof: field("proof")? },
        Step::SnapEncode => Event::SnapEncode { comm_r: field("comm_r_new")?, comm_d: field("comm_d_new")? },
        Step::SnapProve => Event::SnapProve { proof: field("proof")? },
        Step::CheckSealed => Event::CheckSealed,
        Step::Persist => Event::Persist { location: field("location")? },
    })
}

/// Gives the sector a place for `step` on `node`: the next attempt, and the sector's home node
/// if this is its first step that writes data.
pub fn start(record: &SectorRecord, step: Step, node: &str, now: Timestamp) -> SectorRecord {
    let mut out = record.clone();
    let attempt = out.attempts.entry(step.as_str().to_owned()).or_default();
    *attempt += 1;
    out.running = Some(RunningStep { step, attempt: *attempt, node: node.to_owned(), since: now });
    if step.needs_sector_node() && out.node.is_none() {
        out.node = Some(node.to_owned());
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    Advanced,
    Failed(Outcome),
}

/// Records the end of the running step: the event it produced, or its error.
pub fn complete(
    plan: Plan,
    record: &SectorRecord,
    outcome: Result<Event, StepError>,
    policy: &RetryPolicy,
    now: Timestamp,
) -> Result<(SectorRecord, Completion), TransitionError> {
    let mut idle = record.clone();
    idle.running = None;
    match outcome {
        Ok(event) => Ok((apply(plan, &idle, event, now)?, Completion::Advanced)),
        Err(error) => {
            let (next, outcome) = on_error(&idle, error, policy, now);
            Ok((next, Completion::Failed(outcome)))
        }
    }
}
