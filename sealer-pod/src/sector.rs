//! Who and what is being sealed: miner, sector number, size and proof types, parsed from the
//! small values the operator passes on the command line.

use std::str::FromStr;

use cid::Cid;
use filecoin_proofs_api::{
    ApiFeature, Commitment, ProverId, RegisteredPoStProof, RegisteredSealProof, RegisteredUpdateProof,
    SectorId,
};
use fvm_shared::address::{Address, Network, Payload};
use fvm_shared::commcid;

use crate::error::{StepError, StepResult};

/// Sector sizes the proofs support, with the names Lotus prints.
pub const SECTOR_SIZES: [(&str, u64); 5] = [
    ("2KiB", 2 << 10),
    ("8MiB", 8 << 20),
    ("512MiB", 512 << 20),
    ("32GiB", 32 << 30),
    ("64GiB", 64 << 30),
];

/// On-chain seal proof ids are the enum order (0..=19), which proofs-api keeps append-only.
const SEAL_PROOFS: [RegisteredSealProof; 20] = {
    use RegisteredSealProof::*;
    [
        StackedDrg2KiBV1,
        StackedDrg8MiBV1,
        StackedDrg512MiBV1,
        StackedDrg32GiBV1,
        StackedDrg64GiBV1,
        StackedDrg2KiBV1_1,
        StackedDrg8MiBV1_1,
        StackedDrg512MiBV1_1,
        StackedDrg32GiBV1_1,
        StackedDrg64GiBV1_1,
        StackedDrg2KiBV1_1_Feat_SyntheticPoRep,
        StackedDrg8MiBV1_1_Feat_SyntheticPoRep,
        StackedDrg512MiBV1_1_Feat_SyntheticPoRep,
        StackedDrg32GiBV1_1_Feat_SyntheticPoRep,
        StackedDrg64GiBV1_1_Feat_SyntheticPoRep,
        StackedDrg2KiBV1_2_Feat_NonInteractivePoRep,
        StackedDrg8MiBV1_2_Feat_NonInteractivePoRep,
        StackedDrg512MiBV1_2_Feat_NonInteractivePoRep,
        StackedDrg32GiBV1_2_Feat_NonInteractivePoRep,
        StackedDrg64GiBV1_2_Feat_NonInteractivePoRep,
    ]
};

/// A sector size in bytes, accepted as `2KiB`, `32GiB` or a plain byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectorSize(pub u64);

impl FromStr for SectorSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        SECTOR_SIZES
            .iter()
            .find(|(name, bytes)| name.eq_ignore_ascii_case(wanted) || bytes.to_string() == wanted)
            .map(|(_, bytes)| SectorSize(*bytes))
            .ok_or_else(|| {
                let names: Vec<&str> = SECTOR_SIZES.iter().map(|(n, _)| *n).collect();
                format!("unsupported sector size {s:?}; expected one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for SectorSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match SECTOR_SIZES.iter().find(|(_, b)| *b == self.0) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{} bytes", self.0),
        }
    }
}

impl SectorSize {
    fn index(self) -> usize {
        SECTOR_SIZES
            .iter()
            .position(|(_, b)| *b == self.0)
            .unwrap_or_default()
    }

    /// The seal proof Lotus and damocles use for new sectors (V1_1, interactive PoRep).
    pub fn default_seal_proof(self) -> RegisteredSealProof {
        SEAL_PROOFS[5 + self.index()]
    }

    pub fn window_post_proof(self) -> RegisteredPoStProof {
        use RegisteredPoStProof::*;
        [
            StackedDrgWindow2KiBV1_2,
            StackedDrgWindow8MiBV1_2,
            StackedDrgWindow512MiBV1_2,
            StackedDrgWindow32GiBV1_2,
            StackedDrgWindow64GiBV1_2,
        ][self.index()]
    }

    pub fn winning_post_proof(self) -> RegisteredPoStProof {
        use RegisteredPoStProof::*;
        [
            StackedDrgWinning2KiBV1,
            StackedDrgWinning8MiBV1,
            StackedDrgWinning512MiBV1,
            StackedDrgWinning32GiBV1,
            StackedDrgWinning64GiBV1,
        ][self.index()]
    }

