//! The simulated chain: tipsets (one block per epoch, none in a null round), randomness, the
//! miner actor and the message pool. As in Lotus, a tipset's messages execute, at that tipset's
//! epoch and before its cron, when the next tipset is built on it; state reads at a head see the
//! state its parent left (the parent state), and receipts are found in the tipset after the one
//! that included the message.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use cid::Cid;
use filecoin_chain::ChainEpoch;
use filecoin_chain::address::ChainAddress;
use filecoin_chain::message::{Message, MessageReceipt, MessageSendSpec, MsgLookup, SIG_TYPE_BLS, Signature, SignedMessage, cbor_cid};
use filecoin_chain::methods::MinerMethod;
use filecoin_chain::miner::{BeneficiaryTerm, MinerInfo};
use filecoin_chain::params;
use filecoin_chain::policy::CHAIN_FINALITY;
use filecoin_chain::randomness::draw_randomness_raw;
use filecoin_chain::tipset::{BeaconEntry, BlockHeader, ElectionProof, Ticket, TipSet, TipSetKey};
use fvm_shared::address::{Address, Network};
use fvm_shared::bigint::BigInt;
use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;
use fvm_shared::sector::RegisteredSealProof;

use crate::actor::{ActorError, Env, MinerActor, MinerSetup};
use crate::config::SimConfig;
use crate::gas::{self, GasDefaults};
use crate::mpool::{Mpool, PushError};
use crate::randomness::{ChainRandomness, EpochRandomness};
use crate::verifier::ProofVerifier;
use crate::wallet::{SignError, Wallet};

/// Lotus' `LookbackNoLimit` (chain/stmgr/stmgr.go): search the whole chain.
pub const LOOKBACK_NO_LIMIT: ChainEpoch = -1;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("tipset {0} not found")]
    UnknownTipSet(String),
    /// lotus chain/rand/rand.go:86-88.
    #[error("cannot draw randomness from the future: epoch {epoch} is after the lookup tipset at {height}")]
    FutureRandomness { epoch: ChainEpoch, height: ChainEpoch },
    #[error("randomness epoch {0} is before genesis")]
    BeforeGenesis(ChainEpoch),
    /// lotus chain/store/store.go:1272-1274.
    #[error("looking for tipset with height greater than start point, req: {epoch}, head: {head}")]
    FutureEpoch { epoch: ChainEpoch, head: ChainEpoch },
    /// lotus chain/store/store.go:1264-1266.
    #[error("height {0} is negative")]
    NegativeHeight(ChainEpoch),
    #[error("actor {0} not found")]
    UnknownActor(String),
    /// A message this node never saw (lotus chain/stmgr/searchwait.go:39-42 and :166-169, the
    /// blockstore's `ipld.ErrNotFound`).
    #[error("failed to load message: ipld: could not find {0}")]
    UnknownMessage(Cid),
    /// `ChainGetMessage` of a message this node never saw (node/impl/full/chain.go:653-660).
    #[error("ipld: could not find {0}")]
    NoSuchMessage(Cid),
    /// lotus chain/stmgr/searchwait.go:362-369 (`ErrMessageReplaced`).
    #[error("message was replaced: found message with equal nonce as the one we are looking for (F:{wanted} n {nonce}, TS: {found} n{nonce})")]
    Replaced { wanted: String, found: String, nonce: u64 },
    /// lotus chain/stmgr/searchwait.go:355-360.
    #[error(
        "message was replaced: found message with equal nonce as the one we are looking for that is NOT a valid \
         replacement message (F:{wanted} n {nonce}, TS: {found} n{nonce})"
    )]
    NotAReplacement { wanted: String, found: String, nonce: u64 },
    /// lotus chain/stmgr/searchwait.go:31-33.
    #[error("message confidence exceeds maximum: {0} > {CHAIN_FINALITY}")]
    ConfidenceTooHigh(u64),
    #[error("{0}")]
    NoPrecommit(String),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Sign(#[from] SignError),
}

impl ChainError {
    /// Lotus' `ErrMessageReplaced`, which StateSearchMsg answers with null when replacements are
    /// not allowed (node/impl/full/state.go:659-662).
    pub fn is_replaced(&self) -> bool {
        matches!(self, Self::Replaced { .. } | Self::NotAReplacement { .. })
    }
}

/// How many epochs before the start epoch have resolvable tipset keys.
const KNOWN_HISTORY: ChainEpoch = 10_000;

pub struct Chain {
    config: SimConfig,
    randomness: EpochRandomness,
    verifier: Arc<dyn ProofVerifier>,
    /// The last tipset (ChainHead).
    head: ChainEpoch,
    /// The last epoch the chain went through, a null round or the head.
    epoch: ChainEpoch,
    /// Epochs still to pass without a tipset.
    null_rounds_ahead: u64,
    null_rounds: BTreeSet<ChainEpoch>,
    /// The head tipset's messages, executed when its child is built.
    head_messages: Vec<SignedMessage>,
    /// The last epoch whose cron ran.
    cron_done: ChainEpoch,
    base_fee: TokenAmount,
    miner: MinerActor,
    mpool: Mpool,
    /// Tipset key CID → epoch, for every tipset produced so far.
    epochs_by_key: HashMap<Cid, ChainEpoch>,
}

impl Chain {
    pub fn new(config: SimConfig, verifier: Arc<dyn ProofVerifier>) -> Self {
        let setup = MinerSetup {
            id: config.miner_id,
            callers: vec![config.owner_id, config.worker_id],
            seal_proofs: config.seal_proofs.iter().map(|id| RegisteredSealProof::from(*id)).collect(),
            window_post_proof: config.window_post_proof(),
            partition_sectors: config
                .window_post_proof()
                .window_post_partition_sectors()
                .unwrap_or(2),
            proving_period_offset: config.proving_period_offset,
            policy: config.policy,
            pre_commit_deposit: TokenAmount::from_atto(config.pre_commit_deposit),
            initial_pledge: TokenAmount::from_atto(config.initial_pledge),
        };
        let wallet = Wallet::new(config.randomness_seed, &[config.owner_id, config.worker_id]);
        let mut chain = Self {
            randomness: EpochRandomness::new(config.randomness_seed),
            verifier,
            head: config.start_epoch,
            epoch: config.start_epoch,
            null_rounds_ahead: 0,
            null_rounds: BTreeSet::new(),
            head_messages: Vec::new(),
            cron_done: config.start_epoch - 1,
            base_fee: TokenAmount::from_atto(config.base_fee),
            miner: MinerActor::new(setup, TokenAmount::from_atto(config.miner_balance)),
            mpool: Mpool::new(wallet, config.inclusion_delay),
            epochs_by_key: HashMap::new(),
            config,
        };
        // Keys of the recent past are resolvable (ticket lookbacks reach 3780 epochs back).
        for e in (chain.head - KNOWN_HISTORY).max(0)..=chain.head {
            chain.epochs_by_key.insert(chain.block_cid(e), e);
        }
        chain
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The height of ChainHead: the last tipset, not a null round after it.
    pub fn head(&self) -> ChainEpoch {
        self.head
    }

    pub fn miner(&self) -> &MinerActor {
        &self.miner
    }

    pub fn mpool(&self) -> &Mpool {
        &self.mpool
    }

    pub fn mpool_mut(&mut self) -> &mut Mpool {
        &mut self.mpool
    }

    pub fn base_fee(&self) -> &TokenAmount {
        &self.base_fee
    }

    pub fn set_base_fee(&mut self, fee: TokenAmount) {
        self.base_fee = fee;
    }

    /// The next `n` epochs produce no tipset.
    pub fn add_null_rounds(&mut self, n: u64) {
        self.null_rounds_ahead += n;
    }

    fn network(&self) -> Network {
        Network::Testnet
    }

    pub fn miner_address(&self) -> ChainAddress {
        ChainAddress::new_id(self.config.miner_id, self.network())
    }

    pub fn is_miner(&self, addr: &ChainAddress) -> bool {
        addr.id() == Some(self.config.miner_id)
    }

    /// `StateLookupID`: an ID address as it is (lotus chain/state/statetree.go:344-347), the key
    /// address of the owner or worker as its ID.
    pub fn lookup_id(&self, addr: &ChainAddress) -> Result<ChainAddress, ChainError> {
        if addr.id().is_some() {
            return Ok(*addr);
        }
        match self.mpool.wallet().resolve(addr.address()) {
            Some((id, _)) => Ok(ChainAddress::new_id(id, addr.network())),
            None => Err(ChainError::UnknownActor(addr.to_string())),
        }
    }

    // --- tipsets ---------------------------------------------------------------------------

    /// One block per tipset; its CID is derived from the seed and the epoch.
    fn block_cid(&self, epoch: ChainEpoch) -> Cid {
        let mut bytes = b"chain-sim/block".to_vec();
        bytes.extend(self.config.randomness_seed.to_be_bytes());
        bytes.extend(epoch.to_be_bytes());
        cbor_cid(&bytes)
    }

    pub fn tipset_key(&self, epoch: ChainEpoch) -> TipSetKey {
        TipSetKey(vec![self.block_cid(epoch)])
    }

    /// The epoch a key names; the empty key is the head.
    pub fn resolve(&self, tsk: &TipSetKey) -> Result<ChainEpoch, ChainError> {
        match tsk.0.first() {
            None => Ok(self.head),
            Some(c) => self.epochs_by_key.get(c).copied().ok_or_else(|| ChainError::UnknownTipSet(c.to_string())),
        }
    }

    /// The last tipset at or before `epoch` (`epoch` ≤ head).
    fn tipset_at_or_before(&self, epoch: ChainEpoch) -> ChainEpoch {
        let mut e = epoch;
        while self.null_rounds.contains(&e) {
            e -= 1;
        }
        e
    }

    /// `ChainGetTipSetByHeight` from the tipset `tsk` names: the tipset at `epoch`, or for a
    /// null round the last one before it (lotus node/impl/full/chain.go:242-248 asks with
    /// `prev` true, chain/store/store.go:1263-1298).
    pub fn tipset_by_height(&self, epoch: ChainEpoch, tsk: &TipSetKey) -> Result<TipSet, ChainError> {
        let from = self.resolve(tsk)?;
        if epoch < 0 {
            return Err(ChainError::NegativeHeight(epoch));
        }
        if epoch > from {
            return Err(ChainError::FutureEpoch { epoch, head: from });
        }
        self.tipset(self.tipset_at_or_before(epoch))
    }

    pub fn head_tipset(&self) -> Result<TipSet, ChainError> {
        self.tipset(self.head)
    }

    fn tipset(&self, epoch: ChainEpoch) -> Result<TipSet, ChainError> {
        if epoch > self.head {
            return Err(ChainError::FutureEpoch { epoch, head: self.head });
        }
        let epoch = epoch.max(0);
        let parent = if epoch == 0 { None } else { Some(self.tipset_at_or_before(epoch - 1)) };
        let state_cid = |label: &[u8]| {
            let mut b = label.to_vec();
            b.extend(epoch.to_be_bytes());
            cbor_cid(&b)
        };
        let sig = |label: &[u8]| Signature { sig_type: SIG_TYPE_BLS, data: self.randomness_bytes(label, epoch) };
        // A block carries the beacon entries of every round since its parent, null rounds too.
        let first_round = parent.map_or(epoch, |p| p + 1);
        let beacon_entries =
            (first_round..=epoch).map(|r| BeaconEntry { round: r as u64, data: self.randomness.beacon_data(r) }).collect();
        let block = BlockHeader {
            miner: self.miner_address(),
            ticket: Some(Ticket { vrf_proof: self.randomness.ticket_vrf_proof(epoch) }),
            election_proof: Some(ElectionProof { win_count: 1, vrf_proof: self.randomness_bytes(b"election", epoch) }),
            beacon_entries,
            win_po_st_proof: vec![],
            parents: parent.map(|p| vec![self.block_cid(p)]).unwrap_or_default(),
            parent_weight: BigInt::from(epoch),
            height: epoch,
            parent_state_root: state_cid(b"state"),
            parent_message_receipts: state_cid(b"receipts"),
            messages: state_cid(b"messages"),
            bls_aggregate: Some(sig(b"bls-aggregate")),
            timestamp: epoch as u64 * 30,
            block_sig: Some(sig(b"block-sig")),
            fork_signaling: 0,
            parent_base_fee: self.base_fee.clone(),
        };
        Ok(TipSet { cids: self.tipset_key(epoch), blocks: vec![block], height: epoch })
    }

    fn randomness_bytes(&self, label: &[u8], epoch: ChainEpoch) -> Vec<u8> {
        let mut b = label.to_vec();
        b.extend(self.config.randomness_seed.to_be_bytes());
        b.extend(epoch.to_be_bytes());
        let mut out = crate::randomness::blake2b256(&b).to_vec();
        out.extend(crate::randomness::blake2b256(&out));
        out.extend(crate::randomness::blake2b256(&out[32..]));
        out
    }

    // --- randomness ------------------------------------------------------------------------

    fn chain_randomness(&self) -> ChainRandomness<'_> {
        ChainRandomness { seeds: &self.randomness, null_rounds: &self.null_rounds }
    }

