//! The JSON-RPC front: `POST /rpc/v1` (and `/rpc/v0`), Lotus method names and JSON shapes,
//! plus the `Sim.*` control methods tests use to advance epochs and inject faults.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cid::Cid;
use filecoin_chain::address::ChainAddress;
use filecoin_chain::lotus_json::{base64_bytes, bitfield_runs, cid_json, token_amount};
use filecoin_chain::message::{Message, MessageSendSpec, Signature, SignedMessage};
use filecoin_chain::tipset::TipSetKey;
use filecoin_chain::{ApiToken, ChainEpoch};
use fvm_ipld_bitfield::BitField;
use fvm_shared::econ::TokenAmount;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chain::{Chain, LOOKBACK_NO_LIMIT};
use crate::mpool::{BaseFeeRule, FaultRule};
use crate::sim::SimState;

/// JSON-RPC error codes: invalid params, method not found, and a generic server error as
/// go-jsonrpc reports handler errors.
const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;
const PARSE_ERROR: i64 = -32700;
const SERVER_ERROR: i64 = 1;

#[derive(Debug)]
pub struct RpcError {
    code: i64,
    message: String,
}

impl RpcError {
    fn server(e: impl std::fmt::Display) -> Self {
        Self { code: SERVER_ERROR, message: e.to_string() }
    }
}

#[derive(Clone)]
struct App {
    state: Arc<SimState>,
    token: Option<ApiToken>,
}

pub fn router(state: Arc<SimState>, token: Option<ApiToken>) -> Router {
    Router::new()
        .route("/rpc/v1", post(handle))
        .route("/rpc/v0", post(handle))
        .with_state(App { state, token })
}

#[derive(Deserialize)]
struct Request {
    method: String,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    id: Value,
}

async fn handle(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(token) = &app.token {
        let ok = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| token.matches_header(v));
        if !ok {
            return (StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
        }
    }
    let request: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return reply(Value::Null, Err(RpcError { code: PARSE_ERROR, message: e.to_string() })),
    };
    let params = Params(match request.params {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    });
    let result = dispatch(&app.state, &request.method, params).await;
    if let Err(e) = &result {
        tracing::debug!(method = %request.method, error = %e.message, "RPC error");
    }
    reply(request.id, result)
}

fn reply(id: Value, result: Result<Value, RpcError>) -> Response {
    let body = match result {
        Ok(v) => json!({"jsonrpc": "2.0", "id": id, "result": v}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}}),
    };
    axum::Json(body).into_response()
}

struct Params(Vec<Value>);

impl Params {
    /// Positional parameter `i`; a missing trailing one reads as `null`.
    fn get<T: DeserializeOwned>(&self, i: usize, name: &str) -> Result<T, RpcError> {
        let v = self.0.get(i).cloned().unwrap_or(Value::Null);
        serde_json::from_value(v)
            .map_err(|e| RpcError { code: INVALID_PARAMS, message: format!("parameter {i} ({name}): {e}") })
    }
}

