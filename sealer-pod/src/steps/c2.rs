//! c2: the PoRep SNARK from `c1.json`, checked with verify_seal before it is reported.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use filecoin_proofs_api::seal::{SealCommitPhase1Output, seal_commit_phase2, verify_seal};
use serde_json::{Value, json};

use crate::error::{StepError, StepResult};
use crate::fault;
use crate::fsutil;
use crate::layout::{self, SectorDir};
use crate::params::{self, ParamKind, ParamSet};
use crate::sector::{SectorIdentity, comm_d_cid, comm_r_cid};

pub fn run(id: &SectorIdentity, dir: &SectorDir) -> StepResult<Value> {
    params::check::require(
        &params::catalog::cache_dir(),
        &[ParamSet::new(ParamKind::Porep, id.size)?],
        &format!("C2 of a {} sector", id.size),
    )?;
    let c1: SealCommitPhase1Output = layout::read_json(&dir.c1(), "C1 output", "c1")?;
    if c1.registered_proof != id.seal_proof {
        return Err(StepError::invalid(
            "seal proof",
            format!("C1 ran with {:?} but this step was given {:?}", c1.registered_proof, id.seal_proof),
        ));
    }
    let (comm_r, comm_d, ticket, seed) = (c1.comm_r, c1.comm_d, c1.ticket, c1.seed);
    fsutil::remove_file_if_exists(&dir.proof())?;

    let out = seal_commit_phase2(c1, id.prover_id, id.sector_id).map_err(|e| StepError::proofs("C2", e))?;
    let valid = verify_seal(id.seal_proof, comm_r, comm_d, id.prover_id, id.sector_id, ticket, seed, &out.proof)
        .map_err(|e| StepError::proofs("verifying the C2 proof", e))?;
    if !valid {
        return Err(StepError::ProofInvalid(
            "the C2 proof does not pass verify_seal; the sector's files or the C1 output are inconsistent".into(),
        ));
    }
    fault::point("c2", "after-proof");
    fsutil::write_atomic(&dir.proof(), &out.proof)?;
    Ok(json!({
        "proof": STANDARD.encode(&out.proof),
        "comm_r": comm_r_cid(&comm_r)?,
        "comm_d": comm_d_cid(&comm_d)?,
    }))
}