    pub fn update_proof(self) -> RegisteredUpdateProof {
        use RegisteredUpdateProof::*;
        [
            StackedDrg2KiBV1,
            StackedDrg8MiBV1,
            StackedDrg512MiBV1,
            StackedDrg32GiBV1,
            StackedDrg64GiBV1,
        ][self.index()]
    }
}

/// Parses `--seal-proof`: the on-chain number (`5`) or the proofs-api name (`StackedDrg2KiBV1_1`).
pub fn parse_seal_proof(s: &str) -> StepResult<RegisteredSealProof> {
    let found = match s.trim().parse::<usize>() {
        Ok(id) => SEAL_PROOFS.get(id).copied(),
        Err(_) => SEAL_PROOFS
            .iter()
            .find(|p| format!("{p:?}").eq_ignore_ascii_case(s.trim()))
            .copied(),
    };
    found.ok_or_else(|| {
        StepError::invalid(
            "seal proof",
            format!("{s:?} is neither an on-chain id 0..=19 nor a proof name such as StackedDrg2KiBV1_1"),
        )
    })
}

/// The on-chain id of a seal proof.
pub fn seal_proof_id(proof: RegisteredSealProof) -> usize {
    SEAL_PROOFS
        .iter()
        .position(|p| *p == proof)
        .unwrap_or_default()
}

/// Parses a miner ID address (`t01000`, `f01000`) and derives prover_id as ref-fvm does:
/// the LEB128 actor id, zero-padded to 32 bytes.
pub fn parse_miner(s: &str) -> StepResult<(u64, ProverId)> {
    let network = match s.get(0..1) {
        Some("f") => Network::Mainnet,
        Some("t") => Network::Testnet,
        _ => {
            return Err(StepError::invalid(
                "miner",
                format!("{s:?} is not an address; expected an ID address like t01000"),
            ));
        }
    };
    let addr: Address = network
        .parse_address(s)
        .map_err(|e| StepError::invalid("miner", format!("{s:?}: {e}")))?;
    let id = match addr.payload() {
        Payload::ID(id) => *id,
        _ => {
            return Err(StepError::invalid(
                "miner",
                format!("{s:?} is not an ID address (t0/f0…); resolve it to the miner's actor id first"),
            ));
        }
    };
    let raw = addr.payload().to_raw_bytes();
    let mut prover_id = [0u8; 32];
    prover_id[..raw.len()].copy_from_slice(&raw);
    Ok((id, prover_id))
}

/// Parses 32 bytes of hex (tickets, seeds, randomness), with or without `0x`.
pub fn parse_hex32(name: &'static str, s: &str) -> StepResult<[u8; 32]> {
    let trimmed = s.trim().trim_start_matches("0x");
    let bytes = hex::decode(trimmed).map_err(|e| StepError::invalid(name, format!("{s:?} is not hex: {e}")))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        StepError::invalid(name, format!("expected 32 bytes (64 hex digits), got {} bytes", bytes.len()))
    })
}

pub fn comm_d_cid(comm_d: &Commitment) -> StepResult<String> {
    commcid::data_commitment_v1_to_cid(comm_d)
        .map(|c| c.to_string())
        .map_err(|e| StepError::invalid("CommD", e))
}

pub fn comm_r_cid(comm_r: &Commitment) -> StepResult<String> {
    commcid::replica_commitment_v1_to_cid(comm_r)
        .map(|c| c.to_string())
        .map_err(|e| StepError::invalid("CommR", e))
}

pub fn parse_comm_r(s: &str) -> StepResult<Commitment> {
    let cid = Cid::from_str(s.trim()).map_err(|e| StepError::invalid("CommR", format!("{s:?}: {e}")))?;
    commcid::cid_to_replica_commitment_v1(&cid)
        .map_err(|e| StepError::invalid("CommR", format!("{s:?}: {e}")))
}

pub fn parse_comm_d(name: &'static str, s: &str) -> StepResult<Commitment> {
    let cid = Cid::from_str(s.trim()).map_err(|e| StepError::invalid(name, format!("{s:?}: {e}")))?;
    commcid::cid_to_data_commitment_v1(&cid).map_err(|e| StepError::invalid(name, format!("{s:?}: {e}")))
}

