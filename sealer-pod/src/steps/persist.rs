//! persist: copies what later steps and proving need from the sector's scratch directory to
//! long-term storage. The copy is made under a temporary name and renamed when complete, so a
//! store directory with its final name is always whole.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use super::pieces::Pieces;
use crate::error::{StepError, StepResult};
use crate::fault;
use crate::fsutil;
use crate::layout::{self, SectorDir};
use crate::sector::SectorIdentity;

/// Sector-directory entries copied to the store; missing optional ones are skipped.
const REQUIRED: [&str; 3] = ["sealed", "cache", "pc2.json"];
const OPTIONAL: [&str; 5] = ["pieces.json", "pc1.json", "tree-d.json", "unsealed", "update"];

pub fn run(id: &SectorIdentity, dir: &SectorDir, store: &Path) -> StepResult<Value> {
    if store == dir.root() {
        return Err(StepError::invalid("store directory", "it is the sector directory itself"));
    }
    layout::require_sector_file(&dir.sealed(), "sealed replica", "pc2", id.size.0)?;
    layout::require(&dir.cache(), "sector cache", "pc1")?;
    layout::require(&dir.pc2(), "PC2 output", "pc2")?;
    // A committed-capacity sector's data is all zeros; there is nothing to keep unsealed.
    let cc = Pieces::read(&dir.pieces()).map(|p| p.cc).unwrap_or(false);

    let tmp = fsutil::tmp_path(store);
    fsutil::remove_dir_if_exists(&tmp)?;
    fs::create_dir_all(&tmp).map_err(|e| StepError::io(&tmp, e))?;
    let mut copied = Vec::new();
    for name in REQUIRED.iter().chain(OPTIONAL.iter()) {
        if *name == "unsealed" && cc {
            continue;
        }
        let from = dir.root().join(name);
        if !from.exists() {
            continue;
        }
        copy_tree(&from, &tmp.join(name))?;
        copied.push(*name);
    }
    fault::point("persist", "after-copy");
    fsutil::remove_dir_if_exists(store)?;
    fsutil::rename(&tmp, store)?;
    Ok(json!({ "location": store.display().to_string(), "copied": copied }))
}

/// Copies a file or a directory tree (skipping temporaries), syncing every file.
fn copy_tree(from: &Path, to: &Path) -> StepResult<()> {
    let meta = fs::metadata(from).map_err(|e| StepError::io(from, e))?;
    if meta.is_file() {
        return fsutil::copy_synced(from, to);
    }
    fs::create_dir_all(to).map_err(|e| StepError::io(to, e))?;
    for entry in fs::read_dir(from).map_err(|e| StepError::io(from, e))? {
        let entry = entry.map_err(|e| StepError::io(from, e))?;
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(".tmp") {
            continue;
        }
        copy_tree(&entry.path(), &to.join(&name))?;
    }
    Ok(())
}
