//! The simulated chain: head epoch, tipsets, randomness, the miner actor and the message pool.
//! Advancing an epoch includes due messages, executes them against the actor and runs cron.

use std::collections::HashMap;
use std::sync::Arc;

use cid::Cid;
use filecoin_chain::ChainEpoch;
use filecoin_chain::address::ChainAddress;
use filecoin_chain::message::{Message, MessageReceipt, MessageSendSpec, MsgLookup, SIG_TYPE_BLS, Signature, SignedMessage, cbor_cid};
use filecoin_chain::methods::MinerMethod;
use filecoin_chain::miner::{BeneficiaryTerm, MinerInfo};
use filecoin_chain::params;
use filecoin_chain::randomness::draw_randomness_raw;
use filecoin_chain::tipset::{BeaconEntry, BlockHeader, ElectionProof, Ticket, TipSet, TipSetKey};
use fvm_shared::address::{Address, Network};
use fvm_shared::bigint::BigInt;
use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;
use fvm_shared::sector::RegisteredSealProof;

use crate::actor::{ActorError, Env, MinerActor, MinerSetup};
use crate::config::SimConfig;
use crate::mpool::{GasDefaults, Mpool, PushError};
use crate::randomness::EpochRandomness;
use crate::verifier::ProofVerifier;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("tipset {0} not found")]
    UnknownTipSet(String),
    #[error("cannot draw randomness from the future: epoch {epoch} is after the lookup tipset at {height}")]
    FutureRandomness { epoch: ChainEpoch, height: ChainEpoch },
    #[error("randomness epoch {0} is before genesis")]
    BeforeGenesis(ChainEpoch),
    #[error("epoch {epoch} is after the head {head}")]
    FutureEpoch { epoch: ChainEpoch, head: ChainEpoch },
    #[error("actor {0} not found")]
    UnknownActor(String),
    #[error(transparent)]
    Push(#[from] PushError),
}

/// How many epochs before the start epoch have resolvable tipset keys.
const KNOWN_HISTORY: ChainEpoch = 10_000;

