//! Tipsets and block headers in their Lotus JSON form.

use cid::Cid;
use fvm_shared::econ::TokenAmount;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ChainEpoch;
use crate::address::ChainAddress;
use crate::lotus_json::{base64_bytes, big_int, cid_json, cids_json, token_amount};
use crate::message::Signature;
use crate::miner::PoStProofJson;

/// A tipset key. The empty key means "the heaviest tipset" and is written as `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TipSetKey(pub Vec<Cid>);

impl TipSetKey {
    /// The empty key: evaluate at the node's current head.
    pub fn head() -> Self {
        Self(Vec::new())
    }
}

impl Serialize for TipSetKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            s.serialize_none()
        } else {
            cids_json::serialize(&self.0, s)
        }
    }
}

impl<'de> Deserialize<'de> for TipSetKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        cids_json::deserialize(d).map(TipSetKey)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TipSet {
    pub cids: TipSetKey,
    pub blocks: Vec<BlockHeader>,
    pub height: ChainEpoch,
}

impl TipSet {
    pub fn key(&self) -> &TipSetKey {
        &self.cids
    }

    /// The parent base fee of the tipset (all blocks share it).
    pub fn parent_base_fee(&self) -> Option<&TokenAmount> {
        self.blocks.first().map(|b| &b.parent_base_fee)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    #[serde(rename = "VRFProof", with = "base64_bytes")]
    pub vrf_proof: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElectionProof {
    #[serde(rename = "WinCount")]
    pub win_count: i64,
    #[serde(rename = "VRFProof", with = "base64_bytes")]
    pub vrf_proof: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BeaconEntry {
    pub round: u64,
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlockHeader {
    pub miner: ChainAddress,
    pub ticket: Option<Ticket>,
    pub election_proof: Option<ElectionProof>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub beacon_entries: Vec<BeaconEntry>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub win_po_st_proof: Vec<PoStProofJson>,
    #[serde(with = "cids_json")]
    pub parents: Vec<Cid>,
    #[serde(with = "big_int")]
    pub parent_weight: fvm_shared::bigint::BigInt,
    pub height: ChainEpoch,
    #[serde(with = "cid_json")]
    pub parent_state_root: Cid,
    #[serde(with = "cid_json")]
    pub parent_message_receipts: Cid,
    #[serde(with = "cid_json")]
    pub messages: Cid,
    #[serde(rename = "BLSAggregate")]
    pub bls_aggregate: Option<Signature>,
    pub timestamp: u64,
    pub block_sig: Option<Signature>,
    pub fork_signaling: u64,
    #[serde(with = "token_amount")]
    pub parent_base_fee: TokenAmount,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_key_is_null_and_reads_back_from_null_or_empty_array() {
        assert_eq!(serde_json::to_string(&TipSetKey::head()).unwrap(), "null");
        assert_eq!(serde_json::from_str::<TipSetKey>("null").unwrap(), TipSetKey::head());
        assert_eq!(serde_json::from_str::<TipSetKey>("[]").unwrap(), TipSetKey::head());
    }
}
