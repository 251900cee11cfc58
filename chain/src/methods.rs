//! Miner-actor method numbers (builtin-actors v18) and the messages that call them.

use fvm_ipld_encoding::RawBytes;
use fvm_shared::econ::TokenAmount;
use fvm_shared::sector::{RegisteredAggregateProof, SectorNumber};
use serde::Serialize;

use crate::address::ChainAddress;
use crate::message::Message;
use crate::params::{
    self, DeclareFaultsParams, DeclareFaultsRecoveredParams, ParamsError, PreCommitSectorBatchParams2,
    ProveCommitSectors3Params, SectorActivationManifest,
};

/// The live miner methods the bridge sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub enum MinerMethod {
    SubmitWindowedPoSt,
    DeclareFaults,
    DeclareFaultsRecovered,
    PreCommitSectorBatch2,
    ProveCommitSectors3,
}

impl MinerMethod {
    pub const ALL: [MinerMethod; 5] = [
        Self::SubmitWindowedPoSt,
        Self::DeclareFaults,
        Self::DeclareFaultsRecovered,
        Self::PreCommitSectorBatch2,
        Self::ProveCommitSectors3,
    ];

    pub fn number(self) -> u64 {
        match self {
            Self::SubmitWindowedPoSt => 5,
            Self::DeclareFaults => 10,
            Self::DeclareFaultsRecovered => 11,
            Self::PreCommitSectorBatch2 => 28,
            Self::ProveCommitSectors3 => 34,
        }
    }

    pub fn from_number(n: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.number() == n)
    }
}

/// Aggregates take between 4 and 819 proofs (`MIN/MAX_AGGREGATED_SECTORS`).
pub const MIN_AGGREGATED_SECTORS: usize = 4;
pub const MAX_AGGREGATED_SECTORS: usize = 819;
/// `MAX_AGGREGATED_PROOF_SIZE`.
pub const MAX_AGGREGATED_PROOF_SIZE: usize = 81_960;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error("an aggregate proof covers {min}..={max} sectors, got {got}")]
    AggregateSize { min: usize, max: usize, got: usize },
    #[error("aggregate proof of {0} bytes exceeds the 81960-byte limit")]
    AggregateTooLarge(usize),
    #[error("no sectors to commit")]
    Empty,
}

/// An unsigned message from `from` calling `method` on `miner`. Gas fields are left at zero for
/// the node to estimate (MpoolPushMessage requires nonce 0).
pub fn miner_message<P: Serialize>(
    miner: ChainAddress,
    from: ChainAddress,
    method: MinerMethod,
    params: &P,
    value: TokenAmount,
) -> Result<Message, ParamsError> {
    Ok(Message {
        version: 0,
        to: miner,
        from,
        nonce: 0,
        value,
        gas_limit: 0,
        gas_fee_cap: TokenAmount::from_atto(0),
        gas_premium: TokenAmount::from_atto(0),
        method: method.number(),
        params: params::encode(params)?,
        cid: None,
    })
}

/// ProveCommitSectors3 for committed-capacity sectors, one proof per sector. With
/// `require_activation_success` false a failing sector does not fail the batch.
pub fn prove_commit_per_sector(
    proofs: Vec<(SectorNumber, Vec<u8>)>,
    require_activation_success: bool,
) -> Result<ProveCommitSectors3Params, BuildError> {
    if proofs.is_empty() {
        return Err(BuildError::Empty);
    }
    let (sector_activations, sector_proofs) = proofs
        .into_iter()
        .map(|(n, p)| (SectorActivationManifest { sector_number: n, pieces: vec![] }, RawBytes::new(p)))
        .unzip();
    Ok(ProveCommitSectors3Params {
        sector_activations,
        sector_proofs,
        aggregate_proof: RawBytes::default(),
        aggregate_proof_type: None,
        require_activation_success,
        require_notification_success: require_activation_success,
    })
}

