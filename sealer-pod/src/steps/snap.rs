//! snap-encode and snap-prove (SnapDeals): encode new data (from `add-piece --update`) into the
//! sealed CC sector, then prove the update.

use std::fs;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use filecoin_proofs_api::update::{
    empty_sector_update_encode_into, generate_empty_sector_update_proof, verify_empty_sector_update_proof,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::pc2::Pc2Record;
use super::pieces::Pieces;
use crate::error::{StepError, StepResult};
use crate::fault;
use crate::fsutil;
use crate::layout::{self, SectorDir};
use crate::params::{self, ParamKind, ParamSet};
use crate::sector::{SectorIdentity, comm_d_cid, comm_r_cid, parse_comm_d, parse_comm_r};

#[derive(Debug, Serialize, Deserialize)]
pub struct EncodeRecord {
    pub comm_r_new: String,
    pub comm_d_new: String,
}

pub fn encode(id: &SectorIdentity, dir: &SectorDir) -> StepResult<Value> {
    let update = dir.update();
    let pieces = Pieces::read(&update.pieces())?;
    let infos = pieces.infos(&update.pieces(), id.size.0)?;
    layout::require_sector_file(&update.unsealed(), "new sector data", "add-piece --update", id.size.0)?;
    layout::require_sector_file(&dir.sealed(), "sealed replica (sector key)", "pc2", id.size.0)?;
    Pc2Record::read(dir)?;

    // Encoding writes the new replica and the new cache's trees; start both from scratch and
    // install them only when complete.
    fsutil::remove_file_if_exists(&update.encode())?;
    let replica_tmp = fsutil::tmp_path(&update.sealed());
    let cache_tmp = fsutil::tmp_path(&update.cache());
    fsutil::remove_dir_if_exists(&cache_tmp)?;
    fs::create_dir_all(&cache_tmp).map_err(|e| StepError::io(&cache_tmp, e))?;
    fsutil::create_zeroed(&replica_tmp, id.size.0)?;

    let out = empty_sector_update_encode_into(
        id.size.update_proof(),
        &replica_tmp,
        &cache_tmp,
        dir.sealed(),
        dir.cache(),
        update.unsealed(),
        &infos,
    )
    .map_err(|e| StepError::proofs("snap encode", e))?;
    fault::point("snap-encode", "after-encode");

    fsutil::remove_dir_if_exists(&update.cache())?;
    fsutil::rename(&cache_tmp, &update.cache())?;
    fsutil::rename(&replica_tmp, &update.sealed())?;
    let record = EncodeRecord {
        comm_r_new: comm_r_cid(&out.comm_r_new)?,
        comm_d_new: comm_d_cid(&out.comm_d_new)?,
    };
    layout::write_json(&update.encode(), &record)?;
    Ok(json!({ "comm_r_new": record.comm_r_new, "comm_d_new": record.comm_d_new }))
}

pub fn prove(id: &SectorIdentity, dir: &SectorDir) -> StepResult<Value> {
    params::check::require(
        &params::catalog::cache_dir(),
        &[ParamSet::new(ParamKind::Snap, id.size)?],
        &format!("snap prove of a {} sector", id.size),
    )?;
    let update = dir.update();
    let old = Pc2Record::read(dir)?;
    let new: EncodeRecord = layout::read_json(&update.encode(), "snap encode output", "snap-encode")?;
    let corrupt = |path: std::path::PathBuf| {
        move |e: StepError| StepError::CorruptInput {
            what: "commitment record",
            path: path.clone(),
            reason: e.to_string(),
        }
    };
    let comm_r_old = parse_comm_r(&old.comm_r).map_err(corrupt(dir.pc2()))?;
    let comm_r_new = parse_comm_r(&new.comm_r_new).map_err(corrupt(update.encode()))?;
    let comm_d_new = parse_comm_d("CommD", &new.comm_d_new).map_err(corrupt(update.encode()))?;
    layout::require_sector_file(&update.sealed(), "updated replica", "snap-encode", id.size.0)?;
    let proof_path = update.proof();
    fsutil::remove_file_if_exists(&proof_path)?;

    let proof = generate_empty_sector_update_proof(
        id.size.update_proof(),
        comm_r_old,
        comm_r_new,
        comm_d_new,
        dir.sealed(),
        dir.cache(),
        update.sealed(),
        update.cache(),
    )
    .map_err(|e| StepError::proofs("snap prove", e))?;
    let valid = verify_empty_sector_update_proof(id.size.update_proof(), &proof.0, comm_r_old, comm_r_new, comm_d_new)
        .map_err(|e| StepError::proofs("verifying the snap proof", e))?;
    if !valid {
        return Err(StepError::ProofInvalid(
            "the update proof does not verify; the encoded replica or its cache is inconsistent, re-run snap-encode".into(),
        ));
    }
    fsutil::write_atomic(&proof_path, &proof.0)?;
    Ok(json!({
        "proof": STANDARD.encode(&proof.0),
        "comm_r_new": new.comm_r_new,
        "comm_d_new": new.comm_d_new,
    }))
}
