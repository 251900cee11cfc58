//! A typed client for the simulator's `Sim.*` control methods, for tests and scripts.

use filecoin_chain::{ApiToken, ChainEpoch};
use fvm_shared::econ::TokenAmount;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::SimConfig;
use crate::mpool::{BaseFeeRule, FaultRule, MessageCounts};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{method}: cannot reach the simulator: {source}")]
    Transport {
        method: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method}: {message}")]
    Rpc { method: &'static str, message: String },
    #[error("{method}: cannot decode the answer: {source}")]
    Decode {
        method: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone)]
pub struct SimControl {
    http: reqwest::Client,
    url: String,
    token: Option<ApiToken>,
}

impl SimControl {
    /// `url` is the RPC endpoint (`http://host:port/rpc/v1`).
    pub fn new(url: impl Into<String>, token: Option<ApiToken>) -> Self {
        Self { http: reqwest::Client::new(), url: url.into(), token }
    }

    async fn call<R: DeserializeOwned>(&self, method: &'static str, params: Value) -> Result<R, ControlError> {
        let mut req = self.http.post(&self.url).json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
        if let Some(t) = &self.token {
            req = req.header(reqwest::header::AUTHORIZATION, t.bearer_header());
        }
        let transport = |source: reqwest::Error| ControlError::Transport { method, source };
        let body: Value = req.send().await.map_err(transport)?.json().await.map_err(transport)?;
        if let Some(err) = body.get("error") {
            return Err(ControlError::Rpc { method, message: err["message"].as_str().unwrap_or("unknown error").to_owned() });
        }
        serde_json::from_value(body.get("result").cloned().unwrap_or(Value::Null))
            .map_err(|source| ControlError::Decode { method, source })
    }

    /// Advances the chain `n` epochs now, null rounds included; returns the new head.
    pub async fn advance_epochs(&self, n: u64) -> Result<ChainEpoch, ControlError> {
        self.call("Sim.AdvanceEpochs", json!([n])).await
    }

    /// The next `n` epochs are null rounds: no tipset, no messages; their cron runs with the next
    /// tipset's state computation.
    pub async fn null_rounds(&self, n: u64) -> Result<(), ControlError> {
        self.call::<Value>("Sim.NullRounds", json!([n])).await.map(|_| ())
    }

    /// The next `count` messages of `method` to execute get a receipt with `exit_code` and change
    /// nothing.
    pub async fn fail_next(&self, method: u64, exit_code: u32, count: u32) -> Result<(), ControlError> {
        let rule = FaultRule { method: Some(method), count, exit_code: Some(exit_code), epochs: None, sector: None };
        self.call::<Value>("Sim.FailNext", json!([rule])).await.map(|_| ())
    }

    /// The next message of `method` about `sector` gets a receipt with `exit_code` (a batch
    /// holding the sector fails as a whole).
    pub async fn fail_next_for_sector(&self, method: u64, exit_code: u32, sector: u64) -> Result<(), ControlError> {
        let rule = FaultRule { method: Some(method), count: 1, exit_code: Some(exit_code), epochs: None, sector: Some(sector) };
        self.call::<Value>("Sim.FailNext", json!([rule])).await.map(|_| ())
    }

    /// The next `count` messages of `method` are accepted but never included: they stay in the
    /// pool, holding back the sender's later nonces, until replaced.
    pub async fn drop_next(&self, method: u64, count: u32) -> Result<(), ControlError> {
        let rule = FaultRule { method: Some(method), count, exit_code: None, epochs: None, sector: None };
        self.call::<Value>("Sim.DropNext", json!([rule])).await.map(|_| ())
    }

    /// The next `count` messages of `method` land `epochs` later than usual.
    pub async fn delay_next(&self, method: u64, epochs: ChainEpoch, count: u32) -> Result<(), ControlError> {
        let rule = FaultRule { method: Some(method), count, exit_code: None, epochs: Some(epochs), sector: None };
        self.call::<Value>("Sim.DelayNext", json!([rule])).await.map(|_| ())
    }

    /// Messages whose fee cap is below the base fee wait in the pool.
    pub async fn set_base_fee(&self, fee: &TokenAmount) -> Result<(), ControlError> {
        self.call::<Value>("Sim.SetBaseFee", json!([fee.atto().to_string()])).await.map(|_| ())
    }

    /// Once the pool takes the next message of `method` (about `sector`, or a window PoSt for
    /// `deadline`, when given), the base fee becomes `fee`: the message is left out until
    /// replaced with a fee cap that covers it.
    pub async fn raise_base_fee_after_next(
        &self,
        method: u64,
        sector: Option<u64>,
        deadline: Option<u64>,
        fee: &TokenAmount,
    ) -> Result<(), ControlError> {
        let rule = BaseFeeRule { method: Some(method), sector, deadline, base_fee: fee.clone() };
        self.call::<Value>("Sim.RaiseBaseFeeAfterNext", json!([rule])).await.map(|_| ())
    }

    /// Deletes the precommits of `sectors` now, as the miner actor's clean-up cron does once they
    /// have expired: a prove-commit listing one of them then fails with 17 (not found).
    pub async fn expire_precommits(&self, sectors: &[u64]) -> Result<(), ControlError> {
        self.call::<Value>("Sim.ExpirePrecommits", json!([sectors])).await.map(|_| ())
    }

    pub async fn message_counts(&self) -> Result<MessageCounts, ControlError> {
        self.call("Sim.MessageCounts", json!([])).await
    }

    pub async fn config(&self) -> Result<SimConfig, ControlError> {
        self.call("Sim.Config", json!([])).await
    }
}
