//! The operator's configuration file (`manifests/config.yaml`): chain settings the chain does
//! not report.

use std::path::Path;

use fvm_shared::econ::TokenAmount;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub chain: ChainConfig,
    #[serde(default)]
    pub batching: BatchingConfig,
    #[serde(default)]
    pub proving: ProvingConfig,
    #[serde(default)]
    pub fees: FeesConfig,
}

/// What each chain message may cost, and when a message the chain does not take is replaced.
/// The defaults are lotus-miner's (node/config/def.go:185-203).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeesConfig {
    /// PreCommitSectorBatch2: base + perSector × sectors (lotus: 0 + 0.02 FIL).
    #[serde(default = "default_precommit_fee")]
    pub pre_commit_batch: BatchFee,
    /// ProveCommitSectors3: base + perSector × sectors (lotus: 0 + 0.03 FIL).
    #[serde(default = "default_commit_fee")]
    pub commit_batch: BatchFee,
    /// SubmitWindowedPoSt and fault and recovery declarations (lotus: 5 FIL, fee cap maximized so
    /// a rising base fee cannot keep a PoSt out of its deadline).
    #[serde(default = "default_window_post_fee", rename = "windowPoSt")]
    pub window_post: MessageFee,
    /// A message not on chain this many epochs after it was pushed is replaced with a higher
    /// premium and a fee cap at today's base fee, within its maximum fee (`lotus mpool replace
    /// --auto`); 0 never replaces.
    #[serde(default = "default_replace_after")]
    pub replace_after_epochs: i64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchFee {
    #[serde(default = "zero_fil")]
    pub base: Fil,
    pub per_sector: Fil,
}

impl BatchFee {
    /// The maximum fee of a message carrying `sectors` sectors (lotus' `FeeForSectors`).
    pub fn for_sectors(&self, sectors: usize) -> filecoin_chain::fees::FeeLimit {
        let max_fee = self.base.0.clone() + self.per_sector.0.clone() * sectors as u64;
        filecoin_chain::fees::FeeLimit { max_fee, maximize_fee_cap: false }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageFee {
    pub max_fee: Fil,
    #[serde(default)]
    pub maximize_fee_cap: bool,
}

impl MessageFee {
    pub fn limit(&self) -> filecoin_chain::fees::FeeLimit {
        filecoin_chain::fees::FeeLimit { max_fee: self.max_fee.0.clone(), maximize_fee_cap: self.maximize_fee_cap }
    }
}

fn default_precommit_fee() -> BatchFee {
    BatchFee { base: zero_fil(), per_sector: Fil(TokenAmount::from_nano(20_000_000)) }
}

fn default_commit_fee() -> BatchFee {
    BatchFee { base: zero_fil(), per_sector: Fil(TokenAmount::from_nano(30_000_000)) }
}

fn default_window_post_fee() -> MessageFee {
    MessageFee { max_fee: Fil(TokenAmount::from_whole(5)), maximize_fee_cap: true }
}

fn default_replace_after() -> i64 {
    5
}

fn zero_fil() -> Fil {
    Fil(TokenAmount::from_atto(0))
}

impl Default for FeesConfig {
    fn default() -> Self {
        Self {
            pre_commit_batch: default_precommit_fee(),
            commit_batch: default_commit_fee(),
            window_post: default_window_post_fee(),
            replace_after_epochs: default_replace_after(),
        }
    }
}

/// An amount of FIL written with its unit, as lotus' configuration writes them: `"0.02 FIL"`,
/// `"5 FIL"`, `"100 nanoFIL"`, `"1500 attoFIL"`.
#[derive(Clone, Debug, PartialEq)]
pub struct Fil(pub TokenAmount);

impl std::str::FromStr for Fil {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || format!("{text:?} is not an amount of FIL: write it with its unit, e.g. \"0.02 FIL\", \"100 nanoFIL\" or \"1500 attoFIL\"");
        let (number, unit) = text.trim().split_once(char::is_whitespace).ok_or_else(usage)?;
        let decimals = match unit.trim().to_ascii_lowercase().as_str() {
            "fil" => 18,
            "nanofil" => 9,
            "attofil" => 0,
            _ => return Err(usage()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.len() > decimals || !(whole.chars().chain(fraction.chars())).all(|c| c.is_ascii_digit()) {
            return Err(usage());
        }
        let digits = format!("{whole}{fraction:0<decimals$}");
        let atto: u128 = digits.parse().map_err(|_| usage())?;
        Ok(Fil(TokenAmount::from_atto(atto)))
    }
}

impl<'de> Deserialize<'de> for Fil {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
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
    /// Most sectors in one precommit or commit message (1..=819). A batch whose message would
    /// exceed Lotus' 64 KiB limit is cut to what fits; the rest go in the next message.
    #[serde(default = "default_max_sectors", deserialize_with = "batch_size")]
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

fn batch_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    use filecoin_chain::methods::MAX_AGGREGATED_SECTORS as MAX;
    let n = usize::deserialize(d)?;
    if (1..=MAX).contains(&n) {
        Ok(n)
    } else {
        Err(serde::de::Error::custom(format!("maxSectors must be 1..={MAX} (the most sectors one commit aggregate can prove); got {n}")))
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
    fn fees_default_to_lotus_miner_and_amounts_need_their_unit() {
        let base = "chain:\n  endpoint: http://lotus:1234/rpc/v1\n";
        let config: Config = serde_yaml::from_str(base).unwrap();
        // lotus node/config/def.go:185-203.
        assert_eq!(config.fees.pre_commit_batch.for_sectors(3).max_fee, TokenAmount::from_nano(60_000_000));
        assert_eq!(config.fees.commit_batch.for_sectors(2).max_fee, TokenAmount::from_nano(60_000_000));
        assert_eq!(config.fees.window_post.limit(), filecoin_chain::fees::FeeLimit { max_fee: TokenAmount::from_whole(5), maximize_fee_cap: true });
        assert_eq!(config.fees.replace_after_epochs, 5);

        let text = format!("{base}fees:\n  commitBatch: {{base: \"1 nanoFIL\", perSector: \"0.5 FIL\"}}\n  windowPoSt: {{maxFee: \"1500 attoFIL\"}}\n");
        let config: Config = serde_yaml::from_str(&text).unwrap();
        assert_eq!(config.fees.commit_batch.for_sectors(2).max_fee, TokenAmount::from_atto(1_000_000_001_000_000_000u128));
        assert_eq!(config.fees.window_post.limit().max_fee, TokenAmount::from_atto(1500));
        assert!(!config.fees.window_post.maximize_fee_cap);

        for bad in ["0.02", "1e3 FIL", "0.0000000000000000001 FIL", "5 fils", "-1 FIL", " FIL"] {
            let err = format!("{base}fees:\n  windowPoSt: {{maxFee: \"{bad}\"}}\n");
            let err = serde_yaml::from_str::<Config>(&err).unwrap_err().to_string();
            assert!(err.contains("is not an amount of FIL: write it with its unit"), "{bad}: {err}");
        }
    }

    #[test]
    fn batches_are_bounded_by_what_one_aggregate_proves() {
        let base = "chain:\n  endpoint: http://lotus:1234/rpc/v1\n";
        let ok: Config = serde_yaml::from_str(&format!("{base}batching:\n  maxSectors: 819\n")).unwrap();
        assert_eq!(ok.batching.max_sectors, 819);
        for bad in [0, 820] {
            let err = serde_yaml::from_str::<Config>(&format!("{base}batching:\n  maxSectors: {bad}\n")).unwrap_err().to_string();
            assert!(err.contains("maxSectors must be 1..=819"), "{err}");
        }
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
