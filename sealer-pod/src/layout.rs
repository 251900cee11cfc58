//! The sector directory: where each step finds its inputs and leaves its outputs.
//!
//! ```text
//! <sector-dir>/
//!   pieces.json       add-piece   pieces in order: piece CID, padded size, source
//!   unsealed          add-piece   fr32-padded sector data, sector-size bytes
//!   tree-d.json       tree-d      CommD of `unsealed`
//!   cache/            pc1 (tree-d, SDR layers), pc2 (tree-c, tree-r-last, p_aux, t_aux)
//!   pc1.json          pc1         phase-1 output, ticket and cache path it was made with
//!   sealed            pc2         the replica
//!   pc2.json          pc2         CommR and CommD
//!   c1.json           c1          phase-1 commit output (vanilla proofs)
//!   proof.bin         c2          the PoRep SNARK
//!   update/           snap: pieces.json, unsealed (new data), sealed, cache/, encode.json, proof.bin
//! ```
//!
//! Every file is written under a `.tmp` name and renamed when complete, so a file with its
//! final name is always whole.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{StepError, StepResult};
use crate::fsutil;

#[derive(Debug, Clone)]
pub struct SectorDir {
    root: PathBuf,
}

impl SectorDir {
    /// Opens an existing sector directory; a missing one is an error, never created silently,
    /// because a wrong mount would otherwise seal into the container's ephemeral storage.
    pub fn open(root: &Path) -> StepResult<Self> {
        match fs::metadata(root) {
            Ok(meta) if meta.is_dir() => Ok(SectorDir {
                root: root.to_path_buf(),
            }),
            _ => Err(StepError::MissingSectorDir(root.to_path_buf())),
        }
    }

    /// Opens the sector directory, creating it if its parent exists: the first step of a sector
    /// makes its directory inside the pool's mounted scratch directory. A missing parent is still
    /// an error (a wrong mount), so nothing is sealed into ephemeral container storage.
    pub fn open_or_create(root: &Path) -> StepResult<Self> {
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty())
            && parent.is_dir()
            && !root.exists()
        {
            fs::create_dir(root).map_err(|e| StepError::io(root, e))?;
        }
        Self::open(root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pieces(&self) -> PathBuf {
        self.root.join("pieces.json")
    }
    pub fn unsealed(&self) -> PathBuf {
        self.root.join("unsealed")
    }
    pub fn tree_d(&self) -> PathBuf {
        self.root.join("tree-d.json")
    }
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }
    pub fn pc1(&self) -> PathBuf {
        self.root.join("pc1.json")
    }
    pub fn sealed(&self) -> PathBuf {
        self.root.join("sealed")
    }
    pub fn pc2(&self) -> PathBuf {
        self.root.join("pc2.json")
    }
    pub fn c1(&self) -> PathBuf {
        self.root.join("c1.json")
    }
    pub fn proof(&self) -> PathBuf {
        self.root.join("proof.bin")
    }
    pub fn update(&self) -> SectorDir {
        SectorDir {
            root: self.root.join("update"),
        }
    }
    pub fn encode(&self) -> PathBuf {
        self.root.join("encode.json")
    }

    pub fn ensure_exists(&self) -> StepResult<()> {
        fs::create_dir_all(&self.root).map_err(|e| StepError::io(&self.root, e))
    }
}

/// Fails with a clear "run <producer> first" when an earlier step's output is missing.
pub fn require(path: &Path, what: &'static str, producer: &'static str) -> StepResult<()> {
    if path.exists() {
        Ok(())
    } else {
        Err(StepError::MissingInput {
            what,
            path: path.to_path_buf(),
            producer,
        })
    }
}

/// Checks that a sector-sized file is exactly the sector size.
pub fn require_sector_file(path: &Path, what: &'static str, producer: &'static str, size: u64) -> StepResult<()> {
    require(path, what, producer)?;
    let actual = fs::metadata(path).map_err(|e| StepError::io(path, e))?.len();
    if actual != size {
        return Err(StepError::WrongSize {
            what,
            path: path.to_path_buf(),
            actual,
            expected: size,
        });
    }
    Ok(())
}

pub fn read_json<T: DeserializeOwned>(path: &Path, what: &'static str, producer: &'static str) -> StepResult<T> {
    require(path, what, producer)?;
    let text = fs::read(path).map_err(|e| StepError::io(path, e))?;
    serde_json::from_slice(&text).map_err(|e| StepError::CorruptInput {
        what,
        path: path.to_path_buf(),
        reason: format!("{e}; re-run the {producer} step"),
    })
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> StepResult<()> {
    let text = serde_json::to_vec(value).map_err(|e| StepError::invalid("output", e.to_string()))?;
    fsutil::write_atomic(path, &text)
}
