//! The message pool as Lotus' (chain/messagepool): signed messages by sender and nonce, the
//! checks of `MpoolPush` and `MpoolPushMessage`, replace-by-fee, MsgUuid idempotency, inclusion in
//! nonce order, receipts, per method and per sector message counts, and the injected faults
//! tests ask for.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use cid::Cid;
use filecoin_chain::ChainEpoch;
use filecoin_chain::address::ChainAddress;
use filecoin_chain::fees::{RBF_MIN_PERCENT, rbf_premium};
use filecoin_chain::message::{MAX_MESSAGE_SIZE, Message, MessageReceipt, MessageSendSpec, SignedMessage};
use filecoin_chain::methods::{MinerMethod, sectors_of};
use filecoin_chain::params::{self, ProveCommitSectors3Params, SubmitWindowedPoStParams};
use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;
use fvm_shared::sector::SectorNumber;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::gas::{self, BLOCK_GAS_LIMIT, GasDefaults};
use crate::wallet::{SignError, Wallet};

/// `MinimumBaseFee` (lotus build/buildconstants/params_shared_vals.go:91, the 2k build's too).
pub const MINIMUM_BASE_FEE: u64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// lotus node/impl/full/mpool.go:185-187.
    #[error("MpoolPushMessage expects message nonce to be 0, was {0}")]
    NonZeroNonce(u64),
    #[error("no key for address {0}: the simulator signs for its owner and worker only")]
    UnknownSender(String),
    #[error("cannot encode the message: {0}")]
    Encode(String),
    /// messagepool.go:737-740.
    #[error("mpool message too large ({0}B): message too big")]
    TooLarge(usize),
    /// messagepool.go:742-745 (`ValidForBlockInclusion`, chain/types/message.go:153-224).
    #[error("message not valid for block inclusion: {0}")]
    NotValid(String),
    /// messagepool.go:755-757.
    #[error("gas fee cap too low")]
    FeeCapTooLow,
    /// messagepool.go:759-761.
    #[error("signature verification failed: {0}")]
    Signature(String),
    /// messagepool.go:885-887.
    #[error("minimum expected nonce is {expected}, got {got}: message nonce too low")]
    NonceTooLow { expected: u64, got: u64 },
    /// messagepool.go:654-659 via addTs :911-914.
    #[error(
        "verify msg failed: message will not be included in a block: 'GasLimit' field cannot be less than the cost of \
         storing a message on chain {limit} < {min}"
    )]
    BelowInclusionCost { limit: i64, min: i64 },
    /// messagepool.go:295-298 via addTs :920-922.
    #[error("failed to add locked: message from {from} with nonce {nonce} already in mpool: message with nonce already exists")]
    ExistingNonce { from: String, nonce: u64 },
    /// messagepool.go:280-294 via addTs :920-922.
    #[error(
        "failed to add locked: message from {from} with nonce {nonce} already in mpool, increase GasPremium to {min} \
         from {premium} to trigger replace by fee: replace by fee has too low GasPremium"
    )]
    RbfTooLow { from: String, nonce: u64, min: String, premium: String },
    /// What MpoolPushMessage makes of a refused push (node/impl/full/mpool.go:217-222).
    #[error("mpool push: failed to push message: {0}")]
    Refused(Box<PushError>),
    #[error(transparent)]
    Sign(#[from] SignError),
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

/// `RaiseBaseFeeAfterNext`: once the pool takes the next message of `method` (about `sector`, or
/// a SubmitWindowedPoSt for `deadline`, when given), the base fee becomes `base_fee`, so the
/// message, priced at the old one, is left out until replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseFeeRule {
    #[serde(default)]
    pub method: Option<u64>,
    #[serde(default)]
    pub sector: Option<SectorNumber>,
    #[serde(default)]
    pub deadline: Option<u64>,
    #[serde(with = "filecoin_chain::lotus_json::token_amount")]
    pub base_fee: TokenAmount,
}

