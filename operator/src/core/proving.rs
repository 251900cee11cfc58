//! Window PoSt for one deadline of one miner: what to do next, from the chain's view of the
//! deadline and what the ProvingDeadline status recorded. No Kubernetes and no chain client here;
//! the proving controller reads both, asks [`plan`], and carries the actions out.
//!
//! Each instance of a deadline (one per proving period) goes: check the sector files before the
//! fault cutoff and declare faults and recoveries, then at the challenge epoch prove every
//! partition that has something to prove and submit the proofs before the deadline closes.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::record::ChainMessage;

/// One instance of a deadline, in the chain's epochs (`StateMinerProvingDeadline`'s shape).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub period_start: i64,
    pub open: i64,
    pub close: i64,
    pub challenge: i64,
    pub fault_cutoff: i64,
    pub challenge_window: i64,
}

/// One partition of the deadline, from `StateMinerPartitions`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionView {
    pub index: u64,
    pub live: BTreeSet<u64>,
    pub faulty: BTreeSet<u64>,
    pub recovering: BTreeSet<u64>,
}

impl PartitionView {
    /// What a PoSt of this partition covers: live sectors that are not faulty, or faulty and
    /// declared recovering (a proof recovers them).
    pub fn to_prove(&self) -> BTreeSet<u64> {
        self.live.iter().copied().filter(|s| !self.faulty.contains(s) || self.recovering.contains(s)).collect()
    }
}

/// When to act, in epochs. The chain reports the deadline's own epochs; these say how much room
/// the operator keeps around them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The proving check starts this many challenge windows before the fault cutoff (Lotus checks
    /// the deadline two ahead of the current one).
    pub check_windows_ahead: i64,
    /// Epochs a declaration needs to land: none is sent later than `fault_cutoff - margin`.
    pub message_margin: i64,
    /// Epochs after the challenge epoch before its randomness is trusted.
    pub challenge_confidence: i64,
    /// Partitions one SubmitWindowedPoSt may carry.
    pub max_partitions_per_message: usize,
    /// Attempts at one partition batch's PoSt (a rejected proof or a failed pod) per instance.
    pub max_post_attempts: u32,
}

impl Timing {
    /// The first epoch of the proving check of `window`'s instance.
    pub fn check_from(&self, window: &Window) -> i64 {
        window.fault_cutoff - self.check_windows_ahead * window.challenge_window
    }

    /// Whether the challenge randomness of `window` may be used at `head`.
    pub fn proving_started(&self, window: &Window, head: i64) -> bool {
        head >= window.challenge + self.challenge_confidence
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            check_windows_ahead: 2,
            message_margin: 2,
            challenge_confidence: 1,
            max_partitions_per_message: 3,
            max_post_attempts: 2,
        }
    }
}

/// The key of a message in its MsgUuid (with the deadline's uid and the attempt): one per
/// declaration kind, or per PoSt batch, and proving period, so that a message pushed again
/// after a crash is the same one, and next period's is a new one.
pub fn message_task(what: &str, period_start: i64) -> String {
    format!("{what}-{period_start}")
}

/// Faults (DeclareFaults) or recoveries (DeclareFaultsRecovered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DeclarationKind {
    Faults,
    Recoveries,
}

impl Declaration {
    pub fn names(&self, sector: u64) -> bool {
        self.partitions.iter().any(|p| p.sectors.contains(&sector))
    }
}

impl DeclarationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeclarationKind::Faults => "declare-faults",
            DeclarationKind::Recoveries => "declare-recoveries",
        }
    }
}

/// Sectors of one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionSectors {
    pub partition: u64,
    pub sectors: Vec<u64>,
}

/// A declaration sent for this instance: the sectors per partition and its message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Declaration {
    pub kind: DeclarationKind,
    pub partitions: Vec<PartitionSectors>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<ChainMessage>,
}

