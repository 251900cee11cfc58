//! The message pool: MsgUuid idempotency, nonces, gas estimation, inclusion, receipts, per
//! method and per sector message counts, and the injected faults tests ask for.

use std::collections::{BTreeMap, HashMap};

use cid::Cid;
use filecoin_chain::ChainEpoch;
use filecoin_chain::message::{Message, MessageReceipt, MessageSendSpec, SIG_TYPE_BLS, Signature, SignedMessage};
use filecoin_chain::methods::{MinerMethod, sectors_of};
use filecoin_chain::params::{self, ProveCommitSectors3Params};
use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;
use fvm_shared::sector::SectorNumber;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::randomness::blake2b256;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("MpoolPushMessage expects message nonce to be 0, got {0}")]
    NonZeroNonce(u64),
    #[error("no key for address {0}: the simulator signs for its owner and worker only")]
    UnknownSender(String),
    #[error("gas premium {premium} exceeds fee cap {fee_cap}")]
    PremiumAboveFeeCap { premium: TokenAmount, fee_cap: TokenAmount },
    #[error("cannot compute the message CID: {0}")]
    Cid(String),
}

/// A rule that makes the next `count` messages of `method` (any method if `None`) misbehave;
/// with `sector`, only messages about that sector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    #[serde(default)]
    pub method: Option<u64>,
    #[serde(default = "one")]
    pub count: u32,
    /// `FailNext`: the receipt's exit code.
    #[serde(default)]
    pub exit_code: Option<u32>,
    /// `DelayNext`: extra epochs before inclusion.
    #[serde(default)]
    pub epochs: Option<ChainEpoch>,
    #[serde(default)]
    pub sector: Option<SectorNumber>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Default)]
struct Rules(Vec<FaultRule>);

impl Rules {
    /// Consumes one use of the first rule matching `method` and the message's `sectors`.
    fn take(&mut self, method: u64, sectors: &[SectorNumber]) -> Option<FaultRule> {
        let i = self.0.iter().position(|r| {
            r.count > 0 && r.method.is_none_or(|m| m == method) && r.sector.is_none_or(|s| sectors.contains(&s))
        })?;
        self.0[i].count -= 1;
        let rule = self.0[i].clone();
        if self.0[i].count == 0 {
            self.0.remove(i);
        }
        Some(rule)
    }
}

/// Messages pushed (after MsgUuid de-duplication), by method number and by sector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageCounts {
    pub by_method: BTreeMap<u64, u64>,
    pub by_sector: BTreeMap<SectorNumber, BTreeMap<u64, u64>>,
    /// ProveCommitSectors3 messages that proved the sector with an aggregate proof.
    #[serde(default)]
    pub aggregated: BTreeMap<SectorNumber, u64>,
}

#[derive(Debug, Clone)]
pub struct Pending {
    pub cid: Cid,
    pub include_at: ChainEpoch,
    pub failure: Option<ExitCode>,
}

#[derive(Debug, Clone)]
pub struct Executed {
    pub receipt: MessageReceipt,
    pub epoch: ChainEpoch,
}

pub struct Mpool {
    senders: Vec<u64>,
    nonces: HashMap<u64, u64>,
    by_uuid: HashMap<Uuid, Cid>,
    messages: HashMap<Cid, SignedMessage>,
    pending: Vec<Pending>,
    executed: HashMap<Cid, Executed>,
    counts: MessageCounts,
    fail: Rules,
    drop: Rules,
    delay: Rules,
    inclusion_delay: ChainEpoch,
}

pub struct GasDefaults {
    pub gas_limit: i64,
    pub gas_premium: TokenAmount,
    pub base_fee: TokenAmount,
}

impl Mpool {
    pub fn new(senders: Vec<u64>, inclusion_delay: ChainEpoch) -> Self {
        Self {
            senders,
            nonces: HashMap::new(),
            by_uuid: HashMap::new(),
            messages: HashMap::new(),
            pending: Vec::new(),
            executed: HashMap::new(),
            counts: MessageCounts::default(),
            fail: Rules::default(),
            drop: Rules::default(),
            delay: Rules::default(),
            inclusion_delay,
        }
    }

    /// Fills unset gas fields as Lotus' GasEstimateMessageGas does, capping the fee cap by
    /// `MaxFee` when one is given.
    pub fn estimate_gas(mut msg: Message, spec: Option<&MessageSendSpec>, gas: &GasDefaults) -> Message {
        let zero = TokenAmount::from_atto(0);
        if msg.gas_limit == 0 {
            msg.gas_limit = gas.gas_limit;
        }
        if msg.gas_premium == zero {
            msg.gas_premium = gas.gas_premium.clone();
        }
        if msg.gas_fee_cap == zero {
            msg.gas_fee_cap = gas.base_fee.clone() * 2u64 + &msg.gas_premium;
            if let Some(max_fee) = spec.map(|s| &s.max_fee).filter(|m| **m > zero) {
                let cap = max_fee.div_floor(msg.gas_limit as u64);
                if msg.gas_fee_cap > cap {
                    msg.gas_fee_cap = cap;
                }
                if msg.gas_premium > msg.gas_fee_cap {
                    msg.gas_premium = msg.gas_fee_cap.clone();
                }
            }
        }
        msg
    }