#[derive(Deserialize)]
#[serde(transparent)]
struct CidArg(#[serde(with = "cid_json")] Cid);

#[derive(Serialize)]
#[serde(transparent)]
struct CidOut(#[serde(with = "cid_json")] Cid);

/// A signed message as `MpoolPush` takes it; a `CID` field is ignored, as Lotus derives it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignedArg {
    message: Message,
    signature: Signature,
}

impl SignedArg {
    fn into_signed(self) -> Result<SignedMessage, RpcError> {
        // The simulator's signatures are BLS, whose signed CID is the message CID.
        let cid = self.message.compute_cid().map_err(RpcError::server)?;
        Ok(SignedMessage { message: Message { cid: Some(cid), ..self.message }, signature: self.signature, cid })
    }
}

#[derive(Deserialize)]
#[serde(transparent)]
struct BytesArg(#[serde(with = "base64_bytes")] Vec<u8>);

#[derive(Serialize)]
#[serde(transparent)]
struct BytesOut(#[serde(with = "base64_bytes")] Vec<u8>);

#[derive(Serialize)]
#[serde(transparent)]
struct BitsOut(#[serde(with = "bitfield_runs")] BitField);

#[derive(Deserialize)]
#[serde(transparent)]
struct OptBits(#[serde(with = "opt_bitfield")] Option<BitField>);

mod opt_bitfield {
    use super::*;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<BitField>, D::Error> {
        match Option::<Vec<u64>>::deserialize(d)? {
            None => Ok(None),
            Some(runs) => bitfield_runs::from_runs(&runs).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct AmountOut(#[serde(with = "token_amount")] TokenAmount);

#[derive(Deserialize)]
#[serde(transparent)]
struct AmountArg(#[serde(with = "token_amount")] TokenAmount);

/// Lotus reports deposits and pledges ×110/100.
fn overestimate(a: &TokenAmount) -> TokenAmount {
    TokenAmount::from_atto(a.atto() * 110u32 / 100u32)
}

fn to_value<T: Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(RpcError::server)
}

fn check_miner(chain: &Chain, addr: &ChainAddress) -> Result<(), RpcError> {
    if chain.is_miner(addr) {
        Ok(())
    } else {
        Err(RpcError::server(format!("actor {addr} not found: the simulator hosts miner {}", chain.miner_address())))
    }
}

async fn dispatch(state: &Arc<SimState>, method: &str, p: Params) -> Result<Value, RpcError> {
    match method {
        "Filecoin.StateWaitMsg" => {
            let CidArg(cid) = p.get(0, "cid")?;
            let confidence: u64 = p.get::<Option<u64>>(1, "confidence")?.unwrap_or(0);
            let limit: ChainEpoch = p.get::<Option<ChainEpoch>>(2, "lookback limit")?.unwrap_or(LOOKBACK_NO_LIMIT);
            let allow_replaced: bool = p.get::<Option<bool>>(3, "allow replaced")?.unwrap_or(true);
            let lookup = state.wait_msg(cid, confidence, limit, allow_replaced).await.map_err(RpcError::server)?;
            return to_value(lookup);
        }
        "Sim.AdvanceEpochs" => {
            let n: u64 = p.get(0, "epochs")?;
            let state = Arc::clone(state);
            let head = tokio::task::spawn_blocking(move || state.advance(n)).await.map_err(RpcError::server)?;
            return to_value(head);
        }
        _ => {}
    }
    let mut chain = state.lock();
    let head_tsk = |i: usize| -> Result<TipSetKey, RpcError> { p.get::<TipSetKey>(i, "tipset key") };
    let value = match method {
        "Filecoin.ChainHead" => to_value(chain.head_tipset().map_err(RpcError::server)?)?,
        "Filecoin.ChainGetTipSetByHeight" => {
            let epoch: ChainEpoch = p.get(0, "epoch")?;
            to_value(chain.tipset_by_height(epoch, &head_tsk(1)?).map_err(RpcError::server)?)?
        }
        "Filecoin.ChainGetMessage" => {
            let CidArg(cid) = p.get(0, "cid")?;
            to_value(chain.get_message(&cid).map_err(RpcError::server)?)?
        }
        "Filecoin.StateNetworkVersion" => to_value(chain.config().network_version)?,
        "Filecoin.StateGetRandomnessFromTickets" | "Filecoin.StateGetRandomnessFromBeacon" => {
            let dst: i64 = p.get(0, "domain separation tag")?;
            let epoch: ChainEpoch = p.get(1, "randomness epoch")?;
            let BytesArg(entropy) = p.get(2, "entropy")?;
            let tsk = head_tsk(3)?;
            let r = if method.ends_with("Tickets") {
                chain.randomness_from_tickets(dst, epoch, &entropy, &tsk)
            } else {
                chain.randomness_from_beacon(dst, epoch, &entropy, &tsk)
            };
            to_value(BytesOut(r.map_err(RpcError::server)?.to_vec()))?
        }
        "Filecoin.StateGetRandomnessDigestFromTickets" | "Filecoin.StateGetRandomnessDigestFromBeacon" => {
            let epoch: ChainEpoch = p.get(0, "randomness epoch")?;
            let tsk = head_tsk(1)?;
            let r = if method.ends_with("Tickets") { chain.ticket_digest(epoch, &tsk) } else { chain.beacon_digest(epoch, &tsk) };
            to_value(BytesOut(r.map_err(RpcError::server)?.to_vec()))?
        }
        "Filecoin.StateMinerInfo" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            to_value(chain.miner_info(&addr).map_err(RpcError::server)?)?
        }
        "Filecoin.StateLookupID" => {
            let addr: ChainAddress = p.get(0, "address")?;
            to_value(chain.lookup_id(&addr).map_err(RpcError::server)?)?
        }
        "Filecoin.StateMinerSectorAllocated" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            to_value(chain.miner().is_allocated(p.get(1, "sector number")?))?
        }
        "Filecoin.StateSectorPreCommitInfo" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            to_value(chain.miner().precommit(p.get(1, "sector number")?))?
        }
        "Filecoin.StateSectorGetInfo" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            to_value(chain.miner().sector(p.get(1, "sector number")?))?
        }
        "Filecoin.StateSectorPartition" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            let n: u64 = p.get(1, "sector number")?;
            let (d, part) = chain
                .miner()
                .location(n)
                .ok_or_else(|| RpcError::server(format!("sector {n} not found in any partition")))?;
            json!({"Deadline": d, "Partition": part})
        }
        "Filecoin.StateMinerActiveSectors" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            to_value(chain.miner().active_sectors())?
        }
        "Filecoin.StateMinerSectors" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            let OptBits(filter) = p.get(1, "sector filter")?;
            to_value(chain.miner().sectors(filter.as_ref()))?
        }
        "Filecoin.StateMinerProvingDeadline" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            let at = chain.resolve(&head_tsk(1)?).map_err(RpcError::server)?;
            to_value(chain.miner().deadline_info(at))?
        }
        "Filecoin.StateMinerDeadlines" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            to_value(chain.miner().deadlines())?
        }
        "Filecoin.StateMinerPartitions" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            to_value(chain.miner().partitions(p.get(1, "deadline index")?))?
        }
        "Filecoin.StateMinerFaults" | "Filecoin.StateMinerRecoveries" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            let bits = if method.ends_with("Faults") { chain.miner().faults() } else { chain.miner().recoveries() };
            to_value(BitsOut(bits))?
        }
        "Filecoin.StateMinerPreCommitDepositForPower" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            let _: filecoin_chain::miner::SectorPreCommitInfo = p.get(1, "precommit info")?;
            to_value(AmountOut(overestimate(&chain.miner().setup().pre_commit_deposit)))?
        }
        "Filecoin.StateMinerInitialPledgeForSector" => {
            let _: ChainEpoch = p.get(0, "sector duration")?;
            let _: u64 = p.get(1, "sector size")?;
            to_value(AmountOut(overestimate(&chain.miner().setup().initial_pledge)))?
        }
        "Filecoin.StateMinerAvailableBalance" => {
            let addr: ChainAddress = p.get(0, "miner")?;
            check_miner(&chain, &addr)?;
            // An unknown key fails; a known one reads the head's parent state, as all state here.
            chain.resolve(&head_tsk(1)?).map_err(RpcError::server)?;
            // Lotus adds the funds vested by the tipset's height to the actor's available balance
            // (node/impl/full/state.go:1670-1696); nothing vests here.
            to_value(AmountOut(chain.miner().funds().available()))?
        }
        "Filecoin.GasEstimateMessageGas" => {
            let msg: Message = p.get(0, "message")?;
            let spec: Option<MessageSendSpec> = p.get(1, "send spec")?;
            to_value(chain.estimate_gas(msg, spec.as_ref()).map_err(RpcError::server)?)?
        }
        "Filecoin.MpoolPushMessage" => {
            let msg: Message = p.get(0, "message")?;
            let spec: Option<MessageSendSpec> = p.get(1, "send spec")?;
            to_value(chain.push_message(msg, spec.as_ref()).map_err(RpcError::server)?)?
        }
        "Filecoin.MpoolPush" => {
            let signed: SignedArg = p.get(0, "signed message")?;
            to_value(CidOut(chain.push(signed.into_signed()?).map_err(RpcError::server)?))?
        }
        "Filecoin.WalletSignMessage" => {
            let signer: ChainAddress = p.get(0, "address")?;
            let msg: Message = p.get(1, "message")?;
            to_value(chain.sign_message(&signer, msg).map_err(RpcError::server)?)?
        }
        "Filecoin.StateSearchMsg" => {
            let tsk = head_tsk(0)?;
            let CidArg(cid) = p.get(1, "cid")?;
            let limit: ChainEpoch = p.get::<Option<ChainEpoch>>(2, "lookback limit")?.unwrap_or(LOOKBACK_NO_LIMIT);
            let allow_replaced: bool = p.get::<Option<bool>>(3, "allow replaced")?.unwrap_or(true);
            match chain.search_msg(&tsk, &cid, limit, allow_replaced) {
                Ok(found) => to_value(found)?,
                // node/impl/full/state.go:659-662: a replaced message is not found.
                Err(e) if !allow_replaced && e.is_replaced() => Value::Null,
                Err(e) => return Err(RpcError::server(e)),
            }
        }
        "Sim.FailNext" => {
            let rule: FaultRule = p.get(0, "rule")?;
            if rule.exit_code.is_none() {
                return Err(RpcError { code: INVALID_PARAMS, message: "FailNext needs exitCode".into() });
            }
            chain.mpool_mut().fail_next(rule);
            Value::Null
        }
        "Sim.DropNext" => {
            chain.mpool_mut().drop_next(p.get(0, "rule")?);
            Value::Null
        }
        "Sim.DelayNext" => {
            let rule: FaultRule = p.get(0, "rule")?;
            if rule.epochs.is_none_or(|e| e < 0) {
                return Err(RpcError { code: INVALID_PARAMS, message: "DelayNext needs a non-negative epochs".into() });
            }
            chain.mpool_mut().delay_next(rule);
            Value::Null
        }
        "Sim.RaiseBaseFeeAfterNext" => {
            let rule: BaseFeeRule = p.get(0, "rule")?;
            chain.mpool_mut().raise_base_fee_after_next(rule);
            Value::Null
        }
        "Sim.ExpirePrecommits" => {
            let sectors: Vec<u64> = p.get(0, "sector numbers")?;
            chain.expire_precommits(&sectors).map_err(RpcError::server)?;
            Value::Null
        }
        "Sim.NullRounds" => {
            let n: u64 = p.get(0, "null rounds")?;
            chain.add_null_rounds(n);
            Value::Null
        }
        "Sim.SetBaseFee" => {
            let AmountArg(fee) = p.get(0, "base fee (attoFIL)")?;
            chain.set_base_fee(fee);
            Value::Null
        }
        "Sim.MessageCounts" => to_value(chain.mpool().counts())?,
        "Sim.Config" => to_value(chain.config())?,
        other => {
            return Err(RpcError { code: METHOD_NOT_FOUND, message: format!("method '{other}' not found") });
        }
    };
    Ok(value)
}