/// The sector being worked on, resolved from the command line.
#[derive(Debug, Clone, Copy)]
pub struct SectorIdentity {
    pub miner_id: u64,
    pub prover_id: ProverId,
    pub sector_id: SectorId,
    pub size: SectorSize,
    pub seal_proof: RegisteredSealProof,
}

impl SectorIdentity {
    pub fn new(
        miner: &str,
        sector_number: u64,
        size: SectorSize,
        seal_proof: Option<&str>,
    ) -> StepResult<Self> {
        let (miner_id, prover_id) = parse_miner(miner)?;
        let seal_proof = match seal_proof {
            Some(s) => parse_seal_proof(s)?,
            None => size.default_seal_proof(),
        };
        if seal_proof.feature_enabled(ApiFeature::NonInteractivePoRep) {
            return Err(StepError::invalid(
                "seal proof",
                format!("{seal_proof:?}: non-interactive PoRep (aggregated C1/C2 over 13 or 126 partitions) is not supported; use the V1_1 or V1_1_Feat_SyntheticPoRep proof"),
            ));
        }
        let proof_size = u64::from(seal_proof.sector_size());
        if proof_size != size.0 {
            return Err(StepError::invalid(
                "seal proof",
                format!(
                    "{seal_proof:?} seals {} sectors but --sector-size is {size}",
                    SectorSize(proof_size)
                ),
            ));
        }
        Ok(SectorIdentity {
            miner_id,
            prover_id,
            sector_id: SectorId::from(sector_number),
            size,
            seal_proof,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prover_id_is_leb128_actor_id_as_in_ref_fvm() {
        let (id, prover) = parse_miner("t01000").unwrap();
        assert_eq!(id, 1000);
        assert_eq!(&prover[..3], &[0xe8, 0x07, 0x00]);
        let (_, prover) = parse_miner("f03751").unwrap();
        assert_eq!(&prover[..3], &[167, 29, 0]);
    }

    #[test]
    fn non_id_miner_address_is_rejected_with_the_reason() {
        let err = parse_miner("t1abjxfbp274xpdqcpuaykwkfb43omjotacm2p3za").unwrap_err();
        assert!(err.to_string().contains("not an ID address"), "{err}");
        assert!(parse_miner("x01000").is_err());
    }

    #[test]
    fn seal_proof_by_number_and_name_matches_chain_ids() {
        assert_eq!(parse_seal_proof("5").unwrap(), RegisteredSealProof::StackedDrg2KiBV1_1);
        assert_eq!(parse_seal_proof("8").unwrap(), RegisteredSealProof::StackedDrg32GiBV1_1);
        assert_eq!(
            parse_seal_proof("StackedDrg2KiBV1_1_Feat_SyntheticPoRep").unwrap(),
            RegisteredSealProof::StackedDrg2KiBV1_1_Feat_SyntheticPoRep
        );
        assert_eq!(seal_proof_id(RegisteredSealProof::StackedDrg64GiBV1_1), 9);
        assert!(parse_seal_proof("20").is_err());
    }

    #[test]
    fn seal_proof_for_another_size_is_refused() {
        let err = SectorIdentity::new("t01000", 1, "2KiB".parse().unwrap(), Some("8")).unwrap_err();
        assert!(err.to_string().contains("--sector-size is 2KiB"), "{err}");
    }

    #[test]
    fn hex_seed_must_be_32_bytes() {
        assert!(parse_hex32("ticket", &"ab".repeat(32)).is_ok());
        let err = parse_hex32("ticket", "abcd").unwrap_err();
        assert!(err.to_string().contains("expected 32 bytes"), "{err}");
        assert!(parse_hex32("ticket", &"zz".repeat(32)).is_err());
    }

    #[test]
    fn zero_comm_d_cid_matches_the_chain() {
        let comm_d = filecoin_proofs_api::seal::compute_comm_d(
            RegisteredSealProof::StackedDrg2KiBV1_1,
            &[],
        )
        .unwrap();
        assert_eq!(
            comm_d_cid(&comm_d).unwrap(),
            "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy"
        );
        assert_eq!(parse_comm_d("CommD", &comm_d_cid(&comm_d).unwrap()).unwrap(), comm_d);
    }
}
