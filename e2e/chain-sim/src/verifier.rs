//! Proof verification. The simulator uses filecoin-proofs-api exactly as ref-fvm's
//! `verify_seal`, `verify_aggregate_seals` and `verify_post` do; the trait exists so the actor
//! rules can be unit-tested without proof parameters.

use std::collections::BTreeMap;

use filecoin_chain::randomness::prover_id;
use filecoin_proofs_api as proofs;
use fvm_shared::sector::{RegisteredPoStProof, RegisteredSealProof, SectorNumber};

/// What one interactive PoRep proof is checked against.
#[derive(Debug, Clone)]
pub struct SealVerifyInfo {
    pub seal_proof: RegisteredSealProof,
    pub sector_number: SectorNumber,
    pub comm_r: [u8; 32],
    pub comm_d: [u8; 32],
    pub ticket: [u8; 32],
    pub seed: [u8; 32],
}

/// A sector challenged by a window PoSt.
#[derive(Debug, Clone)]
pub struct ChallengedSector {
    pub sector_number: SectorNumber,
    pub comm_r: [u8; 32],
}

pub trait ProofVerifier: Send + Sync + 'static {
    /// The CommD of an all-zero (committed-capacity) sector, which a `null` unsealed CID stands for.
    fn zero_comm_d(&self, seal_proof: RegisteredSealProof) -> Result<[u8; 32], String>;

    /// The CommD of a sector holding `pieces` (CommP, padded size) in order, as the actor computes
    /// it from the activation manifest.
    fn comm_d_of_pieces(&self, seal_proof: RegisteredSealProof, pieces: &[([u8; 32], u64)]) -> Result<[u8; 32], String>;

    /// `Ok(false)` or `Err` both mean "invalid"; `Err` carries the library's reason.
    fn verify_seal(&self, miner_id: u64, info: &SealVerifyInfo, proof: &[u8]) -> Result<bool, String>;

    fn verify_aggregate_seals(&self, miner_id: u64, infos: &[SealVerifyInfo], aggregate: &[u8]) -> Result<bool, String>;

    /// `randomness` is already masked.
    fn verify_window_post(
        &self,
        miner_id: u64,
        proof_type: RegisteredPoStProof,
        randomness: [u8; 32],
        sectors: &[ChallengedSector],
        proof: &[u8],
    ) -> Result<bool, String>;
}

/// The real verifier: filecoin-proofs-api with the verifying keys in the parameter cache.
#[derive(Debug, Default, Clone, Copy)]
pub struct FilecoinProofs;

fn seal_proof(p: RegisteredSealProof) -> Result<proofs::RegisteredSealProof, String> {
    filecoin_chain::proofs::seal_proof(p).map_err(|e| e.to_string())
}

fn window_post_proof(p: RegisteredPoStProof) -> Result<proofs::RegisteredPoStProof, String> {
    filecoin_chain::proofs::window_post_proof(p).map_err(|e| e.to_string())
}

impl ProofVerifier for FilecoinProofs {
    fn zero_comm_d(&self, seal_proof: RegisteredSealProof) -> Result<[u8; 32], String> {
        proofs::seal::compute_comm_d(self::seal_proof(seal_proof)?, &[]).map_err(|e| format!("{e:#}"))
    }

    fn comm_d_of_pieces(&self, seal_proof: RegisteredSealProof, pieces: &[([u8; 32], u64)]) -> Result<[u8; 32], String> {
        let infos = pieces
            .iter()
            .map(|(commitment, padded)| {
                let size = proofs::UnpaddedBytesAmount::from(proofs::PaddedBytesAmount(*padded));
                proofs::PieceInfo::new(*commitment, size).map_err(|e| format!("{e:#}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        proofs::seal::compute_comm_d(self::seal_proof(seal_proof)?, &infos).map_err(|e| format!("{e:#}"))
    }

    fn verify_seal(&self, miner_id: u64, info: &SealVerifyInfo, proof: &[u8]) -> Result<bool, String> {
        proofs::seal::verify_seal(
            seal_proof(info.seal_proof)?,
            info.comm_r,
            info.comm_d,
            prover_id(miner_id),
            proofs::SectorId::from(info.sector_number),
            info.ticket,
            info.seed,
            proof,
        )
        .map_err(|e| format!("{e:#}"))
    }

    fn verify_aggregate_seals(&self, miner_id: u64, infos: &[SealVerifyInfo], aggregate: &[u8]) -> Result<bool, String> {
        let first = infos.first().ok_or("an aggregate over no sectors")?;
        let spt = seal_proof(first.seal_proof)?;
        let prover = prover_id(miner_id);
        let mut inputs = Vec::new();
        for info in infos {
            inputs.extend(
                proofs::seal::get_seal_inputs(
                    spt,
                    info.comm_r,
                    info.comm_d,
                    prover,
                    proofs::SectorId::from(info.sector_number),
                    info.ticket,
                    info.seed,
                )
                .map_err(|e| format!("{e:#}"))?,
            );
        }
        let comm_rs: Vec<[u8; 32]> = infos.iter().map(|i| i.comm_r).collect();
        let seeds: Vec<[u8; 32]> = infos.iter().map(|i| i.seed).collect();
        proofs::seal::verify_aggregate_seal_commit_proofs(
            spt,
            proofs::RegisteredAggregationProof::SnarkPackV2,
            aggregate.to_vec(),
            &comm_rs,
            &seeds,
            inputs,
        )
        .map_err(|e| format!("{e:#}"))
    }

    fn verify_window_post(
        &self,
        miner_id: u64,
        proof_type: RegisteredPoStProof,
        randomness: [u8; 32],
        sectors: &[ChallengedSector],
        proof: &[u8],
    ) -> Result<bool, String> {
        let post = window_post_proof(proof_type)?;
        // Duplicated stand-ins collapse here, as in ref-fvm.
        let replicas: BTreeMap<proofs::SectorId, proofs::PublicReplicaInfo> = sectors
            .iter()
            .map(|s| (proofs::SectorId::from(s.sector_number), proofs::PublicReplicaInfo::new(post, s.comm_r)))
            .collect();
        proofs::post::verify_window_post(&randomness, &[(post, proof)], &replicas, prover_id(miner_id))
            .map_err(|e| format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use fvm_shared::commcid::data_commitment_v1_to_cid;

    use super::*;

    #[test]
    fn zero_comm_d_of_a_2kib_sector_is_the_known_cid() {
        let comm_d = FilecoinProofs.zero_comm_d(RegisteredSealProof::StackedDRG2KiBV1P1).unwrap();
        assert_eq!(
            data_commitment_v1_to_cid(&comm_d).unwrap().to_string(),
            "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy"
        );
    }
}
