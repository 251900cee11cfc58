//! The parameter sets each proof needs, named exactly as the proofs library looks them up.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use storage_proofs_core::parameter_cache::{GROTH_PARAMETER_EXT, PARAMETER_METADATA_EXT, VERSION, VERIFYING_KEY_EXT};
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
}

pub const ALL_KINDS: [ParamKind; 4] = [
    ParamKind::Porep,
    ParamKind::WindowPost,
    ParamKind::WinningPost,
    ParamKind::Snap,
];

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamKind::Porep => "porep",
            ParamKind::WindowPost => "window-post",
            ParamKind::WinningPost => "winning-post",
            ParamKind::Snap => "snap",
        })
    }
}

impl FromStr for ParamKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_KINDS
            .into_iter()
            .find(|k| k.to_string() == s)
            .ok_or_else(|| format!("unknown parameter kind {s:?}; expected porep, window-post, winning-post or snap"))
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
            ParamKind::Snap => size.update_proof().circuit_identifier(),
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

    /// The files a prover needs: both, since the library loads the key from `.vk` to verify.
    pub fn required_names(&self) -> [String; 2] {
        [self.params_name(), self.vk_name()]
    }
}

/// The cache directory the proofs library reads (`FIL_PROOFS_PARAMETER_CACHE`, default
/// `/var/tmp/filecoin-proof-parameters`).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(&SETTINGS.parameter_cache)
}

pub fn path_in(cache: &Path, name: &str) -> PathBuf {
    cache.join(name)
}