/// The proving check's verdict for this instance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// Sectors whose files are missing or do not prove.
    #[serde(default)]
    pub bad: Vec<u64>,
    /// Why the check could not give a verdict (its pod failed); nothing is declared then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The window PoSt of one batch of partitions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostBatch {
    pub partitions: Vec<u64>,
    /// 1 for the first pod and message; a rejected or failed attempt is followed by the next.
    pub attempt: u32,
    /// The proof (base64), once the pod has made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// Sectors the proof covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sectors: Vec<u64>,
    /// Sectors the pod could not prove; they are skipped in the submission.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<ChainMessage>,
    /// The last failure of this batch (pod error or rejected message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PostBatch {
    pub fn accepted(&self) -> bool {
        self.message.as_ref().is_some_and(ChainMessage::landed_ok)
    }

    fn given_up(&self, timing: &Timing) -> bool {
        self.error.is_some() && self.attempt >= timing.max_post_attempts
    }
}

/// What the operator did for the current instance of the deadline (`status.current`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvingRecord {
    pub period_start: i64,
    /// Partitions that had sectors to prove when last looked at before the challenge.
    #[serde(default)]
    pub needed: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declarations: Vec<Declaration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub posts: Vec<PostBatch>,
}

impl ProvingRecord {
    pub fn new(window: &Window) -> Self {
        Self { period_start: window.period_start, ..Default::default() }
    }

    pub fn declaration(&self, kind: DeclarationKind) -> Option<&Declaration> {
        self.declarations.iter().find(|d| d.kind == kind)
    }

    /// Every partition that needed a proof has an accepted one.
    pub fn proven(&self) -> bool {
        let accepted: BTreeSet<u64> =
            self.posts.iter().filter(|p| p.accepted()).flat_map(|p| p.partitions.iter().copied()).collect();
        self.needed.iter().all(|p| accepted.contains(p))
    }
}

/// How a finished instance ended, for `status.lastSubmission`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceEnd {
    /// Every partition that needed a proof got an accepted one.
    Proven,
    /// A partition that needed a proof has none: its sectors are faulty now.
    Missed,
    /// Nothing needed proving.
    Idle,
}

impl InstanceEnd {
    /// The result recorded in `lastSubmission` and counted in the metrics; none for an idle one.
    pub fn result(self) -> Option<&'static str> {
        match self {
            InstanceEnd::Proven => Some("Proven"),
            InstanceEnd::Missed => Some("Missed"),
            InstanceEnd::Idle => None,
        }
    }
}

/// Starts the record of `window` when the recorded instance is over, and says how that one ended.
pub fn roll(record: Option<&ProvingRecord>, window: &Window) -> (ProvingRecord, Option<InstanceEnd>) {
    match record {
        Some(r) if r.period_start >= window.period_start => (r.clone(), None),
        Some(r) => {
            let end = if r.needed.is_empty() {
                InstanceEnd::Idle
            } else if r.proven() {
                InstanceEnd::Proven
            } else {
                InstanceEnd::Missed
            };
            (ProvingRecord::new(window), Some(end))
        }
        None => (ProvingRecord::new(window), None),
    }
}

/// Something the controller must do now for the deadline's current instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run (or find the result of) the proving check over these sectors.
    Check { sectors: BTreeSet<u64> },
    /// Send this declaration (or find the message already sent), then record it.
    Declare(Declaration),
    /// Wait for a declaration's receipt.
    WaitDeclaration(DeclarationKind),
    /// Run (or find the result of) the PoSt pod of batch `batch` over these sectors.
    Prove { batch: usize, sectors: BTreeSet<u64> },
    /// Submit batch `batch`'s proof.
    Submit { batch: usize },
    /// Wait for batch `batch`'s receipt.
    WaitSubmission { batch: usize },
}