impl BaseFeeRule {
    fn matches(&self, msg: &Message) -> bool {
        let deadline = || params::decode::<SubmitWindowedPoStParams>(&msg.params).ok().map(|p| p.deadline);
        self.method.is_none_or(|m| m == msg.method)
            && self.sector.is_none_or(|s| sectors_of(msg.method, &msg.params).contains(&s))
            && self.deadline.is_none_or(|d| msg.method == MinerMethod::SubmitWindowedPoSt.number() && deadline() == Some(d))
    }
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

/// Messages pushed (after MsgUuid de-duplication), counted once per sender and nonce: a
/// replacement is the same message as the one it replaces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageCounts {
    pub by_method: BTreeMap<u64, u64>,
    pub by_sector: BTreeMap<SectorNumber, BTreeMap<u64, u64>>,
    /// ProveCommitSectors3 messages that proved the sector with an aggregate proof.
    #[serde(default)]
    pub aggregated: BTreeMap<SectorNumber, u64>,
    /// Replacements the pool took (MpoolPush of a pending sender and nonce), by method.
    #[serde(default)]
    pub replaced: BTreeMap<u64, u64>,
}

#[derive(Debug, Clone)]
struct Pending {
    cid: Cid,
    /// Push order, which inclusion follows across senders.
    seq: u64,
    include_at: ChainEpoch,
    /// `DropNext`: the pool keeps it, no block ever takes it.
    dropped: bool,
}

/// A message a tipset included: its receipt exists once the next tipset does.
#[derive(Debug, Clone)]
struct Landed {
    cid: Cid,
    receipt: Option<(MessageReceipt, ChainEpoch)>,
}

/// Where the message holding a CID's sender and nonce executed.
#[derive(Debug, Clone)]
pub struct Execution {
    /// The executed message: the one asked about or a replacement.
    pub cid: Cid,
    pub nonce: u64,
    pub receipt: MessageReceipt,
    /// The tipset whose parent included it, whose receipts hold it.
    pub epoch: ChainEpoch,
    /// Whether the executed message makes the same call (`EqualCall`, lotus chain/types/
    /// message.go:142-151).
    pub equal_call: bool,
}

pub struct Mpool {
    wallet: Wallet,
    inclusion_delay: ChainEpoch,
    seq: u64,
    by_uuid: HashMap<Uuid, Cid>,
    /// Every message the pool took, replaced ones included (ChainGetMessage finds them all).
    messages: HashMap<Cid, SignedMessage>,
    pending: BTreeMap<(u64, u64), Pending>,
    /// Each sender's next nonce after the head tipset's messages (the actor nonce the pool checks).
    state_nonces: HashMap<u64, u64>,
    landed: HashMap<(u64, u64), Landed>,
    counts: MessageCounts,
    fail: Rules,
    drop: Rules,
    delay: Rules,
    base_fee_rules: Vec<BaseFeeRule>,
}

