//! The operator's configuration file (`manifests/config.yaml`): chain settings the chain does
//! not report.

use std::path::Path;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub chain: ChainConfig,
    #[serde(default)]
    pub batching: BatchingConfig,
    #[serde(default)]
    pub proving: ProvingConfig,
}

/// Window PoSt: where the ProvingDeadline resources live and how much room to keep around the
/// epochs the chain reports for each deadline.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvingConfig {
    /// Namespace of the ProvingDeadline resources and their pods; the operator's own when unset.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The proving check of a deadline starts this many challenge windows before its fault
    /// cutoff (Lotus: 2).
    #[serde(default = "default_check_windows_ahead")]
    pub check_windows_ahead: i64,
    /// Epochs a fault or recovery declaration needs to land before the cutoff.
    #[serde(default = "default_message_margin")]
    pub message_margin_epochs: i64,
    /// Epochs after the challenge epoch before its randomness is used.
    #[serde(default = "default_challenge_confidence")]
    pub challenge_confidence: i64,
    /// Partitions per SubmitWindowedPoSt (the actors accept 3).
    #[serde(default = "default_partitions_per_message")]
    pub max_partitions_per_message: usize,
}

fn default_check_windows_ahead() -> i64 {
    2
}

fn default_message_margin() -> i64 {
    2
}

fn default_challenge_confidence() -> i64 {
    1
}

fn default_partitions_per_message() -> usize {
    3
}

impl Default for ProvingConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            check_windows_ahead: default_check_windows_ahead(),
            message_margin_epochs: default_message_margin(),
            challenge_confidence: default_challenge_confidence(),
            max_partitions_per_message: default_partitions_per_message(),
        }
    }
}

impl ProvingConfig {
    pub fn timing(&self) -> crate::core::proving::Timing {
        crate::core::proving::Timing {
            check_windows_ahead: self.check_windows_ahead,
            message_margin: self.message_margin_epochs,
            challenge_confidence: self.challenge_confidence,
            max_partitions_per_message: self.max_partitions_per_message,
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainConfig {
    /// Lotus or Venus JSON-RPC v1 endpoint.
    pub endpoint: String,
    /// Secret (in the operator's namespace) whose `token` key holds the API token.
    #[serde(default)]
    pub token_secret: Option<String>,
    /// 150 on mainnet and calibration, 10 on a 2k devnet.
    #[serde(default = "default_challenge_delay")]
    pub pre_commit_challenge_delay: i64,
    #[serde(default = "default_confidence")]
    pub seed_confidence: i64,
    /// What to do with a sector whose ticket would expire before its precommit lands.
    #[serde(default)]
    pub on_ticket_expiry: TicketExpiry,
    /// How often the chain bridge looks at the chain (a fraction of the block time).
    #[serde(default = "default_poll")]
    pub poll_interval_seconds: u64,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TicketExpiry {
    /// Draw a new ticket and seal again from PC1 (lotus' GetTicket loop).
    #[default]
    Reticket,
    /// Give the sector up.
    Abort,
}

fn default_poll() -> u64 {
    10
}

fn default_challenge_delay() -> i64 {
    150
}

fn default_confidence() -> i64 {
    6
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchingConfig {
    #[serde(default = "default_max_sectors")]
    pub max_sectors: usize,
    /// Epochs the oldest ready sector may wait for others to fill its batch.
    #[serde(default = "default_max_wait")]
    pub max_wait_epochs: i64,
    /// attoFIL; a batch waits while the base fee is above it.
    #[serde(default)]
    pub max_base_fee: Option<String>,
    /// Aggregate the proofs of a commit batch into one SnarkPackV2 proof (lotus'
    /// AggregateCommits). Off unless configured: the operator then needs the inner-product SRS
    /// (`v28-fil-inner-product-v1.srs`) in its parameter cache.
    #[serde(default)]
    pub aggregate: Option<AggregateConfig>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AggregateConfig {
    /// Smallest batch to aggregate (the actors accept 4 to 819); smaller batches carry one proof
    /// per sector.
    #[serde(default = "default_min_aggregate", deserialize_with = "aggregate_size")]
    pub min_sectors: usize,
}

fn aggregate_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    use filecoin_chain::methods::{MAX_AGGREGATED_SECTORS as MAX, MIN_AGGREGATED_SECTORS as MIN};
    let n = usize::deserialize(d)?;
    if (MIN..=MAX).contains(&n) {
        Ok(n)
    } else {
        Err(serde::de::Error::custom(format!("minSectors must be {MIN}..={MAX}, the sizes the actors accept for an aggregate; got {n}")))
    }
}

fn default_min_aggregate() -> usize {
    filecoin_chain::methods::MIN_AGGREGATED_SECTORS
}

fn default_max_sectors() -> usize {
    32
}

fn default_max_wait() -> i64 {
    10
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self { max_sectors: default_max_sectors(), max_wait_epochs: default_max_wait(), max_base_fee: None, aggregate: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the configuration file {path} is invalid: {source}")]
    Parse { path: String, source: serde_yaml::Error },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse { path: shown, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_parses_and_typos_are_rejected() {
        let manifest: serde_yaml::Value =
            serde_yaml::from_str(include_str!("../../manifests/config.yaml")).expect("config.yaml is YAML");
        let text = manifest["data"]["config.yaml"].as_str().expect("data.config.yaml");
        let config: Config = serde_yaml::from_str(text).expect("the shipped config parses");
        assert_eq!(config.chain.pre_commit_challenge_delay, 150);
        let typo = text.replace("seedConfidence", "seedConfidance");
        let err = serde_yaml::from_str::<Config>(&typo).unwrap_err().to_string();
        assert!(err.contains("seedConfidance"), "{err}");
    }

    #[test]
    fn aggregation_is_off_by_default_and_its_size_is_what_the_actors_accept() {
        let base = "chain:\n  endpoint: http://lotus:1234/rpc/v1\n";
        let config: Config = serde_yaml::from_str(base).unwrap();
        assert_eq!(config.batching.aggregate, None);
        let on: Config = serde_yaml::from_str(&format!("{base}batching:\n  aggregate: {{}}\n")).unwrap();
        assert_eq!(on.batching.aggregate, Some(AggregateConfig { min_sectors: 4 }));
        let err = serde_yaml::from_str::<Config>(&format!("{base}batching:\n  aggregate: {{minSectors: 3}}\n")).unwrap_err().to_string();
        assert!(err.contains("minSectors must be 4..=819"), "{err}");
    }
}
