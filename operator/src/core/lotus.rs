//! Lotus' sealing failure states (seed 002, `storage/pipeline/fsm.go`) in this operator's terms:
//! where in the sealer plan the failure happens and which error level it is. Lotus retries most of
//! them in place after a delay, which is exactly a temporary error here.

use super::error::ErrorLevel;
use super::state::State;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LotusFailure {
    AddPieceFailed,
    SealPreCommit1Failed,
    SealPreCommit2Failed,
    PreCommitFailed,
    ComputeProofFailed,
    CommitFailed,
    FinalizeFailed,
    CommitFinalizeFailed,
    PackingFailed,
    DealsExpired,
    RecoverDealIDs,
    FailedUnrecoverable,
    Faulty,
    FaultReported,
    TerminateFailed,
    RemoveFailed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handling {
    /// The failure of the work done in `state` of the sealer plan, at `level`.
    Sealing { state: State, level: ErrorLevel },
    /// A proven sector's fault: the ProvingDeadline controller declares it and its recovery.
    Proving,
}

impl LotusFailure {
    pub const ALL: [LotusFailure; 16] = [
        LotusFailure::AddPieceFailed,
        LotusFailure::SealPreCommit1Failed,
        LotusFailure::SealPreCommit2Failed,
        LotusFailure::PreCommitFailed,
        LotusFailure::ComputeProofFailed,
        LotusFailure::CommitFailed,
        LotusFailure::FinalizeFailed,
        LotusFailure::CommitFinalizeFailed,
        LotusFailure::PackingFailed,
        LotusFailure::DealsExpired,
        LotusFailure::RecoverDealIDs,
        LotusFailure::FailedUnrecoverable,
        LotusFailure::Faulty,
        LotusFailure::FaultReported,
        LotusFailure::TerminateFailed,
        LotusFailure::RemoveFailed,
    ];

    pub fn handling(self) -> Handling {
        use ErrorLevel::*;
        use LotusFailure as L;
        let (state, level) = match self {
            L::AddPieceFailed => (State::DealsAcquired, Temporary),
            L::SealPreCommit1Failed => (State::TicketAssigned, Temporary),
            L::SealPreCommit2Failed => (State::PC1Done, Temporary),
            // Lotus resends (ReSubmitPC here); an expired ticket sends it back to GetTicket, which
            // here is a resume at TreeDBuilt.
            L::PreCommitFailed => (State::PCSubmitted, Temporary),
            L::ComputeProofFailed => (State::C1Done, Temporary),
            L::CommitFailed => (State::ProofSubmitted, Temporary),
            L::FinalizeFailed | L::CommitFinalizeFailed => (State::PCLanded, Temporary),
            // The deals can no longer be sealed in time: nothing to retry.
            L::PackingFailed | L::DealsExpired => (State::Allocated, Abort),
            // Deal IDs changed on chain: someone must fix the deals before the sector can go on.
            L::RecoverDealIDs => (State::Allocated, Permanent),
            L::FailedUnrecoverable => (State::Empty, Abort),
            L::Faulty | L::FaultReported => return Handling::Proving,
            // Termination and removal are outside the sealing plans; keep them visible.
            L::TerminateFailed | L::RemoveFailed => (State::Finished, Permanent),
        };
        Handling::Sealing { state, level }
    }
}