/// The actions due at `head`, given the record of the current instance (rolled with [`roll`]).
/// Also refreshes `record.needed` before the challenge and sets up the PoSt batches at it; an
/// instance that has started with nothing `needed` has nothing to prove.
pub fn plan(window: &Window, partitions: &[PartitionView], head: i64, record: &mut ProvingRecord, timing: &Timing) -> Vec<Action> {
    let mut actions = Vec::new();
    let started = timing.proving_started(window, head);
    if !started && record.posts.is_empty() {
        record.needed = partitions.iter().filter(|p| !p.to_prove().is_empty()).map(|p| p.index).collect();
    }

    // Faults and recoveries, before the cutoff.
    let last_declaration = window.fault_cutoff - timing.message_margin;
    if head >= timing.check_from(window) && head < last_declaration {
        match &record.check {
            None => {
                let sectors: BTreeSet<u64> = partitions.iter().flat_map(|p| p.live.iter().copied()).collect();
                if !sectors.is_empty() {
                    actions.push(Action::Check { sectors });
                }
            }
            Some(CheckResult { error: Some(_), .. }) => {}
            Some(check) => {
                let bad: BTreeSet<u64> = check.bad.iter().copied().collect();
                for kind in [DeclarationKind::Faults, DeclarationKind::Recoveries] {
                    match record.declaration(kind) {
                        None => {
                            let partitions = declarable(kind, partitions, &bad);
                            if !partitions.is_empty() {
                                actions.push(Action::Declare(Declaration { kind, partitions, message: None }));
                            }
                        }
                        Some(d) if d.message.as_ref().is_some_and(|m| m.epoch.is_none()) => {
                            actions.push(Action::WaitDeclaration(kind));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    } else {
        // A declaration sent in time may land after the window: its receipt is still recorded.
        for d in &record.declarations {
            if d.message.as_ref().is_some_and(|m| m.epoch.is_none()) {
                actions.push(Action::WaitDeclaration(d.kind));
            }
        }
    }

    // The proofs, between the challenge and the close.
    if !started || head >= window.close {
        return actions;
    }
    if record.posts.is_empty() {
        let proving: Vec<&PartitionView> = partitions.iter().filter(|p| !p.to_prove().is_empty()).collect();
        record.needed = proving.iter().map(|p| p.index).collect();
        if proving.is_empty() {
            return actions;
        }
        record.posts = proving
            .chunks(timing.max_partitions_per_message.max(1))
            .map(|chunk| PostBatch { partitions: chunk.iter().map(|p| p.index).collect(), attempt: 1, ..Default::default() })
            .collect();
    }
    for (i, batch) in record.posts.iter().enumerate() {
        if batch.accepted() || batch.given_up(timing) {
            continue;
        }
        match (&batch.proof, &batch.message) {
            (_, Some(m)) if m.epoch.is_none() => actions.push(Action::WaitSubmission { batch: i }),
            (Some(_), None) => actions.push(Action::Submit { batch: i }),
            (None, None) if batch.error.is_none() => {
                let sectors = partitions
                    .iter()
                    .filter(|p| batch.partitions.contains(&p.index))
                    .flat_map(|p| p.to_prove())
                    .collect();
                actions.push(Action::Prove { batch: i, sectors });
            }
            _ => {}
        }
    }
    actions
}

/// After a failed attempt (the pod failed or the chain refused the proof): the next attempt
/// starts from a new pod, if attempts remain.
pub fn retry_batch(batch: &mut PostBatch, error: String, timing: &Timing) {
    batch.error = Some(error);
    if batch.attempt < timing.max_post_attempts {
        batch.attempt += 1;
        batch.proof = None;
        batch.sectors.clear();
        batch.skipped.clear();
        batch.message = None;
        batch.error = None;
    }
}

/// Faults: live sectors found bad that the chain does not already hold faulty (or that were
/// declared recovering and are bad again). Recoveries: faulty sectors, not yet recovering, whose
/// files are good again.
fn declarable(kind: DeclarationKind, partitions: &[PartitionView], bad: &BTreeSet<u64>) -> Vec<PartitionSectors> {
    partitions
        .iter()
        .map(|p| {
            let sectors: Vec<u64> = match kind {
                DeclarationKind::Faults => p
                    .live
                    .iter()
                    .copied()
                    .filter(|s| bad.contains(s) && (!p.faulty.contains(s) || p.recovering.contains(s)))
                    .collect(),
                DeclarationKind::Recoveries => p
                    .faulty
                    .iter()
                    .copied()
                    .filter(|s| p.live.contains(s) && !p.recovering.contains(s) && !bad.contains(s))
                    .collect(),
            };
            PartitionSectors { partition: p.index, sectors }
        })
        .filter(|p| !p.sectors.is_empty())
        .collect()
}
