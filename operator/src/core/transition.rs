//! The state machines: `apply(plan, record, event) -> next record`, pure and total over the
//! transition tables of seed 004. Side effects (pods, chain messages, status writes) happen
//! elsewhere; this only decides.

use jiff::Timestamp;

use super::record::{ChainMessage, Randomness, SectorRecord, SnapUpdate};
use super::state::{Plan, State};

/// Something that happened to a sector: a finished step, a chain answer, or a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A sector number was allocated (sealer).
    Allocate { sector_number: u64 },
    /// A committed-capacity sector was picked for upgrade (snapup); `comm_r` is its current CommR.
    AllocateSnapUp { sector_number: u64, comm_r: String },
    /// A sector on chain was picked for rebuild, with the ticket and CommR it was sealed with.
    AllocateRebuild { sector_number: u64, ticket: Randomness, comm_r: String },
    AcquireDeals,
    AddPiece,
    BuildTreeD { comm_d: String },
    AssignTicket(Randomness),
    PC1,
    PC2 { comm_r: String, comm_d: String },
    SubmitPC(ChainMessage),
    /// The precommit did not land (failed receipt, dropped message): go back and send it again.
    ReSubmitPC,
    /// The precommit landed successfully.
    CheckPC(ChainMessage),
    Persist { location: String },
    /// The persisted files failed their check (snapup): persist again.
    RePersist,
    SubmitPersistance,
    AssignSeed(Randomness),
    C1,
    C2 { proof: String },
    SubmitProof(ChainMessage),
    /// The proof did not land: go back and send it again.
    ReSubmitProof,
    /// The activating message landed (sealer: ProveCommitSectors3; snapup: ProveReplicaUpdates3).
    Finish(ChainMessage),
    SnapEncode { comm_r: String, comm_d: String },
    SnapProve { proof: String },
    /// Rebuild: the rebuilt replica was checked against the chain's CommR.
    CheckSealed,
    /// Rebuild: the sector was never upgraded, so there is no snap data to rebuild.
    SkipSnap,
    /// Give up on the sector (an abort-level error, or someone asked).
    Abort,
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Allocate { .. } => "Allocate",
            Event::AllocateSnapUp { .. } => "AllocateSnapUp",
            Event::AllocateRebuild { .. } => "AllocateRebuild",
            Event::AcquireDeals => "AcquireDeals",
            Event::AddPiece => "AddPiece",
            Event::BuildTreeD { .. } => "BuildTreeD",
            Event::AssignTicket(_) => "AssignTicket",
            Event::PC1 => "PC1",
            Event::PC2 { .. } => "PC2",
            Event::SubmitPC(_) => "SubmitPC",
            Event::ReSubmitPC => "ReSubmitPC",
            Event::CheckPC(_) => "CheckPC",
            Event::Persist { .. } => "Persist",
            Event::RePersist => "RePersist",
            Event::SubmitPersistance => "SubmitPersistance",
            Event::AssignSeed(_) => "AssignSeed",
            Event::C1 => "C1",
            Event::C2 { .. } => "C2",
            Event::SubmitProof(_) => "SubmitProof",
            Event::ReSubmitProof => "ReSubmitProof",
            Event::Finish(_) => "Finish",
            Event::SnapEncode { .. } => "SnapEncode",
            Event::SnapProve { .. } => "SnapProve",
            Event::CheckSealed => "CheckSealed",
            Event::SkipSnap => "SkipSnap",
            Event::Abort => "Abort",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("event {event} is not valid for a {plan} sector in state {state}")]
    NotAllowed { plan: Plan, state: State, event: &'static str },
    #[error("the sector is already {0}; it takes no further events")]
    Terminal(State),
    #[error("{what} mismatch: expected {expected}, got {got}")]
    Mismatch { what: &'static str, expected: String, got: String },
    #[error("{event} needs a successfully landed message, got {message:?}")]
    NotLanded { event: &'static str, message: ChainMessage },
}

/// The state an event leads to from `state` in `plan`, per the transition tables of seed 004.
pub fn target(plan: Plan, state: State, event: &Event) -> Option<State> {
    use Event as E;
    use State::*;
    if matches!(event, E::Abort) {
        return (!state.is_terminal()).then_some(Aborted);
    }
    let next = match (plan, state, event) {
        (Plan::Sealer, Empty, E::Allocate { .. }) => Allocated,
        (Plan::Sealer, Allocated, E::AcquireDeals) => DealsAcquired,
        (Plan::Sealer, DealsAcquired, E::AddPiece) => PieceAdded,
        (Plan::Sealer, PieceAdded, E::BuildTreeD { .. }) => TreeDBuilt,
        (Plan::Sealer, TreeDBuilt, E::AssignTicket(_)) => TicketAssigned,
        (Plan::Sealer, TicketAssigned, E::PC1) => PC1Done,
        (Plan::Sealer, PC1Done, E::PC2 { .. }) => PC2Done,
        (Plan::Sealer, PC2Done, E::SubmitPC(_)) => PCSubmitted,
        (Plan::Sealer, PCSubmitted, E::ReSubmitPC) => PC2Done,
        (Plan::Sealer, PCSubmitted, E::CheckPC(_)) => PCLanded,
        (Plan::Sealer, PCLanded, E::Persist { .. }) => Persisted,
        (Plan::Sealer, Persisted, E::SubmitPersistance) => PersistanceSubmitted,
        (Plan::Sealer, PersistanceSubmitted, E::AssignSeed(_)) => SeedAssigned,
        (Plan::Sealer, SeedAssigned, E::C1) => C1Done,
        (Plan::Sealer, C1Done, E::C2 { .. }) => C2Done,
        (Plan::Sealer, C2Done, E::SubmitProof(_)) => ProofSubmitted,
        (Plan::Sealer, ProofSubmitted, E::ReSubmitProof) => C2Done,
        (Plan::Sealer, ProofSubmitted, E::Finish(_)) => Finished,

        (Plan::Snapup, Empty, E::AllocateSnapUp { .. }) => Allocated,
        (Plan::Snapup, Allocated, E::AddPiece) => PieceAdded,
        (Plan::Snapup, PieceAdded, E::BuildTreeD { .. }) => TreeDBuilt,
        (Plan::Snapup, TreeDBuilt, E::SnapEncode { .. }) => SnapEncoded,
        (Plan::Snapup, SnapEncoded, E::SnapProve { .. }) => SnapProved,
        (Plan::Snapup, SnapProved, E::Persist { .. }) => Persisted,
        (Plan::Snapup, Persisted, E::RePersist) => SnapProved,
        (Plan::Snapup, Persisted, E::Finish(_)) => Finished,

        (Plan::Rebuild, Empty, E::AllocateRebuild { .. }) => Allocated,
        (Plan::Rebuild, Allocated, E::AddPiece) => PieceAdded,
        (Plan::Rebuild, PieceAdded, E::BuildTreeD { .. }) => TreeDBuilt,
        (Plan::Rebuild, TreeDBuilt, E::PC1) => PC1Done,
        (Plan::Rebuild, PC1Done, E::PC2 { .. }) => PC2Done,
        (Plan::Rebuild, PC2Done, E::CheckSealed) => SealedChecked,
        (Plan::Rebuild, SealedChecked, E::SkipSnap) => SnapDone,
        (Plan::Rebuild, SealedChecked, E::AddPiece) => SnapPieceAdded,
        (Plan::Rebuild, SnapPieceAdded, E::BuildTreeD { .. }) => SnapTreeDBuilt,
        (Plan::Rebuild, SnapTreeDBuilt, E::SnapEncode { .. }) => SnapEncoded,
        (Plan::Rebuild, SnapEncoded, E::SnapProve { .. }) => SnapDone,
        (Plan::Rebuild, SnapDone, E::Persist { .. }) => Persisted,
        (Plan::Rebuild, Persisted, E::SubmitPersistance) => Finished,
        _ => return None,
    };
    Some(next)
}

/// Applies `event` to a sector, returning its next record. A successful step clears the last
/// error and any backoff, since the sector is moving again.
pub fn apply(plan: Plan, record: &SectorRecord, event: Event, now: Timestamp) -> Result<SectorRecord, TransitionError> {
    if record.state.is_terminal() {
        return Err(TransitionError::Terminal(record.state));
    }
    let next = target(plan, record.state, &event).ok_or(TransitionError::NotAllowed {
        plan,
        state: record.state,
        event: event.name(),
    })?;
    let mut out = record.clone();
    record_data(plan, &mut out, event)?;
    out.last_error = None;
    out.retry_after = None;
    out.enter(next, now);
    Ok(out)
}

fn record_data(plan: Plan, out: &mut SectorRecord, event: Event) -> Result<(), TransitionError> {
    let in_snap_branch = plan == Plan::Snapup || (plan == Plan::Rebuild && out.state == State::SnapPieceAdded);
    match event {
        Event::Allocate { sector_number } => out.sector_number = Some(sector_number),
        Event::AllocateSnapUp { sector_number, comm_r } => {
            out.sector_number = Some(sector_number);
            out.comm_r = Some(comm_r);
        }
        Event::AllocateRebuild { sector_number, ticket, comm_r } => {
            out.sector_number = Some(sector_number);
            out.ticket = Some(ticket);
            out.comm_r = Some(comm_r);
        }
        Event::BuildTreeD { comm_d } if in_snap_branch => out.snap.get_or_insert_with(SnapUpdate::default).comm_d = Some(comm_d),
        Event::BuildTreeD { comm_d } => out.comm_d = Some(comm_d),
        Event::AssignTicket(ticket) => out.ticket = Some(ticket),
        Event::PC2 { comm_r, comm_d } => {
            expect_same("CommD (tree-d vs PC2)", out.comm_d.as_deref(), &comm_d)?;
            if plan == Plan::Rebuild {
                expect_same("CommR (on chain vs rebuilt)", out.comm_r.as_deref(), &comm_r)?;
            }
            out.comm_r = Some(comm_r);
            out.comm_d = Some(comm_d);
        }
        Event::SubmitPC(message) => out.precommit = Some(message),
        Event::CheckPC(message) => out.precommit = Some(landed("CheckPC", message)?),
        Event::Persist { location } => out.persisted = Some(location),
        Event::RePersist => out.persisted = None,
        Event::AssignSeed(seed) => out.seed = Some(seed),
        Event::C2 { proof } => out.proof = Some(proof),
        Event::SubmitProof(message) => out.commit = Some(message),
        Event::Finish(message) => out.commit = Some(landed("Finish", message)?),
        Event::SnapEncode { comm_r, comm_d } => {
            let snap = out.snap.get_or_insert_with(SnapUpdate::default);
            expect_same("new CommD (tree-d vs snap encode)", snap.comm_d.as_deref(), &comm_d)?;
            snap.comm_r = Some(comm_r);
            snap.comm_d = Some(comm_d);
        }
        Event::SnapProve { proof } => out.snap.get_or_insert_with(SnapUpdate::default).proof = Some(proof),
        Event::AcquireDeals
        | Event::AddPiece
        | Event::PC1
        | Event::ReSubmitPC
        | Event::SubmitPersistance
        | Event::C1
        | Event::ReSubmitProof
        | Event::CheckSealed
        | Event::SkipSnap
        | Event::Abort => {}
    }
    Ok(())
}

fn expect_same(what: &'static str, expected: Option<&str>, got: &str) -> Result<(), TransitionError> {
    match expected {
        Some(expected) if expected != got => {
            Err(TransitionError::Mismatch { what, expected: expected.to_owned(), got: got.to_owned() })
        }
        _ => Ok(()),
    }
}

fn landed(event: &'static str, message: ChainMessage) -> Result<ChainMessage, TransitionError> {
    if message.landed_ok() { Ok(message) } else { Err(TransitionError::NotLanded { event, message }) }
}