impl Mpool {
    pub fn new(wallet: Wallet, inclusion_delay: ChainEpoch) -> Self {
        Self {
            wallet,
            inclusion_delay,
            seq: 0,
            by_uuid: HashMap::new(),
            messages: HashMap::new(),
            pending: BTreeMap::new(),
            state_nonces: HashMap::new(),
            landed: HashMap::new(),
            counts: MessageCounts::default(),
            fail: Rules::default(),
            drop: Rules::default(),
            delay: Rules::default(),
            base_fee_rules: Vec::new(),
        }
    }

    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }

    fn state_nonce(&self, sender: u64) -> u64 {
        self.state_nonces.get(&sender).copied().unwrap_or(0)
    }

    /// The nonce MpoolPushMessage gives the sender's next message: after its pending ones.
    fn next_nonce(&self, sender: u64) -> u64 {
        let pending = self.pending.range((sender, 0)..=(sender, u64::MAX)).next_back().map(|((_, n), _)| n + 1);
        pending.unwrap_or(0).max(self.state_nonce(sender))
    }

    /// `MpoolPushMessage` (lotus node/impl/full/mpool.go:148-234): the MsgUuid's message if it
    /// was pushed before, else the message estimated, from the sender's key address, with the
    /// sender's next nonce, signed and pushed.
    pub fn push_message(
        &mut self,
        msg: Message,
        spec: Option<&MessageSendSpec>,
        head: ChainEpoch,
        gas: &GasDefaults,
    ) -> Result<SignedMessage, PushError> {
        let uuid = spec.map(|s| s.msg_uuid).filter(|u| !u.is_nil());
        if let Some(signed) = uuid.and_then(|u| self.by_uuid.get(&u)).and_then(|c| self.messages.get(c)) {
            return Ok(signed.clone());
        }
        let (sender, key) = self.wallet.resolve(msg.from.address()).ok_or_else(|| PushError::UnknownSender(msg.from.to_string()))?;
        if msg.nonce != 0 {
            return Err(PushError::NonZeroNonce(msg.nonce));
        }
        let mut msg = gas::estimate(msg, spec, gas).map_err(|e| PushError::Encode(e.to_string()))?;
        // mpool.go:201-204: a message from an ID address is sent from its key address.
        msg.from = ChainAddress::new(key, msg.from.network());
        msg.nonce = self.next_nonce(sender);
        let from = msg.from;
        let signed = self.wallet.sign_message(&from, msg)?;
        self.push(signed.clone(), head).map_err(|e| PushError::Refused(Box::new(e)))?;
        if let Some(u) = uuid {
            self.by_uuid.insert(u, signed.cid);
        }
        Ok(signed)
    }

    /// `MpoolPush` (lotus node/impl/full/mpool.go:134-139, chain/messagepool/messagepool.go
    /// `Push` :698-734): `checkMessage` (:736-764), the nonce against the sender's (:885-887),
    /// the inclusion cost (:653-659), then `msgSet.add`, which replaces a pending message of the
    /// same nonce only for a premium of at least `ComputeMinRBF` (:246-300).
    pub fn push(&mut self, signed: SignedMessage, head: ChainEpoch) -> Result<Cid, PushError> {
        let msg = &signed.message;
        let size = signed.encoded_len().map_err(|e| PushError::Encode(e.to_string()))?;
        if size > MAX_MESSAGE_SIZE {
            return Err(PushError::TooLarge(size));
        }
        valid_for_block_inclusion(msg).map_err(PushError::NotValid)?;
        if msg.gas_fee_cap < TokenAmount::from_atto(MINIMUM_BASE_FEE) {
            return Err(PushError::FeeCapTooLow);
        }
        self.wallet.verify(&signed).map_err(PushError::Signature)?;
        let (sender, _) = self.wallet.resolve(msg.from.address()).ok_or_else(|| PushError::UnknownSender(msg.from.to_string()))?;
        let expected = self.state_nonce(sender);
        if expected > msg.nonce {
            return Err(PushError::NonceTooLow { expected, got: msg.nonce });
        }
        let min = gas::on_chain_message(msg.encoded_len().map_err(|e| PushError::Encode(e.to_string()))?);
        if msg.gas_limit < min {
            return Err(PushError::BelowInclusionCost { limit: msg.gas_limit, min });
        }
        let key = (sender, msg.nonce);
        let replaces = match self.pending.get(&key) {
            Some(p) if p.cid == signed.cid => return Err(PushError::ExistingNonce { from: msg.from.to_string(), nonce: msg.nonce }),
            Some(p) => {
                let old = self.messages.get(&p.cid).map(|m| m.message.gas_premium.clone()).unwrap_or_default();
                let min = rbf_premium(&old, RBF_MIN_PERCENT);
                if msg.gas_premium < min {
                    return Err(PushError::RbfTooLow {
                        from: msg.from.to_string(),
                        nonce: msg.nonce,
                        min: min.atto().to_string(),
                        premium: msg.gas_premium.atto().to_string(),
                    });
                }
                true
            }
            None => false,
        };

        let method = msg.method;
        let sectors = sectors_of(method, &msg.params);
        if replaces {
            *self.counts.replaced.entry(method).or_default() += 1;
        } else {
            self.count(method, &msg.params);
        }
        let dropped = self.drop.take(method, &sectors).is_some();
        let extra = if dropped { 0 } else { self.delay.take(method, &sectors).and_then(|r| r.epochs).unwrap_or(0) };
        self.seq += 1;
        let cid = signed.cid;
        self.pending.insert(key, Pending { cid, seq: self.seq, include_at: head + self.inclusion_delay + extra, dropped });
        self.messages.insert(cid, signed);
        Ok(cid)
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

    /// The messages the tipset at `epoch` includes: each sender's pending messages from its
    /// next nonce on, stopping at the first one not due, dropped, or whose fee cap is below the
    /// base fee (a nonce gap ends a sender's chain, lotus chain/messagepool/selection.go:804-817);
    /// across senders in push order.
    pub fn include(&mut self, epoch: ChainEpoch, base_fee: &TokenAmount) -> Vec<SignedMessage> {
        let senders: BTreeSet<u64> = self.pending.keys().map(|(s, _)| *s).collect();
        let mut chains: Vec<VecDeque<(u64, u64, Pending)>> = Vec::new();
        for sender in senders {
            let mut chain = VecDeque::new();
            let mut nonce = self.state_nonce(sender);
            while let Some(p) = self.pending.get(&(sender, nonce)) {
                let fee_ok = self.messages.get(&p.cid).is_some_and(|m| &m.message.gas_fee_cap >= base_fee);
                if p.dropped || p.include_at > epoch || !fee_ok {
                    break;
                }
                chain.push_back((sender, nonce, p.clone()));
                nonce += 1;
            }
            chains.push(chain);
        }
        let mut included = Vec::new();
        while let Some(next) = chains.iter_mut().filter(|c| !c.is_empty()).min_by_key(|c| c.front().map(|(_, _, p)| p.seq)) {
            let Some((sender, nonce, p)) = next.pop_front() else { break };
            self.pending.remove(&(sender, nonce));
            self.state_nonces.insert(sender, nonce + 1);
            self.landed.insert((sender, nonce), Landed { cid: p.cid, receipt: None });
            if let Some(m) = self.messages.get(&p.cid) {
                included.push(m.clone());
            }
        }
        included
    }

    /// The exit code a `FailNext` rule gives the message about to execute, if one matches.
    pub fn take_failure(&mut self, msg: &Message) -> Option<ExitCode> {
        let sectors = sectors_of(msg.method, &msg.params);
        self.fail.take(msg.method, &sectors).and_then(|r| r.exit_code).map(ExitCode::new)
    }

    /// Records the receipt of an included message, held by the tipset at `epoch`.
    pub fn record(&mut self, signed: &SignedMessage, receipt: MessageReceipt, epoch: ChainEpoch) {
        let Some((sender, _)) = self.wallet.resolve(signed.message.from.address()) else { return };
        if let Some(l) = self.landed.get_mut(&(sender, signed.message.nonce)) {
            l.receipt = Some((receipt, epoch));
        }
    }

    pub fn message(&self, cid: &Cid) -> Option<&SignedMessage> {
        self.messages.get(cid)
    }

    /// Where the message with `cid`'s sender and nonce executed; `None` while none did.
    pub fn execution(&self, cid: &Cid) -> Option<Execution> {
        let wanted = self.messages.get(cid)?;
        let (sender, _) = self.wallet.resolve(wanted.message.from.address())?;
        let nonce = wanted.message.nonce;
        let landed = self.landed.get(&(sender, nonce))?;
        let (receipt, epoch) = landed.receipt.clone()?;
        let executed = self.messages.get(&landed.cid)?;
        Some(Execution { cid: landed.cid, nonce, receipt, epoch, equal_call: equal_call(&executed.message, &wanted.message) })
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

    pub fn raise_base_fee_after_next(&mut self, rule: BaseFeeRule) {
        self.base_fee_rules.push(rule);
    }

    /// The base fee the first `RaiseBaseFeeAfterNext` rule matching `msg` asks for, consuming it.
    pub fn take_base_fee_rule(&mut self, msg: &Message) -> Option<TokenAmount> {
        let i = self.base_fee_rules.iter().position(|r| r.matches(msg))?;
        Some(self.base_fee_rules.remove(i).base_fee)
    }
}

/// `EqualCall` (lotus chain/types/message.go:142-151): equal but for the gas fields.
fn equal_call(a: &Message, b: &Message) -> bool {
    let zero = TokenAmount::from_atto(0);
    let strip = |m: &Message| Message { gas_limit: 0, gas_fee_cap: zero.clone(), gas_premium: zero.clone(), cid: None, ..m.clone() };
    strip(a) == strip(b)
}

/// The checks of `ValidForBlockInclusion(0, …)` (lotus chain/types/message.go:153-224) a message
/// built from JSON can fail.
fn valid_for_block_inclusion(m: &Message) -> Result<(), String> {
    let zero = TokenAmount::from_atto(0);
    if m.version != 0 {
        return Err("'Version' unsupported".into());
    }
    if m.value < zero {
        return Err("'Value' field cannot be negative".into());
    }
    if m.gas_fee_cap < zero {
        return Err("'GasFeeCap' field cannot be negative".into());
    }
    if m.gas_premium < zero {
        return Err("'GasPremium' field cannot be negative".into());
    }
    if m.gas_premium > m.gas_fee_cap {
        return Err("'GasFeeCap' less than 'GasPremium'".into());
    }
    if m.gas_limit > BLOCK_GAS_LIMIT {
        return Err(format!("'GasLimit' field cannot be greater than a block's gas limit ({} > {BLOCK_GAS_LIMIT})", m.gas_limit));
    }
    if m.gas_limit <= 0 {
        return Err(format!("'GasLimit' field {} must be positive", m.gas_limit));
    }
    Ok(())
}
