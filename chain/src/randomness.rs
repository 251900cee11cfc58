//! Chain randomness exactly as the actors draw it (builtin-actors
//! `runtime/src/runtime/randomness.rs`, Lotus `chain/rand`).

use fvm_shared::address::Address;

use crate::ChainEpoch;

/// Domain separation tags (go-state-types `crypto/randomness.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum DomainSeparationTag {
    TicketProduction = 1,
    ElectionProofProduction = 2,
    WinningPoStChallengeSeed = 3,
    WindowedPoStChallengeSeed = 4,
    SealRandomness = 5,
    InteractiveSealChallengeSeed = 6,
    WindowPoStDeadlineAssignment = 7,
    MarketDealCronSeed = 8,
    PoStChainCommit = 9,
}

impl DomainSeparationTag {
    pub fn value(self) -> i64 {
        self as i64
    }
}

/// `blake2b256(i64_be(dst) || digest || i64_be(round) || entropy)`.
pub fn draw_randomness(digest: &[u8; 32], dst: DomainSeparationTag, round: ChainEpoch, entropy: &[u8]) -> [u8; 32] {
    draw_randomness_raw(digest, dst.value(), round, entropy)
}

/// [`draw_randomness`] for a tag given as a number, as the JSON-RPC methods receive it.
pub fn draw_randomness_raw(digest: &[u8; 32], dst: i64, round: ChainEpoch, entropy: &[u8]) -> [u8; 32] {
    let mut state = blake2b_simd::Params::new().hash_length(32).to_state();
    state.update(&dst.to_be_bytes());
    state.update(digest);
    state.update(&round.to_be_bytes());
    state.update(entropy);
    let mut out = [0u8; 32];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}

/// The entropy for seal and PoSt randomness: the CBOR encoding of the miner's (ID) address.
pub fn miner_entropy(miner: &Address) -> Vec<u8> {
    // Serialising an address is writing a byte string; the CBOR writer has no failure mode here.
    fvm_ipld_encoding::to_vec(miner).expect("CBOR-encoding an address cannot fail")
}

/// PoSt challenge randomness must be a valid field element: the proofs library rejects it
/// otherwise, so Lotus and the FVM clear the top two bits.
pub fn mask_post_randomness(mut randomness: [u8; 32]) -> [u8; 32] {
    randomness[31] &= 0x3f;
    randomness
}

/// The prover id the proofs library takes: the LEB128 actor id, zero-padded to 32 bytes (ref-fvm
/// `prover_id_from_u64`).
pub fn prover_id(actor_id: u64) -> [u8; 32] {
    let payload = Address::new_id(actor_id).payload_bytes();
    let mut id = [0u8; 32];
    id[..payload.len()].copy_from_slice(&payload);
    id
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    #[test]
    fn builtin_actors_test_vector() {
        let digest: [u8; 32] = STANDARD
            .decode("GOobxkrhS1hiFA1EYUKZM3xsyVfy5Xy3bQ0gLPnecYs=")
            .unwrap()
            .try_into()
            .unwrap();
        let entropy = STANDARD.decode("RACZyzQ=").unwrap();
        let out = draw_randomness(&digest, DomainSeparationTag::SealRandomness, 2797727, &entropy);
        assert_eq!(STANDARD.encode(out), "3MCqcLHKZ+pil4MqTS9wjsd+yPvTuTrq8PkGjEo3tYQ=");
    }

    #[test]
    fn entropy_is_the_cbor_of_the_id_address() {
        let entropy = miner_entropy(&Address::new_id(1000));
        assert_eq!(entropy, vec![0x43, 0x00, 0xe8, 0x07]);
        assert_eq!(STANDARD.encode(&entropy), "QwDoBw==");
    }

    #[test]
    fn prover_id_is_leb128_padded() {
        let id = prover_id(1000);
        assert_eq!(&id[..3], &[0xe8, 0x07, 0x00]);
        assert_eq!(&prover_id(3751)[..2], &[167, 29]);
    }

    #[test]
    fn post_mask_clears_the_top_two_bits_only() {
        let masked = mask_post_randomness([0xff; 32]);
        assert_eq!(masked[31], 0x3f);
        assert!(masked[..31].iter().all(|b| *b == 0xff));
    }
}
