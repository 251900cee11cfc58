//! What a sector needs next in each state, and who does it: a sealer pod, the chain bridge, or
//! the operator itself.

use std::fmt;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::record::SectorRecord;
use super::state::{Plan, State};

/// A sealing step run by a `sealer-pod` pod. The names are the sealer-pod subcommands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    AddPiece,
    TreeD,
    #[serde(rename = "pc1")]
    PC1,
    #[serde(rename = "pc2")]
    PC2,
    #[serde(rename = "c1")]
    C1,
    #[serde(rename = "c2")]
    C2,
    SnapEncode,
    SnapProve,
    /// Rebuild: prove the rebuilt replica (a vanilla PoSt over it) before trusting it.
    CheckSealed,
    /// Move the sealed replica and cache from scratch to long-term storage.
    Persist,
}

impl Step {
    pub const ALL: [Step; 10] = [
        Step::AddPiece,
        Step::TreeD,
        Step::PC1,
        Step::PC2,
        Step::C1,
        Step::C2,
        Step::SnapEncode,
        Step::SnapProve,
        Step::CheckSealed,
        Step::Persist,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::AddPiece => "add-piece",
            Step::TreeD => "tree-d",
            Step::PC1 => "pc1",
            Step::PC2 => "pc2",
            Step::C1 => "c1",
            Step::C2 => "c2",
            Step::SnapEncode => "snap-encode",
            Step::SnapProve => "snap-prove",
            Step::CheckSealed => "check-sealed",
            Step::Persist => "persist",
        }
    }

    /// Steps that load Groth parameters: the pool makes sure a node has them before placing
    /// one of these there, so a sector never stops on "No cached parameters found" (seed 003).
    pub fn needs_params(self) -> bool {
        matches!(self, Step::C2 | Step::SnapProve)
    }

    /// C2 needs only the C1 output, which is small enough to carry, so it may run on any GPU
    /// node; every other step reads or writes the sector's scratch data and runs where it lives.
    pub fn needs_sector_node(self) -> bool {
        self != Step::C2
    }
}

/// Work the chain bridge does for a sector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChainTask {
    /// Draw the ticket (StateGetRandomnessFromTickets, SealRandomness).
    GetTicket,
    /// Send the precommit (PreCommitSectorBatch2), batched with other sectors.
    SubmitPreCommit,
    /// Wait for the precommit's receipt.
    WaitPreCommit,
    /// Wait out the challenge delay, then draw the seed (StateGetRandomnessFromBeacon).
    GetSeed,
    /// Send the proof (ProveCommitSectors3), batched or aggregated with other sectors.
    SubmitCommit,
    /// Wait for the commit's receipt.
    WaitCommit,
    /// Send the replica update (ProveReplicaUpdates3) and wait for it.
    ProveReplicaUpdate,
}

impl ChainTask {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainTask::GetTicket => "get-ticket",
            ChainTask::SubmitPreCommit => "submit-precommit",
            ChainTask::WaitPreCommit => "wait-precommit",
            ChainTask::GetSeed => "get-seed",
            ChainTask::SubmitCommit => "submit-commit",
            ChainTask::WaitCommit => "wait-commit",
            ChainTask::ProveReplicaUpdate => "prove-replica-update",
        }
    }
}

/// Work the operator does itself, without a pod or a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperatorTask {
    /// Take the sector number from the spec or allocate one from the chain; for snapup and
    /// rebuild, look up the sector being upgraded or rebuilt.
    Allocate,
    /// Take the pieces from the spec (none: committed capacity).
    AcquireDeals,
    /// Record the persisted location once the persist step's files are confirmed.
    ConfirmPersisted,
    /// Rebuild: decide whether the sector carries snap data to rebuild too.
    DecideSnap,
}

impl OperatorTask {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorTask::Allocate => "allocate",
            OperatorTask::AcquireDeals => "acquire-deals",
            OperatorTask::ConfirmPersisted => "confirm-persisted",
            OperatorTask::DecideSnap => "decide-snap",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    Pod(Step),
    Chain(ChainTask),
    Operator(OperatorTask),
}

impl Work {
    /// The key under which attempts and errors of this work are recorded.
    pub fn name(self) -> &'static str {
        match self {
            Work::Pod(step) => step.as_str(),
            Work::Chain(task) => task.as_str(),
            Work::Operator(task) => task.as_str(),
        }
    }
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The work that moves a sector out of `state`; `None` in Finished and Aborted.
pub fn work(plan: Plan, state: State) -> Option<Work> {
    use ChainTask as C;
    use OperatorTask as O;
    use State::*;
    use Step as P;
    let work = match (plan, state) {
        (_, Finished | Aborted) => return None,
        (_, Empty) => Work::Operator(O::Allocate),
        (Plan::Sealer, Allocated) => Work::Operator(O::AcquireDeals),
        (Plan::Sealer, DealsAcquired) | (Plan::Snapup | Plan::Rebuild, Allocated) => Work::Pod(P::AddPiece),
        (_, PieceAdded) => Work::Pod(P::TreeD),
        (Plan::Sealer, TreeDBuilt) => Work::Chain(C::GetTicket),
        (Plan::Sealer, TicketAssigned) | (Plan::Rebuild, TreeDBuilt) => Work::Pod(P::PC1),
        (_, PC1Done) => Work::Pod(P::PC2),
        (Plan::Sealer, PC2Done) => Work::Chain(C::SubmitPreCommit),
        (_, PCSubmitted) => Work::Chain(C::WaitPreCommit),
        (Plan::Sealer, PCLanded) | (Plan::Snapup, SnapProved) | (Plan::Rebuild, SnapDone) => Work::Pod(P::Persist),
        (Plan::Sealer | Plan::Rebuild, Persisted) => Work::Operator(O::ConfirmPersisted),
        (Plan::Snapup, Persisted) => Work::Chain(C::ProveReplicaUpdate),
        (_, PersistanceSubmitted) => Work::Chain(C::GetSeed),
        (_, SeedAssigned) => Work::Pod(P::C1),
        (_, C1Done) => Work::Pod(P::C2),
        (_, C2Done) => Work::Chain(C::SubmitCommit),
        (_, ProofSubmitted) => Work::Chain(C::WaitCommit),
        (Plan::Rebuild, PC2Done) => Work::Pod(P::CheckSealed),
        (_, SealedChecked) => Work::Operator(O::DecideSnap),
        (_, SnapPieceAdded) => Work::Pod(P::TreeD),
        (Plan::Snapup, TreeDBuilt) | (_, SnapTreeDBuilt) => Work::Pod(P::SnapEncode),
        (_, SnapEncoded) => Work::Pod(P::SnapProve),
        // A state of another plan: `apply` never leads there, a hand-edited status could.
        _ => return None,
    };
    Some(work)
}

/// Why a sector that has work is not doing it right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    Paused,
    BackingOff { until: Timestamp },
}

pub fn hold(record: &SectorRecord, now: Timestamp) -> Option<Hold> {
    if record.paused.is_some() {
        return Some(Hold::Paused);
    }
    record.retry_after.filter(|until| *until > now).map(|until| Hold::BackingOff { until })
}
