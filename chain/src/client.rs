//! A typed client for the Lotus (and Venus) v1 JSON-RPC methods a sealer needs:
//! `POST <endpoint>` with `Filecoin.<Name>`, positional params and a bearer token.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cid::Cid;
use fvm_ipld_bitfield::BitField;
use fvm_shared::econ::TokenAmount;
use fvm_shared::sector::SectorNumber;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ChainEpoch;
use crate::address::ChainAddress;
use crate::deadline::DeadlineInfo;
use crate::lotus_json::{base64_bytes, bitfield_runs, cid_json, token_amount};
use crate::message::{Message, MessageError, MessageSendSpec, MsgLookup, SignedMessage};
use crate::miner::{
    Deadline, MinerInfo, Partition, SectorOnChainInfo, SectorPreCommitInfo, SectorPreCommitOnChainInfo,
};
use crate::randomness::DomainSeparationTag;
use crate::tipset::{TipSet, TipSetKey};
use crate::token::ApiToken;

/// `api.LookbackNoLimit`.
pub const LOOKBACK_NO_LIMIT: ChainEpoch = -1;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{method}: cannot reach the chain node at {endpoint}: {source}")]
    Transport {
        method: &'static str,
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method}: the node refused the API token (HTTP {status}); check the token Secret and that it has the permission this method needs")]
    Unauthorized { method: &'static str, status: u16 },
    #[error("{method}: HTTP {status} from the node: {body}")]
    Http { method: &'static str, status: u16, body: String },
    #[error("{method} failed on the node (JSON-RPC error {code}): {message}")]
    Rpc { method: &'static str, code: i64, message: String },
    #[error("{method}: cannot decode the node's answer: {source}")]
    Decode {
        method: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{method}: unexpected answer from the node: {reason}")]
    Invalid { method: &'static str, reason: String },
    #[error("{method}: {source}")]
    Message {
        method: &'static str,
        #[source]
        source: MessageError,
    },
}

/// Told of every call the client makes, e.g. to count them per method (how often a component
/// calls the chain service is what operators watch).
pub trait CallObserver: Send + Sync + std::fmt::Debug {
    fn observe(&self, method: &'static str, ok: bool, elapsed: Duration);
}

/// Where the node is and how to authenticate.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// e.g. `http://127.0.0.1:1234/rpc/v1`.
    pub endpoint: String,
    pub token: Option<ApiToken>,
    /// Timeout of ordinary calls.
    pub request_timeout: Duration,
    /// Timeout of `StateWaitMsg`, which blocks on the node until the message lands.
    pub wait_timeout: Duration,
    pub observer: Option<Arc<dyn CallObserver>>,
}

impl ClientConfig {
    pub fn new(endpoint: impl Into<String>, token: Option<ApiToken>) -> Self {
        Self {
            endpoint: endpoint.into(),
            token,
            request_timeout: Duration::from_secs(60),
            wait_timeout: Duration::from_secs(3600),
            observer: None,
        }
    }

    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }
}

#[derive(Debug, Clone)]
pub struct LotusClient {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    next_id: Arc<AtomicU64>,
}

#[derive(Serialize)]
struct Request<'a> {
    jsonrpc: &'static str,
    method: String,
    params: &'a Value,
    id: u64,
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<RpcErrorBody>,
}

#[derive(Deserialize)]
struct RpcErrorBody {
    code: i64,
    message: String,
}

#[derive(Deserialize)]
#[serde(transparent)]
struct Amount(#[serde(with = "token_amount")] TokenAmount);

#[derive(Deserialize)]
#[serde(transparent)]
struct Bits(#[serde(with = "bitfield_runs")] BitField);

#[derive(Deserialize)]
#[serde(transparent)]
struct Bytes(#[serde(with = "base64_bytes")] Vec<u8>);

#[derive(Serialize)]
#[serde(transparent)]
struct CidParam<'a>(#[serde(with = "cid_json")] &'a Cid);

#[derive(Deserialize)]
#[serde(transparent)]
struct CidOut(#[serde(with = "cid_json")] Cid);

#[derive(Serialize)]
#[serde(transparent)]
struct BytesParam<'a>(#[serde(with = "base64_bytes")] &'a [u8]);

impl LotusClient {
    pub fn new(config: ClientConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().build()?;
        Ok(Self { http, config: Arc::new(config), next_id: Arc::new(AtomicU64::new(1)) })
    }

    pub fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    async fn call<R: DeserializeOwned>(&self, method: &'static str, params: Value) -> Result<R, ClientError> {
        self.call_with_timeout(method, params, self.config.request_timeout).await
    }

    async fn call_with_timeout<R: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
        timeout: Duration,
    ) -> Result<R, ClientError> {
        let started = Instant::now();
        let result = self.send(method, params, timeout).await;
        if let Some(observer) = &self.config.observer {
            observer.observe(method, result.is_ok(), started.elapsed());
        }
        result
    }

    async fn send<R: DeserializeOwned>(&self, method: &'static str, params: Value, timeout: Duration) -> Result<R, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = Request { jsonrpc: "2.0", method: format!("Filecoin.{method}"), params: &params, id };
        tracing::debug!(method, id, endpoint = %self.config.endpoint, "chain RPC call");
        let mut request = self.http.post(&self.config.endpoint).timeout(timeout).json(&body);
        if let Some(token) = &self.config.token {
            request = request.header(reqwest::header::AUTHORIZATION, token.bearer_header());
        }
        let transport = |source: reqwest::Error| ClientError::Transport {
            method,
            endpoint: self.config.endpoint.clone(),
            source: source.without_url(),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ClientError::Unauthorized { method, status: status.as_u16() });
        }
        let text = response.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(ClientError::Http { method, status: status.as_u16(), body: truncate(&text) });
        }
        let parsed: Response = serde_json::from_str(&text).map_err(|source| ClientError::Decode { method, source })?;
        if let Some(err) = parsed.error {
            return Err(ClientError::Rpc { method, code: err.code, message: err.message });
        }
        serde_json::from_value(parsed.result.unwrap_or(Value::Null))
            .map_err(|source| ClientError::Decode { method, source })
    }

    pub async fn chain_head(&self) -> Result<TipSet, ClientError> {
        self.call("ChainHead", json!([])).await
    }

    pub async fn chain_get_tipset_by_height(&self, epoch: ChainEpoch, tsk: &TipSetKey) -> Result<TipSet, ClientError> {
        self.call("ChainGetTipSetByHeight", json!([epoch, tsk])).await
    }

    pub async fn state_network_version(&self, tsk: &TipSetKey) -> Result<u32, ClientError> {
        self.call("StateNetworkVersion", json!([tsk])).await
    }

    /// Chain (ticket) randomness: the seal ticket (DST 5) and the PoSt chain commit (DST 9).
    pub async fn state_get_randomness_from_tickets(
        &self,
        dst: DomainSeparationTag,
        epoch: ChainEpoch,
        entropy: &[u8],
        tsk: &TipSetKey,
    ) -> Result<[u8; 32], ClientError> {
        self.randomness("StateGetRandomnessFromTickets", dst, epoch, entropy, tsk).await
    }

    /// Beacon randomness: the interactive seed (DST 6) and the window PoSt challenge (DST 4).
    pub async fn state_get_randomness_from_beacon(
        &self,
        dst: DomainSeparationTag,
        epoch: ChainEpoch,
        entropy: &[u8],
        tsk: &TipSetKey,
    ) -> Result<[u8; 32], ClientError> {
        self.randomness("StateGetRandomnessFromBeacon", dst, epoch, entropy, tsk).await
    }

    async fn randomness(
        &self,
        method: &'static str,
        dst: DomainSeparationTag,
        epoch: ChainEpoch,
        entropy: &[u8],
        tsk: &TipSetKey,
    ) -> Result<[u8; 32], ClientError> {
        let Bytes(bytes) = self.call(method, json!([dst.value(), epoch, BytesParam(entropy), tsk])).await?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| ClientError::Invalid { method, reason: format!("randomness of {} bytes, expected 32", bytes.len()) })
    }

    pub async fn state_miner_info(&self, miner: &ChainAddress, tsk: &TipSetKey) -> Result<MinerInfo, ClientError> {
        self.call("StateMinerInfo", json!([miner, tsk])).await
    }

    pub async fn state_miner_sector_allocated(
        &self,
        miner: &ChainAddress,
        sector: SectorNumber,
        tsk: &TipSetKey,
    ) -> Result<bool, ClientError> {
        self.call("StateMinerSectorAllocated", json!([miner, sector, tsk])).await
    }

    /// `None` when the sector is not (or no longer) precommitted.
    pub async fn state_sector_precommit_info(
        &self,
        miner: &ChainAddress,
        sector: SectorNumber,
        tsk: &TipSetKey,
    ) -> Result<Option<SectorPreCommitOnChainInfo>, ClientError> {
        self.call("StateSectorPreCommitInfo", json!([miner, sector, tsk])).await
    }

    /// `None` when the sector is not active on chain.
    pub async fn state_sector_get_info(
        &self,
        miner: &ChainAddress,
        sector: SectorNumber,
        tsk: &TipSetKey,
    ) -> Result<Option<SectorOnChainInfo>, ClientError> {
        self.call("StateSectorGetInfo", json!([miner, sector, tsk])).await
    }

    pub async fn state_miner_active_sectors(
        &self,
        miner: &ChainAddress,
        tsk: &TipSetKey,
    ) -> Result<Vec<SectorOnChainInfo>, ClientError> {
        let sectors: Option<Vec<SectorOnChainInfo>> = self.call("StateMinerActiveSectors", json!([miner, tsk])).await?;
        Ok(sectors.unwrap_or_default())
    }

    /// The current or next deadline (`DeadlineInfo(height).NextNotElapsed()`).
    pub async fn state_miner_proving_deadline(
        &self,
        miner: &ChainAddress,
        tsk: &TipSetKey,
    ) -> Result<DeadlineInfo, ClientError> {
        self.call("StateMinerProvingDeadline", json!([miner, tsk])).await
    }

    pub async fn state_miner_deadlines(&self, miner: &ChainAddress, tsk: &TipSetKey) -> Result<Vec<Deadline>, ClientError> {
        self.call("StateMinerDeadlines", json!([miner, tsk])).await
    }

    pub async fn state_miner_partitions(
        &self,
        miner: &ChainAddress,
        deadline: u64,
        tsk: &TipSetKey,
    ) -> Result<Vec<Partition>, ClientError> {
        let partitions: Option<Vec<Partition>> = self.call("StateMinerPartitions", json!([miner, deadline, tsk])).await?;
        Ok(partitions.unwrap_or_default())
    }

    pub async fn state_miner_faults(&self, miner: &ChainAddress, tsk: &TipSetKey) -> Result<BitField, ClientError> {
        let Bits(bits) = self.call("StateMinerFaults", json!([miner, tsk])).await?;
        Ok(bits)
    }

    pub async fn state_miner_recoveries(&self, miner: &ChainAddress, tsk: &TipSetKey) -> Result<BitField, ClientError> {
        let Bits(bits) = self.call("StateMinerRecoveries", json!([miner, tsk])).await?;
        Ok(bits)
    }

    /// The precommit deposit (Lotus overestimates it by 10%).
    pub async fn state_miner_pre_commit_deposit_for_power(
        &self,
        miner: &ChainAddress,
        info: &SectorPreCommitInfo,
        tsk: &TipSetKey,
    ) -> Result<TokenAmount, ClientError> {
        let Amount(a) = self.call("StateMinerPreCommitDepositForPower", json!([miner, info, tsk])).await?;
        Ok(a)
    }

    /// The initial pledge for a sector (Lotus overestimates it by 10%).
    pub async fn state_miner_initial_pledge_for_sector(
        &self,
        sector_duration: ChainEpoch,
        sector_size: u64,
        verified_size: u64,
        tsk: &TipSetKey,
    ) -> Result<TokenAmount, ClientError> {
        let Amount(a) = self
            .call("StateMinerInitialPledgeForSector", json!([sector_duration, sector_size, verified_size, tsk]))
            .await?;
        Ok(a)
    }

    pub async fn gas_estimate_message_gas(
        &self,
        msg: &Message,
        spec: Option<&MessageSendSpec>,
        tsk: &TipSetKey,
    ) -> Result<Message, ClientError> {
        let method = "GasEstimateMessageGas";
        let msg = with_cid(method, msg)?;
        self.call(method, json!([msg, spec, tsk])).await
    }

    /// Signs and pushes `msg` (nonce 0; the node assigns it). With `spec.msg_uuid` set, pushing
    /// the same UUID again returns the message already signed for it.
    pub async fn mpool_push_message(
        &self,
        msg: &Message,
        spec: Option<&MessageSendSpec>,
    ) -> Result<SignedMessage, ClientError> {
        let method = "MpoolPushMessage";
        let msg = with_cid(method, msg)?;
        self.call(method, json!([msg, spec])).await
    }

    /// A message by its CID, signed or not (what `lotus mpool replace` starts from).
    pub async fn chain_get_message(&self, msg: &Cid) -> Result<Message, ClientError> {
        self.call("ChainGetMessage", json!([CidParam(msg)])).await
    }

    /// Signs `msg` with the node's key for `from` (needs a token with the `sign` permission).
    pub async fn wallet_sign_message(&self, from: &ChainAddress, msg: &Message) -> Result<SignedMessage, ClientError> {
        let method = "WalletSignMessage";
        let msg = with_cid(method, msg)?;
        self.call(method, json!([from, msg])).await
    }

    /// Pushes a signed message as it is (its nonce included): how a stuck message is replaced.
    pub async fn mpool_push(&self, signed: &SignedMessage) -> Result<Cid, ClientError> {
        let CidOut(cid) = self.call("MpoolPush", json!([signed])).await?;
        Ok(cid)
    }

    /// Looks `limit` epochs back (-1: no limit) from `from` for the message; `None` if not found.
    pub async fn state_search_msg(
        &self,
        from: &TipSetKey,
        msg: &Cid,
        limit: ChainEpoch,
        allow_replaced: bool,
    ) -> Result<Option<MsgLookup>, ClientError> {
        self.call("StateSearchMsg", json!([from, CidParam(msg), limit, allow_replaced])).await
    }

    /// Blocks on the node until the message has `confidence` epochs on top of it.
    pub async fn state_wait_msg(
        &self,
        msg: &Cid,
        confidence: u64,
        limit: ChainEpoch,
        allow_replaced: bool,
    ) -> Result<MsgLookup, ClientError> {
        let method = "StateWaitMsg";
        let found: Option<MsgLookup> = self
            .call_with_timeout(method, json!([CidParam(msg), confidence, limit, allow_replaced]), self.config.wait_timeout)
            .await?;
        found.ok_or_else(|| ClientError::Invalid { method, reason: "null lookup".into() })
    }
}

fn with_cid(method: &'static str, msg: &Message) -> Result<Message, ClientError> {
    msg.clone().with_cid().map_err(|source| ClientError::Message { method, source })
}

fn truncate(body: &str) -> String {
    const MAX: usize = 512;
    match body.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}
