//! Sector sizes and seal proof types, with their on-chain numbers (go-state-types `abi/sector.go`,
//! fvm_shared `RegisteredSealProof`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SectorSize {
    #[serde(rename = "2KiB")]
    KiB2,
    #[serde(rename = "8MiB")]
    MiB8,
    #[serde(rename = "512MiB")]
    MiB512,
    #[serde(rename = "32GiB")]
    GiB32,
    #[serde(rename = "64GiB")]
    GiB64,
}

impl SectorSize {
    pub const ALL: [SectorSize; 5] = [SectorSize::KiB2, SectorSize::MiB8, SectorSize::MiB512, SectorSize::GiB32, SectorSize::GiB64];

    pub fn as_str(self) -> &'static str {
        match self {
            SectorSize::KiB2 => "2KiB",
            SectorSize::MiB8 => "8MiB",
            SectorSize::MiB512 => "512MiB",
            SectorSize::GiB32 => "32GiB",
            SectorSize::GiB64 => "64GiB",
        }
    }

    pub fn bytes(self) -> u64 {
        match self {
            SectorSize::KiB2 => 2 << 10,
            SectorSize::MiB8 => 8 << 20,
            SectorSize::MiB512 => 512 << 20,
            SectorSize::GiB32 => 32 << 30,
            SectorSize::GiB64 => 64 << 30,
        }
    }

    /// The proof Lotus picks for new sectors of this size (`StackedDrg*V1_1`; synthetic PoRep is
    /// off by default there too).
    pub fn default_seal_proof(self) -> SealProof {
        SealProof { size: self, kind: ProofKind::V1_1 }
    }
}

impl fmt::Display for SectorSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProofKind {
    V1_1,
    V1_1SyntheticPoRep,
    V1_2NonInteractivePoRep,
}

/// A registered seal proof; written as its Lotus name, e.g. `StackedDrg32GiBV1_1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SealProof {
    pub size: SectorSize,
    pub kind: ProofKind,
}

impl SealProof {
    pub fn all() -> impl Iterator<Item = SealProof> {
        [ProofKind::V1_1, ProofKind::V1_1SyntheticPoRep, ProofKind::V1_2NonInteractivePoRep]
            .into_iter()
            .flat_map(|kind| SectorSize::ALL.into_iter().map(move |size| SealProof { size, kind }))
    }

    /// The on-chain `RegisteredSealProof` number.
    pub fn id(self) -> i64 {
        let base = match self.kind {
            ProofKind::V1_1 => 5,
            ProofKind::V1_1SyntheticPoRep => 10,
            ProofKind::V1_2NonInteractivePoRep => 15,
        };
        let offset = SectorSize::ALL.iter().position(|s| *s == self.size).unwrap_or(0) as i64;
        base + offset
    }

    pub fn name(self) -> String {
        let suffix = match self.kind {
            ProofKind::V1_1 => "V1_1",
            ProofKind::V1_1SyntheticPoRep => "V1_1_Feat_SyntheticPoRep",
            ProofKind::V1_2NonInteractivePoRep => "V1_2_Feat_NonInteractivePoRep",
        };
        format!("StackedDrg{}{suffix}", self.size)
    }
}

impl fmt::Display for SealProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown seal proof {0:?}; expected a name such as StackedDrg32GiBV1_1")]
pub struct UnknownSealProof(pub String);

impl std::str::FromStr for SealProof {
    type Err = UnknownSealProof;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SealProof::all().find(|p| p.name() == s).ok_or_else(|| UnknownSealProof(s.to_owned()))
    }
}

impl Serialize for SealProof {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for SealProof {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for SealProof {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SealProof".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<String> = SealProof::all().map(SealProof::name).collect();
        schemars::json_schema!({
            "type": "string",
            "description": "A registered seal proof by its Lotus name, matching the sector size.",
            "enum": names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_proof_ids_match_the_chain() {
        let id = |s: &str| s.parse::<SealProof>().unwrap().id();
        assert_eq!(id("StackedDrg2KiBV1_1"), 5);
        assert_eq!(id("StackedDrg32GiBV1_1"), 8);
        assert_eq!(id("StackedDrg64GiBV1_1"), 9);
        assert_eq!(id("StackedDrg2KiBV1_1_Feat_SyntheticPoRep"), 10);
        assert_eq!(id("StackedDrg32GiBV1_2_Feat_NonInteractivePoRep"), 18);
        assert_eq!(SectorSize::GiB32.default_seal_proof().name(), "StackedDrg32GiBV1_1");
        assert_eq!(SectorSize::GiB32.bytes(), 34_359_738_368);
    }
}
