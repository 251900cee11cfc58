//! Miner-actor method parameters, re-declared from builtin-actors v18
//! `actors/miner/src/types.rs` over fvm_shared types so the proofs stack stays out of the
//! operator. All are CBOR tuples (arrays in field order), exactly as the actor decodes them.

use cid::Cid;
use fvm_ipld_bitfield::BitField;
use fvm_ipld_encoding::RawBytes;
use fvm_ipld_encoding::tuple::*;
use fvm_shared::ActorID;
use fvm_shared::address::Address;
use fvm_shared::deal::DealID;
use fvm_shared::error::ExitCode;
use fvm_shared::piece::PaddedPieceSize;
use fvm_shared::randomness::Randomness;
use fvm_shared::sector::{PoStProof, RegisteredAggregateProof, RegisteredSealProof, SectorNumber};
use serde::{Deserialize, Serialize};

use crate::ChainEpoch;

#[derive(Debug, thiserror::Error)]
#[error("CBOR {what}: {source}")]
pub struct ParamsError {
    what: &'static str,
    #[source]
    source: fvm_ipld_encoding::Error,
}

/// CBOR-encodes method parameters for `Message.Params`.
pub fn encode<T: Serialize>(params: &T) -> Result<Vec<u8>, ParamsError> {
    fvm_ipld_encoding::to_vec(params).map_err(|source| ParamsError { what: "encoding failed", source })
}

/// Decodes method parameters or a return value.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ParamsError> {
    fvm_ipld_encoding::from_slice(bytes).map_err(|source| ParamsError { what: "decoding failed", source })
}

/// `CompactCommD`: `None` (CBOR null) stands for the zero CommD of a committed-capacity sector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CompactCommD(pub Option<Cid>);

/// One sector of PreCommitSectorBatch2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct SectorPreCommitInfo {
    pub seal_proof: RegisteredSealProof,
    pub sector_number: SectorNumber,
    /// CommR: codec 0xf102, multihash 0xb401.
    pub sealed_cid: Cid,
    /// The ticket epoch.
    pub seal_rand_epoch: ChainEpoch,
    pub deal_ids: Vec<DealID>,
    pub expiration: ChainEpoch,
    pub unsealed_cid: CompactCommD,
}

/// Method 28.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct PreCommitSectorBatchParams2 {
    pub sectors: Vec<SectorPreCommitInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct VerifiedAllocationKey {
    pub client: ActorID,
    pub id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct DataActivationNotification {
    pub address: Address,
    pub payload: RawBytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct PieceActivationManifest {
    pub cid: Cid,
    pub size: PaddedPieceSize,
    pub verified_allocation_key: Option<VerifiedAllocationKey>,
    pub notify: Vec<DataActivationNotification>,
}

/// One sector of ProveCommitSectors3; `pieces` is empty for committed capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct SectorActivationManifest {
    pub sector_number: SectorNumber,
    pub pieces: Vec<PieceActivationManifest>,
}

/// Method 34. Exactly one of `sector_proofs` (one per sector) and `aggregate_proof` is non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct ProveCommitSectors3Params {
    pub sector_activations: Vec<SectorActivationManifest>,
    pub sector_proofs: Vec<RawBytes>,
    pub aggregate_proof: RawBytes,
    /// `None` with per-sector proofs, SnarkPackV2 with an aggregate.
    pub aggregate_proof_type: Option<RegisteredAggregateProof>,
    pub require_activation_success: bool,
    pub require_notification_success: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct PoStPartition {
    pub index: u64,
    pub skipped: BitField,
}

/// Method 5.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct SubmitWindowedPoStParams {
    pub deadline: u64,
    pub partitions: Vec<PoStPartition>,
    /// Exactly one proof.
    pub proofs: Vec<PoStProof>,
    pub chain_commit_epoch: ChainEpoch,
    pub chain_commit_rand: Randomness,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct FaultDeclaration {
    pub deadline: u64,
    pub partition: u64,
    pub sectors: BitField,
}

/// Method 10.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct DeclareFaultsParams {
    pub faults: Vec<FaultDeclaration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct RecoveryDeclaration {
    pub deadline: u64,
    pub partition: u64,
    pub sectors: BitField,
}

/// Method 11.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct DeclareFaultsRecoveredParams {
    pub recoveries: Vec<RecoveryDeclaration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct FailCode {
    pub idx: u32,
    pub code: ExitCode,
}

/// `BatchReturn`, the return of ProveCommitSectors3: which sectors of the batch failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct BatchReturn {
    pub success_count: u32,
    pub fail_codes: Vec<FailCode>,
}