    fn check_rand_epoch(&self, epoch: ChainEpoch, tsk: &TipSetKey) -> Result<(), ChainError> {
        let height = self.resolve(tsk)?;
        if epoch > height {
            return Err(ChainError::FutureRandomness { epoch, height });
        }
        Ok(())
    }

    pub fn ticket_digest(&self, epoch: ChainEpoch, tsk: &TipSetKey) -> Result<[u8; 32], ChainError> {
        self.check_rand_epoch(epoch, tsk)?;
        Ok(self.chain_randomness().ticket_digest(epoch))
    }

    pub fn beacon_digest(&self, epoch: ChainEpoch, tsk: &TipSetKey) -> Result<[u8; 32], ChainError> {
        self.check_rand_epoch(epoch, tsk)?;
        if epoch < 0 {
            return Err(ChainError::BeforeGenesis(epoch));
        }
        Ok(self.chain_randomness().beacon_digest(epoch))
    }

    pub fn randomness_from_tickets(&self, dst: i64, epoch: ChainEpoch, entropy: &[u8], tsk: &TipSetKey) -> Result<[u8; 32], ChainError> {
        Ok(draw_randomness_raw(&self.ticket_digest(epoch, tsk)?, dst, epoch, entropy))
    }

    pub fn randomness_from_beacon(&self, dst: i64, epoch: ChainEpoch, entropy: &[u8], tsk: &TipSetKey) -> Result<[u8; 32], ChainError> {
        Ok(draw_randomness_raw(&self.beacon_digest(epoch, tsk)?, dst, epoch, entropy))
    }

    // --- miner info ------------------------------------------------------------------------

    pub fn miner_info(&self, addr: &ChainAddress) -> Result<MinerInfo, ChainError> {
        if !self.is_miner(addr) {
            return Err(ChainError::UnknownActor(addr.to_string()));
        }
        let net = self.network();
        let post = self.config.window_post_proof();
        let owner = ChainAddress::new_id(self.config.owner_id, net);
        Ok(MinerInfo {
            owner,
            worker: ChainAddress::new_id(self.config.worker_id, net),
            new_worker: None,
            control_addresses: vec![],
            worker_change_epoch: -1,
            peer_id: None,
            multiaddrs: vec![],
            window_po_st_proof_type: post,
            sector_size: post.sector_size().map(|s| s as u64).unwrap_or(2048),
            window_po_st_partition_sectors: self.miner.setup().partition_sectors,
            consensus_fault_elapsed: -1,
            pending_owner_address: None,
            beneficiary: owner,
            beneficiary_term: BeneficiaryTerm {
                quota: TokenAmount::from_atto(0),
                used_quota: TokenAmount::from_atto(0),
                expiration: 0,
            },
            pending_beneficiary_term: None,
        })
    }

    // --- messages --------------------------------------------------------------------------

    fn gas_defaults(&self) -> GasDefaults {
        GasDefaults { gas_premium: TokenAmount::from_atto(self.config.gas_premium), base_fee: self.base_fee.clone() }
    }

    /// `GasEstimateMessageGas` (see `gas::estimate`).
    pub fn estimate_gas(&self, msg: Message, spec: Option<&MessageSendSpec>) -> Result<Message, ChainError> {
        let encode = |e: filecoin_chain::message::MessageError| ChainError::Push(PushError::Encode(e.to_string()));
        gas::estimate(msg, spec, &self.gas_defaults()).and_then(Message::with_cid).map_err(encode)
    }

    /// `MpoolPushMessage`.
    pub fn push_message(&mut self, msg: Message, spec: Option<&MessageSendSpec>) -> Result<SignedMessage, ChainError> {
        let gas = self.gas_defaults();
        let signed = self.mpool.push_message(msg, spec, self.head, &gas)?;
        self.after_push(&signed.message);
        Ok(signed)
    }

    /// `MpoolPush` of a signed message, its nonce included.
    pub fn push(&mut self, signed: SignedMessage) -> Result<Cid, ChainError> {
        let msg = signed.message.clone();
        let cid = self.mpool.push(signed, self.head)?;
        self.after_push(&msg);
        Ok(cid)
    }

    fn after_push(&mut self, msg: &Message) {
        if let Some(fee) = self.mpool.take_base_fee_rule(msg) {
            tracing::info!(method = msg.method, base_fee = %fee.atto(), "base fee raised after a push");
            self.base_fee = fee;
        }
    }

    /// Deletes the precommits of `sectors` and burns their deposits, as the actor's clean-up cron
    /// does once they expired.
    pub fn expire_precommits(&mut self, sectors: &[u64]) -> Result<(), ChainError> {
        self.miner.expire_precommits(sectors).map_err(ChainError::NoPrecommit)
    }

    /// `WalletSignMessage`.
    pub fn sign_message(&self, signer: &ChainAddress, msg: Message) -> Result<SignedMessage, ChainError> {
        Ok(self.mpool.wallet().sign_message(signer, msg)?)
    }

    /// `ChainGetMessage`: any message the pool took, replaced or not.
    pub fn get_message(&self, cid: &Cid) -> Result<Message, ChainError> {
        self.mpool.message(cid).map(|m| m.message.clone()).ok_or(ChainError::NoSuchMessage(*cid))
    }

    /// The lookup of `cid` as a search from the tipset at `from` finds it: the receipt of the
    /// message with its sender and nonce, if that executed in a tipset `within` accepts. A
    /// different CID there is a replacement, refused unless `allow_replaced`
    /// (chain/stmgr/searchwait.go:332-377).
    fn find(&self, cid: &Cid, within: impl Fn(ChainEpoch) -> bool, allow_replaced: bool) -> Result<Option<MsgLookup>, ChainError> {
        if self.mpool.message(cid).is_none() {
            return Err(ChainError::UnknownMessage(*cid));
        }
        let Some(exec) = self.mpool.execution(cid).filter(|e| within(e.epoch)) else { return Ok(None) };
        if !exec.equal_call {
            return Err(ChainError::NotAReplacement { wanted: cid.to_string(), found: exec.cid.to_string(), nonce: exec.nonce });
        }
        if exec.cid != *cid && !allow_replaced {
            return Err(ChainError::Replaced { wanted: cid.to_string(), found: exec.cid.to_string(), nonce: exec.nonce });
        }
        Ok(Some(MsgLookup {
            message: exec.cid,
            receipt: exec.receipt,
            return_dec: serde_json::Value::Null,
            tipset: self.tipset_key(exec.epoch),
            height: exec.epoch,
        }))
    }

