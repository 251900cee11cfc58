//! The parameter sets each proof needs, named exactly as the proofs library looks them up.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use filecoin_proofs::with_shape;
use storage_proofs_core::merkle::MerkleTreeTrait;
use storage_proofs_core::parameter_cache::{
    CacheableParameters, GROTH_PARAMETER_EXT, PARAMETER_METADATA_EXT, SRS_KEY_EXT, SRS_SHARED_KEY_NAME,
    VERIFYING_KEY_EXT, VERSION,
};
use storage_proofs_update::constants::TreeRHasher;
use storage_proofs_update::{EmptySectorUpdateCircuit, EmptySectorUpdateCompound};
use storage_proofs_core::settings::SETTINGS;

use crate::error::{StepError, StepResult};
use crate::sector::SectorSize;

/// One circuit's parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ParamKind {
    /// Interactive PoRep (C2 proves, the chain verifies).
    Porep,
    WindowPost,
    WinningPost,
    /// Empty sector update (SnapDeals prove).
    Snap,
    /// The SnarkPack inner-product SRS that aggregating PoRep proofs needs (one file for every
    /// sector size).
    Aggregate,
}

pub const ALL_KINDS: [ParamKind; 5] = [
    ParamKind::Porep,
    ParamKind::WindowPost,
    ParamKind::WinningPost,
    ParamKind::Snap,
    ParamKind::Aggregate,
];

/// How many proofs a generated test SRS can aggregate: the chain's 819 rounded up to a power of
/// two, as the library pads an aggregate.
pub const SRS_PROOFS: usize = 1024;

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamKind::Porep => "porep",
            ParamKind::WindowPost => "window-post",
            ParamKind::WinningPost => "winning-post",
            ParamKind::Snap => "snap",
            ParamKind::Aggregate => "aggregate",
        })
    }
}

impl FromStr for ParamKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_KINDS
            .into_iter()
            .find(|k| k.to_string() == s)
            .ok_or_else(|| format!("unknown parameter kind {s:?}; expected porep, window-post, winning-post, snap or aggregate"))
    }
}

impl ParamKind {
    /// The parameter sets a step needs before it can start (`None` for steps that need none).
    pub fn for_step(step: &str) -> Option<ParamKind> {
        match step {
            "c2" => Some(ParamKind::Porep),
            "window-post" => Some(ParamKind::WindowPost),
            "winning-post" => Some(ParamKind::WinningPost),
            "snap-prove" => Some(ParamKind::Snap),
            _ => None,
        }
    }
}

/// A parameter set for one sector size: the `.params` file (proving), the `.vk` file
/// (verifying) and the `.meta` file the library writes beside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSet {
    pub kind: ParamKind,
    pub size: SectorSize,
    pub identifier: String,
}

impl ParamSet {
    pub fn new(kind: ParamKind, size: SectorSize) -> StepResult<Self> {
        let identifier = match kind {
            ParamKind::Porep => size.default_seal_proof().circuit_identifier(),
            ParamKind::WindowPost => size.window_post_proof().circuit_identifier(),
            ParamKind::WinningPost => size.winning_post_proof().circuit_identifier(),
            // RegisteredUpdateProof::circuit_identifier answers with the PoRep circuit's
            // identifier (proofs-api 19.1), so the update circuit's is computed here.
            ParamKind::Snap => Ok(with_shape!(size.0, snap_identifier, size.0)),
            ParamKind::Aggregate => Ok(SRS_SHARED_KEY_NAME.to_string()),
        }
        .map_err(|e| StepError::proofs("computing the parameter identifier", e))?;
        Ok(ParamSet {
            kind,
            size,
            identifier,
        })
    }

    pub fn params_name(&self) -> String {
        format!("v{VERSION}-{}.{GROTH_PARAMETER_EXT}", self.identifier)
    }

    pub fn vk_name(&self) -> String {
        format!("v{VERSION}-{}.{VERIFYING_KEY_EXT}", self.identifier)
    }

    pub fn meta_name(&self) -> String {
        format!("v{VERSION}-{}.{PARAMETER_METADATA_EXT}", self.identifier)
    }

    pub fn srs_name(&self) -> String {
        format!("v{VERSION}-{}.{SRS_KEY_EXT}", self.identifier)
    }

    /// The files a prover needs: `.params` and `.vk`, since the library loads the key from `.vk`
    /// to verify; the SRS alone for aggregation.
    pub fn required_names(&self) -> Vec<String> {
        match self.kind {
            ParamKind::Aggregate => vec![self.srs_name()],
            _ => vec![self.params_name(), self.vk_name()],
        }
    }

    /// What generating the set writes, in the order it is installed: a `.params` file only
    /// after its own `.vk` and metadata.
    pub fn generated_names(&self) -> Vec<String> {
        match self.kind {
            ParamKind::Aggregate => vec![self.srs_name()],
            _ => vec![self.meta_name(), self.vk_name(), self.params_name()],
        }
    }
}

fn snap_identifier<Tree: 'static + MerkleTreeTrait<Hasher = TreeRHasher>>(sector_bytes: u64) -> String {
    let pp = storage_proofs_update::PublicParams::from_sector_size(sector_bytes);
    <EmptySectorUpdateCompound<Tree> as CacheableParameters<EmptySectorUpdateCircuit<Tree>, _>>::cache_identifier(&pp)
}

/// The cache directory the proofs library reads (`FIL_PROOFS_PARAMETER_CACHE`, default
/// `/var/tmp/filecoin-proof-parameters`).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(&SETTINGS.parameter_cache)
}

pub fn path_in(cache: &Path, name: &str) -> PathBuf {
    cache.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_kib_file_names_are_the_published_ones() {
        let size: SectorSize = "2KiB".parse().unwrap();
        let name = |kind| ParamSet::new(kind, size).unwrap().params_name();
        let expect = [
            (ParamKind::Porep, "v28-stacked-proof-of-replication-merkletree-poseidon_hasher-8-0-0-sha256_hasher-032d3138d22506ec0082ed72b2dcba18df18477904e35bafee82b3793b06832f.params"),
            (ParamKind::WindowPost, "v28-proof-of-spacetime-fallback-merkletree-poseidon_hasher-8-0-0-0170db1f394b35d995252228ee359194b13199d259380541dc529fb0099096b0.params"),
            (ParamKind::WinningPost, "v28-proof-of-spacetime-fallback-merkletree-poseidon_hasher-8-0-0-3ea05428c9d11689f23529cde32fd30aabd50f7d2c93657c1d3650bca3e8ea9e.params"),
            (ParamKind::Snap, "v28-empty-sector-update-merkletree-poseidon_hasher-8-0-0-fb9e095bebdd77511c0269b967b4d87ba8b8a525edaa0e165de23ba454510194.params"),
        ];
        for (kind, file) in expect {
            assert_eq!(name(kind), file, "{kind}");
            assert!(storage_proofs_core::parameter_cache::PARAMETERS.contains_key(file));
        }
        let srs = ParamSet::new(ParamKind::Aggregate, size).unwrap().required_names();
        assert_eq!(srs, ["v28-fil-inner-product-v1.srs"]);
        assert!(storage_proofs_core::parameter_cache::SRS_PARAMETERS.contains_key(&srs[0]));
    }
}
