//! Simulator configuration (JSON file or flags): timing, policy, and the one miner it hosts.

use std::time::Duration;

use filecoin_chain::ChainEpoch;
use filecoin_chain::policy::{ChainPolicy, WindowPoStPolicy};
use fvm_shared::sector::{RegisteredPoStProof, RegisteredSealProof};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read simulator config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid simulator config {path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid simulator config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SimConfig {
    /// Wall-clock length of one epoch; 0 stops the clock (epochs advance only via `Sim.AdvanceEpochs`).
    pub epoch_duration_ms: u64,
    /// Seed of the per-epoch ticket and beacon digests.
    pub randomness_seed: u64,
    /// The epoch the chain starts at.
    pub start_epoch: ChainEpoch,
    pub network_version: u32,
    /// The miner actor id (t0<id>).
    pub miner_id: u64,
    pub owner_id: u64,
    pub worker_id: u64,
    /// Seal proof types the miner may precommit (on-chain ids; 5 = 2KiB V1_1).
    pub seal_proofs: Vec<i64>,
    /// The miner's window PoSt type (10 = 2KiB V1_1).
    pub window_post_proof: i64,
    /// The miner's proving period offset (< proving period).
    pub proving_period_offset: ChainEpoch,
    pub policy: ChainPolicy,
    /// Epochs between the head a message is pushed at and the first tipset that may include it
    /// (its messages execute at that tipset's epoch).
    pub inclusion_delay: ChainEpoch,
    /// Base fee in attoFIL per gas unit.
    pub base_fee: u64,
    /// The premium gas estimation suggests, in attoFIL per gas unit.
    pub gas_premium: u64,
    /// The deposit each precommitted sector locks and the pledge each activated sector locks, in
    /// attoFIL; the estimates answer them ×110/100, as Lotus does.
    pub pre_commit_deposit: u64,
    pub initial_pledge: u64,
    /// The miner actor's balance at the start, in attoFIL, none of it locked. A new miner has
    /// none: its messages pay their deposits and pledges in their value.
    pub miner_balance: u64,
    /// If set, every RPC must carry `Authorization: Bearer <token>`. Never written back out
    /// (`Sim.Config` leaves it out).
    #[serde(skip_serializing)]
    pub api_token: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            epoch_duration_ms: 1000,
            randomness_seed: 1,
            start_epoch: 1000,
            network_version: 28,
            miner_id: 1000,
            owner_id: 1001,
            worker_id: 1002,
            seal_proofs: vec![5, 10],
            window_post_proof: 10,
            proving_period_offset: 0,
            // A 2k devnet, with the proving period shortened to 48 deadlines of 4 epochs so that
            // tests see every deadline within minutes; lookback and cutoff shrink with it.
            policy: ChainPolicy {
                window_post: WindowPoStPolicy {
                    period_deadlines: 48,
                    proving_period: 192,
                    challenge_window: 4,
                    challenge_lookback: 2,
                    fault_declaration_cutoff: 3,
                },
                ..ChainPolicy::DEVNET_2K
            },
            inclusion_delay: 1,
            base_fee: 100,
            gas_premium: 1000,
            pre_commit_deposit: 1_000_000_000,
            initial_pledge: 10_000_000_000,
            miner_balance: 0,
            api_token: None,
        }
    }
}

impl SimConfig {
    pub fn from_file(path: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let config: Self =
            serde_json::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.policy.window_post;
        let fail = |m: String| Err(ConfigError::Invalid(m));
        if w.period_deadlines == 0 || w.challenge_window <= 0 {
            return fail("windowPost.periodDeadlines and challengeWindow must be positive".into());
        }
        if w.proving_period != w.period_deadlines as i64 * w.challenge_window {
            return fail(format!(
                "windowPost.provingPeriod {} must equal periodDeadlines × challengeWindow = {}",
                w.proving_period,
                w.period_deadlines as i64 * w.challenge_window
            ));
        }
        if w.challenge_lookback <= 0 || w.fault_declaration_cutoff < w.challenge_lookback {
            return fail("windowPost.challengeLookback must be positive and ≤ faultDeclarationCutoff".into());
        }
        if !(0..w.proving_period).contains(&self.proving_period_offset) {
            return fail(format!("provingPeriodOffset must be in [0, {})", w.proving_period));
        }
        if self.inclusion_delay < 1 {
            return fail("inclusionDelay must be at least 1 epoch".into());
        }
        let post = RegisteredPoStProof::from(self.window_post_proof);
        for id in &self.seal_proofs {
            let seal = RegisteredSealProof::from(*id);
            if seal.registered_window_post_proof().ok() != Some(post) {
                return fail(format!("seal proof {id} does not prove with window PoSt type {}", self.window_post_proof));
            }
        }
        Ok(())
    }

    pub fn epoch_duration(&self) -> Duration {
        Duration::from_millis(self.epoch_duration_ms)
    }

    pub fn window_post_proof(&self) -> RegisteredPoStProof {
        RegisteredPoStProof::from(self.window_post_proof)
    }

    pub fn allows_seal_proof(&self, proof: RegisteredSealProof) -> bool {
        self.seal_proofs.iter().any(|id| RegisteredSealProof::from(*id) == proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_json_round_trips() {
        let c = SimConfig::default();
        c.validate().unwrap();
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<SimConfig>(&text).unwrap(), c);
        let partial: SimConfig = serde_json::from_str(r#"{"epochDurationMs": 200}"#).unwrap();
        assert_eq!((partial.epoch_duration_ms, partial.miner_balance), (200, 0), "a new miner holds nothing");
        let funded: SimConfig = serde_json::from_str(r#"{"minerBalance": 5000000000}"#).unwrap();
        assert_eq!(funded.miner_balance, 5_000_000_000);
        assert!(serde_json::from_str::<SimConfig>(r#"{"epochDuration": 200}"#).is_err(), "typos are rejected");
    }

    #[test]
    fn inconsistent_policies_are_rejected() {
        let mut c = SimConfig::default();
        c.policy.window_post.proving_period = 100;
        assert!(c.validate().unwrap_err().to_string().contains("provingPeriod"));
        let c = SimConfig { seal_proofs: vec![8], ..SimConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("seal proof 8"));
    }
}
