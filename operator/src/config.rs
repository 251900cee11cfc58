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
}

fn default_max_sectors() -> usize {
    32
}

fn default_max_wait() -> i64 {
    10
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self { max_sectors: default_max_sectors(), max_wait_epochs: default_max_wait(), max_base_fee: None }
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
}
