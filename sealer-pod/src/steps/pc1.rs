//! pc1: SDR labelling. Leaves the layers in `cache/` and its output in `pc1.json`.

use std::fs;
use std::path::{Path, PathBuf};

use filecoin_proofs_api::seal::{SealPreCommitPhase1Output, compute_comm_d, seal_pre_commit_phase1};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cache_files::{self, TREE_D};
use super::pieces::Pieces;
use super::tree_d;
use crate::error::{StepError, StepResult};
use crate::fault;
use crate::fsutil;
use crate::layout::{self, SectorDir};
use crate::sector::{SectorIdentity, comm_d_cid, seal_proof_id};

/// What `pc1.json` holds: the library's output plus what later steps must check against.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pc1Record {
    pub seal_proof: usize,
    pub ticket: String,
    /// The cache directory the output's store configs point into, so a later step that sees the
    /// sector directory under another mount path can relocate them.
    pub cache_path: PathBuf,
    pub output: Value,
}

impl Pc1Record {
    pub fn read(dir: &SectorDir) -> StepResult<Self> {
        layout::read_json(&dir.pc1(), "PC1 output", "pc1")
    }

    /// The library output with every path under the recorded cache moved to `cache`.
    pub fn output_in(&self, cache: &Path, pc1_path: &Path) -> StepResult<SealPreCommitPhase1Output> {
        let mut value = self.output.clone();
        relocate(&mut value, &self.cache_path.to_string_lossy(), &cache.to_string_lossy());
        serde_json::from_value(value).map_err(|e| StepError::CorruptInput {
            what: "PC1 output",
            path: pc1_path.to_path_buf(),
            reason: format!("{e}; re-run pc1"),
        })
    }

    pub fn check_ticket(&self, ticket: &[u8; 32], pc1_path: &Path) -> StepResult<()> {
        if self.ticket != hex::encode(ticket) {
            return Err(StepError::invalid(
                "ticket",
                format!(
                    "{} differs from the ticket PC1 used ({}, recorded in {}); pass the precommit ticket or re-run pc1",
                    hex::encode(ticket),
                    self.ticket,
                    pc1_path.display()
                ),
            ));
        }
        Ok(())
    }
}

fn relocate(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) if s.starts_with(from) && from != to => {
            *s = format!("{to}{}", &s[from.len()..]);
        }
        Value::Array(items) => items.iter_mut().for_each(|v| relocate(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| relocate(v, from, to)),
        _ => {}
    }
}

pub fn run(id: &SectorIdentity, dir: &SectorDir, ticket: [u8; 32]) -> StepResult<Value> {
    let pieces = Pieces::read(&dir.pieces())?;
    let infos = pieces.infos(&dir.pieces(), id.size.0)?;
    layout::require_sector_file(&dir.unsealed(), "sector data", "add-piece", id.size.0)?;
    let comm_d = compute_comm_d(id.seal_proof, &infos).map_err(|e| StepError::proofs("computing CommD from the pieces", e))?;

    let cache = dir.cache();
    fs::create_dir_all(&cache).map_err(|e| StepError::io(&cache, e))?;
    // Layers and trees of an earlier (possibly killed) run must go; a tree-d made by the
    // tree-d step for this very data is kept, since the library reuses it instead of rebuilding.
    let keep_tree_d = tree_d::recorded(dir).as_deref() == Some(comm_d_cid(&comm_d)?.as_str());
    cache_files::remove_matching(&cache, |name| {
        cache_files::is_pc1_output(name) || cache_files::is_pc2_output(name) || (name == TREE_D && !keep_tree_d)
    })?;
    fsutil::remove_file_if_exists(&dir.pc1())?;

    // The library copies the data into out_path; PC2 makes its own fresh copy, so this one
    // is scratch. Committed capacity reads /dev/zero instead of copying a file of zeros.
    let scratch = dir.root().join("pc1-data.tmp");
    fsutil::create_zeroed(&scratch, 0)?;
    let input = if pieces.cc { PathBuf::from("/dev/zero") } else { dir.unsealed() };
    let output = seal_pre_commit_phase1(
        id.seal_proof,
        &cache,
        &input,
        &scratch,
        id.prover_id,
        id.sector_id,
        ticket,
        &infos,
    )
    .map_err(|e| StepError::proofs("PC1", e))?;
    fsutil::remove_file_if_exists(&scratch)?;
    fault::point("pc1", "after-labels");

    let record = Pc1Record {
        seal_proof: seal_proof_id(id.seal_proof),
        ticket: hex::encode(ticket),
        cache_path: cache.clone(),
        output: serde_json::to_value(&output).map_err(|e| StepError::invalid("PC1 output", e.to_string()))?,
    };
    layout::write_json(&dir.pc1(), &record)?;
    Ok(json!({ "comm_d": comm_d_cid(&output.comm_d)? }))
}