    pub fn push(
        &mut self,
        msg: Message,
        spec: Option<&MessageSendSpec>,
        head: ChainEpoch,
        gas: &GasDefaults,
    ) -> Result<SignedMessage, PushError> {
        if msg.nonce != 0 {
            return Err(PushError::NonZeroNonce(msg.nonce));
        }
        let uuid = spec.map(|s| s.msg_uuid).filter(|u| !u.is_nil());
        if let Some(signed) = uuid.and_then(|u| self.by_uuid.get(&u)).and_then(|c| self.messages.get(c)) {
            return Ok(signed.clone());
        }
        let sender = msg.from.id().filter(|id| self.senders.contains(id)).ok_or_else(|| PushError::UnknownSender(msg.from.to_string()))?;
        let mut msg = Self::estimate_gas(msg, spec, gas);
        if msg.gas_premium > msg.gas_fee_cap {
            return Err(PushError::PremiumAboveFeeCap { premium: msg.gas_premium, fee_cap: msg.gas_fee_cap });
        }
        let nonce = self.nonces.entry(sender).or_insert(0);
        msg.nonce = *nonce;
        *nonce += 1;
        let msg = msg.with_cid().map_err(|e| PushError::Cid(e.to_string()))?;
        let cid = msg.cid.ok_or_else(|| PushError::Cid("missing".into()))?;
        // A BLS-typed stand-in signature keeps the signed CID equal to the message CID, as for
        // real BLS messages; the simulator holds no keys.
        let mut sig = blake2b256(&cid.to_bytes()).to_vec();
        sig.resize(96, 0);
        let signed = SignedMessage { message: msg, signature: Signature { sig_type: SIG_TYPE_BLS, data: sig }, cid };

        let method = signed.message.method;
        self.count(method, &signed.message.params);
        if let Some(u) = uuid {
            self.by_uuid.insert(u, cid);
        }
        self.messages.insert(cid, signed.clone());
        let sectors = sectors_of(method, &signed.message.params);
        if self.drop.take(method, &sectors).is_none() {
            let extra = self.delay.take(method, &sectors).and_then(|r| r.epochs).unwrap_or(0);
            let failure = self.fail.take(method, &sectors).and_then(|r| r.exit_code).map(ExitCode::new);
            self.pending.push(Pending { cid, include_at: head + self.inclusion_delay + extra, failure });
        }
        Ok(signed)
    }

    fn count(&mut self, method: u64, params_bytes: &[u8]) {
        *self.counts.by_method.entry(method).or_default() += 1;
        for sector in sectors_of(method, params_bytes) {
            *self.counts.by_sector.entry(sector).or_default().entry(method).or_default() += 1;
        }
        if MinerMethod::from_number(method) == Some(MinerMethod::ProveCommitSectors3)
            && let Ok(p) = params::decode::<ProveCommitSectors3Params>(params_bytes)
            && !p.aggregate_proof.is_empty()
        {
            for a in &p.sector_activations {
                *self.counts.aggregated.entry(a.sector_number).or_default() += 1;
            }
        }
    }

    /// Takes the messages due at `epoch` whose fee cap covers the base fee, in push order.
    pub fn take_due(&mut self, epoch: ChainEpoch, base_fee: &TokenAmount) -> Vec<(SignedMessage, Option<ExitCode>)> {
        let (due, rest): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending).into_iter().partition(|p| {
            p.include_at <= epoch && self.messages.get(&p.cid).is_some_and(|m| &m.message.gas_fee_cap >= base_fee)
        });
        self.pending = rest;
        due.into_iter().filter_map(|p| self.messages.get(&p.cid).cloned().map(|m| (m, p.failure))).collect()
    }

    pub fn record(&mut self, cid: Cid, receipt: MessageReceipt, epoch: ChainEpoch) {
        self.executed.insert(cid, Executed { receipt, epoch });
    }

    pub fn executed(&self, cid: &Cid) -> Option<&Executed> {
        self.executed.get(cid)
    }

    pub fn counts(&self) -> &MessageCounts {
        &self.counts
    }

    pub fn fail_next(&mut self, rule: FaultRule) {
        self.fail.0.push(rule);
    }

    pub fn drop_next(&mut self, rule: FaultRule) {
        self.drop.0.push(rule);
    }

    pub fn delay_next(&mut self, rule: FaultRule) {
        self.delay.0.push(rule);
    }
}
