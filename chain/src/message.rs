//! Messages, receipts and message lookups in their Lotus JSON form.

use cid::Cid;
use cid::multihash::Multihash;
use fvm_ipld_encoding::{DAG_CBOR, RawBytes};
use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::ChainEpoch;
use crate::address::ChainAddress;
use crate::lotus_json::{base64_bytes, cid_json, opt_cid_json, token_amount};
use crate::tipset::TipSetKey;

/// Multihash code of blake2b-256, the hash of every chain object CID.
const BLAKE2B_256: u64 = 0xb220;

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("cannot encode message for its CID: {0}")]
    Encode(String),
    #[error("negative gas limit {0}")]
    NegativeGasLimit(i64),
}

/// An unsigned message (`types.Message`). `CID` is written on output as Lotus does and ignored on
/// input, since the node derives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Message {
    pub version: u64,
    pub to: ChainAddress,
    pub from: ChainAddress,
    pub nonce: u64,
    #[serde(with = "token_amount")]
    pub value: TokenAmount,
    pub gas_limit: i64,
    #[serde(with = "token_amount")]
    pub gas_fee_cap: TokenAmount,
    #[serde(with = "token_amount")]
    pub gas_premium: TokenAmount,
    pub method: u64,
    #[serde(with = "base64_bytes")]
    pub params: Vec<u8>,
    #[serde(rename = "CID", default, with = "opt_cid_json", skip_serializing_if = "Option::is_none")]
    pub cid: Option<Cid>,
}

/// The largest signed message Lotus' message pool accepts (`MaxMessageSize`,
/// chain/messagepool/messagepool.go:67, checked at :738).
pub const MAX_MESSAGE_SIZE: usize = 64 << 10;
/// Room Lotus keeps for the signature when it checks an unsigned message against
/// `MAX_MESSAGE_SIZE` (chain/messagepool/check.go:259).
pub const SIGNATURE_ALLOWANCE: usize = 128;

impl Message {
    /// The message CID: blake2b-256 over the DAG-CBOR tuple encoding, as Lotus computes it.
    pub fn compute_cid(&self) -> Result<Cid, MessageError> {
        Ok(cbor_cid(&self.cbor()?))
    }

    /// Length of the message's CBOR encoding, the size Lotus limits.
    pub fn encoded_len(&self) -> Result<usize, MessageError> {
        Ok(self.cbor()?.len())
    }

    /// Whether Lotus' message pool takes the message once signed (`MAX_MESSAGE_SIZE` less
    /// `SIGNATURE_ALLOWANCE`, as chain/messagepool/check.go:259 checks it).
    pub fn fits_message_pool(&self) -> Result<bool, MessageError> {
        Ok(self.encoded_len()? <= MAX_MESSAGE_SIZE - SIGNATURE_ALLOWANCE)
    }

    fn cbor(&self) -> Result<Vec<u8>, MessageError> {
        let gas_limit =
            u64::try_from(self.gas_limit).map_err(|_| MessageError::NegativeGasLimit(self.gas_limit))?;
        let fvm = fvm_shared::message::Message {
            version: self.version,
            from: *self.from.address(),
            to: *self.to.address(),
            sequence: self.nonce,
            value: self.value.clone(),
            method_num: self.method,
            params: RawBytes::new(self.params.clone()),
            gas_limit,
            gas_fee_cap: self.gas_fee_cap.clone(),
            gas_premium: self.gas_premium.clone(),
        };
        fvm_ipld_encoding::to_vec(&fvm).map_err(|e| MessageError::Encode(e.to_string()))
    }

    /// The same message with its `CID` field filled in.
    pub fn with_cid(mut self) -> Result<Self, MessageError> {
        self.cid = Some(self.compute_cid()?);
        Ok(self)
    }
}

/// CIDv1 (DAG-CBOR, blake2b-256) of CBOR bytes.
pub fn cbor_cid(bytes: &[u8]) -> Cid {
    let digest = blake2b_simd::Params::new().hash_length(32).hash(bytes);
    let mh = Multihash::<64>::wrap(BLAKE2B_256, digest.as_bytes())
        .expect("a 32-byte digest always fits a 64-byte multihash");
    Cid::new_v1(DAG_CBOR, mh)
}

/// Signature types as Lotus numbers them.
pub const SIG_TYPE_SECP256K1: u8 = 1;
pub const SIG_TYPE_BLS: u8 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Signature {
    #[serde(rename = "Type")]
    pub sig_type: u8,
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignedMessage {
    pub message: Message,
    pub signature: Signature,
    /// The CID to wait on. For BLS-signed messages it equals the unsigned message CID.
    #[serde(rename = "CID", with = "cid_json")]
    pub cid: Cid,
}

impl SignedMessage {
    /// Length of the signed message's CBOR encoding (`types.SignedMessage.Size`): a two-element
    /// array of the message and the signature bytes (type byte, then the signature).
    pub fn encoded_len(&self) -> Result<usize, MessageError> {
        let signature = 1 + self.signature.data.len();
        let header = match signature {
            0..24 => 1,
            24..256 => 2,
            256..65_536 => 3,
            _ => 5,
        };
        Ok(1 + self.message.encoded_len()? + header + signature)
    }
}

/// `api.MessageSendSpec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageSendSpec {
    /// Only used when GasFeeCap/GasPremium are unset; 0 lets the node pick.
    #[serde(with = "token_amount")]
    pub max_fee: TokenAmount,
    /// With a non-nil UUID a resend returns the message already signed for it.
    #[serde(with = "uuid_json")]
    pub msg_uuid: Uuid,
    pub maximize_fee_cap: bool,
}

