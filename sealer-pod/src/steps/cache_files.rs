//! Cleaning a step's own files out of the cache directory before it runs. The merkle tree
//! store reuses any tree file it finds under its name without rebuilding it, so a file left by
//! a killed run would silently poison the re-run.

use std::fs;
use std::io;
use std::path::Path;

use crate::error::{StepError, StepResult};

pub const TREE_D: &str = "sc-02-data-tree-d.dat";

/// Files written by PC2: tree-c, tree-r-last (possibly split into sub-trees), the aux files and
/// synthetic PoRep proofs.
pub fn is_pc2_output(name: &str) -> bool {
    name.contains("tree-c")
        || name.contains("tree-r-last")
        || name == "p_aux"
        || name == "t_aux"
        || name.starts_with("syn-porep-vanilla-proofs")
}

/// Files written by PC1: the SDR layers.
pub fn is_pc1_output(name: &str) -> bool {
    name.contains("-layer-")
}

pub fn remove_matching(cache: &Path, matches: impl Fn(&str) -> bool) -> StepResult<()> {
    let entries = match fs::read_dir(cache) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StepError::io(cache, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StepError::io(cache, e))?;
        if matches(&entry.file_name().to_string_lossy()) {
            crate::fsutil::remove_file_if_exists(&entry.path())?;
        }
    }
    Ok(())
}
