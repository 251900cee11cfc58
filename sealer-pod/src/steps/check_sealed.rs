//! check-sealed: before a rebuilt replica is trusted, its CommR must equal the one on chain and
//! a vanilla PoSt over random challenges must succeed on its files.

use rand::RngCore;
use serde_json::{Value, json};

use super::pc2::Pc2Record;
use super::replicas::Replica;
use super::window_post::{Survey, mask_randomness, vanilla_proofs};
use crate::error::{StepError, StepResult};
use crate::layout::SectorDir;
use crate::sector::{SectorIdentity, parse_comm_r};

pub fn run(id: &SectorIdentity, dir: &SectorDir, expected_comm_r: Option<&str>) -> StepResult<Value> {
    let pc2 = Pc2Record::read(dir)?;
    let comm_r = parse_comm_r(&pc2.comm_r)?;
    if let Some(expected) = expected_comm_r
        && parse_comm_r(expected)? != comm_r
    {
        return Err(StepError::ProofInvalid(format!(
            "the rebuilt replica has CommR {} but {expected} was expected; the ticket, pieces or seal proof differ from the original sealing",
            pc2.comm_r
        )));
    }
    let replica = Replica {
        sector_id: id.sector_id,
        comm_r,
        sealed: dir.sealed(),
        cache: dir.cache(),
    };
    let mut randomness = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut randomness);
    let Survey { faults, .. } =
        vanilla_proofs(id.size.window_post_proof(), &mask_randomness(randomness), id.prover_id, &[replica])?;
    if let Some(fault) = faults.first() {
        return Err(StepError::CorruptInput {
            what: "sealed replica",
            path: dir.sealed(),
            reason: fault.reason.clone(),
        });
    }
    Ok(json!({ "comm_r": pc2.comm_r }))
}