impl BatchReturn {
    pub fn all_ok(n: u32) -> Self {
        Self { success_count: n, fail_codes: Vec::new() }
    }

    /// The exit code of item `idx`, `OK` when it succeeded.
    pub fn code_of(&self, idx: u32) -> ExitCode {
        self.fail_codes.iter().find(|f| f.idx == idx).map_or(ExitCode::OK, |f| f.code)
    }
}

#[cfg(test)]
mod tests {
    //! Expected bytes are worked out by hand from the actor types (RFC 8949 major types:
    //! 0x80|n array, 0x40|n / 0x58 len byte string, 0x18/0x19/0x1a uints, 0xf4/0xf5 false/true,
    //! 0xf6 null, 0xd8 0x2a tag 42 for CIDs with a 0x00 multibase prefix).
    use fvm_shared::commcid::replica_commitment_v1_to_cid;
    use fvm_shared::sector::RegisteredPoStProof;

    use super::*;

    fn comm_r() -> Cid {
        replica_commitment_v1_to_cid(&[0xab; 32]).unwrap()
    }

    /// CID bytes inside tag 42: 00 | 01 (v1) | 82 e2 03 (0xf102 LEB128) | 81 e8 02 (0xb401) | 20 | digest.
    fn comm_r_tagged() -> Vec<u8> {
        let mut v = vec![0xd8, 0x2a, 0x58, 0x29, 0x00, 0x01, 0x82, 0xe2, 0x03, 0x81, 0xe8, 0x02, 0x20];
        v.extend([0xab; 32]);
        v
    }

    #[test]
    fn prove_commit_sectors3_cc_sector_with_one_proof() {
        let proof = vec![0x11; 192];
        let params = ProveCommitSectors3Params {
            sector_activations: vec![SectorActivationManifest { sector_number: 7, pieces: vec![] }],
            sector_proofs: vec![RawBytes::new(proof.clone())],
            aggregate_proof: RawBytes::default(),
            aggregate_proof_type: None,
            require_activation_success: true,
            require_notification_success: true,
        };
        // 86 | 81 82 07 80 | 81 58 c0 <192 B> | 40 | f6 | f5 | f5
        let mut want = vec![0x86, 0x81, 0x82, 0x07, 0x80, 0x81, 0x58, 0xc0];
        want.extend(&proof);
        want.extend([0x40, 0xf6, 0xf5, 0xf5]);
        assert_eq!(encode(&params).unwrap(), want);
        assert_eq!(decode::<ProveCommitSectors3Params>(&want).unwrap(), params);
    }

    #[test]
    fn prove_commit_sectors3_aggregate() {
        let params = ProveCommitSectors3Params {
            sector_activations: (1..=4).map(|n| SectorActivationManifest { sector_number: n, pieces: vec![] }).collect(),
            sector_proofs: vec![],
            aggregate_proof: RawBytes::new(vec![0x22; 3]),
            aggregate_proof_type: Some(RegisteredAggregateProof::SnarkPackV2),
            require_activation_success: false,
            require_notification_success: false,
        };
        // 86 | 84 (82 01 80)(82 02 80)(82 03 80)(82 04 80) | 80 | 43 22 22 22 | 01 | f4 | f4
        let want = vec![
            0x86, 0x84, 0x82, 0x01, 0x80, 0x82, 0x02, 0x80, 0x82, 0x03, 0x80, 0x82, 0x04, 0x80, 0x80, 0x43,
            0x22, 0x22, 0x22, 0x01, 0xf4, 0xf4,
        ];
        assert_eq!(encode(&params).unwrap(), want);
    }

