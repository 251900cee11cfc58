//! Miner-actor state as the Lotus `State*` methods return it.

use cid::Cid;
use fvm_ipld_bitfield::BitField;
use fvm_shared::bigint::BigInt;
use fvm_shared::econ::TokenAmount;
use fvm_shared::sector::{RegisteredPoStProof, RegisteredSealProof, SectorNumber};
use serde::{Deserialize, Deserializer, Serialize};

use crate::ChainEpoch;
use crate::address::{ChainAddress, empty_as_none};
use crate::lotus_json::{
    base64_bytes, base64_bytes_list, big_int, bitfield_runs, cid_json, opt_cid_json, opt_token_amount, token_amount,
};

fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `{"PoStProof": <type>, "ProofBytes": "base64"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoStProofJson {
    #[serde(rename = "PoStProof")]
    pub post_proof: RegisteredPoStProof,
    #[serde(rename = "ProofBytes", with = "base64_bytes")]
    pub proof_bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BeneficiaryTerm {
    #[serde(with = "token_amount")]
    pub quota: TokenAmount,
    #[serde(with = "token_amount")]
    pub used_quota: TokenAmount,
    pub expiration: ChainEpoch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PendingBeneficiaryChange {
    pub new_beneficiary: ChainAddress,
    #[serde(with = "token_amount")]
    pub new_quota: TokenAmount,
    pub new_expiration: ChainEpoch,
    pub approved_by_beneficiary: bool,
    pub approved_by_nominee: bool,
}

/// `api.MinerInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinerInfo {
    pub owner: ChainAddress,
    pub worker: ChainAddress,
    #[serde(default, with = "empty_as_none")]
    pub new_worker: Option<ChainAddress>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub control_addresses: Vec<ChainAddress>,
    pub worker_change_epoch: ChainEpoch,
    pub peer_id: Option<String>,
    #[serde(default, with = "base64_bytes_list")]
    pub multiaddrs: Vec<Vec<u8>>,
    pub window_po_st_proof_type: RegisteredPoStProof,
    pub sector_size: u64,
    pub window_po_st_partition_sectors: u64,
    pub consensus_fault_elapsed: ChainEpoch,
    pub pending_owner_address: Option<ChainAddress>,
    pub beneficiary: ChainAddress,
    pub beneficiary_term: BeneficiaryTerm,
    pub pending_beneficiary_term: Option<PendingBeneficiaryChange>,
}

/// `miner.SectorPreCommitInfo` in JSON (the parameter of the deposit estimate methods and the
/// `Info` of a precommit on chain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorPreCommitInfo {
    pub seal_proof: RegisteredSealProof,
    pub sector_number: SectorNumber,
    #[serde(rename = "SealedCID", with = "cid_json")]
    pub sealed_cid: Cid,
    pub seal_rand_epoch: ChainEpoch,
    #[serde(rename = "DealIDs", default, deserialize_with = "null_as_default")]
    pub deal_ids: Vec<u64>,
    pub expiration: ChainEpoch,
    /// `null` for committed-capacity sectors (the zero CommD).
    #[serde(default, with = "opt_cid_json")]
    pub unsealed_cid: Option<Cid>,
}

impl From<&crate::params::SectorPreCommitInfo> for SectorPreCommitInfo {
    /// The JSON form of a precommit's CBOR parameters (what the deposit estimate takes).
    fn from(info: &crate::params::SectorPreCommitInfo) -> Self {
        Self {
            seal_proof: info.seal_proof,
            sector_number: info.sector_number,
            sealed_cid: info.sealed_cid,
            seal_rand_epoch: info.seal_rand_epoch,
            deal_ids: info.deal_ids.clone(),
            expiration: info.expiration,
            unsealed_cid: info.unsealed_cid.0,
        }
    }
}

/// `miner.SectorPreCommitOnChainInfo` (`StateSectorPreCommitInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorPreCommitOnChainInfo {
    pub info: SectorPreCommitInfo,
    #[serde(with = "token_amount")]
    pub pre_commit_deposit: TokenAmount,
    pub pre_commit_epoch: ChainEpoch,
}

