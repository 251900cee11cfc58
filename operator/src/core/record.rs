//! What the operator knows about one sector: the part of `Sector.status` the sealing core reads
//! and writes. Rebuilt from the status after any restart, so everything here is plain data.

use std::collections::BTreeMap;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::ErrorLevel;
use super::state::State;
use super::work::Step;

/// Chain randomness drawn for the sector: the ticket (PC1) or the interactive seed (C1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Randomness {
    /// The epoch the randomness was drawn at.
    pub epoch: i64,
    /// The 32 random bytes, hex encoded.
    pub value: String,
}

/// A message sent to the chain for this sector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainMessage {
    /// The signed message CID: the one pushed, its latest replacement, or once landed the one
    /// the chain executed.
    pub cid: String,
    /// Once landed, the height Lotus reports for it (StateSearchMsg's `Height`: the tipset after
    /// the one that included it). For a precommit, the actor's PreCommitEpoch instead: the
    /// epoch it executed at, which the seed is counted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    /// The receipt's exit code, once it landed (0 is success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// The chain head when `cid` was pushed: a message not on chain `fees.replaceAfterEpochs`
    /// later is replaced with a higher fee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<i64>,
    /// How many times the message was replaced with a higher fee.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replacements: u32,
}

impl ChainMessage {
    pub fn landed_ok(&self) -> bool {
        self.epoch.is_some() && self.exit_code == Some(0)
    }
}

/// The result of a snap (replica update) encoding and proof.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_d: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_r: Option<String>,
    /// The replica update proof, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

/// The last error a sector hit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorRecord {
    pub level: ErrorLevel,
    /// The step or chain task that failed, e.g. `pc2` or `submit-precommit`.
    pub step: String,
    pub message: String,
    pub time: Timestamp,
}

/// A chain message being sent for this sector, written before the push: after a crash the same
/// MsgUuid is pushed again, and the node returns the message it already signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outbox {
    /// The chain task sending it, e.g. `submit-precommit`.
    pub task: String,
    pub msg_uuid: String,
    /// The Sector objects (same namespace) the message carries, this one included.
    pub sectors: Vec<String>,
}

/// The step pod a sector has been given a place for: created, running, or about to be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunningStep {
    pub step: Step,
    pub attempt: u32,
    pub node: String,
    pub since: Timestamp,
}

/// Why a sector is paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PauseReason {
    /// Someone asked for it (`spec.paused`).
    Requested,
    /// A permanent error stopped the sector; see `lastError`.
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Pause {
    pub since: Timestamp,
    pub reason: PauseReason,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SectorRecord {
    #[serde(default)]
    pub state: State,
    /// When the sector last entered each state it has been in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entered_at: BTreeMap<State, Timestamp>,
    /// The sector number, from the spec or allocated from the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector_number: Option<u64>,
    /// The node holding the sector's scratch data; steps that read it run there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Randomness>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<Randomness>,
    /// CommD (unsealed CID, `baga6ea4sea...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_d: Option<String>,
    /// CommR (sealed CID, `bagboea4b5abc...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_r: Option<String>,
    /// The PreCommitSectorBatch2 message that carried this sector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precommit: Option<ChainMessage>,
    /// A batch message on its way out (see `Outbox`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<Outbox>,
    /// Where the sealed sector was persisted (long-term storage path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persisted: Option<String>,
    /// The PoRep proof (C2 output), base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// The message that activated the sector: ProveCommitSectors3, or ProveReplicaUpdates3 for snapup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<ChainMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snap: Option<SnapUpdate>,
    /// The step pod placed for this sector, until its result is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<RunningStep>,
    /// How many times each step or chain task has been started.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attempts: BTreeMap<String, u32>,
    /// Consecutive failures of the current state's work; reset when the sector moves on or resumes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    /// Do not start the current step again before this time (backoff after a temporary error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Pause>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl SectorRecord {
    pub fn attempts_of(&self, step: &str) -> u32 {
        self.attempts.get(step).copied().unwrap_or(0)
    }

    pub(crate) fn enter(&mut self, state: State, now: Timestamp) {
        self.state = state;
        self.failures = 0;
        self.entered_at.insert(state, now);
    }
}