impl MessageSendSpec {
    pub fn new(msg_uuid: Uuid, max_fee: TokenAmount) -> Self {
        Self { max_fee, msg_uuid, maximize_fee_cap: false }
    }

    /// The fee cap set to `MaxFee / GasLimit` whatever the estimate (lotus-miner does this for
    /// window PoSt, so a rising base fee cannot keep it out of a block).
    pub fn maximizing_fee_cap(mut self, maximize: bool) -> Self {
        self.maximize_fee_cap = maximize;
        self
    }
}

mod uuid_json {
    use super::*;

    pub fn serialize<S: Serializer>(u: &Uuid, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&u.hyphenated())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Uuid::nil()),
            Some(t) => Uuid::parse_str(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Exit codes are JSON integers.
pub mod exit_code_json {
    use super::*;

    pub fn serialize<S: Serializer>(c: &ExitCode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(c.value())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ExitCode, D::Error> {
        u32::deserialize(d).map(ExitCode::new)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageReceipt {
    #[serde(with = "exit_code_json")]
    pub exit_code: ExitCode,
    #[serde(with = "base64_bytes")]
    pub r#return: Vec<u8>,
    pub gas_used: i64,
    #[serde(default, with = "opt_cid_json")]
    pub events_root: Option<Cid>,
}

/// `api.MsgLookup`: where a message was executed and its receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MsgLookup {
    /// May differ from the CID waited on when the message was replaced.
    #[serde(with = "cid_json")]
    pub message: Cid,
    pub receipt: MessageReceipt,
    #[serde(default)]
    pub return_dec: serde_json::Value,
    #[serde(rename = "TipSet")]
    pub tipset: TipSetKey,
    pub height: ChainEpoch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_message_cid_of_the_lotus_doc_example() {
        // The message used throughout api-methods-v1-stable.md, whose documented CID is
        // bafy2bzacebbpdegvr3i4cosewthysg5xkxpqfn2wfcz6mv2hmoktwbdxkax4s.
        let msg = Message {
            version: 42,
            to: "f01234".parse().unwrap(),
            from: "f01234".parse().unwrap(),
            nonce: 42,
            value: TokenAmount::from_atto(0),
            gas_limit: 9,
            gas_fee_cap: TokenAmount::from_atto(0),
            gas_premium: TokenAmount::from_atto(0),
            method: 1,
            params: b"byte array".to_vec(),
            cid: None,
        };
        assert_eq!(
            msg.compute_cid().unwrap().to_string(),
            "bafy2bzacebbpdegvr3i4cosewthysg5xkxpqfn2wfcz6mv2hmoktwbdxkax4s"
        );
    }

    #[test]
    fn signed_size_counts_the_message_and_the_signature_as_lotus_does() {
        let msg = Message {
            version: 0,
            to: "t01000".parse().unwrap(),
            from: "t01002".parse().unwrap(),
            nonce: 3,
            value: TokenAmount::from_atto(0),
            gas_limit: 1000,
            gas_fee_cap: TokenAmount::from_atto(100),
            gas_premium: TokenAmount::from_atto(10),
            method: 34,
            params: vec![7; 60_000],
            cid: None,
        };
        let unsigned = msg.encoded_len().unwrap();
        // Params are a CBOR byte string: a 3-byte header for 60000 bytes.
        assert!(unsigned > 60_003 && unsigned < 60_100, "{unsigned}");
        let signed = SignedMessage { cid: msg.compute_cid().unwrap(), message: msg.clone(), signature: Signature { sig_type: SIG_TYPE_BLS, data: vec![0; 96] } };
        // Array header + message + 2-byte header + type byte + 96 bytes.
        assert_eq!(signed.encoded_len().unwrap(), 1 + unsigned + 2 + 97);
        assert!(msg.fits_message_pool().unwrap());
        let big = Message { params: vec![7; MAX_MESSAGE_SIZE - SIGNATURE_ALLOWANCE], ..msg };
        assert!(!big.fits_message_pool().unwrap());
    }

    #[test]
    fn negative_gas_limit_is_an_error_not_a_wrapped_number() {
        let mut msg: Message = serde_json::from_value(serde_json::json!({
            "Version": 0, "To": "t01000", "From": "t01001", "Nonce": 0, "Value": "0",
            "GasLimit": -1, "GasFeeCap": "0", "GasPremium": "0", "Method": 5, "Params": null
        }))
        .unwrap();
        assert!(matches!(msg.compute_cid(), Err(MessageError::NegativeGasLimit(-1))));
        msg.gas_limit = 10;
        assert!(msg.params.is_empty());
        assert!(msg.compute_cid().is_ok());
    }
}
