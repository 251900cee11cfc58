//! The node's wallet: a BLS key address for each account the simulator signs for (the miner's
//! owner and worker), stand-in signatures over message CIDs, and their verification with Lotus'
//! error texts. Signatures are not real BLS: the simulator only has to tell its own apart.

use std::collections::BTreeMap;

use cid::Cid;
use filecoin_chain::address::ChainAddress;
use filecoin_chain::message::{Message, MessageError, SIG_TYPE_BLS, SIG_TYPE_SECP256K1, Signature, SignedMessage};
use fvm_shared::address::{Address, Network};

/// `ffi.SignatureBytes`: the length of a BLS signature.
const BLS_SIGNATURE_BYTES: usize = 96;
/// Length of a BLS public key, the payload of a `t3` address.
const BLS_PUBLIC_KEY_BYTES: usize = 48;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// lotus chain/wallet/multi.go:123, wrapped by node/impl/full/wallet.go:70.
    #[error("failed to sign message: key not found for {0}")]
    KeyNotFound(String),
    #[error("cannot compute the CID of the message to sign: {0}")]
    Cid(#[from] MessageError),
}

#[derive(Debug, Clone)]
pub struct Wallet {
    /// Actor ID → its BLS key address.
    keys: BTreeMap<u64, Address>,
}

impl Wallet {
    /// Keys for `ids`, derived from `seed` so that every run has the same addresses.
    pub fn new(seed: u64, ids: &[u64]) -> Self {
        let keys = ids
            .iter()
            .filter_map(|id| {
                let mut input = b"chain-sim/key".to_vec();
                input.extend(seed.to_be_bytes());
                input.extend(id.to_be_bytes());
                let public = blake2b_simd::Params::new().hash_length(BLS_PUBLIC_KEY_BYTES).hash(&input);
                Address::new_bls(public.as_bytes()).ok().map(|a| (*id, a))
            })
            .collect();
        Self { keys }
    }

    /// The key address of account `id`.
    pub fn key_of(&self, id: u64) -> Option<ChainAddress> {
        self.keys.get(&id).map(|k| ChainAddress::new(*k, Network::Testnet))
    }

    /// The (actor ID, key address) of an ID or key address the wallet holds the key of.
    pub fn resolve(&self, addr: &Address) -> Option<(u64, Address)> {
        match addr.id() {
            Ok(id) => self.keys.get(&id).map(|k| (id, *k)),
            Err(_) => self.keys.iter().find(|(_, k)| *k == addr).map(|(id, k)| (*id, *k)),
        }
    }

    fn signature(key: &Address, cid: &Cid) -> Signature {
        let mut block = blake2b256(&[b"chain-sim/sig".as_slice(), &key.to_bytes(), &cid.to_bytes()].concat()).to_vec();
        while block.len() < BLS_SIGNATURE_BYTES {
            let next = blake2b256(&block[block.len() - 32..]);
            block.extend(next);
        }
        Signature { sig_type: SIG_TYPE_BLS, data: block }
    }

    /// `WalletSignMessage` (lotus node/impl/full/wallet.go:50-77): `signer` (an ID or key
    /// address) is resolved to its key, which signs the message's CID; the message is returned
    /// as given, its `From` included.
    pub fn sign_message(&self, signer: &ChainAddress, msg: Message) -> Result<SignedMessage, SignError> {
        let (_, key) = self.resolve(signer.address()).ok_or_else(|| SignError::KeyNotFound(signer.to_string()))?;
        let cid = msg.compute_cid()?;
        let message = Message { cid: Some(cid), ..msg };
        // A BLS-signed message's CID is its unsigned CID (lotus chain/types/signedmessage.go:33-36).
        Ok(SignedMessage { message, signature: Self::signature(&key, &cid), cid })
    }

    /// `VerifyMsgSig` (lotus chain/messagepool/messagepool.go:807-841): the BLS signature size,
    /// then the signature against the message's `From`, which must be a key address
    /// (lib/sigs/sigs.go:40-42), as `AuthenticateMessage` words it (chain/consensus/
    /// signatures.go:19-60).
    pub fn verify(&self, signed: &SignedMessage) -> Result<(), String> {
        let sig = &signed.signature;
        if sig.sig_type == SIG_TYPE_BLS && sig.data.len() != BLS_SIGNATURE_BYTES {
            return Err("bls signature incorrectly sized".into());
        }
        let from = signed.message.from.address();
        let reason = if from.id().is_ok() {
            Some("must resolve ID addresses before using them to verify a signature".to_owned())
        } else {
            match sig.sig_type {
                SIG_TYPE_BLS => {
                    let ours = self.resolve(from).is_some_and(|(_, key)| Self::signature(&key, &signed.cid) == *sig);
                    (!ours).then(|| "bls signature failed to verify".to_owned())
                }
                SIG_TYPE_SECP256K1 => Some("signature did not match".into()),
                other => Some(format!("cannot verify signature of unsupported type: {other}")),
            }
        };
        match reason {
            None => Ok(()),
            Some(r) => Err(format!(
                "failed to validate signature: invalid signature for message {} (type {}): {r}",
                signed.cid, sig.sig_type
            )),
        }
    }
}

fn blake2b256(data: &[u8]) -> [u8; 32] {
    crate::randomness::blake2b256(data)
}

#[cfg(test)]
mod tests {
    use fvm_shared::econ::TokenAmount;

    use super::*;

    fn message(from: ChainAddress) -> Message {
        Message {
            version: 0,
            to: "t01000".parse().unwrap(),
            from,
            nonce: 0,
            value: TokenAmount::from_atto(0),
            gas_limit: 1_000_000,
            gas_fee_cap: TokenAmount::from_atto(200),
            gas_premium: TokenAmount::from_atto(100),
            method: 5,
            params: vec![],
            cid: None,
        }
    }

    #[test]
    fn signs_for_its_accounts_and_verifies_only_key_addressed_messages() {
        let w = Wallet::new(1, &[1001, 1002]);
        let key = w.key_of(1002).unwrap();
        assert!(key.to_string().starts_with("t3"), "{key}");
        assert_eq!(w.resolve(key.address()), Some((1002, *key.address())));
        assert_eq!(w.resolve(&Address::new_id(1002)), Some((1002, *key.address())));

        let signed = w.sign_message(&"t01002".parse().unwrap(), message(key)).unwrap();
        assert_eq!(signed.cid, signed.message.compute_cid().unwrap(), "BLS: the signed CID is the message CID");
        w.verify(&signed).unwrap();
        let mut tampered = signed.clone();
        tampered.signature.data[0] ^= 1;
        assert!(w.verify(&tampered).unwrap_err().ends_with("bls signature failed to verify"));

        // lotus lib/sigs/sigs.go:40-42: a message from an ID address cannot be verified.
        let from_id = w.sign_message(&key, message("t01002".parse().unwrap())).unwrap();
        assert!(w.verify(&from_id).unwrap_err().ends_with("must resolve ID addresses before using them to verify a signature"));
        // lotus chain/wallet/multi.go:123 via node/impl/full/wallet.go:70.
        let err = w.sign_message(&"t01999".parse().unwrap(), message(key)).unwrap_err();
        assert_eq!(err.to_string(), "failed to sign message: key not found for t01999");
    }
}
