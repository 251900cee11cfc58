//! proving-check: like `venus-sealer proving check`, finds sectors whose files are missing or
//! corrupt by generating a vanilla proof for random challenges, without a SNARK.

use rand::RngCore;
use serde_json::{Value, json};

use super::replicas::Replica;
use super::window_post::{Survey, mask_randomness, vanilla_proofs};
use crate::error::StepResult;
use crate::sector::SectorSize;

pub fn run(size: SectorSize, prover_id: filecoin_proofs_api::ProverId, randomness: Option<[u8; 32]>, replicas: &[Replica]) -> StepResult<Value> {
    let randomness = randomness.unwrap_or_else(|| {
        let mut r = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut r);
        r
    });
    let Survey { proven: good, faults } =
        vanilla_proofs(size.window_post_proof(), &mask_randomness(randomness), prover_id, replicas)?;
    let mut sectors: Vec<Value> = good
        .iter()
        .map(|(id, _)| json!({ "sector_number": u64::from(*id), "ok": true }))
        .chain(faults.iter().map(|f| json!({ "sector_number": f.sector_number, "ok": false, "reason": f.reason })))
        .collect();
    sectors.sort_by_key(|s| s["sector_number"].as_u64());
    Ok(json!({
        "sectors": sectors,
        "bad": faults.iter().map(|f| f.sector_number).collect::<Vec<_>>(),
    }))
}