/// ProveCommitSectors3 with one SnarkPackV2 aggregate over `sectors` (in the order the
/// aggregate was made).
pub fn prove_commit_aggregate(
    sectors: Vec<SectorActivationManifest>,
    aggregate_proof: Vec<u8>,
    require_activation_success: bool,
) -> Result<ProveCommitSectors3Params, BuildError> {
    if !(MIN_AGGREGATED_SECTORS..=MAX_AGGREGATED_SECTORS).contains(&sectors.len()) {
        return Err(BuildError::AggregateSize {
            min: MIN_AGGREGATED_SECTORS,
            max: MAX_AGGREGATED_SECTORS,
            got: sectors.len(),
        });
    }
    if aggregate_proof.len() > MAX_AGGREGATED_PROOF_SIZE {
        return Err(BuildError::AggregateTooLarge(aggregate_proof.len()));
    }
    Ok(ProveCommitSectors3Params {
        sector_activations: sectors,
        sector_proofs: vec![],
        aggregate_proof: RawBytes::new(aggregate_proof),
        aggregate_proof_type: Some(RegisteredAggregateProof::SnarkPackV2),
        require_activation_success,
        require_notification_success: require_activation_success,
    })
}

/// The sectors a miner message is about, read from its parameters (none for a window PoSt,
/// which names partitions; none if the parameters do not decode).
pub fn sectors_of(method: u64, bytes: &[u8]) -> Vec<SectorNumber> {
    match MinerMethod::from_number(method) {
        Some(MinerMethod::PreCommitSectorBatch2) => params::decode::<PreCommitSectorBatchParams2>(bytes)
            .map(|p| p.sectors.iter().map(|s| s.sector_number).collect())
            .unwrap_or_default(),
        Some(MinerMethod::ProveCommitSectors3) => params::decode::<ProveCommitSectors3Params>(bytes)
            .map(|p| p.sector_activations.iter().map(|s| s.sector_number).collect())
            .unwrap_or_default(),
        Some(MinerMethod::DeclareFaults) => params::decode::<DeclareFaultsParams>(bytes)
            .map(|p| p.faults.iter().flat_map(|f| f.sectors.iter().collect::<Vec<_>>()).collect())
            .unwrap_or_default(),
        Some(MinerMethod::DeclareFaultsRecovered) => params::decode::<DeclareFaultsRecoveredParams>(bytes)
            .map(|p| p.recoveries.iter().flat_map(|f| f.sectors.iter().collect::<Vec<_>>()).collect())
            .unwrap_or_default(),
        Some(MinerMethod::SubmitWindowedPoSt) | None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_numbers_are_v18() {
        let numbers: Vec<u64> = MinerMethod::ALL.iter().map(|m| m.number()).collect();
        assert_eq!(numbers, vec![5, 10, 11, 28, 34]);
        assert_eq!(MinerMethod::from_number(34), Some(MinerMethod::ProveCommitSectors3));
        assert_eq!(MinerMethod::from_number(7), None, "ProveCommitSector (7) is removed");
    }

    #[test]
    fn aggregates_need_four_sectors() {
        let cc = |n| SectorActivationManifest { sector_number: n, pieces: vec![] };
        assert!(matches!(
            prove_commit_aggregate((1..=3).map(cc).collect(), vec![0; 10], false),
            Err(BuildError::AggregateSize { got: 3, .. })
        ));
        let p = prove_commit_aggregate((1..=4).map(cc).collect(), vec![0; 10], false).unwrap();
        assert_eq!(p.aggregate_proof_type, Some(RegisteredAggregateProof::SnarkPackV2));
        assert!(p.sector_proofs.is_empty());
        assert!(matches!(prove_commit_per_sector(vec![], true), Err(BuildError::Empty)));
    }

    #[test]
    fn message_targets_the_miner_with_the_method_number() {
        let params = prove_commit_per_sector(vec![(7, vec![1; 192])], true).unwrap();
        let msg = miner_message(
            "t01000".parse().unwrap(),
            "t01001".parse().unwrap(),
            MinerMethod::ProveCommitSectors3,
            &params,
            TokenAmount::from_atto(0),
        )
        .unwrap();
        assert_eq!((msg.method, msg.nonce, msg.to.to_string()), (34, 0, "t01000".to_owned()));
        assert_eq!(crate::params::decode::<ProveCommitSectors3Params>(&msg.params).unwrap(), params);
    }
}
