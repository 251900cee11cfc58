//! window-post: one vanilla proof per sector so a bad sector is reported as faulty and skipped,
//! then the SNARK over the good ones.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use filecoin_proofs_api::post::{
    generate_fallback_sector_challenges, generate_single_vanilla_proof, generate_window_post_with_vanilla,
};
use filecoin_proofs_api::{PrivateReplicaInfo, ProverId, RegisteredPoStProof, SectorId};
use serde::Serialize;
use serde_json::{Value, json};

use super::replicas::{Replica, file_problem};
use crate::error::{StepError, StepResult};
use crate::params::{self, ParamKind, ParamSet};
use crate::sector::SectorSize;

#[derive(Debug, Serialize)]
pub struct Fault {
    pub sector_number: u64,
    pub reason: String,
}

/// PoSt randomness must be a valid field element; Lotus masks the top bits the same way.
pub fn mask_randomness(mut randomness: [u8; 32]) -> [u8; 32] {
    randomness[31] &= 0x3f;
    randomness
}

/// The vanilla proofs of the replicas that could be proven, and why the others could not.
pub struct Survey {
    pub proven: Vec<(SectorId, Vec<u8>)>,
    pub faults: Vec<Fault>,
}

pub fn vanilla_proofs(
    post_proof: RegisteredPoStProof,
    randomness: &[u8; 32],
    prover_id: ProverId,
    replicas: &[Replica],
) -> StepResult<Survey> {
    let ids: Vec<SectorId> = replicas.iter().map(|r| r.sector_id).collect();
    let challenges = generate_fallback_sector_challenges(post_proof, randomness, &ids, prover_id)
        .map_err(|e| StepError::proofs("generating PoSt challenges", e))?;
    let mut good = Vec::new();
    let mut faults = Vec::new();
    for replica in replicas {
        let number = u64::from(replica.sector_id);
        if let Some(reason) = file_problem(replica, post_proof) {
            faults.push(Fault { sector_number: number, reason });
            continue;
        }
        let Some(sector_challenges) = challenges.get(&replica.sector_id) else {
            faults.push(Fault {
                sector_number: number,
                reason: "no challenges were generated for this sector".into(),
            });
            continue;
        };
        let info = PrivateReplicaInfo::new(post_proof, replica.comm_r, replica.cache.clone(), replica.sealed.clone());
        match generate_single_vanilla_proof(post_proof, replica.sector_id, &info, sector_challenges) {
            Ok(proof) => good.push((replica.sector_id, proof)),
            Err(e) => faults.push(Fault {
                sector_number: number,
                reason: format!("{e:#}"),
            }),
        }
    }
    Ok(Survey { proven: good, faults })
}

pub fn run(size: SectorSize, prover_id: ProverId, randomness: [u8; 32], replicas: &[Replica]) -> StepResult<Value> {
    let post_proof = size.window_post_proof();
    params::check::require(
        &params::catalog::cache_dir(),
        &[ParamSet::new(ParamKind::WindowPost, size)?],
        &format!("window PoSt of {size} sectors"),
    )?;
    let randomness = mask_randomness(randomness);
    let Survey { proven: good, faults } = vanilla_proofs(post_proof, &randomness, prover_id, replicas)?;
    for f in &faults {
        tracing::warn!(sector = f.sector_number, reason = %f.reason, "faulty sector skipped");
    }
    let faulty: Vec<u64> = faults.iter().map(|f| f.sector_number).collect();
    if good.is_empty() {
        return Ok(json!({ "proof": null, "post_proof": post_proof_id(post_proof), "faulty": faulty, "faults": faults }));
    }
    let vanilla: Vec<Vec<u8>> = good.into_iter().map(|(_, p)| p).collect();
    let proofs = generate_window_post_with_vanilla(post_proof, &randomness, prover_id, &vanilla)
        .map_err(|e| StepError::proofs("window PoSt", e))?;
    let [(_, proof)] = proofs.as_slice() else {
        return Err(StepError::proofs(
            "window PoSt",
            anyhow::anyhow!("expected one proof, the library returned {}", proofs.len()),
        ));
    };
    Ok(json!({
        "proof": STANDARD.encode(proof),
        "post_proof": post_proof_id(post_proof),
        "faulty": faulty,
        "faults": faults,
    }))
}

/// The on-chain RegisteredPoStProof number (window V1P1: 2KiB = 10 … 64GiB = 14).
pub fn post_proof_id(proof: RegisteredPoStProof) -> u64 {
    use RegisteredPoStProof::*;
    match proof {
        StackedDrgWinning2KiBV1 => 0,
        StackedDrgWinning8MiBV1 => 1,
        StackedDrgWinning512MiBV1 => 2,
        StackedDrgWinning32GiBV1 => 3,
        StackedDrgWinning64GiBV1 => 4,
        StackedDrgWindow2KiBV1 => 5,
        StackedDrgWindow8MiBV1 => 6,
        StackedDrgWindow512MiBV1 => 7,
        StackedDrgWindow32GiBV1 => 8,
        StackedDrgWindow64GiBV1 => 9,
        StackedDrgWindow2KiBV1_2 => 10,
        StackedDrgWindow8MiBV1_2 => 11,
        StackedDrgWindow512MiBV1_2 => 12,
        StackedDrgWindow32GiBV1_2 => 13,
        StackedDrgWindow64GiBV1_2 => 14,
    }
}