    /// `StateSearchMsg` from the tipset `from` names, `limit` epochs back (-1: no limit): the
    /// tipset itself, then those above `from − limit` (lotus chain/stmgr/searchwait.go:165-218,
    /// :267-330). `Height` and `TipSet` are those of the tipset after the one that included the
    /// message, whose receipts hold it (node/impl/full/state.go:666-672).
    pub fn search_msg(&self, from: &TipSetKey, cid: &Cid, limit: ChainEpoch, allow_replaced: bool) -> Result<Option<MsgLookup>, ChainError> {
        let from = self.resolve(from)?;
        self.find(cid, |x| within_lookback(x, from, limit), allow_replaced)
    }

    /// What `StateWaitMsg`, started when the head was `since`, has found: a message executed
    /// before it started within `limit`, or since (searchwait.go:30-159).
    pub fn waited_msg(&self, cid: &Cid, since: ChainEpoch, limit: ChainEpoch, allow_replaced: bool) -> Result<Option<MsgLookup>, ChainError> {
        self.find(cid, |x| x > since || within_lookback(x, since, limit), allow_replaced)
    }

    /// The lookup of an executed message from the head, replacements allowed.
    pub fn lookup(&self, cid: &Cid) -> Option<MsgLookup> {
        self.search_msg(&TipSetKey::head(), cid, LOOKBACK_NO_LIMIT, true).ok().flatten()
    }

    // --- epochs ----------------------------------------------------------------------------

    /// Moves the chain one epoch on. A null round only passes. Otherwise the new tipset is built
    /// on the head: the head's state is computed as Lotus' `ApplyBlocks` does
    /// (chain/consensus/compute_state.go:85-290): cron for the null rounds before it (:166-182),
    /// its messages with the epoch of the head (:205), its cron after them (:267); then the new
    /// tipset includes the messages due. Returns whether a tipset was made.
    pub fn advance(&mut self) -> bool {
        self.epoch += 1;
        let epoch = self.epoch;
        if self.null_rounds_ahead > 0 {
            self.null_rounds_ahead -= 1;
            self.null_rounds.insert(epoch);
            return false;
        }
        let executed = self.head;
        for null in self.cron_done + 1..executed {
            self.miner.on_epoch(null);
        }
        for signed in std::mem::take(&mut self.head_messages) {
            let receipt = self.apply(executed, &signed);
            self.mpool.record(&signed, receipt, epoch);
        }
        self.miner.on_epoch(executed);
        self.cron_done = executed;

        self.head = epoch;
        self.epochs_by_key.insert(self.block_cid(epoch), epoch);
        let base_fee = self.base_fee.clone();
        self.head_messages = self.mpool.include(epoch, &base_fee);
        true
    }

    /// Applies an included message at `curr`: an injected failure, out of gas when the gas
    /// limit does not cover the gas used (the FVM then charges the whole limit, ref-fvm
    /// fvm/src/gas/mod.rs:194-197), or its execution.
    fn apply(&mut self, curr: ChainEpoch, signed: &SignedMessage) -> MessageReceipt {
        let msg = &signed.message;
        let gas_used = gas::gas_used(msg).unwrap_or(msg.gas_limit);
        if let Some(code) = self.mpool.take_failure(msg) {
            tracing::info!(cid = %signed.cid, method = msg.method, code = code.value(), "injected failure");
            let used = if code == ExitCode::SYS_OUT_OF_GAS { msg.gas_limit } else { gas_used.min(msg.gas_limit) };
            return receipt(code, Vec::new(), used);
        }
        if msg.gas_limit < gas_used {
            return receipt(ExitCode::SYS_OUT_OF_GAS, Vec::new(), msg.gas_limit);
        }
        let (code, ret) = self.execute(curr, msg);
        receipt(code, ret, gas_used)
    }

    fn execute(&mut self, curr: ChainEpoch, msg: &Message) -> (ExitCode, Vec<u8>) {
        if !self.is_miner(&msg.to) {
            return (ExitCode::SYS_INVALID_RECEIVER, Vec::new());
        }
        // The VM runs the message from the sender's ID address.
        let caller = self.mpool.wallet().resolve(msg.from.address()).map_or(*msg.from.address(), |(id, _)| Address::new_id(id));
        let verifier = Arc::clone(&self.verifier);
        let env = Env {
            curr,
            randomness: ChainRandomness { seeds: &self.randomness, null_rounds: &self.null_rounds },
            verifier: verifier.as_ref(),
        };
        let result = self.miner.receive(&msg.value, |miner| {
            miner.check_caller(&caller)?;
            Self::dispatch(miner, &env, msg)
        });
        match result {
            Ok(ret) => (ExitCode::OK, ret),
            Err(e) => {
                tracing::info!(method = msg.method, code = e.code.value(), error = %e.message, "message failed");
                (e.code, Vec::new())
            }
        }
    }

    fn dispatch(miner: &mut MinerActor, env: &Env, msg: &Message) -> Result<Vec<u8>, ActorError> {
        let bad_params = |e: params::ParamsError| ActorError { code: ExitCode::USR_SERIALIZATION, message: e.to_string() };
        let method = MinerMethod::from_number(msg.method).ok_or_else(|| ActorError {
            code: ExitCode::USR_UNHANDLED_MESSAGE,
            message: format!("method {} not handled by the simulated miner", msg.method),
        })?;
        match method {
            MinerMethod::PreCommitSectorBatch2 => {
                miner.pre_commit_sector_batch2(env, params::decode(&msg.params).map_err(bad_params)?)?;
                Ok(Vec::new())
            }
            MinerMethod::ProveCommitSectors3 => {
                let ret = miner.prove_commit_sectors3(env, params::decode(&msg.params).map_err(bad_params)?)?;
                params::encode(&ret).map_err(bad_params)
            }
            MinerMethod::SubmitWindowedPoSt => {
                miner.submit_windowed_post(env, params::decode(&msg.params).map_err(bad_params)?)?;
                Ok(Vec::new())
            }
            MinerMethod::DeclareFaults => {
                miner.declare_faults(env, params::decode(&msg.params).map_err(bad_params)?)?;
                Ok(Vec::new())
            }
            MinerMethod::DeclareFaultsRecovered => {
                miner.declare_faults_recovered(env, params::decode(&msg.params).map_err(bad_params)?)?;
                Ok(Vec::new())
            }
        }
    }
}

/// Whether a search from the tipset at `from`, `limit` epochs back (-1: no limit), reaches a
/// receipt held by the tipset at `x`: `from` itself is always searched, then the tipsets above
/// `from − limit` (lotus chain/stmgr/searchwait.go:171-177, :268-290).
fn within_lookback(x: ChainEpoch, from: ChainEpoch, limit: ChainEpoch) -> bool {
    x <= from && (x == from || limit == LOOKBACK_NO_LIMIT || x > from - limit)
}

