//! tree-d: builds the data tree (CommD) over the sector's data, checks it against the piece
//! list, and leaves it in the cache for PC1 to reuse.

use std::fs::{self, File};

use filecoin_proofs::constants::DefaultPieceHasher;
use filecoin_proofs::{StoreConfig, commitment_from_fr};
use filecoin_proofs_api::seal::compute_comm_d;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use storage_proofs_core::cache_key::CacheKey;
use storage_proofs_core::merkle::{BinaryMerkleTree, create_base_merkle_tree};

use super::cache_files::TREE_D;
use super::pieces::Pieces;
use crate::error::{StepError, StepResult};
use crate::fsutil;
use crate::layout::{self, SectorDir};
use crate::sector::{SectorIdentity, comm_d_cid};

#[derive(Debug, Serialize, Deserialize)]
pub struct TreeD {
    pub comm_d: String,
}

pub fn run(id: &SectorIdentity, dir: &SectorDir) -> StepResult<Value> {
    let pieces = Pieces::read(&dir.pieces())?;
    let infos = pieces.infos(&dir.pieces(), id.size.0)?;
    layout::require_sector_file(&dir.unsealed(), "sector data", "add-piece", id.size.0)?;
    let expected = compute_comm_d(id.seal_proof, &infos).map_err(|e| StepError::proofs("computing CommD from the pieces", e))?;

    let work = dir.root().join("tree-d.tmp");
    fsutil::remove_dir_if_exists(&work)?;
    fs::create_dir_all(&work).map_err(|e| StepError::io(&work, e))?;

    let unsealed = dir.unsealed();
    let file = File::open(&unsealed).map_err(|e| StepError::io(&unsealed, e))?;
    // SAFETY: the file is this step's input and nothing else writes it while the step runs.
    let data = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| StepError::io(&unsealed, e))?;
    let leafs = data.len() / 32;
    let config = StoreConfig::new(&work, CacheKey::CommDTree.to_string(), 0);
    let tree = create_base_merkle_tree::<BinaryMerkleTree<DefaultPieceHasher>>(Some(config), leafs, &data)
        .map_err(|e| StepError::proofs("building tree-d", e))?;
    let comm_d = commitment_from_fr(tree.root().into());
    drop(tree);
    drop(data);

    if comm_d != expected {
        fsutil::remove_dir_if_exists(&work)?;
        return Err(StepError::CorruptInput {
            what: "sector data",
            path: unsealed,
            reason: format!(
                "its CommD is {} but the pieces in pieces.json give {}; re-run add-piece",
                comm_d_cid(&comm_d)?,
                comm_d_cid(&expected)?
            ),
        });
    }

    let cache = dir.cache();
    fs::create_dir_all(&cache).map_err(|e| StepError::io(&cache, e))?;
    fsutil::rename(&work.join(TREE_D), &cache.join(TREE_D))?;
    fsutil::remove_dir_if_exists(&work)?;
    let cid = comm_d_cid(&comm_d)?;
    layout::write_json(&dir.tree_d(), &TreeD { comm_d: cid.clone() })?;
    Ok(json!({ "comm_d": cid }))
}

/// Returns the recorded CommD if tree-d ran for the current data.
pub fn recorded(dir: &SectorDir) -> Option<String> {
    fs::read(dir.tree_d())
        .ok()
        .and_then(|b| serde_json::from_slice::<TreeD>(&b).ok())
        .map(|t| t.comm_d)
}
