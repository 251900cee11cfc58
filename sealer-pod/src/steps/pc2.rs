//! pc2: tree-c, encoding and tree-r-last. Produces `sealed` and `pc2.json` (CommR, CommD).
//!
//! The library encodes its out_path in place, so a run killed after encoding would leave
//! encoded data that a re-run would encode again. PC2 therefore always starts from a fresh
//! copy of the sector data under a temporary name and renames the finished replica to `sealed`.

use filecoin_proofs_api::ApiFeature;
use filecoin_proofs_api::seal::{SealPreCommitPhase2Output, generate_synth_proofs, seal_pre_commit_phase2};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cache_files;
use super::pc1::Pc1Record;
use super::pieces::Pieces;
use crate::error::{StepError, StepResult};
use crate::fault;
use crate::fsutil;
use crate::layout::{self, SectorDir};
use crate::sector::{SectorIdentity, comm_d_cid, comm_r_cid, parse_comm_d, parse_comm_r, parse_hex32};

#[derive(Debug, Serialize, Deserialize)]
pub struct Pc2Record {
    pub comm_r: String,
    pub comm_d: String,
}

impl Pc2Record {
    pub fn read(dir: &SectorDir) -> StepResult<Self> {
        layout::read_json(&dir.pc2(), "PC2 output", "pc2")
    }

    pub fn output(&self, id: &SectorIdentity, dir: &SectorDir) -> StepResult<SealPreCommitPhase2Output> {
        let corrupt = |e: StepError| StepError::CorruptInput {
            what: "PC2 output",
            path: dir.pc2(),
            reason: e.to_string(),
        };
        Ok(SealPreCommitPhase2Output {
            registered_proof: id.seal_proof,
            comm_r: parse_comm_r(&self.comm_r).map_err(corrupt)?,
            comm_d: parse_comm_d("CommD", &self.comm_d).map_err(corrupt)?,
        })
    }
}

pub fn run(id: &SectorIdentity, dir: &SectorDir) -> StepResult<Value> {
    let record = Pc1Record::read(dir)?;
    let cache = dir.cache();
    let pc1 = record.output_in(&cache, &dir.pc1())?;
    if pc1.registered_proof != id.seal_proof {
        return Err(StepError::invalid(
            "seal proof",
            format!("PC1 ran with {:?} but this step was given {:?}", pc1.registered_proof, id.seal_proof),
        ));
    }
    let pieces = Pieces::read(&dir.pieces())?;
    layout::require_sector_file(&dir.unsealed(), "sector data", "add-piece", id.size.0)?;

    cache_files::remove_matching(&cache, cache_files::is_pc2_output)?;
    fsutil::remove_file_if_exists(&dir.pc2())?;
    let replica = fsutil::tmp_path(&dir.sealed());
    if pieces.cc {
        fsutil::create_zeroed(&replica, id.size.0)?;
    } else {
        fsutil::copy_synced(&dir.unsealed(), &replica)?;
    }

    let out = seal_pre_commit_phase2(pc1, &cache, &replica).map_err(|e| StepError::proofs("PC2", e))?;
    if id.seal_proof.feature_enabled(ApiFeature::SyntheticPoRep) {
        // Synthetic PoRep proves against challenges drawn from the ticket now, so C1 can run
        // after the layers are gone.
        let ticket = parse_hex32("ticket", &record.ticket).map_err(|e| StepError::CorruptInput {
            what: "PC1 output",
            path: dir.pc1(),
            reason: e.to_string(),
        })?;
        let infos = pieces.infos(&dir.pieces(), id.size.0)?;
        generate_synth_proofs(&cache, &replica, id.prover_id, id.sector_id, ticket, out.clone(), &infos)
            .map_err(|e| StepError::proofs("generating synthetic PoRep proofs", e))?;
    }
    fault::point("pc2", "after-encode");
    fsutil::rename(&replica, &dir.sealed())?;
    fault::point("pc2", "after-rename");

    let result = Pc2Record {
        comm_r: comm_r_cid(&out.comm_r)?,
        comm_d: comm_d_cid(&out.comm_d)?,
    };
    layout::write_json(&dir.pc2(), &result)?;
    Ok(json!({ "comm_r": result.comm_r, "comm_d": result.comm_d }))
}