fn receipt(code: ExitCode, ret: Vec<u8>, gas_used: i64) -> MessageReceipt {
    MessageReceipt { exit_code: code, r#return: ret, gas_used, events_root: None }
}

/// The address a config id stands for, on the simulator's (test) network.
pub fn sim_address(id: u64) -> ChainAddress {
    ChainAddress::new(Address::new_id(id), Network::Testnet)
}

#[cfg(test)]
mod tests {
    //! The actor rules and message pool against an in-memory verifier that accepts exactly the
    //! "proof" `ticket || seed` (seal) or the masked challenge randomness (PoSt), so the tests
    //! also pin down which randomness the actor draws.
    use filecoin_chain::methods::{MinerMethod, miner_message, prove_commit_per_sector};
    use filecoin_chain::msg_uuid::msg_uuid;
    use filecoin_chain::params::{
        BatchReturn, CompactCommD, DeclareFaultsParams, DeclareFaultsRecoveredParams, FaultDeclaration, PoStPartition,
        PreCommitSectorBatchParams2, RecoveryDeclaration, SectorPreCommitInfo, SubmitWindowedPoStParams,
    };
    use filecoin_chain::randomness::{mask_post_randomness, miner_entropy};
    use fvm_ipld_bitfield::BitField;
    use fvm_shared::commcid::{data_commitment_v1_to_cid, replica_commitment_v1_to_cid};
    use fvm_shared::randomness::Randomness;
    use fvm_shared::sector::{PoStProof, RegisteredPoStProof, SectorNumber};

    use super::*;
    use crate::mpool::FaultRule;
    use crate::verifier::{ChallengedSector, SealVerifyInfo};

    struct Fake;

    impl ProofVerifier for Fake {
        fn comm_d_of_pieces(&self, _: RegisteredSealProof, pieces: &[([u8; 32], u64)]) -> Result<[u8; 32], String> {
            pieces.first().map(|p| p.0).ok_or_else(|| "no pieces".to_owned())
        }

        fn zero_comm_d(&self, _: RegisteredSealProof) -> Result<[u8; 32], String> {
            Ok([0; 32])
        }
        fn verify_seal(&self, _: u64, info: &SealVerifyInfo, proof: &[u8]) -> Result<bool, String> {
            Ok(proof == [info.ticket, info.seed].concat())
        }
        fn verify_aggregate_seals(&self, _: u64, infos: &[SealVerifyInfo], aggregate: &[u8]) -> Result<bool, String> {
            Ok(aggregate == infos.iter().flat_map(|i| i.seed).collect::<Vec<_>>())
        }
        fn verify_window_post(&self, _: u64, _: RegisteredPoStProof, r: [u8; 32], s: &[ChallengedSector], proof: &[u8]) -> Result<bool, String> {
            Ok(!s.is_empty() && proof == r)
        }
    }

    /// A miner holding 1 FIL from the start, which covers the deposits and pledges of every
    /// sector these tests precommit and prove without value; the funds tests start from none.
    fn config() -> SimConfig {
        SimConfig { epoch_duration_ms: 0, miner_balance: 1_000_000_000_000_000_000, ..SimConfig::default() }
    }

    fn chain() -> Chain {
        Chain::new(config(), Arc::new(Fake))
    }

    /// A new miner: no balance, as `minerBalance` defaults to.
    fn unfunded() -> Chain {
        Chain::new(SimConfig { miner_balance: 0, ..config() }, Arc::new(Fake))
    }

    fn atto(n: u64) -> TokenAmount {
        TokenAmount::from_atto(n)
    }

    fn worker() -> ChainAddress {
        sim_address(1002)
    }

    fn owner() -> ChainAddress {
        sim_address(1001)
    }

    fn entropy() -> Vec<u8> {
        miner_entropy(&Address::new_id(1000))
    }

    fn precommit_info(c: &Chain, n: SectorNumber) -> SectorPreCommitInfo {
        let head = c.head();
        SectorPreCommitInfo {
            seal_proof: RegisteredSealProof::StackedDRG2KiBV1P1,
            sector_number: n,
            sealed_cid: replica_commitment_v1_to_cid(&[n as u8; 32]).unwrap(),
            seal_rand_epoch: head - 5,
            deal_ids: vec![],
            expiration: c.config().policy.expiration_bounds(head + 1, RegisteredSealProof::StackedDRG2KiBV1P1).unwrap().0 + 100,
            unsealed_cid: CompactCommD(None),
        }
    }

    fn message<P: serde::Serialize>(c: &Chain, from: ChainAddress, method: MinerMethod, params: &P) -> Message {
        miner_message(c.miner_address(), from, method, params, TokenAmount::from_atto(0)).unwrap()
    }

    /// Advances until the message has a receipt; returns it.
    fn land(c: &mut Chain, cid: &Cid) -> MessageReceipt {
        for _ in 0..10 {
            c.advance();
            if let Some(l) = c.lookup(cid) {
                return l.receipt;
            }
        }
        panic!("message never executed");
    }

    /// Pushes a message from the worker and advances until it executes; returns its receipt.
    fn send<P: serde::Serialize>(c: &mut Chain, method: MinerMethod, params: &P) -> MessageReceipt {
        send_paying(c, method, params, atto(0))
    }

    /// `send` with `value` attached.
    fn send_paying<P: serde::Serialize>(c: &mut Chain, method: MinerMethod, params: &P, value: TokenAmount) -> MessageReceipt {
        let msg = Message { value, ..message(c, worker(), method, params) };
        let signed = c.push_message(msg, None).unwrap();
        land(c, &signed.cid)
    }

    fn funds(c: &Chain) -> (TokenAmount, TokenAmount, TokenAmount) {
        let f = c.miner().funds();
        (f.balance.clone(), f.pre_commit_deposits.clone(), f.initial_pledge.clone())
    }

    fn precommit(c: &mut Chain, infos: Vec<SectorPreCommitInfo>) -> MessageReceipt {
        send(c, MinerMethod::PreCommitSectorBatch2, &PreCommitSectorBatchParams2 { sectors: infos })
    }

    fn seal_proof(c: &Chain, n: SectorNumber) -> Vec<u8> {
        let pc = c.miner().precommit(n).unwrap();
        let seed_epoch = c.config().policy.seed_epoch(pc.pre_commit_epoch);
        let head = TipSetKey::head();
        let ticket = c.randomness_from_tickets(5, pc.info.seal_rand_epoch, &entropy(), &head).unwrap();
        let seed = c.randomness_from_beacon(6, seed_epoch, &entropy(), &head).unwrap();
        [ticket, seed].concat()
    }

    fn advance_to(c: &mut Chain, epoch: ChainEpoch) {
        while c.head() < epoch {
            c.advance();
        }
    }

    /// Precommits and proves sector `n`; returns its (deadline, partition).
    fn activate(c: &mut Chain, n: SectorNumber) -> (u64, u64) {
        let info = precommit_info(c, n);
        assert_eq!(precommit(c, vec![info]).exit_code, ExitCode::OK);
        let pc_epoch = c.miner().precommit(n).unwrap().pre_commit_epoch;
        let seed_epoch = c.config().policy.seed_epoch(pc_epoch);
        advance_to(c, seed_epoch);
        let proof = seal_proof(c, n);
        let r = send(c, MinerMethod::ProveCommitSectors3, &prove_commit_per_sector(vec![(n, proof)], true).unwrap());
        assert_eq!(r.exit_code, ExitCode::OK);
        c.miner().location(n).unwrap()
    }

    fn post_params(c: &Chain, dl: &filecoin_chain::DeadlineInfo, partition: u64, skipped: BitField) -> SubmitWindowedPoStParams {
        let head = TipSetKey::head();
        let rand = c.randomness_from_beacon(4, dl.challenge, &entropy(), &head).unwrap();
        let commit = c.randomness_from_tickets(9, dl.challenge, &[], &head).unwrap();
        SubmitWindowedPoStParams {
            deadline: dl.index,
            partitions: vec![PoStPartition { index: partition, skipped }],
            proofs: vec![PoStProof {
                post_proof: RegisteredPoStProof::StackedDRGWindow2KiBV1P1,
                proof_bytes: mask_post_randomness(rand).to_vec(),
            }],
            chain_commit_epoch: dl.challenge,
            chain_commit_rand: Randomness(commit.to_vec()),
        }
    }

    /// Advances to the next opening of `deadline`.
    fn open_deadline(c: &mut Chain, deadline: u64) -> filecoin_chain::DeadlineInfo {
        loop {
            let dl = c.miner().deadline_info(c.head());
            if dl.index == deadline && dl.is_open() {
                return dl;
            }
            c.advance();
        }
    }

    #[test]
    fn a_message_executes_at_its_tipset_and_is_found_in_the_next() {
        let mut c = chain();
        let info = precommit_info(&c, 1);
        let msg = message(&c, worker(), MinerMethod::PreCommitSectorBatch2, &PreCommitSectorBatchParams2 { sectors: vec![info] });
        let signed = c.push_message(msg, None).unwrap();
        let pushed_at = c.head();

        // The tipset at E = head + 1 includes it (inclusionDelay 1). Its state is computed only
        // when a tipset is built on it, and State* reads at a head read its parent state: at E
        // nothing shows yet (lotus chain/consensus/compute_state.go:389, ApplyBlocks of a tipset
        // runs when its child is validated; node/impl/full/state.go reads ParentState).
        c.advance();
        let included_at = c.head();
        assert_eq!(included_at, pushed_at + 1);
        assert!(c.miner().precommit(1).is_none());
        assert!(c.lookup(&signed.cid).is_none());

        // At E + 1: it ran with the VM epoch of E (compute_state.go:205 makes the VM at `epoch`,
        // the tipset's height, :389), so PreCommitEpoch is E; its receipt is in E + 1, which is
        // where StateSearchMsg finds it: tipsetExecutedMessage reads the messages of the tipset's
        // parent (chain/stmgr/searchwait.go:332-346) and StateSearchMsg reports that tipset's
        // height and key (node/impl/full/state.go:666-672).
        c.advance();
        assert_eq!(c.miner().precommit(1).unwrap().pre_commit_epoch, included_at);
        let found = c.lookup(&signed.cid).unwrap();
        assert_eq!((found.height, found.tipset.clone(), found.message), (included_at + 1, c.tipset_key(included_at + 1), signed.cid));

        // A search from an earlier tipset, or one not reaching back far enough, does not find it
        // (searchwait.go:171-177 checks the start tipset, :284-290 stops at from − limit).
        let before = c.tipset_key(included_at);
        assert!(c.search_msg(&before, &signed.cid, LOOKBACK_NO_LIMIT, false).unwrap().is_none());
        c.advance();
        c.advance();
        assert!(c.search_msg(&TipSetKey::head(), &signed.cid, 2, false).unwrap().is_none());
        assert!(c.search_msg(&TipSetKey::head(), &signed.cid, 3, false).unwrap().is_some());
        assert!(matches!(c.search_msg(&TipSetKey::head(), &Cid::default(), 3, false), Err(ChainError::UnknownMessage(_))));
    }

    #[test]
    fn null_rounds_make_no_tipset_include_nothing_and_draw_from_the_next_tipset() {
        let mut c = chain();
        let h = c.head();
        let info = precommit_info(&c, 1);
        let msg = message(&c, worker(), MinerMethod::PreCommitSectorBatch2, &PreCommitSectorBatchParams2 { sectors: vec![info] });
        let signed = c.push_message(msg, None).unwrap();

        // h + 1 and h + 2 are null rounds: the head stays, and the message waits for h + 3.
        c.add_null_rounds(2);
        assert!(!c.advance());
        assert!(!c.advance());
        assert_eq!(c.head(), h);
        assert!(c.advance());
        assert_eq!(c.head(), h + 3);
        c.advance();
        assert_eq!(c.miner().precommit(1).unwrap().pre_commit_epoch, h + 3, "no message in a null round");
        assert_eq!(c.lookup(&signed.cid).unwrap().height, h + 4);

        // ChainGetTipSetByHeight of a null round: the tipset before it (lotus node/impl/full/
        // chain.go:242-248 with prev = true, chain/store/store.go:1293-1297).
        let head = TipSetKey::head();
        assert_eq!(c.tipset_by_height(h + 1, &head).unwrap().height, h);
        assert_eq!(c.tipset_by_height(h + 2, &head).unwrap().height, h);
        let after = c.tipset_by_height(h + 3, &head).unwrap();
        assert_eq!(after.blocks[0].parents, vec![c.block_cid(h)]);
        assert_eq!(after.blocks[0].beacon_entries.iter().map(|b| b.round).collect::<Vec<_>>(), vec![h as u64 + 1, h as u64 + 2, h as u64 + 3]);
        assert!(matches!(c.tipset_by_height(h + 5, &head), Err(ChainError::FutureEpoch { .. })));

        // Chain randomness of a null round: the ticket of the first tipset after it, as Lotus
        // looks it up from network version 13 (chain/rand/rand.go:182-190 with lookback false,
        // :95-100; chain/store/store.go:1293; chain/store/index.go:192-195). Beacon randomness
        // stays the drand round of the epoch (rand.go:146-179).
        let seeds = EpochRandomness::new(config().randomness_seed);
        assert_eq!(c.ticket_digest(h + 1, &head).unwrap(), seeds.ticket_digest(h + 3));
        assert_eq!(c.ticket_digest(h + 2, &head).unwrap(), seeds.ticket_digest(h + 3));
        assert_eq!(c.ticket_digest(h, &head).unwrap(), seeds.ticket_digest(h));
        assert_eq!(c.beacon_digest(h + 1, &head).unwrap(), seeds.beacon_digest(h + 1));
    }

    #[test]
    fn cron_runs_for_null_rounds_and_after_the_messages_of_its_epoch() {
        let mut c = chain();
        let (deadline, partition) = activate(&mut c, 7);
        let dl = open_deadline(&mut c, deadline);
        let good = post_params(&c, &dl, partition, BitField::new());
        // A PoSt included in the deadline's last epoch executes before that epoch's cron (lotus
        // chain/consensus/compute_state.go:219-260 applies the messages, then :267 runs cron).
        advance_to(&mut c, dl.last() - 1);
        let post = c.push_message(message(&c, worker(), MinerMethod::SubmitWindowedPoSt, &good), None).unwrap();
        c.advance();
        assert_eq!(c.head(), dl.last());
        assert_eq!(land(&mut c, &post.cid).exit_code, ExitCode::OK);
        assert!(c.miner().faults().is_empty());
        assert_eq!(c.miner().active_sectors().len(), 1);

        // The next instance of the deadline ends in null rounds: their cron still runs (lotus
        // compute_state.go:166-182 runs cron for every null epoch before a tipset's messages), so
        // the missed PoSt makes the sector faulty once a tipset after them has been executed.
        let next_last = dl.last() + dl.wpost_proving_period;
        advance_to(&mut c, next_last - 2);
        c.add_null_rounds(4);
        while c.head() < next_last + 2 {
            c.advance();
        }
        assert!(c.null_rounds.contains(&next_last));
        assert!(c.miner().faults().is_empty(), "the null rounds' cron runs with the tipset after them");
        c.advance();
        assert_eq!(c.miner().faults().iter().collect::<Vec<_>>(), vec![7]);
    }

    #[test]
    fn sector_is_precommitted_proven_with_the_drawn_seed_and_rejects_early_or_wrong_proofs() {
        let mut c = chain();
        let info = precommit_info(&c, 7);
        assert_eq!(precommit(&mut c, vec![info.clone()]).exit_code, ExitCode::OK);
        let pc = c.miner().precommit(7).unwrap();
        assert_eq!(pc.info.seal_rand_epoch, info.seal_rand_epoch);
        assert!(c.miner().is_allocated(7));

        // Before the seed epoch has passed: forbidden, i.e. try again later.
        let early = prove_commit_per_sector(vec![(7, vec![0; 64])], true).unwrap();
        assert_eq!(send(&mut c, MinerMethod::ProveCommitSectors3, &early).exit_code, ExitCode::USR_FORBIDDEN);

        let seed_epoch = c.config().policy.seed_epoch(pc.pre_commit_epoch);
        advance_to(&mut c, seed_epoch);
        let mut wrong = seal_proof(&c, 7);
        wrong[40] ^= 1;
        let bad = prove_commit_per_sector(vec![(7, wrong)], true).unwrap();
        assert_eq!(send(&mut c, MinerMethod::ProveCommitSectors3, &bad).exit_code, ExitCode::USR_ILLEGAL_ARGUMENT);
        assert!(c.miner().sector(7).is_none());

        let good = prove_commit_per_sector(vec![(7, seal_proof(&c, 7))], true).unwrap();
        let r = send(&mut c, MinerMethod::ProveCommitSectors3, &good);
        assert_eq!(r.exit_code, ExitCode::OK);
        assert_eq!(params::decode::<BatchReturn>(&r.r#return).unwrap(), BatchReturn::all_ok(1));
        assert!(c.miner().precommit(7).is_none());
        assert_eq!(c.miner().sector(7).unwrap().sealed_cid, info.sealed_cid);
    }

    #[test]
    fn a_missing_precommit_fails_the_whole_prove_commit_and_an_expired_one_fails_alone() {
        let mut c = chain();
        let infos = vec![precommit_info(&c, 1), precommit_info(&c, 2)];
        assert_eq!(precommit(&mut c, infos).exit_code, ExitCode::OK);
        let pc_epoch = c.miner().precommit(1).unwrap().pre_commit_epoch;
        let policy = c.config().policy;
        advance_to(&mut c, policy.seed_epoch(pc_epoch));

        // Sector 3 was never precommitted: get_precommitted_sectors fails the whole message with
        // USR_NOT_FOUND (builtin-actors actors/miner/src/state.rs:1178-1181, called at
        // lib.rs:1492-1495), even with require_activation_success false; nothing activates.
        let with_unknown = prove_commit_per_sector(vec![(1, seal_proof(&c, 1)), (3, vec![1; 64])], false).unwrap();
        assert_eq!(send(&mut c, MinerMethod::ProveCommitSectors3, &with_unknown).exit_code, ExitCode::USR_NOT_FOUND);
        assert!(c.miner().sector(1).is_none());

        // Sector 1 proven; proving it again alongside 2 finds no precommit for it: 17 again.
        let one = prove_commit_per_sector(vec![(1, seal_proof(&c, 1))], true).unwrap();
        assert_eq!(send(&mut c, MinerMethod::ProveCommitSectors3, &one).exit_code, ExitCode::OK);
        let again = prove_commit_per_sector(vec![(1, vec![1; 64]), (2, seal_proof(&c, 2))], false).unwrap();
        assert_eq!(send(&mut c, MinerMethod::ProveCommitSectors3, &again).exit_code, ExitCode::USR_NOT_FOUND);
        assert!(c.miner().sector(2).is_none());

        // An expired precommit fails alone in the BatchReturn (validate_precommits, lib.rs:4649-
        // 4658 marks it failed and goes on; :4707-4716 fails the message only when all or nothing
        // is required).
        let deadline = policy.prove_commit_deadline(pc_epoch, RegisteredSealProof::StackedDRG2KiBV1P1).unwrap();
        advance_to(&mut c, deadline - 20);
        let info4 = precommit_info(&c, 4);
        assert_eq!(precommit(&mut c, vec![info4]).exit_code, ExitCode::OK);
        let pc4 = c.miner().precommit(4).unwrap().pre_commit_epoch;
        advance_to(&mut c, policy.seed_epoch(pc4).max(deadline));
        let mixed = prove_commit_per_sector(vec![(2, seal_proof(&c, 2)), (4, seal_proof(&c, 4))], false).unwrap();
        let r = send(&mut c, MinerMethod::ProveCommitSectors3, &mixed);
        assert_eq!(r.exit_code, ExitCode::OK);
        let ret: BatchReturn = params::decode(&r.r#return).unwrap();
        assert_eq!((ret.code_of(0), ret.code_of(1)), (ExitCode::USR_ILLEGAL_ARGUMENT, ExitCode::OK));
        assert!(c.miner().sector(4).is_some() && c.miner().sector(2).is_none());

        // Cron deletes the expired precommit at the first deadline end at or after its clean-up
        // epoch: the prove-commit deadline plus 960 (lib.rs:1426-1432, runtime/src/runtime/
        // policy.rs:281) quantized up to a deadline boundary (state.rs:996-998, quantize.rs:27-41),
        // popped by handle_proving_deadline (lib.rs:4251-4252, state.rs:1017-1060).
        let clean_up = (deadline + 960 + 3) / 4 * 4;
        advance_to(&mut c, clean_up + 3);
        assert!(c.miner().precommit(2).is_some(), "that deadline's cron runs when the next tipset is built");
        c.advance();
        assert!(c.miner().precommit(2).is_none());
        assert!(c.miner().is_allocated(2));
        let late = prove_commit_per_sector(vec![(2, vec![1; 64])], false).unwrap();
        assert_eq!(send(&mut c, MinerMethod::ProveCommitSectors3, &late).exit_code, ExitCode::USR_NOT_FOUND);
    }

    #[test]
    fn a_base_fee_rule_raises_the_fee_once_the_matching_message_is_pooled() {
        let mut c = chain();
        let normal = c.base_fee().clone();
        let high = TokenAmount::from_atto(1_000_000);
        c.mpool_mut().raise_base_fee_after_next(crate::mpool::BaseFeeRule { method: Some(5), sector: None, deadline: Some(3), base_fee: high.clone() });
        let post = |d: u64| SubmitWindowedPoStParams {
            deadline: d,
            partitions: vec![],
            proofs: vec![],
            chain_commit_epoch: 0,
            chain_commit_rand: Randomness(vec![]),
        };
        c.push_message(message(&c, worker(), MinerMethod::SubmitWindowedPoSt, &post(5)), None).unwrap();
        assert_eq!(c.base_fee(), &normal, "another deadline's PoSt");
        let stuck = c.push_message(message(&c, worker(), MinerMethod::SubmitWindowedPoSt, &post(3)), None).unwrap();
        assert_eq!(c.base_fee(), &high);
        assert!(stuck.message.gas_fee_cap < high, "priced at the old base fee");
        c.set_base_fee(normal.clone());
        c.push_message(message(&c, worker(), MinerMethod::SubmitWindowedPoSt, &post(3)), None).unwrap();
        assert_eq!(c.base_fee(), &normal, "the rule is used up");
    }

    #[test]
    fn a_bad_sector_fails_alone_when_activation_success_is_not_required() {
        let mut c = chain();
        let infos = vec![precommit_info(&c, 1), precommit_info(&c, 2)];
        assert_eq!(precommit(&mut c, infos).exit_code, ExitCode::OK);
        let pc_epoch = c.miner().precommit(1).unwrap().pre_commit_epoch;
        let seed_epoch = c.config().policy.seed_epoch(pc_epoch);
        advance_to(&mut c, seed_epoch);
        let params = prove_commit_per_sector(vec![(1, vec![9; 64]), (2, seal_proof(&c, 2))], false).unwrap();
        let r = send(&mut c, MinerMethod::ProveCommitSectors3, &params);
        assert_eq!(r.exit_code, ExitCode::OK);
        let ret: BatchReturn = params::decode(&r.r#return).unwrap();
        assert_eq!((ret.code_of(0), ret.code_of(1)), (ExitCode::USR_ILLEGAL_ARGUMENT, ExitCode::OK));
        assert!(c.miner().sector(2).is_some());
        assert!(c.miner().sector(1).is_none() && c.miner().precommit(1).is_some());
    }

    #[test]
    fn precommit_checks_mirror_the_actor() {
        let mut c = chain();
        type Mutation = Box<dyn Fn(&mut SectorPreCommitInfo, ChainEpoch)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("ticket too old", Box::new(|i, head| i.seal_rand_epoch = head - 3780 - 5)),
            ("ticket from the future", Box::new(|i, head| i.seal_rand_epoch = head + 1)),
            ("unsealed CID as CommR", Box::new(|i, _| i.sealed_cid = data_commitment_v1_to_cid(&[1; 32]).unwrap())),
            ("CommR as CommD", Box::new(|i, _| i.unsealed_cid = CompactCommD(Some(replica_commitment_v1_to_cid(&[1; 32]).unwrap())))),
            ("expiration too soon", Box::new(|i, head| i.expiration = head + 1000)),
            ("expiration too late", Box::new(|i, head| i.expiration = head + 1279 * 2880)),
            ("32GiB proof on a 2KiB miner", Box::new(|i, _| i.seal_proof = RegisteredSealProof::StackedDRG32GiBV1P1)),
        ];
        for (name, mutate) in cases {
            let mut info = precommit_info(&c, 3);
            mutate(&mut info, c.head() + 1);
            assert_eq!(precommit(&mut c, vec![info]).exit_code, ExitCode::USR_ILLEGAL_ARGUMENT, "{name}");
            assert!(!c.miner().is_allocated(3), "{name}");
        }
        let info = precommit_info(&c, 3);
        assert_eq!(precommit(&mut c, vec![info.clone(), info.clone()]).exit_code, ExitCode::USR_ILLEGAL_ARGUMENT);
        assert_eq!(precommit(&mut c, vec![info.clone()]).exit_code, ExitCode::OK);
        let again = precommit_info(&c, 3);
        assert_eq!(precommit(&mut c, vec![again]).exit_code, ExitCode::USR_ILLEGAL_ARGUMENT, "already allocated");

        let from_owner = message(&c, owner(), MinerMethod::PreCommitSectorBatch2, &PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 4)] });
        let pushed = c.push_message(from_owner.clone(), None).unwrap();
        assert_eq!(land(&mut c, &pushed.cid).exit_code, ExitCode::OK);
        let from_stranger = Message { from: sim_address(1999), ..from_owner };
        assert!(matches!(c.push_message(from_stranger, None), Err(ChainError::Push(PushError::UnknownSender(_)))));
    }

    #[test]
    fn window_post_makes_a_sector_active_and_a_missed_deadline_makes_it_faulty() {
        let mut c = chain();
        let (deadline, partition) = activate(&mut c, 7);
        assert!(c.miner().active_sectors().is_empty(), "unproven until its first PoSt");

        let dl = open_deadline(&mut c, deadline);
        let mut wrong_commit = post_params(&c, &dl, partition, BitField::new());
        wrong_commit.chain_commit_rand = Randomness(vec![0; 32]);
        let mut bad_proof = post_params(&c, &dl, partition, BitField::new());
        bad_proof.proofs[0].proof_bytes[0] ^= 1;
        let good = post_params(&c, &dl, partition, BitField::new());
        // All three land in the same tipset, in nonce order.
        let pushed: Vec<Cid> = [wrong_commit, bad_proof, good]
            .iter()
            .map(|p| c.push_message(message(&c, worker(), MinerMethod::SubmitWindowedPoSt, p), None).unwrap().cid)
            .collect();
        let codes: Vec<ExitCode> = pushed.iter().map(|cid| land(&mut c, cid).exit_code).collect();
        assert_eq!(codes, vec![ExitCode::USR_ILLEGAL_ARGUMENT, ExitCode::USR_ILLEGAL_ARGUMENT, ExitCode::OK]);
        assert_eq!(c.miner().active_sectors().len(), 1);
        assert!(c.miner().faults().is_empty());

        // The same deadline in the next period passes without a PoSt.
        advance_to(&mut c, dl.close + 1);
        let next = c.miner().deadline_info(c.head());
        assert!(c.miner().deadlines()[deadline as usize].post_submissions.is_empty());
        advance_to(&mut c, dl.close + next.wpost_proving_period);
        assert_eq!(c.miner().faults().iter().collect::<Vec<_>>(), vec![7]);
        assert!(c.miner().active_sectors().is_empty());

        // A PoSt for the wrong deadline is refused.
        let other = c.miner().deadline_info(c.head());
        let mut wrong_dl = post_params(&c, &other, partition, BitField::new());
        wrong_dl.deadline = (other.index + 1) % 48;
        assert_eq!(send(&mut c, MinerMethod::SubmitWindowedPoSt, &wrong_dl).exit_code, ExitCode::USR_ILLEGAL_ARGUMENT);
    }

    #[test]
    fn faults_and_recoveries_honour_the_cutoff() {
        let mut c = chain();
        let (deadline, partition) = activate(&mut c, 7);
        let sectors = BitField::try_from_bits([7u64]).unwrap();
        let faults = DeclareFaultsParams { faults: vec![FaultDeclaration { deadline, partition, sectors: sectors.clone() }] };
        let recoveries = DeclareFaultsRecoveredParams {
            recoveries: vec![RecoveryDeclaration { deadline, partition, sectors: sectors.clone() }],
        };

        // Inside the cutoff of the deadline's next opening: late.
        let dl = c.miner().deadline_info(c.head());
        let target = filecoin_chain::DeadlineInfo::new(dl.period_start, deadline, c.head(), &dl.policy()).next_not_elapsed();
        advance_to(&mut c, target.fault_cutoff - 1);
        // The message is included in the next tipset and executes at its epoch, the cutoff.
        assert_eq!(send(&mut c, MinerMethod::DeclareFaults, &faults).exit_code, ExitCode::USR_ILLEGAL_ARGUMENT);
        assert!(c.miner().faults().is_empty());

        // After that deadline closes, the next cutoff is far enough away.
        advance_to(&mut c, target.close);
        assert_eq!(send(&mut c, MinerMethod::DeclareFaults, &faults).exit_code, ExitCode::OK);
        assert_eq!(c.miner().faults().iter().collect::<Vec<_>>(), vec![7]);
        assert_eq!(send(&mut c, MinerMethod::DeclareFaultsRecovered, &recoveries).exit_code, ExitCode::OK);
        assert_eq!(c.miner().recoveries().iter().collect::<Vec<_>>(), vec![7]);

        // The PoSt that proves the recovering sector clears the fault.
        let dl = open_deadline(&mut c, deadline);
        let post = post_params(&c, &dl, partition, BitField::new());
        assert_eq!(send(&mut c, MinerMethod::SubmitWindowedPoSt, &post).exit_code, ExitCode::OK);
        assert!(c.miner().faults().is_empty() && c.miner().recoveries().is_empty());
        assert_eq!(c.miner().active_sectors().len(), 1);
    }

    #[test]
    fn mpool_uuid_idempotency_nonces_and_injected_faults() {
        let mut c = chain();
        let params = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1)] };
        let msg = message(&c, worker(), MinerMethod::PreCommitSectorBatch2, &params);
        let spec = MessageSendSpec::new(msg_uuid("uid-1", "precommit", 0), TokenAmount::from_atto(0));
        let a = c.push_message(msg.clone(), Some(&spec)).unwrap();
        let b = c.push_message(msg.clone(), Some(&spec)).unwrap();
        assert_eq!(a, b, "same MsgUuid, same signed message");
        assert_eq!(c.mpool().counts().by_method[&28], 1);
        assert_eq!(c.mpool().counts().by_sector[&1][&28], 1);
        let other = c.push_message(msg.clone(), None).unwrap();
        assert_eq!((a.message.nonce, other.message.nonce), (0, 1));
        // Sent from the worker's key address, as Lotus does for an ID sender (node/impl/full/
        // mpool.go:201-204).
        assert_eq!(a.message.from, c.mpool().wallet().key_of(1002).unwrap());
        let nonzero = Message { nonce: 5, ..msg.clone() };
        assert!(matches!(c.push_message(nonzero, None), Err(ChainError::Push(PushError::NonZeroNonce(5)))));

        c.mpool_mut().fail_next(FaultRule { method: Some(34), count: 1, exit_code: Some(6), epochs: None, sector: None });
        c.mpool_mut().drop_next(FaultRule { method: Some(5), count: 1, exit_code: None, epochs: None, sector: None });
        c.mpool_mut().delay_next(FaultRule { method: Some(10), count: 1, exit_code: None, epochs: Some(3), sector: None });
        let prove = prove_commit_per_sector(vec![(1, vec![1])], true).unwrap();
        assert_eq!(send(&mut c, MinerMethod::ProveCommitSectors3, &prove).exit_code, ExitCode::SYS_INSUFFICIENT_FUNDS);

        // The dropped message stays in the pool, never included; the owner's messages are
        // another sender's and go on.
        let post = message(&c, owner(), MinerMethod::SubmitWindowedPoSt, &params);
        let dropped = c.push_message(post, None).unwrap();
        let declare = message(&c, worker(), MinerMethod::DeclareFaults, &params);
        let delayed = c.push_message(declare, None).unwrap();
        let pushed_at = c.head();
        for _ in 0..10 {
            c.advance();
        }
        assert!(c.lookup(&dropped.cid).is_none(), "dropped messages never land");
        assert_eq!(c.lookup(&delayed.cid).unwrap().height, pushed_at + 1 + 3 + 1);

        // A base fee above the fee cap keeps a message out until it falls.
        let held = c.push_message(msg.clone(), None).unwrap();
        c.set_base_fee(held.message.gas_fee_cap.clone() + TokenAmount::from_atto(1));
        c.advance();
        c.advance();
        assert!(c.lookup(&held.cid).is_none());
        c.set_base_fee(TokenAmount::from_atto(100));
        c.advance();
        c.advance();
        assert!(c.lookup(&held.cid).is_some());
    }

    #[test]
    fn push_refuses_what_lotus_refuses() {
        let mut c = chain();
        let key = c.mpool().wallet().key_of(1002).unwrap();
        let sign = |c: &Chain, m: Message| c.sign_message(&key, m).unwrap();

        // Over 64 KiB signed: chain/messagepool/messagepool.go:67 and :737-740, wrapped by
        // MpoolPushMessage's push callback (node/impl/full/mpool.go:217-219).
        let big = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1); 1200] };
        let err = c.push_message(message(&c, worker(), MinerMethod::PreCommitSectorBatch2, &big), None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("mpool push: failed to push message: mpool message too large ("), "{err}");
        assert!(err.ends_with("B): message too big"), "{err}");

        let small = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1)] };
        let est = c.estimate_gas(Message { from: key, ..message(&c, worker(), MinerMethod::PreCommitSectorBatch2, &small) }, None).unwrap();
        // A fee cap under MinimumBaseFee, 100 (build/buildconstants/params_shared_vals.go:91):
        // messagepool.go:755-757. Through MpoolPushMessage a tiny MaxFee gets there.
        let cheap = Message { gas_fee_cap: TokenAmount::from_atto(99), gas_premium: TokenAmount::from_atto(1), ..est.clone() };
        assert_eq!(c.push(sign(&c, cheap)).unwrap_err().to_string(), "gas fee cap too low");
        let spec = MessageSendSpec::new(uuid::Uuid::nil(), TokenAmount::from_atto(est.gas_limit as u64 * 99));
        let err = c.push_message(message(&c, worker(), MinerMethod::PreCommitSectorBatch2, &small), Some(&spec)).unwrap_err();
        assert_eq!(err.to_string(), "mpool push: failed to push message: gas fee cap too low");
        // A gas limit under the inclusion cost (messagepool.go:653-659, price_list.rs:623-628).
        let starved = Message { gas_limit: 1000, ..est.clone() };
        let err = c.push(sign(&c, starved)).unwrap_err().to_string();
        assert!(err.starts_with("verify msg failed: message will not be included in a block: 'GasLimit' field cannot be less than the cost of storing a message on chain 1000 < "), "{err}");
        // From an ID address: lib/sigs/sigs.go:40-42 through messagepool.go:759-761.
        let from_id = sign(&c, Message { from: worker(), ..est.clone() });
        assert!(c.push(from_id).unwrap_err().to_string().ends_with("must resolve ID addresses before using them to verify a signature"));
        // Unsigned nonsense: the stand-in signature does not verify.
        let mut forged = sign(&c, est.clone());
        forged.signature.data[5] ^= 1;
        assert!(c.push(forged).unwrap_err().to_string().starts_with("signature verification failed: failed to validate signature: invalid signature for message"));
        assert_eq!(c.mpool().counts(), &crate::mpool::MessageCounts::default(), "nothing refused is counted");
        assert!(c.push(sign(&c, est)).is_ok());
    }

    #[test]
    fn a_replacement_needs_the_rbf_premium_and_only_it_executes() {
        let mut c = chain();
        let params = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1)] };
        let stuck = c.push_message(message(&c, worker(), MinerMethod::PreCommitSectorBatch2, &params), None).unwrap();
        c.set_base_fee(stuck.message.gas_fee_cap.clone() * 2u64);
        // The sender's next message waits behind the stuck nonce even with a fee cap that
        // covers the base fee (a nonce gap ends the chain, chain/messagepool/selection.go:804-817).
        let follow = c.push_message(message(&c, worker(), MinerMethod::DeclareFaults, &DeclareFaultsParams { faults: vec![] }), None).unwrap();
        assert!(follow.message.gas_fee_cap >= *c.base_fee());
        for _ in 0..3 {
            c.advance();
        }
        assert!(c.lookup(&stuck.cid).is_none() && c.lookup(&follow.cid).is_none());

        let key = stuck.message.from;
        let replace = |premium: u64, fee_cap: TokenAmount| Message { gas_premium: TokenAmount::from_atto(premium), gas_fee_cap: fee_cap, cid: None, ..stuck.message.clone() };
        let high_cap = c.base_fee().clone() * 2u64;
        // ComputeMinRBF: premium × 110 / 100 + 1 (chain/messagepool/messagepool.go:210-213,
        // config.go:16); below it msgSet.add refuses (messagepool.go:280-294).
        let premium = stuck.message.gas_premium.atto().to_string().parse::<u64>().unwrap();
        let min = premium * 110 / 100 + 1;
        let low = c.sign_message(&key, replace(min - 1, high_cap.clone())).unwrap();
        let err = c.push(low).unwrap_err().to_string();
        assert_eq!(err, format!("failed to add locked: message from {key} with nonce 0 already in mpool, increase GasPremium to {min} from {} to trigger replace by fee: replace by fee has too low GasPremium", min - 1));
        // The same message again (messagepool.go:295-298).
        let err = c.push(stuck.clone()).unwrap_err().to_string();
        assert_eq!(err, format!("failed to add locked: message from {key} with nonce 0 already in mpool: message with nonce already exists"));

        let replacement = c.sign_message(&key, replace(min, high_cap)).unwrap();
        assert_eq!(c.push(replacement.clone()).unwrap(), replacement.cid);
        land(&mut c, &replacement.cid);
        land(&mut c, &follow.cid);
        // The original never executes: its lookups find the replacement, or null without
        // allowReplaced (searchwait.go:362-377; node/impl/full/state.go:659-662).
        let found = c.lookup(&stuck.cid).unwrap();
        assert_eq!(found.message, replacement.cid);
        assert!(c.search_msg(&TipSetKey::head(), &stuck.cid, LOOKBACK_NO_LIMIT, false).unwrap_err().is_replaced());
        assert_eq!(c.miner().precommit(1).unwrap().pre_commit_epoch, found.height - 1);
        // A nonce already executed is refused (messagepool.go:885-887).
        let late = c.sign_message(&key, replace(min * 2, c.base_fee().clone() * 3u64)).unwrap();
        assert_eq!(c.push(late).unwrap_err().to_string(), "minimum expected nonce is 2, got 0: message nonce too low");

        let counts = c.mpool().counts();
        assert_eq!((counts.by_method[&28], counts.by_sector[&1][&28], counts.replaced[&28]), (1, 1, 1));
        assert_eq!(c.get_message(&stuck.cid).unwrap().gas_premium, stuck.message.gas_premium, "ChainGetMessage still has it");
    }

    #[test]
    fn receipts_carry_the_modelled_gas_and_too_low_a_limit_runs_out_of_gas() {
        let mut c = chain();
        let params = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1)] };
        let signed = c.push_message(message(&c, worker(), MinerMethod::PreCommitSectorBatch2, &params), None).unwrap();
        let r = land(&mut c, &signed.cid);
        assert_eq!(r.gas_used, gas::gas_used(&signed.message).unwrap());
        assert!(signed.message.gas_limit > r.gas_used);

        // ref-fvm fvm/src/gas/mod.rs:194-197: past the limit the message is out of gas (exit 7)
        // and uses the whole limit.
        let key = signed.message.from;
        let params = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 2)] };
        let est = c.estimate_gas(Message { from: key, nonce: 1, ..message(&c, worker(), MinerMethod::PreCommitSectorBatch2, &params) }, None).unwrap();
        let short = Message { gas_limit: gas::gas_used(&est).unwrap() - 1, ..est };
        let short = c.sign_message(&key, short).unwrap();
        c.push(short.clone()).unwrap();
        let r = land(&mut c, &short.cid);
        assert_eq!((r.exit_code, r.gas_used), (ExitCode::SYS_OUT_OF_GAS, short.message.gas_limit));
        assert!(!c.miner().is_allocated(2));
    }

    // --- funds ---------------------------------------------------------------------------------

    const DEPOSIT: u64 = 1_000_000_000;
    const PLEDGE: u64 = 10_000_000_000;

    #[test]
    fn a_precommit_must_bring_the_deposit_of_its_whole_batch() {
        let mut c = unfunded();
        assert_eq!((c.config().pre_commit_deposit, c.config().initial_pledge), (DEPOSIT, PLEDGE));
        let zero = atto(0);
        // builtin-actors actors/miner/src/lib.rs:1342-1350 takes the available balance (the value
        // received included, ref-fvm fvm/src/call_manager/default.rs:686-691) and :1435-1437
        // refuses less than the batch's total deposit with USR_INSUFFICIENT_FUNDS (19): "insufficient
        // funds {available} for pre-commit deposit: {total}". Nothing changes, the value stays with
        // the sender (fvm/src/executor/default.rs:144-155, call_manager/default.rs:245-263).
        let one = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1)] };
        let r = send_paying(&mut c, MinerMethod::PreCommitSectorBatch2, &one, atto(DEPOSIT - 1));
        assert_eq!(r.exit_code, ExitCode::USR_INSUFFICIENT_FUNDS);
        assert!(c.miner().precommit(1).is_none() && !c.miner().is_allocated(1));
        assert_eq!(funds(&c), (zero.clone(), zero.clone(), zero.clone()));
        let two = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1), precommit_info(&c, 2)] };
        let r = send_paying(&mut c, MinerMethod::PreCommitSectorBatch2, &two, atto(DEPOSIT));
        assert_eq!(r.exit_code, ExitCode::USR_INSUFFICIENT_FUNDS, "one deposit for two sectors");
        assert_eq!(funds(&c), (zero.clone(), zero.clone(), zero.clone()));

        // Exactly the deposit: locked as pre_commit_deposits (lib.rs:1438-1444), recorded as the
        // precommit's deposit (:1416-1420), nothing left available.
        let one = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1)] };
        assert_eq!(send_paying(&mut c, MinerMethod::PreCommitSectorBatch2, &one, atto(DEPOSIT)).exit_code, ExitCode::OK);
        assert_eq!(c.miner().precommit(1).unwrap().pre_commit_deposit, atto(DEPOSIT));
        assert_eq!(funds(&c), (atto(DEPOSIT), atto(DEPOSIT), zero.clone()));
        assert_eq!(c.miner().funds().available(), zero);

        // Funds are checked before the sector numbers are allocated (lib.rs:1435 before :1445): a
        // taken number with too little value fails for the funds.
        let again = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1)] };
        assert_eq!(send(&mut c, MinerMethod::PreCommitSectorBatch2, &again).exit_code, ExitCode::USR_INSUFFICIENT_FUNDS);
        let r = send_paying(&mut c, MinerMethod::PreCommitSectorBatch2, &again, atto(DEPOSIT));
        assert_eq!(r.exit_code, ExitCode::USR_ILLEGAL_ARGUMENT, "already allocated");
        assert_eq!(funds(&c), (atto(DEPOSIT), atto(DEPOSIT), zero));
    }

    #[test]
    fn a_failed_message_transfers_nothing() {
        let mut c = unfunded();
        let paid = atto(5 * DEPOSIT);
        // Refused by the actor (a ticket from the future, lib.rs:1283-1290): the VM reverts the
        // transfer with the state (ref-fvm fvm/src/executor/default.rs:144-155 runs the message in
        // a transaction, fvm/src/call_manager/default.rs:245-263 reverts it on a non-zero exit).
        let mut info = precommit_info(&c, 1);
        info.seal_rand_epoch = c.head() + 5;
        let bad = PreCommitSectorBatchParams2 { sectors: vec![info] };
        let r = send_paying(&mut c, MinerMethod::PreCommitSectorBatch2, &bad, paid.clone());
        assert_eq!(r.exit_code, ExitCode::USR_ILLEGAL_ARGUMENT);
        assert_eq!(c.miner().funds().balance, atto(0));
        // An injected failure changes nothing either.
        c.mpool_mut().fail_next(FaultRule { method: Some(28), count: 1, exit_code: Some(7), epochs: None, sector: None });
        let good = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1)] };
        let r = send_paying(&mut c, MinerMethod::PreCommitSectorBatch2, &good, paid.clone());
        assert_eq!(r.exit_code, ExitCode::SYS_OUT_OF_GAS);
        assert_eq!(c.miner().funds().balance, atto(0));
        // Nor does running out of gas (the third message from the worker's key: nonce 2).
        let key = c.mpool().wallet().key_of(1002).unwrap();
        let msg = Message { from: key, nonce: 2, value: paid.clone(), ..message(&c, worker(), MinerMethod::PreCommitSectorBatch2, &good) };
        let est = c.estimate_gas(msg, None).unwrap();
        let starved = c.sign_message(&key, Message { gas_limit: gas::gas_used(&est).unwrap() - 1, ..est }).unwrap();
        c.push(starved.clone()).unwrap();
        assert_eq!(land(&mut c, &starved.cid).exit_code, ExitCode::SYS_OUT_OF_GAS);
        assert_eq!(c.miner().funds().balance, atto(0));
        // A message that succeeds keeps its value: the deposit is locked, the rest available.
        assert_eq!(send_paying(&mut c, MinerMethod::PreCommitSectorBatch2, &good, paid.clone()).exit_code, ExitCode::OK);
        assert_eq!(funds(&c), (paid, atto(DEPOSIT), atto(0)));
        assert_eq!(c.miner().funds().available(), atto(4 * DEPOSIT));
    }

    #[test]
    fn a_commit_brings_the_pledge_less_the_deposit_or_fails_whole() {
        let mut c = unfunded();
        let two = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1), precommit_info(&c, 2)] };
        assert_eq!(send_paying(&mut c, MinerMethod::PreCommitSectorBatch2, &two, atto(2 * DEPOSIT)).exit_code, ExitCode::OK);
        let pc_epoch = c.miner().precommit(1).unwrap().pre_commit_epoch;
        let seed_epoch = c.config().policy.seed_epoch(pc_epoch);
        advance_to(&mut c, seed_epoch);
        let before = funds(&c);

        // activate_new_sector_infos unlocks the activated sectors' deposits (lib.rs:5325, :5372-
        // 5375), then requires the unlocked balance to cover their initial pledge or fails the
        // message with USR_INSUFFICIENT_FUNDS (:5377-5387), whatever require_activation_success:
        // one unit short of pledge − deposit fails both sectors and keeps the value out.
        let both = prove_commit_per_sector(vec![(1, seal_proof(&c, 1)), (2, seal_proof(&c, 2))], false).unwrap();
        let short = atto(2 * (PLEDGE - DEPOSIT) - 1);
        assert_eq!(send_paying(&mut c, MinerMethod::ProveCommitSectors3, &both, short).exit_code, ExitCode::USR_INSUFFICIENT_FUNDS);
        assert!(c.miner().sector(1).is_none() && c.miner().sector(2).is_none());
        assert!(c.miner().precommit(1).is_some() && c.miner().precommit(2).is_some());
        assert_eq!(funds(&c), before);

        // Sector 2's proof is bad and it fails alone (lib.rs:1572-1590): only sector 1's deposit
        // is unlocked and only its pledge locked (:5389-5391). It pays pledge − deposit plus an
        // overpayment, which is all that becomes available.
        let available = c.miner().funds().available();
        let one_good = prove_commit_per_sector(vec![(1, seal_proof(&c, 1)), (2, vec![9; 64])], false).unwrap();
        let over = atto(123);
        let r = send_paying(&mut c, MinerMethod::ProveCommitSectors3, &one_good, atto(PLEDGE - DEPOSIT) + &over);
        assert_eq!(r.exit_code, ExitCode::OK);
        let ret: BatchReturn = params::decode(&r.r#return).unwrap();
        assert_eq!((ret.code_of(0), ret.code_of(1)), (ExitCode::OK, ExitCode::USR_ILLEGAL_ARGUMENT));
        assert_eq!(c.miner().sector(1).unwrap().initial_pledge, atto(PLEDGE));
        assert_eq!(funds(&c), (atto(2 * DEPOSIT + PLEDGE - DEPOSIT + 123), atto(DEPOSIT), atto(PLEDGE)));
        assert_eq!(c.miner().funds().available(), available + over);

        // Exactly pledge − deposit for sector 2: nothing more becomes available.
        let available = c.miner().funds().available();
        let last = prove_commit_per_sector(vec![(2, seal_proof(&c, 2))], true).unwrap();
        assert_eq!(send_paying(&mut c, MinerMethod::ProveCommitSectors3, &last, atto(PLEDGE - DEPOSIT)).exit_code, ExitCode::OK);
        assert_eq!(funds(&c), (atto(2 * PLEDGE + 123), atto(0), atto(2 * PLEDGE)));
        assert_eq!(c.miner().funds().available(), available);
    }

    #[test]
    fn an_expired_precommits_deposit_is_burnt() {
        let mut c = unfunded();
        let over = atto(7);
        let two = PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 1), precommit_info(&c, 2)] };
        assert_eq!(send_paying(&mut c, MinerMethod::PreCommitSectorBatch2, &two, atto(2 * DEPOSIT) + &over).exit_code, ExitCode::OK);
        let pc_epoch = c.miner().precommit(2).unwrap().pre_commit_epoch;

        // Sim.ExpirePrecommits does what the clean-up cron does.
        c.expire_precommits(&[1]).unwrap();
        assert_eq!(funds(&c), (atto(DEPOSIT) + &over, atto(DEPOSIT), atto(0)));

        // The deadline cron deletes the expired precommit and unlocks its deposit (builtin-actors
        // actors/miner/src/state.rs:1055, :1063), charges it as a penalty (lib.rs:4251-4262) that
        // the unlocked balance repays (state.rs:850-877, lib.rs:4318-4326) and burns it (:4352):
        // it leaves the balance, the overpayment stays available.
        let policy = c.config().policy;
        let deadline = policy.prove_commit_deadline(pc_epoch, RegisteredSealProof::StackedDRG2KiBV1P1).unwrap();
        let clean_up = (deadline + 960 + 3) / 4 * 4;
        advance_to(&mut c, clean_up + 4);
        assert!(c.miner().precommit(2).is_none());
        assert_eq!(funds(&c), (over.clone(), atto(0), atto(0)));
        assert_eq!(c.miner().funds().available(), over);
    }

    #[test]
    fn max_fee_caps_the_estimated_fee_cap() {
        let c = chain();
        let msg = message(&c, worker(), MinerMethod::DeclareFaults, &());
        let est = c.estimate_gas(msg.clone(), None).unwrap();
        let spec = MessageSendSpec::new(msg_uuid("u", "s", 0), TokenAmount::from_atto(est.gas_limit as u64));
        let capped = c.estimate_gas(msg, Some(&spec)).unwrap();
        assert_eq!(capped.gas_limit, est.gas_limit);
        assert_eq!(capped.gas_fee_cap, TokenAmount::from_atto(1));
        assert!(capped.gas_premium <= capped.gas_fee_cap);
        assert!(capped.cid.is_some());
    }
}
