//! Per-epoch tickets and beacon entries, deterministic from a seed, and the digests the actors
//! draw randomness from: blake2b-256 of the ticket's VRF proof and of the beacon entry's data, as
//! Lotus `chain/rand` takes them, and which tipset's ticket a null round's randomness comes from.

use std::collections::BTreeSet;

use filecoin_chain::ChainEpoch;

#[derive(Debug, Clone, Copy)]
pub struct EpochRandomness {
    seed: u64,
}

impl EpochRandomness {
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    fn bytes96(&self, kind: &[u8], epoch: ChainEpoch) -> Vec<u8> {
        // 96 bytes, like a BLS signature, from three labelled blake2b-256 blocks.
        (0u8..3)
            .flat_map(|i| {
                let mut s = blake2b_simd::Params::new().hash_length(32).to_state();
                s.update(b"chain-sim/");
                s.update(kind);
                s.update(&self.seed.to_be_bytes());
                s.update(&epoch.to_be_bytes());
                s.update(&[i]);
                s.finalize().as_bytes().to_vec()
            })
            .collect()
    }

    /// The VRF proof of the (single) block's ticket at `epoch`.
    pub fn ticket_vrf_proof(&self, epoch: ChainEpoch) -> Vec<u8> {
        self.bytes96(b"ticket", epoch)
    }

    /// The drand entry's data at `epoch`.
    pub fn beacon_data(&self, epoch: ChainEpoch) -> Vec<u8> {
        self.bytes96(b"beacon", epoch)
    }

    pub fn ticket_digest(&self, epoch: ChainEpoch) -> [u8; 32] {
        blake2b256(&self.ticket_vrf_proof(epoch))
    }

    pub fn beacon_digest(&self, epoch: ChainEpoch) -> [u8; 32] {
        blake2b256(&self.beacon_data(epoch))
    }
}

/// The randomness of a chain with null rounds, for an epoch at or before the lookup tipset.
#[derive(Debug, Clone, Copy)]
pub struct ChainRandomness<'a> {
    pub seeds: &'a EpochRandomness,
    pub null_rounds: &'a BTreeSet<ChainEpoch>,
}

impl ChainRandomness<'_> {
    /// The tipset whose ticket gives the chain randomness of `epoch`: the tipset at `epoch`, or
    /// for a null round the first tipset after it. From network version 13 Lotus looks tipsets
    /// up without lookback (chain/rand/rand.go:185-186, :95), and the chain index answers a
    /// null height with the tipset above it (chain/store/index.go:192-195, store.go:1293-1295).
    /// A negative epoch reads genesis (rand.go:90-93).
    pub fn ticket_epoch(&self, epoch: ChainEpoch) -> ChainEpoch {
        let mut e = epoch.max(0);
        while self.null_rounds.contains(&e) {
            e += 1;
        }
        e
    }

    pub fn ticket_digest(&self, epoch: ChainEpoch) -> [u8; 32] {
        self.seeds.ticket_digest(self.ticket_epoch(epoch))
    }

    /// Beacon randomness is the drand round of the epoch itself, null or not: the next tipset
    /// carries the entries of the rounds skipped (rand.go:146-179).
    pub fn beacon_digest(&self, epoch: ChainEpoch) -> [u8; 32] {
        self.seeds.beacon_digest(epoch)
    }
}

pub fn blake2b256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(blake2b_simd::Params::new().hash_length(32).hash(data).as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_deterministic_per_seed_and_epoch() {
        let a = EpochRandomness::new(1);
        assert_eq!(a.ticket_digest(5), EpochRandomness::new(1).ticket_digest(5));
        assert_ne!(a.ticket_digest(5), a.ticket_digest(6));
        assert_ne!(a.ticket_digest(5), a.beacon_digest(5));
        assert_ne!(a.ticket_digest(5), EpochRandomness::new(2).ticket_digest(5));
        assert_eq!(a.ticket_vrf_proof(5).len(), 96);
        assert_eq!(a.ticket_digest(5), blake2b256(&a.ticket_vrf_proof(5)));
    }
}
