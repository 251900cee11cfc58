//! The `Sector` resource: one sector to seal, upgrade or rebuild.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::core::control::{ControlSpec, ResumeRequest};
use crate::core::record::SectorRecord;
use crate::core::{Plan, SealProof, SectorSize, State};

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sealing.filecoin.io",
    version = "v1alpha1",
    kind = "Sector",
    namespaced,
    status = "SectorStatus",
    shortname = "sector",
    shortname = "sec",
    category = "filecoin",
    cel,
    printcolumn(name = "Miner", type_ = "string", json_path = ".spec.miner"),
    printcolumn(name = "Number", type_ = "integer", json_path = ".status.sectorNumber"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Paused", type_ = "string", json_path = ".status.paused.reason"),
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(name = "Last Error", type_ = "string", json_path = ".status.lastError.message"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.plan", priority = 1),
    printcolumn(name = "Size", type_ = "string", json_path = ".spec.sectorSize", priority = 1),
    printcolumn(name = "Pool", type_ = "string", json_path = ".spec.pool", priority = 1),
    printcolumn(name = "Error Step", type_ = "string", json_path = ".status.lastError.step", priority = 1),
    printcolumn(name = "CommR", type_ = "string", json_path = ".status.commR", priority = 1)
)]
#[x_kube(
    validation = Rule::new("has(self.sectorNumber) == has(oldSelf.sectorNumber)")
        .message("spec.sectorNumber cannot be added or removed after creation"),
    validation = Rule::new("!has(self.sealProof) || self.sealProof.startsWith('StackedDrg' + self.sectorSize + 'V')")
        .message("spec.sealProof must be a proof for spec.sectorSize, e.g. StackedDrg32GiBV1_1 for 32GiB"),
    validation = Rule::new(format!(
        "!has(self.pieces) || self.pieces.map(p, p.size).sum() <= {}[self.sectorSize]",
        crate::crd::rules::SECTOR_BYTES
    ))
    .message("spec.pieces: the padded piece sizes add up to more than spec.sectorSize"),
    validation = Rule::new("self.plan == 'sealer' || has(self.sectorNumber)")
        .message("spec.sectorNumber is required for the snapup and rebuild plans: it names the sector on chain"),
    validation = Rule::new(crate::crd::rules::resume_state_in_plan())
        .message("spec.resume.state must be a state of spec.plan (or Aborted)")
)]
#[serde(rename_all = "camelCase")]
pub struct SectorSpec {
    /// The miner actor the sector belongs to, as an ID address (t01000, f01000).
    #[x_kube(
        validation = Rule::new(crate::crd::rules::MINER_ADDRESS).message(crate::crd::rules::MINER_ADDRESS_MESSAGE),
        validation = Rule::new(crate::crd::rules::IMMUTABLE).message("is immutable")
    )]
    #[schemars(length(max = 24))]
    pub miner: String,
    /// The sector number. Allocated from the chain when omitted (sealer plan only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new("self <= 34359738367").message("must be at most 2^35-1, the miner actor's limit"),
        validation = Rule::new(crate::crd::rules::IMMUTABLE).message("is immutable")
    )]
    pub sector_number: Option<u64>,
    #[x_kube(validation = Rule::new(crate::crd::rules::IMMUTABLE).message("is immutable"))]
    pub sector_size: SectorSize,
    /// Overrides the seal proof; defaults to StackedDrg<size>V1_1, as Lotus does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(crate::crd::rules::IMMUTABLE).message("is immutable"))]
    pub seal_proof: Option<SealProof>,
    /// The task plan: sealer (new sector), snapup (upgrade a CC sector with data), rebuild.
    #[serde(default)]
    #[x_kube(validation = Rule::new(crate::crd::rules::IMMUTABLE).message("is immutable"))]
    pub plan: Plan,
    /// The SealingPool (same namespace) whose nodes and settings seal this sector.
    #[x_kube(
        validation = Rule::new("self.size() > 0").message("must name a SealingPool"),
        validation = Rule::new(crate::crd::rules::IMMUTABLE).message("is immutable")
    )]
    #[schemars(length(max = 253))]
    pub pool: String,
    /// The data to seal. Empty for a committed-capacity sector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(crate::crd::rules::IMMUTABLE).message("is immutable"))]
    #[schemars(length(max = 256))]
    pub pieces: Vec<Piece>,
    /// How long the sector commits to store data, in days (chain limits: 180 to 1278).
    #[serde(default = "default_expiration_days")]
    #[x_kube(validation = Rule::new("self >= 180 && self <= 1278").message("must be between 180 and 1278 days"))]
    pub expiration_days: u32,
    /// Hold the sector after its current step (`venus-worker worker pause`).
    #[serde(default)]
    pub paused: bool,
    /// Resume a paused sector, optionally at another state (`venus-worker worker resume --state`).
    /// Applied once per `requestedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
    /// Give up on the sector: it moves to Aborted and its scratch data is removed.
    #[serde(default)]
    pub abort: bool,
}

fn default_expiration_days() -> u32 {
    540
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resume {
    /// The state to resume at; the current state when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// When the resume was asked for; a new value asks again.
    #[schemars(length(min = 1, max = 64))]
    pub requested_at: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.url) != has(self.path)").message("needs exactly one of url or path"))]
#[serde(rename_all = "camelCase")]
pub struct PieceSource {
    /// An http(s) URL to read the piece data from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("must be an http or https URL"))]
    #[schemars(length(max = 2048))]
    pub url: Option<String>,
    /// A file on the sealing node to read the piece data from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(crate::crd::rules::ABSOLUTE_PATH).message(crate::crd::rules::ABSOLUTE_PATH_MESSAGE))]
    #[schemars(length(max = 4096))]
    pub path: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Piece {
    /// The piece CID (CommP), `baga6ea4sea...`.
    #[x_kube(validation = Rule::new("self.matches('^baga6ea4sea[a-z2-7]{48,60}$')").message("must be a piece CID (baga6ea4sea...)"))]
    #[schemars(length(max = 128))]
    pub cid: String,
    /// The padded piece size in bytes: a power of two, at least 128.
    #[x_kube(validation = Rule::new(crate::crd::rules::padded_piece_size()).message("must be a padded piece size: a power of two of at least 128 bytes"))]
    pub size: u64,
    pub source: PieceSource,
}

/// The result of the last resume request, so a rejected one is visible.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResumeResult {
    pub requested_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    pub accepted: bool,
    pub message: String,
}

/// The removal of an aborted or deleted sector's data.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataRemoval {
    pub time: jiff::Timestamp,
    /// Whether the pod removed what it was asked to.
    pub removed: bool,
    /// What was removed or kept, or why the removal failed.
    pub message: String,
    /// Whether the copy in long-term storage was removed too.
    #[serde(default)]
    pub store: bool,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SectorStatus {
    #[serde(flatten)]
    pub record: SectorRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resume: Option<ResumeResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_removal: Option<DataRemoval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Set to "true" on a Sector committed on chain to have its deletion remove the sealed copy in
/// long-term storage too; without it that copy is kept (it is what window PoSt proves).
pub const DELETE_COMMITTED_DATA: &str = "sealing.filecoin.io/delete-committed-data";

impl SectorSpec {
    pub fn seal_proof(&self) -> SealProof {
        self.seal_proof.unwrap_or_else(|| self.sector_size.default_seal_proof())
    }

    pub fn control(&self) -> ControlSpec {
        ControlSpec {
            paused: self.paused,
            abort: self.abort,
            resume: self
                .resume
                .as_ref()
                .map(|r| ResumeRequest { state: r.state, requested_at: r.requested_at.clone() }),
        }
    }
}