pub struct Chain {
    config: SimConfig,
    randomness: EpochRandomness,
    verifier: Arc<dyn ProofVerifier>,
    head: ChainEpoch,
    base_fee: TokenAmount,
    miner: MinerActor,
    mpool: Mpool,
    /// Tipset key CID → epoch, for every epoch produced so far.
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
        let mut chain = Self {
            randomness: EpochRandomness::new(config.randomness_seed),
            verifier,
            head: config.start_epoch,
            base_fee: TokenAmount::from_atto(config.base_fee),
            miner: MinerActor::new(setup),
            mpool: Mpool::new(vec![config.owner_id, config.worker_id], config.inclusion_delay),
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

    fn network(&self) -> Network {
        Network::Testnet
    }

    pub fn miner_address(&self) -> ChainAddress {
        ChainAddress::new_id(self.config.miner_id, self.network())
    }

    pub fn is_miner(&self, addr: &ChainAddress) -> bool {
        addr.id() == Some(self.config.miner_id)
    }

    // --- tipsets ---------------------------------------------------------------------------

    /// One block per epoch; its CID is derived from the seed and the epoch.
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

    pub fn tipset(&self, epoch: ChainEpoch) -> Result<TipSet, ChainError> {
        if epoch > self.head {
            return Err(ChainError::FutureEpoch { epoch, head: self.head });
        }
        let epoch = epoch.max(0);
        let state_cid = |label: &[u8]| {
            let mut b = label.to_vec();
            b.extend(epoch.to_be_bytes());
            cbor_cid(&b)
        };
        let sig = |label: &[u8]| Signature { sig_type: SIG_TYPE_BLS, data: self.randomness_bytes(label, epoch) };
        let block = BlockHeader {
            miner: self.miner_address(),
            ticket: Some(Ticket { vrf_proof: self.randomness.ticket_vrf_proof(epoch) }),
            election_proof: Some(ElectionProof { win_count: 1, vrf_proof: self.randomness_bytes(b"election", epoch) }),
            beacon_entries: vec![BeaconEntry { round: epoch as u64, data: self.randomness.beacon_data(epoch) }],
            win_po_st_proof: vec![],
            parents: if epoch == 0 { vec![] } else { vec![self.block_cid(epoch - 1)] },
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

    fn check_rand_epoch(&self, epoch: ChainEpoch, tsk: &TipSetKey) -> Result<(), ChainError> {
        let height = self.resolve(tsk)?;
        if epoch > height {
            return Err(ChainError::FutureRandomness { epoch, height });
        }
        if epoch < 0 {
            return Err(ChainError::BeforeGenesis(epoch));
        }
        Ok(())
    }

    pub fn ticket_digest(&self, epoch: ChainEpoch, tsk: &TipSetKey) -> Result<[u8; 32], ChainError> {
        self.check_rand_epoch(epoch, tsk)?;
        Ok(self.randomness.ticket_digest(epoch))
    }

    pub fn beacon_digest(&self, epoch: ChainEpoch, tsk: &TipSetKey) -> Result<[u8; 32], ChainError> {
        self.check_rand_epoch(epoch, tsk)?;
        Ok(self.randomness.beacon_digest(epoch))
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
        GasDefaults {
            gas_limit: self.config.gas_limit,
            gas_premium: TokenAmount::from_atto(self.config.gas_premium),
            base_fee: self.base_fee.clone(),
        }
    }

    pub fn estimate_gas(&self, msg: Message, spec: Option<&MessageSendSpec>) -> Result<Message, ChainError> {
        let msg = Mpool::estimate_gas(msg, spec, &self.gas_defaults());
        msg.with_cid().map_err(|e| ChainError::Push(PushError::Cid(e.to_string())))
    }

    pub fn push(&mut self, msg: Message, spec: Option<&MessageSendSpec>) -> Result<SignedMessage, ChainError> {
        let gas = self.gas_defaults();
        Ok(self.mpool.push(msg, spec, self.head, &gas)?)
    }

    /// The lookup of an executed message; `None` while it is pending (or was dropped).
    pub fn lookup(&self, cid: &Cid) -> Option<MsgLookup> {
        self.mpool.executed(cid).map(|e| MsgLookup {
            message: *cid,
            receipt: e.receipt.clone(),
            return_dec: serde_json::Value::Null,
            tipset: self.tipset_key(e.epoch),
            height: e.epoch,
        })
    }

    /// Moves the head one epoch on: executes the messages due, then the actor's cron.
    pub fn advance(&mut self) {
        self.head += 1;
        let epoch = self.head;
        self.epochs_by_key.insert(self.block_cid(epoch), epoch);
        for (signed, failure) in self.mpool.take_due(epoch, &self.base_fee.clone()) {
            let receipt = match failure {
                Some(code) => {
                    tracing::info!(cid = %signed.cid, method = signed.message.method, code = code.value(), "injected failure");
                    receipt(code, Vec::new(), &signed.message)
                }
                None => self.execute(epoch, &signed.message),
            };
            self.mpool.record(signed.cid, receipt, epoch);
        }
        self.miner.on_epoch(epoch);
    }

    fn execute(&mut self, epoch: ChainEpoch, msg: &Message) -> MessageReceipt {
        if !self.is_miner(&msg.to) {
            return receipt(ExitCode::SYS_INVALID_RECEIVER, Vec::new(), msg);
        }
        let verifier = Arc::clone(&self.verifier);
        let env = Env { curr: epoch, randomness: &self.randomness, verifier: verifier.as_ref() };
        let result = match self.miner.check_caller(msg.from.address()) {
            Ok(()) => Self::dispatch(&mut self.miner, &env, msg),
            Err(e) => Err(e),
        };
        match result {
            Ok(ret) => receipt(ExitCode::OK, ret, msg),
            Err(e) => {
                tracing::info!(method = msg.method, code = e.code.value(), error = %e.message, "message failed");
                receipt(e.code, Vec::new(), msg)
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

fn receipt(code: ExitCode, ret: Vec<u8>, msg: &Message) -> MessageReceipt {
    MessageReceipt { exit_code: code, r#return: ret, gas_used: msg.gas_limit / 2, events_root: None }
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
    use filecoin_chain::message::MessageSendSpec;
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

    fn config() -> SimConfig {
        SimConfig { epoch_duration_ms: 0, ..SimConfig::default() }
    }

    fn chain() -> Chain {
        Chain::new(config(), Arc::new(Fake))
    }

    fn worker() -> ChainAddress {
        sim_address(1002)
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

    /// Pushes a message and advances until it executes; returns its receipt.
    fn send<P: serde::Serialize>(c: &mut Chain, method: MinerMethod, params: &P) -> MessageReceipt {
        let msg = miner_message(c.miner_address(), worker(), method, params, TokenAmount::from_atto(0)).unwrap();
        let signed = c.push(msg, None).unwrap();
        for _ in 0..10 {
            c.advance();
            if let Some(l) = c.lookup(&signed.cid) {
                return l.receipt;
            }
        }
        panic!("message never executed");
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

        let stranger = miner_message(
            c.miner_address(),
            sim_address(1002),
            MinerMethod::PreCommitSectorBatch2,
            &PreCommitSectorBatchParams2 { sectors: vec![precommit_info(&c, 4)] },
            TokenAmount::from_atto(0),
        )
        .unwrap();
        let mut from_owner = stranger.clone();
        from_owner.from = sim_address(1001);
        assert_eq!(c.push(from_owner, None).map(|_| ()).err().map(|e| e.to_string()), None);
        let mut from_stranger = stranger;
        from_stranger.from = sim_address(1999);
        assert!(matches!(c.push(from_stranger, None), Err(ChainError::Push(PushError::UnknownSender(_)))));
    }

    #[test]
    fn window_post_makes_a_sector_active_and_a_missed_deadline_makes_it_faulty() {
        let mut c = chain();
        let (deadline, partition) = activate(&mut c, 7);
        assert!(c.miner().active_sectors().is_empty(), "unproven until its first PoSt");

        let dl = open_deadline(&mut c, deadline);
        let mut wrong_commit = post_params(&c, &dl, partition, BitField::new());
        wrong_commit.chain_commit_rand = Randomness(vec![0; 32]);
        assert_eq!(send(&mut c, MinerMethod::SubmitWindowedPoSt, &wrong_commit).exit_code, ExitCode::USR_ILLEGAL_ARGUMENT);
        let mut bad_proof = post_params(&c, &dl, partition, BitField::new());
        bad_proof.proofs[0].proof_bytes[0] ^= 1;
        assert_eq!(send(&mut c, MinerMethod::SubmitWindowedPoSt, &bad_proof).exit_code, ExitCode::USR_ILLEGAL_ARGUMENT);
        let good = post_params(&c, &dl, partition, BitField::new());
        assert_eq!(send(&mut c, MinerMethod::SubmitWindowedPoSt, &good).exit_code, ExitCode::OK);
        // It landed in the deadline's last epoch, whose cron then ran: the proof still counts.
        assert_eq!(c.head(), dl.last());
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
        // The message executes one epoch after the push, at the cutoff itself.
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
        let msg = miner_message(c.miner_address(), worker(), MinerMethod::PreCommitSectorBatch2, &params, TokenAmount::from_atto(0)).unwrap();
        let spec = MessageSendSpec::new(msg_uuid("uid-1", "precommit", 0), TokenAmount::from_atto(0));
        let a = c.push(msg.clone(), Some(&spec)).unwrap();
        let b = c.push(msg.clone(), Some(&spec)).unwrap();
        assert_eq!(a, b, "same MsgUuid, same signed message");
        assert_eq!(c.mpool().counts().by_method[&28], 1);
        assert_eq!(c.mpool().counts().by_sector[&1][&28], 1);
        let other = c.push(msg.clone(), None).unwrap();
        assert_eq!((a.message.nonce, other.message.nonce), (0, 1));
        let mut nonzero = msg.clone();
        nonzero.nonce = 5;
        assert!(matches!(c.push(nonzero, None), Err(ChainError::Push(PushError::NonZeroNonce(5)))));

        c.mpool_mut().fail_next(crate::mpool::FaultRule { method: Some(34), count: 1, exit_code: Some(6), epochs: None, sector: None });
        c.mpool_mut().drop_next(crate::mpool::FaultRule { method: Some(5), count: 1, exit_code: None, epochs: None, sector: None });
        c.mpool_mut().delay_next(crate::mpool::FaultRule { method: Some(10), count: 1, exit_code: None, epochs: Some(3), sector: None });
        let prove = prove_commit_per_sector(vec![(1, vec![1])], true).unwrap();
        assert_eq!(send(&mut c, MinerMethod::ProveCommitSectors3, &prove).exit_code, ExitCode::SYS_INSUFFICIENT_FUNDS);

        let post = miner_message(c.miner_address(), worker(), MinerMethod::SubmitWindowedPoSt, &params, TokenAmount::from_atto(0)).unwrap();
        let dropped = c.push(post, None).unwrap();
        let declare = miner_message(c.miner_address(), worker(), MinerMethod::DeclareFaults, &params, TokenAmount::from_atto(0)).unwrap();
        let delayed = c.push(declare, None).unwrap();
        let pushed_at = c.head();
        for _ in 0..10 {
            c.advance();
        }
        assert!(c.lookup(&dropped.cid).is_none(), "dropped messages never land");
        assert_eq!(c.lookup(&delayed.cid).unwrap().height, pushed_at + 1 + 3);

        // A base fee above the fee cap keeps a message out until it falls.
        let held = c.push(msg.clone(), None).unwrap();
        c.set_base_fee(held.message.gas_fee_cap.clone() + TokenAmount::from_atto(1));
        c.advance();
        c.advance();
        assert!(c.lookup(&held.cid).is_none());
        c.set_base_fee(TokenAmount::from_atto(100));
        c.advance();
        assert!(c.lookup(&held.cid).is_some());
    }

    #[test]
    fn max_fee_caps_the_estimated_fee_cap() {
        let c = chain();
        let msg = miner_message(c.miner_address(), worker(), MinerMethod::DeclareFaults, &(), TokenAmount::from_atto(0)).unwrap();
        let spec = MessageSendSpec::new(msg_uuid("u", "s", 0), TokenAmount::from_atto(50_000_000));
        let est = c.estimate_gas(msg, Some(&spec)).unwrap();
        assert_eq!(est.gas_limit, 50_000_000);
        assert_eq!(est.gas_fee_cap, TokenAmount::from_atto(1));
        assert!(est.gas_premium <= est.gas_fee_cap);
        assert!(est.cid.is_some());
    }
}