/// `miner.SectorOnChainInfo` (`StateSectorGetInfo`, `StateMinerSectors`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorOnChainInfo {
    pub sector_number: SectorNumber,
    pub seal_proof: RegisteredSealProof,
    #[serde(rename = "SealedCID", with = "cid_json")]
    pub sealed_cid: Cid,
    pub activation: ChainEpoch,
    pub expiration: ChainEpoch,
    #[serde(with = "big_int")]
    pub deal_weight: BigInt,
    #[serde(with = "big_int")]
    pub verified_deal_weight: BigInt,
    #[serde(with = "token_amount")]
    pub initial_pledge: TokenAmount,
    /// `null` for every sector activated under actors v16 or later: the actor stores `None`
    /// (builtin-actors `actors/miner/src/lib.rs` 5338–5341, go-state-types v16
    /// `builtin/v16/miner/miner_state.go` 178–181, `*abi.TokenAmount`).
    #[serde(default, with = "opt_token_amount")]
    pub expected_day_reward: Option<TokenAmount>,
    #[serde(default, with = "opt_token_amount")]
    pub expected_storage_pledge: Option<TokenAmount>,
    pub power_base_epoch: ChainEpoch,
    #[serde(default, with = "opt_token_amount")]
    pub replaced_day_reward: Option<TokenAmount>,
    #[serde(rename = "SectorKeyCID", default, with = "opt_cid_json")]
    pub sector_key_cid: Option<Cid>,
    pub flags: u64,
    #[serde(with = "token_amount")]
    pub daily_fee: TokenAmount,
}

/// One entry of `StateMinerDeadlines`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deadline {
    #[serde(with = "bitfield_runs")]
    pub post_submissions: BitField,
    pub disputable_proof_count: u64,
    #[serde(with = "token_amount")]
    pub daily_fee: TokenAmount,
}

/// One entry of `StateMinerPartitions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Partition {
    #[serde(with = "bitfield_runs")]
    pub all_sectors: BitField,
    #[serde(with = "bitfield_runs")]
    pub faulty_sectors: BitField,
    #[serde(with = "bitfield_runs")]
    pub recovering_sectors: BitField,
    #[serde(with = "bitfield_runs")]
    pub live_sectors: BitField,
    #[serde(with = "bitfield_runs")]
    pub active_sectors: BitField,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miner_info_of_a_fresh_devnet_miner_decodes() {
        // What Lotus prints for a genesis miner: undefined NewWorker, nil slices and pointers.
        let info: MinerInfo = serde_json::from_value(serde_json::json!({
            "Owner": "t01001", "Worker": "t01002", "NewWorker": "<empty>", "ControlAddresses": null,
            "WorkerChangeEpoch": -1, "PeerId": null, "Multiaddrs": null, "WindowPoStProofType": 10,
            "SectorSize": 2048, "WindowPoStPartitionSectors": 2, "ConsensusFaultElapsed": -1,
            "PendingOwnerAddress": null, "Beneficiary": "t01001",
            "BeneficiaryTerm": {"Quota": "0", "UsedQuota": "0", "Expiration": 0},
            "PendingBeneficiaryTerm": null
        }))
        .unwrap();
        assert_eq!(info.new_worker, None);
        assert!(info.control_addresses.is_empty() && info.multiaddrs.is_empty());
        assert_eq!(info.window_po_st_proof_type, RegisteredPoStProof::StackedDRGWindow2KiBV1P1);
        let back = serde_json::to_value(&info).unwrap();
        assert_eq!(back["NewWorker"], "<empty>");
    }

    #[test]
    fn sector_activated_under_actors_v16_or_later_decodes_with_null_rewards() {
        // What Lotus v1.36 prints for a sector ProveCommitSectors3 activated on nv28: the actor
        // leaves ExpectedDayReward, ExpectedStoragePledge and ReplacedDayReward `None`
        // (builtin-actors actors/miner/src/lib.rs:5338-5341), go-state-types v16
        // builtin/v16/miner/miner_state.go:178-181 holds them as `*abi.TokenAmount`, and Go's
        // JSON writes a nil pointer as `null`.
        let info: SectorOnChainInfo = serde_json::from_value(serde_json::json!({
            "SectorNumber": 7, "SealProof": 5,
            "SealedCID": {"/": "bagboea4b5abcatlxechwbp7kjpjguna6r6q7ejrhe6mdp3lf34pmswn27pkkiekz"},
            "Activation": 1200, "Expiration": 600000, "DealWeight": "0", "VerifiedDealWeight": "0",
            "InitialPledge": "9000", "ExpectedDayReward": null, "ExpectedStoragePledge": null,
            "PowerBaseEpoch": 1200, "ReplacedDayReward": null, "SectorKeyCID": null, "Flags": 1,
            "DailyFee": "0"
        }))
        .unwrap();
        assert_eq!((info.sector_number, info.activation), (7, 1200));
        assert_eq!(info.expected_day_reward, None);
        assert_eq!(info.expected_storage_pledge, None);
        assert_eq!(info.replaced_day_reward, None);
        let back = serde_json::to_value(&info).unwrap();
        assert_eq!(back["ExpectedDayReward"], serde_json::Value::Null);

        // Sectors of older actors still carry the amounts.
        let mut old = back;
        old["ExpectedDayReward"] = "12".into();
        let info: SectorOnChainInfo = serde_json::from_value(old).unwrap();
        assert_eq!(info.expected_day_reward, Some(TokenAmount::from_atto(12)));
    }
}
