//! Sector states and task plans, exactly as venus-worker (damocles) lists them (seed 004).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every state a sector can be in, across all plans. Serialized by name, never by ordinal, so a
/// status written by one operator version is read back correctly by the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum State {
    #[default]
    Empty,
    Allocated,
    DealsAcquired,
    PieceAdded,
    TreeDBuilt,
    TicketAssigned,
    PC1Done,
    PC2Done,
    PCSubmitted,
    PCLanded,
    Persisted,
    PersistanceSubmitted,
    SeedAssigned,
    C1Done,
    C2Done,
    ProofSubmitted,
    SnapEncoded,
    SnapProved,
    SealedChecked,
    SnapPieceAdded,
    SnapTreeDBuilt,
    SnapDone,
    Finished,
    Aborted,
}

impl State {
    pub const ALL: [State; 24] = [
        State::Empty,
        State::Allocated,
        State::DealsAcquired,
        State::PieceAdded,
        State::TreeDBuilt,
        State::TicketAssigned,
        State::PC1Done,
        State::PC2Done,
        State::PCSubmitted,
        State::PCLanded,
        State::Persisted,
        State::PersistanceSubmitted,
        State::SeedAssigned,
        State::C1Done,
        State::C2Done,
        State::ProofSubmitted,
        State::SnapEncoded,
        State::SnapProved,
        State::SealedChecked,
        State::SnapPieceAdded,
        State::SnapTreeDBuilt,
        State::SnapDone,
        State::Finished,
        State::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::Allocated => "Allocated",
            State::DealsAcquired => "DealsAcquired",
            State::PieceAdded => "PieceAdded",
            State::TreeDBuilt => "TreeDBuilt",
            State::TicketAssigned => "TicketAssigned",
            State::PC1Done => "PC1Done",
            State::PC2Done => "PC2Done",
            State::PCSubmitted => "PCSubmitted",
            State::PCLanded => "PCLanded",
            State::Persisted => "Persisted",
            State::PersistanceSubmitted => "PersistanceSubmitted",
            State::SeedAssigned => "SeedAssigned",
            State::C1Done => "C1Done",
            State::C2Done => "C2Done",
            State::ProofSubmitted => "ProofSubmitted",
            State::SnapEncoded => "SnapEncoded",
            State::SnapProved => "SnapProved",
            State::SealedChecked => "SealedChecked",
            State::SnapPieceAdded => "SnapPieceAdded",
            State::SnapTreeDBuilt => "SnapTreeDBuilt",
            State::SnapDone => "SnapDone",
            State::Finished => "Finished",
            State::Aborted => "Aborted",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, State::Finished | State::Aborted)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sector state {0:?}; valid states are {names}", names = State::ALL.map(State::as_str).join(", "))]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// The task plan of a sector: which state machine drives it (the `plan` option of a damocles
/// sealing thread).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// Seal a new sector: PC1/PC2, precommit, C1/C2, prove commit.
    #[default]
    Sealer,
    /// Upgrade a committed-capacity sector with deal data (SnapDeals).
    Snapup,
    /// Rebuild the sealed files of a sector that is already on chain.
    Rebuild,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Sealer => "sealer",
            Plan::Snapup => "snapup",
            Plan::Rebuild => "rebuild",
        }
    }

    /// The plan's states in the order a sector passes through them when nothing fails. Rebuild's
    /// snap branch (SnapPieceAdded .. SnapEncoded) is listed where it happens; a sector that skips it
    /// goes from SealedChecked straight to SnapDone.
    pub fn states(self) -> &'static [State] {
        use State::*;
        match self {
            Plan::Sealer => &[
                Empty,
                Allocated,
                DealsAcquired,
                PieceAdded,
                TreeDBuilt,
                TicketAssigned,
                PC1Done,
                PC2Done,
                PCSubmitted,
                PCLanded,
                Persisted,
                PersistanceSubmitted,
                SeedAssigned,
                C1Done,
                C2Done,
                ProofSubmitted,
                Finished,
            ],
            Plan::Snapup => &[Empty, Allocated, PieceAdded, TreeDBuilt, SnapEncoded, SnapProved, Persisted, Finished],
            Plan::Rebuild => &[
                Empty,
                Allocated,
                PieceAdded,
                TreeDBuilt,
                PC1Done,
                PC2Done,
                SealedChecked,
                SnapPieceAdded,
                SnapTreeDBuilt,
                SnapEncoded,
                SnapDone,
                Persisted,
                Finished,
            ],
        }
    }

    pub fn contains(self, state: State) -> bool {
        state == State::Aborted || self.states().contains(&state)
    }

    /// Position in the happy path, used to tell "earlier" from "later" states.
    pub fn position(self, state: State) -> Option<usize> {
        self.states().iter().position(|s| *s == state)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{}\"", state.as_str()));
        }
    }

    #[test]
    fn unknown_state_names_the_valid_ones() {
        let err = "PC3Done".parse::<State>().unwrap_err().to_string();
        assert!(err.contains("PC3Done") && err.contains("TreeDBuilt"), "{err}");
    }

    #[test]
    fn every_state_but_aborted_belongs_to_some_plan() {
        for state in State::ALL {
            let in_a_plan = [Plan::Sealer, Plan::Snapup, Plan::Rebuild]
                .iter()
                .any(|p| p.states().contains(&state));
            assert_eq!(in_a_plan, state != State::Aborted, "{state}");
        }
    }
}
