//! Pause, resume (at the current or a chosen state) and abort, as `venus-worker worker
//! pause/resume [--state S]` does them (seeds 003 and 004), driven by the Sector's spec.

use std::fmt;

use jiff::Timestamp;

use super::record::{Pause, PauseReason, SectorRecord};
use super::state::{Plan, State};
use super::transition::{Event, TransitionError, apply};

/// A piece of data a sector gains as it moves through its plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Datum {
    SectorNumber,
    CommD,
    Ticket,
    CommR,
    PreCommitMessage,
    PreCommitLanded,
    Persisted,
    Seed,
    Proof,
    CommitMessage,
    CommitLanded,
    SnapCommD,
    SnapCommR,
    SnapProof,
}

impl Datum {
    pub fn as_str(self) -> &'static str {
        match self {
            Datum::SectorNumber => "a sector number",
            Datum::CommD => "CommD",
            Datum::Ticket => "a ticket",
            Datum::CommR => "CommR",
            Datum::PreCommitMessage => "a precommit message",
            Datum::PreCommitLanded => "a landed precommit",
            Datum::Persisted => "a persisted location",
            Datum::Seed => "a seed",
            Datum::Proof => "a PoRep proof",
            Datum::CommitMessage => "a commit message",
            Datum::CommitLanded => "a landed commit",
            Datum::SnapCommD => "the new CommD",
            Datum::SnapCommR => "the new CommR",
            Datum::SnapProof => "a replica update proof",
        }
    }

    /// Chain facts stay recorded when a sector is sent back to an earlier state: the chain does
    /// not forget them, and the chain bridge needs them to avoid sending twice.
    fn is_chain_fact(self) -> bool {
        matches!(
            self,
            Datum::SectorNumber
                | Datum::PreCommitMessage
                | Datum::PreCommitLanded
                | Datum::CommitMessage
                | Datum::CommitLanded
        )
    }

    pub fn present(self, r: &SectorRecord) -> bool {
        let snap = r.snap.as_ref();
        match self {
            Datum::SectorNumber => r.sector_number.is_some(),
            Datum::CommD => r.comm_d.is_some(),
            Datum::Ticket => r.ticket.is_some(),
            Datum::CommR => r.comm_r.is_some(),
            Datum::PreCommitMessage => r.precommit.is_some(),
            Datum::PreCommitLanded => r.precommit.as_ref().is_some_and(|m| m.landed_ok()),
            Datum::Persisted => r.persisted.is_some(),
            Datum::Seed => r.seed.is_some(),
            Datum::Proof => r.proof.is_some(),
            Datum::CommitMessage => r.commit.is_some(),
            Datum::CommitLanded => r.commit.as_ref().is_some_and(|m| m.landed_ok()),
            Datum::SnapCommD => snap.is_some_and(|s| s.comm_d.is_some()),
            Datum::SnapCommR => snap.is_some_and(|s| s.comm_r.is_some()),
            Datum::SnapProof => snap.is_some_and(|s| s.proof.is_some()),
        }
    }

    fn clear(self, r: &mut SectorRecord) {
        match self {
            Datum::CommD => r.comm_d = None,
            Datum::Ticket => r.ticket = None,
            Datum::CommR => r.comm_r = None,
            Datum::Persisted => r.persisted = None,
            Datum::Seed => r.seed = None,
            Datum::Proof => r.proof = None,
            Datum::SnapCommD => {
                if let Some(s) = r.snap.as_mut() {
                    s.comm_d = None;
                }
            }
            Datum::SnapCommR => {
                if let Some(s) = r.snap.as_mut() {
                    s.comm_r = None;
                }
            }
            Datum::SnapProof => {
                if let Some(s) = r.snap.as_mut() {
                    s.proof = None;
                }
            }
            Datum::SectorNumber
            | Datum::PreCommitMessage
            | Datum::PreCommitLanded
            | Datum::CommitMessage
            | Datum::CommitLanded => {}
        }
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The data a sector gains on entering `state` in `plan`.
fn gained(plan: Plan, state: State) -> &'static [Datum] {
    use Datum as D;
    use State::*;
    match (plan, state) {
        (Plan::Sealer, Allocated) => &[D::SectorNumber],
        (Plan::Snapup, Allocated) => &[D::SectorNumber, D::CommR],
        (Plan::Rebuild, Allocated) => &[D::SectorNumber, D::Ticket, D::CommR],
        (Plan::Sealer | Plan::Rebuild, TreeDBuilt) => &[D::CommD],
        (Plan::Snapup, TreeDBuilt) | (Plan::Rebuild, SnapTreeDBuilt) => &[D::SnapCommD],
        (Plan::Sealer, TicketAssigned) => &[D::Ticket],
        (Plan::Sealer, PC2Done) => &[D::CommR],
        (Plan::Sealer, PCSubmitted) => &[D::PreCommitMessage],
        (Plan::Sealer, PCLanded) => &[D::PreCommitLanded],
        (_, Persisted) => &[D::Persisted],
        (_, SeedAssigned) => &[D::Seed],
        (_, C2Done) => &[D::Proof],
        (_, ProofSubmitted) => &[D::CommitMessage],
        (Plan::Sealer | Plan::Snapup, Finished) => &[D::CommitLanded],
        (_, SnapEncoded) => &[D::SnapCommR],
        (Plan::Snapup, SnapProved) => &[D::SnapProof],
        _ => &[],
    }
}