    #[test]
    fn pre_commit_sector_batch2_cc_sector() {
        let params = PreCommitSectorBatchParams2 {
            sectors: vec![SectorPreCommitInfo {
                seal_proof: RegisteredSealProof::StackedDRG2KiBV1P1,
                sector_number: 7,
                sealed_cid: comm_r(),
                seal_rand_epoch: 100,
                deal_ids: vec![],
                expiration: 600_000,
                unsealed_cid: CompactCommD(None),
            }],
        };
        // 81 | 81 | 87 05 07 <cid> 18 64 80 1a 00 09 27 c0 f6
        let mut want = vec![0x81, 0x81, 0x87, 0x05, 0x07];
        want.extend(comm_r_tagged());
        want.extend([0x18, 0x64, 0x80, 0x1a, 0x00, 0x09, 0x27, 0xc0, 0xf6]);
        assert_eq!(encode(&params).unwrap(), want);
        assert_eq!(decode::<PreCommitSectorBatchParams2>(&want).unwrap(), params);
    }

    #[test]
    fn submit_windowed_post_one_partition() {
        let params = SubmitWindowedPoStParams {
            deadline: 3,
            partitions: vec![PoStPartition { index: 0, skipped: BitField::new() }],
            proofs: vec![PoStProof { post_proof: RegisteredPoStProof::StackedDRGWindow2KiBV1P1, proof_bytes: vec![0x33; 192] }],
            chain_commit_epoch: 1000,
            chain_commit_rand: Randomness(vec![0x44; 32]),
        };
        // 85 | 03 | 81 82 00 40 | 81 82 0a 58 c0 <192 B> | 19 03 e8 | 58 20 <32 B>
        let mut want = vec![0x85, 0x03, 0x81, 0x82, 0x00, 0x40, 0x81, 0x82, 0x0a, 0x58, 0xc0];
        want.extend([0x33; 192]);
        want.extend([0x19, 0x03, 0xe8, 0x58, 0x20]);
        want.extend([0x44; 32]);
        assert_eq!(encode(&params).unwrap(), want);
    }

    #[test]
    fn declare_faults_and_recoveries() {
        // RLE+ of {7}: version 00, first run of zeros, run 7 as short block (01 + 0111 LSB-first),
        // run 1 of ones as single bit 1 → bits 0000 1111 01 → bytes f0 02.
        let sectors = BitField::try_from_bits([7u64]).unwrap();
        let faults = DeclareFaultsParams {
            faults: vec![FaultDeclaration { deadline: 3, partition: 0, sectors: sectors.clone() }],
        };
        let want = vec![0x81, 0x81, 0x83, 0x03, 0x00, 0x42, 0xf0, 0x02];
        assert_eq!(encode(&faults).unwrap(), want);
        let recoveries = DeclareFaultsRecoveredParams {
            recoveries: vec![RecoveryDeclaration { deadline: 3, partition: 0, sectors }],
        };
        assert_eq!(encode(&recoveries).unwrap(), want);
    }

    #[test]
    fn batch_return_decodes_failures() {
        let ret = BatchReturn { success_count: 1, fail_codes: vec![FailCode { idx: 1, code: ExitCode::USR_ILLEGAL_ARGUMENT }] };
        // 82 01 81 82 01 10
        let bytes = encode(&ret).unwrap();
        assert_eq!(bytes, vec![0x82, 0x01, 0x81, 0x82, 0x01, 0x10]);
        let back: BatchReturn = decode(&bytes).unwrap();
        assert_eq!(back.code_of(0), ExitCode::OK);
        assert_eq!(back.code_of(1), ExitCode::USR_ILLEGAL_ARGUMENT);
    }

    #[test]
    fn truncated_params_are_a_decode_error() {
        let err = decode::<PreCommitSectorBatchParams2>(&[0x81, 0x81, 0x87, 0x05]).unwrap_err();
        assert!(err.to_string().contains("CBOR decoding failed"), "{err}");
    }
}
