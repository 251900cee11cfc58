//! The `ProvingDeadline` resource: one of a miner's 48 window PoSt deadlines.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::core::proving::ProvingRecord;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sealing.filecoin.io",
    version = "v1alpha1",
    kind = "ProvingDeadline",
    namespaced,
    status = "ProvingDeadlineStatus",
    shortname = "deadline",
    shortname = "pd",
    category = "filecoin",
    cel,
    printcolumn(name = "Miner", type_ = "string", json_path = ".spec.miner"),
    printcolumn(name = "Deadline", type_ = "integer", json_path = ".spec.deadlineIndex"),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".status.partitions"),
    printcolumn(name = "Sectors", type_ = "integer", json_path = ".status.sectors"),
    printcolumn(name = "Faults", type_ = "integer", json_path = ".status.faults"),
    printcolumn(name = "Recovering", type_ = "integer", json_path = ".status.recovering"),
    printcolumn(name = "Proven", type_ = "integer", json_path = ".status.provenPartitions"),
    printcolumn(name = "Open", type_ = "integer", json_path = ".status.open"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Last Result", type_ = "string", json_path = ".status.lastSubmission.result"),
    printcolumn(name = "Challenge", type_ = "integer", json_path = ".status.challenge", priority = 1),
    printcolumn(name = "Fault Cutoff", type_ = "integer", json_path = ".status.faultCutoff", priority = 1),
    printcolumn(name = "Close", type_ = "integer", json_path = ".status.close", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct ProvingDeadlineSpec {
    #[x_kube(
        validation = Rule::new(crate::crd::rules::MINER_ADDRESS).message(crate::crd::rules::MINER_ADDRESS_MESSAGE),
        validation = Rule::new(crate::crd::rules::IMMUTABLE).message("is immutable")
    )]
    #[schemars(length(max = 24))]
    pub miner: String,
    /// The deadline index within the proving period, 0 to 47.
    #[x_kube(
        validation = Rule::new("self >= 0 && self <= 47").message("must be between 0 and 47"),
        validation = Rule::new(crate::crd::rules::IMMUTABLE).message("is immutable")
    )]
    pub deadline_index: u32,
}

/// The outcome of the last SubmitWindowedPoSt for this deadline.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// The proving period (its start epoch) the submission was for.
    pub period_start: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Proven (every partition that needed a proof got one accepted), Missed (a partition had
    /// no accepted proof when the deadline closed: its sectors are faulty now), Accepted or
    /// Rejected (one message of a deadline still open), Pending (sent, not landed yet).
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub time: Time,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProvingDeadlineStatus {
    /// Epochs of the current or next instance of this deadline, as the chain reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_cutoff: Option<i64>,
    #[serde(default)]
    pub partitions: u32,
    /// Live sectors in this deadline.
    #[serde(default)]
    pub sectors: u64,
    #[serde(default)]
    pub faults: u64,
    #[serde(default)]
    pub recovering: u64,
    /// Partitions proven in the current proving period.
    #[serde(default)]
    pub proven_partitions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_submission: Option<Submission>,
    /// Where the current instance stands: Empty (no sectors), Waiting, Checking, Declaring,
    /// Proving, Submitting, Proven, Missed or NothingToProve (every sector faulty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// What the operator did for the current instance: the proving check's verdict, the
    /// declarations and the PoSt batches with their messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<ProvingRecord>,
    /// The last problem (a failed pod, a chain error), cleared by the next instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