/// The states a sector passes through to reach `target`. Rebuild's snap branch is on the way
/// only to its own states: a sector that skips it reaches SnapDone without snap data.
fn path_to(plan: Plan, target: State) -> impl Iterator<Item = State> {
    let end = plan.position(target).map_or(0, |p| p + 1);
    let snap_branch = [State::SnapPieceAdded, State::SnapTreeDBuilt, State::SnapEncoded];
    let skips_branch = plan == Plan::Rebuild && !snap_branch.contains(&target);
    plan.states()[..end]
        .iter()
        .copied()
        .filter(move |s| !(skips_branch && snap_branch.contains(s)))
}

/// The data a sector must have to be in `state`.
pub fn requirements(plan: Plan, state: State) -> Vec<Datum> {
    path_to(plan, state).flat_map(|s| gained(plan, s).iter().copied()).collect()
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("the sector is {0}; it cannot be paused, resumed or aborted")]
    Terminal(State),
    #[error("the sector is not paused; pause it first (spec.paused: true)")]
    NotPaused,
    #[error("{state} is not a state of the {plan} plan; valid states are {valid}")]
    NotInPlan { plan: Plan, state: State, valid: String },
    #[error("resuming at {state} needs {missing}, which this sector (now {current}) does not have")]
    MissingData { state: State, current: State, missing: String },
    #[error(
        "the precommit of this sector is on chain with its ticket, so it cannot go back to {state} and draw a new one; resume at TicketAssigned or later to reseal with the same ticket, or at Aborted"
    )]
    PreCommitOnChain { state: State },
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

pub fn pause(record: &SectorRecord, now: Timestamp) -> Result<SectorRecord, ControlError> {
    if record.state.is_terminal() {
        return Err(ControlError::Terminal(record.state));
    }
    let mut out = record.clone();
    if out.paused.is_none() {
        out.paused = Some(Pause { since: now, reason: PauseReason::Requested });
    }
    Ok(out)
}

pub fn abort(plan: Plan, record: &SectorRecord, now: Timestamp) -> Result<SectorRecord, ControlError> {
    if record.state.is_terminal() {
        return Err(ControlError::Terminal(record.state));
    }
    Ok(apply(plan, record, Event::Abort, now)?)
}

/// Resumes a paused sector at its current state or at `at`. Going back clears the data that
/// later states produced (except chain facts); going anywhere requires the data that state needs.
pub fn resume(plan: Plan, record: &SectorRecord, at: Option<State>, now: Timestamp) -> Result<SectorRecord, ControlError> {
    if record.state.is_terminal() {
        return Err(ControlError::Terminal(record.state));
    }
    if record.paused.is_none() {
        return Err(ControlError::NotPaused);
    }
    let target = at.unwrap_or(record.state);
    if target == State::Aborted {
        return abort(plan, record, now);
    }
    let mut out = rewind(plan, record, target, now)?;
    out.paused = None;
    Ok(out)
}

/// Moves a sector to `target` of its plan, as a resume does but whether paused or not (the chain
/// bridge re-tickets a sector this way). Going back clears the data that later states produced,
/// except chain facts; any target requires the data that state needs.
pub fn rewind(plan: Plan, record: &SectorRecord, target: State, now: Timestamp) -> Result<SectorRecord, ControlError> {
    if record.state.is_terminal() {
        return Err(ControlError::Terminal(record.state));
    }
    if !plan.states().contains(&target) {
        let valid = plan.states().iter().map(|s| s.as_str()).chain(["Aborted"]).collect::<Vec<_>>().join(", ");
        return Err(ControlError::NotInPlan { plan, state: target, valid });
    }
    let missing: Vec<&str> = requirements(plan, target)
        .into_iter()
        .filter(|d| !d.present(record))
        .map(Datum::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(ControlError::MissingData { state: target, current: record.state, missing: missing.join(", ") });
    }
    let ticket_at = plan.position(State::TicketAssigned);
    if plan == Plan::Sealer && Datum::PreCommitLanded.present(record) && plan.position(target) < ticket_at {
        return Err(ControlError::PreCommitOnChain { state: target });
    }

    let mut out = record.clone();
    if let Some(pos) = plan.position(target) {
        for later in &plan.states()[pos + 1..] {
            for datum in gained(plan, *later).iter().filter(|d| !d.is_chain_fact()) {
                datum.clear(&mut out);
            }
        }
    }
    out.last_error = None;
    out.retry_after = None;
    out.failures = 0;
    out.outbox = None;
    if target != record.state {
        out.enter(target, now);
    }
    Ok(out)
}

/// What the Sector's spec asks of the sector's pause state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControlSpec {
    pub paused: bool,
    pub abort: bool,
    pub resume: Option<ResumeRequest>,
}

/// A one-shot request to resume, identified by when it was made so it is applied once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeRequest {
    pub state: Option<State>,
    pub requested_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlAction {
    Pause,
    Resume(Option<State>),
    Abort,
}

/// Compares the spec with the sector and says what to do, if anything. `last_resume` is the
/// `requested_at` of the last resume request already handled.
pub fn control_action(record: &SectorRecord, spec: &ControlSpec, last_resume: Option<&str>) -> Option<ControlAction> {
    if record.state.is_terminal() {
        return None;
    }
    if spec.abort {
        return Some(ControlAction::Abort);
    }
    if spec.paused {
        return record.paused.is_none().then_some(ControlAction::Pause);
    }
    let pending = spec.resume.as_ref().filter(|r| Some(r.requested_at.as_str()) != last_resume);
    match (pending, &record.paused) {
        // Applied even to a running sector, so the request is answered (with "not paused").
        (Some(request), _) => Some(ControlAction::Resume(request.state)),
        (None, Some(Pause { reason: PauseReason::Requested, .. })) => Some(ControlAction::Resume(None)),
        _ => None,
    }
}
