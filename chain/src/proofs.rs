//! The proofs library seen from the chain (feature `proofs`): on-chain proof types mapped to
//! filecoin-proofs-api's as ref-fvm maps them, and SnarkPackV2 aggregation of interactive PoRep
//! proofs as lotus-miner makes it for ProveCommitSectors3.

use filecoin_proofs_api as api;
use fvm_shared::sector::{RegisteredPoStProof, RegisteredSealProof, SectorNumber};

#[derive(Debug, thiserror::Error)]
pub enum ProofsError {
    #[error("seal proof {0:?} cannot be proven interactively")]
    NotInteractive(RegisteredSealProof),
    #[error("{0:?} is not a window PoSt type")]
    NotWindowPost(RegisteredPoStProof),
    #[error("an aggregate needs at least two proofs, got {0}")]
    TooFew(usize),
    /// The library's own message, e.g. a missing `v28-fil-inner-product-v1.srs`.
    #[error("filecoin-proofs: {0}")]
    Library(String),
}

fn library(e: anyhow::Error) -> ProofsError {
    ProofsError::Library(format!("{e:#}"))
}

/// The proofs library's seal proof for an on-chain one.
pub fn seal_proof(p: RegisteredSealProof) -> Result<api::RegisteredSealProof, ProofsError> {
    use RegisteredSealProof as F;
    use api::RegisteredSealProof as A;
    Ok(match p {
        F::StackedDRG2KiBV1 => A::StackedDrg2KiBV1,
        F::StackedDRG8MiBV1 => A::StackedDrg8MiBV1,
        F::StackedDRG512MiBV1 => A::StackedDrg512MiBV1,
        F::StackedDRG32GiBV1 => A::StackedDrg32GiBV1,
        F::StackedDRG64GiBV1 => A::StackedDrg64GiBV1,
        F::StackedDRG2KiBV1P1 => A::StackedDrg2KiBV1_1,
        F::StackedDRG8MiBV1P1 => A::StackedDrg8MiBV1_1,
        F::StackedDRG512MiBV1P1 => A::StackedDrg512MiBV1_1,
        F::StackedDRG32GiBV1P1 => A::StackedDrg32GiBV1_1,
        F::StackedDRG64GiBV1P1 => A::StackedDrg64GiBV1_1,
        F::StackedDRG2KiBV1P1_Feat_SyntheticPoRep => A::StackedDrg2KiBV1_1_Feat_SyntheticPoRep,
        F::StackedDRG8MiBV1P1_Feat_SyntheticPoRep => A::StackedDrg8MiBV1_1_Feat_SyntheticPoRep,
        F::StackedDRG512MiBV1P1_Feat_SyntheticPoRep => A::StackedDrg512MiBV1_1_Feat_SyntheticPoRep,
        F::StackedDRG32GiBV1P1_Feat_SyntheticPoRep => A::StackedDrg32GiBV1_1_Feat_SyntheticPoRep,
        F::StackedDRG64GiBV1P1_Feat_SyntheticPoRep => A::StackedDrg64GiBV1_1_Feat_SyntheticPoRep,
        other => return Err(ProofsError::NotInteractive(other)),
    })
}

/// On-chain window PoSt types (V1P1) verify as the proofs library's `…V1_2` (ref-fvm's mapping).
pub fn window_post_proof(p: RegisteredPoStProof) -> Result<api::RegisteredPoStProof, ProofsError> {
    use RegisteredPoStProof as F;
    use api::RegisteredPoStProof as A;
    Ok(match p {
        F::StackedDRGWindow2KiBV1P1 => A::StackedDrgWindow2KiBV1_2,
        F::StackedDRGWindow8MiBV1P1 => A::StackedDrgWindow8MiBV1_2,
        F::StackedDRGWindow512MiBV1P1 => A::StackedDrgWindow512MiBV1_2,
        F::StackedDRGWindow32GiBV1P1 => A::StackedDrgWindow32GiBV1_2,
        F::StackedDRGWindow64GiBV1P1 => A::StackedDrgWindow64GiBV1_2,
        other => return Err(ProofsError::NotWindowPost(other)),
    })
}

/// One sector's C2 proof with what the aggregate binds it to.
#[derive(Debug, Clone)]
pub struct CommitProof {
    pub sector_number: SectorNumber,
    pub comm_r: [u8; 32],
    pub seed: [u8; 32],
    pub proof: Vec<u8>,
}

/// Aggregates the proofs, in the given order (the order of the message's activations), into
/// one SnarkPackV2 proof. Needs the inner-product SRS in the parameter cache; CPU-bound, so
/// call it off the async runtime.
pub fn aggregate_seal_proofs(seal: RegisteredSealProof, proofs: &[CommitProof]) -> Result<Vec<u8>, ProofsError> {
    if proofs.len() < 2 {
        return Err(ProofsError::TooFew(proofs.len()));
    }
    let comm_rs: Vec<[u8; 32]> = proofs.iter().map(|p| p.comm_r).collect();
    let seeds: Vec<[u8; 32]> = proofs.iter().map(|p| p.seed).collect();
    let outputs: Vec<api::seal::SealCommitPhase2Output> =
        proofs.iter().map(|p| api::seal::SealCommitPhase2Output { proof: p.proof.clone() }).collect();
    api::seal::aggregate_seal_commit_proofs(
        seal_proof(seal)?,
        api::RegisteredAggregationProof::SnarkPackV2,
        &comm_rs,
        &seeds,
        &outputs,
    )
    .map_err(library)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_types_map_as_ref_fvm_maps_them() {
        assert_eq!(seal_proof(RegisteredSealProof::StackedDRG2KiBV1P1).unwrap(), api::RegisteredSealProof::StackedDrg2KiBV1_1);
        assert_eq!(
            window_post_proof(RegisteredPoStProof::StackedDRGWindow2KiBV1P1).unwrap(),
            api::RegisteredPoStProof::StackedDrgWindow2KiBV1_2
        );
        assert!(window_post_proof(RegisteredPoStProof::StackedDRGWinning2KiBV1).is_err());
        assert!(seal_proof(RegisteredSealProof::StackedDRG2KiBV1P2_Feat_NiPoRep).is_err());
    }

    #[test]
    fn one_proof_is_not_aggregated() {
        let one = CommitProof { sector_number: 1, comm_r: [1; 32], seed: [2; 32], proof: vec![0; 192] };
        assert!(matches!(
            aggregate_seal_proofs(RegisteredSealProof::StackedDRG2KiBV1P1, &[one]),
            Err(ProofsError::TooFew(1))
        ));
    }
}
