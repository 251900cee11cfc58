//! The miner actor's sealing and proving rules (builtin-actors v18 `actors/miner/src/lib.rs`):
//! precommit validation, prove-commit with real proof verification, deadline and partition
//! assignment, window PoSt, fault and recovery declarations, missed-PoSt faults at deadline end,
//! and the funds that pay for them: the balance, precommit deposits and initial pledge.

use std::collections::{BTreeMap, BTreeSet};

use cid::Cid;
use filecoin_chain::ChainEpoch;
use filecoin_chain::deadline::{DeadlineInfo, current_proving_period_start, deadline_is_mutable};
use filecoin_chain::methods::{MAX_AGGREGATED_PROOF_SIZE, MAX_AGGREGATED_SECTORS, MIN_AGGREGATED_SECTORS};
use filecoin_chain::miner;
use filecoin_chain::params::{
    BatchReturn, DeclareFaultsParams, DeclareFaultsRecoveredParams, FailCode, PreCommitSectorBatchParams2,
    ProveCommitSectors3Params, SectorPreCommitInfo, SubmitWindowedPoStParams,
};
use filecoin_chain::policy::ChainPolicy;
use filecoin_chain::randomness::{DomainSeparationTag, draw_randomness, mask_post_randomness, miner_entropy};
use fvm_ipld_bitfield::BitField;
use fvm_shared::address::Address;
use fvm_shared::bigint::BigInt;
use fvm_shared::commcid::{
    FIL_COMMITMENT_SEALED, FIL_COMMITMENT_UNSEALED, POSEIDON_BLS12_381_A1_FC1, SHA2_256_TRUNC254_PADDED,
};
use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;
use fvm_shared::sector::{RegisteredAggregateProof, RegisteredPoStProof, RegisteredSealProof, SectorNumber};

use crate::randomness::ChainRandomness;
use crate::verifier::{ChallengedSector, ProofVerifier, SealVerifyInfo};

/// `POSTED_PARTITIONS_MAX`.
const POSTED_PARTITIONS_MAX: usize = 3;
/// `EXPIRED_PRE_COMMIT_CLEAN_UP_DELAY` (builtin-actors runtime/src/runtime/policy.rs:281): eight
/// hours of epochs after a precommit's prove-commit deadline, cron deletes it.
const EXPIRED_PRE_COMMIT_CLEAN_UP_DELAY: ChainEpoch = 8 * 120;

/// A method aborted with an exit code, as the actor's `ActorError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (exit code {code})")]
pub struct ActorError {
    pub code: ExitCode,
    pub message: String,
}

fn illegal_argument(message: impl Into<String>) -> ActorError {
    ActorError { code: ExitCode::USR_ILLEGAL_ARGUMENT, message: message.into() }
}

fn forbidden(message: impl Into<String>) -> ActorError {
    ActorError { code: ExitCode::USR_FORBIDDEN, message: message.into() }
}

fn not_found(message: impl Into<String>) -> ActorError {
    ActorError { code: ExitCode::USR_NOT_FOUND, message: message.into() }
}

fn insufficient_funds(message: impl Into<String>) -> ActorError {
    ActorError { code: ExitCode::USR_INSUFFICIENT_FUNDS, message: message.into() }
}

/// The miner's funds as its state tracks them (builtin-actors actors/miner/src/state.rs): the
/// actor's balance and the parts of it locked as precommit deposits and as initial pledge. Nothing
/// here vests and no fee debt accrues, so the state's `locked_funds` and `fee_debt` stay zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funds {
    pub balance: TokenAmount,
    pub pre_commit_deposits: TokenAmount,
    pub initial_pledge: TokenAmount,
}

impl Funds {
    /// `get_unlocked_balance` (state.rs:954-961): the balance less what is locked.
    pub fn unlocked(&self) -> TokenAmount {
        &self.balance - &self.pre_commit_deposits - &self.initial_pledge
    }

    /// `get_available_balance` (state.rs:965-971): the unlocked balance less the fee debt (none).
    pub fn available(&self) -> TokenAmount {
        self.unlocked()
    }
}

/// What a method runs against: the epoch, the chain's randomness, the proof verifier.
pub struct Env<'a> {
    pub curr: ChainEpoch,
    pub randomness: ChainRandomness<'a>,
    pub verifier: &'a dyn ProofVerifier,
}

#[derive(Debug, Clone)]
pub struct PreCommit {
    pub info: SectorPreCommitInfo,
    pub pre_commit_epoch: ChainEpoch,
    pub deposit: TokenAmount,
    /// The deadline-end cron at or after this epoch deletes the precommit if still unproven.
    pub clean_up_at: ChainEpoch,
}

#[derive(Debug, Clone)]
pub struct Sector {
    pub info: SectorPreCommitInfo,
    pub activation: ChainEpoch,
    pub deadline: u64,
    pub partition: u64,
    pub initial_pledge: TokenAmount,
}

#[derive(Debug, Clone, Default)]
struct PartitionState {
    all: BitField,
    faulty: BitField,
    recovering: BitField,
    /// Activated but not yet proven by a window PoSt.
    unproven: BitField,
}

#[derive(Debug, Clone, Default)]
struct DeadlineState {
    partitions: Vec<PartitionState>,
    post_submissions: BitField,
}

/// Static facts about the simulated miner.
#[derive(Debug, Clone)]
pub struct MinerSetup {
    pub id: u64,
    /// Addresses allowed to call (owner, worker, control).
    pub callers: Vec<u64>,
    pub seal_proofs: Vec<RegisteredSealProof>,
    pub window_post_proof: RegisteredPoStProof,
    pub partition_sectors: u64,
    pub proving_period_offset: ChainEpoch,
    pub policy: ChainPolicy,
    pub pre_commit_deposit: TokenAmount,
    pub initial_pledge: TokenAmount,
}

pub struct MinerActor {
    setup: MinerSetup,
    funds: Funds,
    allocated: BitField,
    precommits: BTreeMap<SectorNumber, PreCommit>,
    sectors: BTreeMap<SectorNumber, Sector>,
    deadlines: Vec<DeadlineState>,
}

impl MinerActor {
    /// A miner holding `balance`, none of it locked.
    pub fn new(setup: MinerSetup, balance: TokenAmount) -> Self {
        let n = setup.policy.window_post.period_deadlines as usize;
        let zero = TokenAmount::from_atto(0);
        Self {
            setup,
            funds: Funds { balance, pre_commit_deposits: zero.clone(), initial_pledge: zero },
            allocated: BitField::new(),
            precommits: BTreeMap::new(),
            sectors: BTreeMap::new(),
            deadlines: vec![DeadlineState::default(); n],
        }
    }

    pub fn setup(&self) -> &MinerSetup {
        &self.setup
    }

    fn entropy(&self) -> Vec<u8> {
        miner_entropy(&Address::new_id(self.setup.id))
    }

    fn policy(&self) -> &ChainPolicy {
        &self.setup.policy
    }

    /// The deadline current at `curr` (`StateMinerProvingDeadline`).
    pub fn deadline_info(&self, curr: ChainEpoch) -> DeadlineInfo {
        DeadlineInfo::current(self.setup.proving_period_offset, curr, &self.policy().window_post).next_not_elapsed()
    }

    pub fn funds(&self) -> &Funds {
        &self.funds
    }

    /// Runs a method of a message carrying `value`. The VM transfers the value to the actor before
    /// invoking it, so the method sees it in its balance (ref-fvm fvm/src/call_manager/
    /// default.rs:686-691), and runs the message in a transaction that reverts the state, transfer
    /// included, when the exit code is not 0 (fvm/src/executor/default.rs:144-155,
    /// call_manager/default.rs:245-263). Methods validate before they change anything, so only the
    /// funds need restoring.
    pub fn receive<R>(&mut self, value: &TokenAmount, method: impl FnOnce(&mut Self) -> Result<R, ActorError>) -> Result<R, ActorError> {
        let before = self.funds.clone();
        self.funds.balance += value;
        let result = method(self);
        if result.is_err() {
            self.funds = before;
        }
        result
    }

    pub fn check_caller(&self, caller: &Address) -> Result<(), ActorError> {
        match caller.id() {
            Ok(id) if self.setup.callers.contains(&id) => Ok(()),
            _ => Err(forbidden(format!("caller {caller} is not the owner, worker or a control address"))),
        }
    }

    // --- PreCommitSectorBatch2 -------------------------------------------------------------

    pub fn pre_commit_sector_batch2(&mut self, env: &Env, params: PreCommitSectorBatchParams2) -> Result<(), ActorError> {
        let curr = env.curr;
        if params.sectors.is_empty() {
            return Err(illegal_argument("batch empty"));
        }
        let mut seen = BTreeSet::new();
        for s in &params.sectors {
            if !seen.insert(s.sector_number) {
                return Err(illegal_argument(format!("duplicate sector number {}", s.sector_number)));
            }
            self.validate_pre_commit(curr, s)?;
        }
        // The available balance (the message's value included) must cover every sector's deposit
        // (builtin-actors actors/miner/src/lib.rs:1342-1350, :1435-1437), checked before the
        // sector numbers are allocated (:1445).
        let deposit = &self.setup.pre_commit_deposit;
        let total_deposit = deposit * params.sectors.len() as u64;
        let available = self.funds.available();
        if available < total_deposit {
            return Err(insufficient_funds(format!("insufficient funds {available} for pre-commit deposit: {total_deposit}")));
        }
        if let Some(s) = params.sectors.iter().find(|s| self.allocated.get(s.sector_number)) {
            return Err(illegal_argument(format!("sector numbers [{}] already allocated", s.sector_number)));
        }
        self.funds.pre_commit_deposits += &total_deposit;
        for s in params.sectors {
            self.allocated.set(s.sector_number);
            let clean_up_at = self.clean_up_epoch(curr, s.seal_proof);
            self.precommits.insert(s.sector_number, PreCommit { info: s, pre_commit_epoch: curr, deposit: deposit.clone(), clean_up_at });
        }
        Ok(())
    }

    /// Where the actor queues a precommit's clean-up: its prove-commit deadline plus the clean-up
    /// delay (builtin-actors actors/miner/src/lib.rs:1426-1432), quantized up to a deadline
    /// boundary (state.rs:996-998, quantize.rs:27-41).
    fn clean_up_epoch(&self, curr: ChainEpoch, proof: RegisteredSealProof) -> ChainEpoch {
        let w = &self.policy().window_post;
        let bound = self.policy().prove_commit_deadline(curr, proof).unwrap_or(curr) + EXPIRED_PRE_COMMIT_CLEAN_UP_DELAY;
        let offset = self.setup.proving_period_offset % w.challenge_window;
        let quotient = (bound - offset) / w.challenge_window;
        if (bound - offset) % w.challenge_window == 0 || bound - offset < 0 {
            quotient * w.challenge_window + offset
        } else {
            (quotient + 1) * w.challenge_window + offset
        }
    }

    fn validate_pre_commit(&self, curr: ChainEpoch, s: &SectorPreCommitInfo) -> Result<(), ActorError> {
        let n = s.sector_number;
        if !self.setup.seal_proofs.contains(&s.seal_proof) {
            return Err(illegal_argument(format!("unsupported seal proof type {:?}", s.seal_proof)));
        }
        if s.seal_proof.registered_window_post_proof().ok() != Some(self.setup.window_post_proof) {
            return Err(illegal_argument(format!(
                "seal proof {:?} does not match the miner's window PoSt proof {:?}",
                s.seal_proof, self.setup.window_post_proof
            )));
        }
        if n > i64::MAX as u64 {
            return Err(illegal_argument(format!("sector number {n} out of range")));
        }
        if !has_prefix(&s.sealed_cid, FIL_COMMITMENT_SEALED, POSEIDON_BLS12_381_A1_FC1) {
            return Err(illegal_argument(format!("sealed CID had wrong prefix: {}", s.sealed_cid)));
        }
        if let Some(u) = &s.unsealed_cid.0
            && !has_prefix(u, FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED)
        {
            return Err(illegal_argument(format!("unsealed CID had wrong prefix: {u}")));
        }
        if s.seal_rand_epoch >= curr {
            return Err(illegal_argument(format!(
                "seal challenge epoch {} must be before now {curr}",
                s.seal_rand_epoch
            )));
        }
        let earliest = curr - self.policy().max_pre_commit_randomness_lookback;
        if s.seal_rand_epoch < earliest {
            return Err(illegal_argument(format!(
                "seal challenge epoch {} too old, must be after {earliest}",
                s.seal_rand_epoch
            )));
        }
        let (min, max) = self
            .policy()
            .expiration_bounds(curr, s.seal_proof)
            .ok_or_else(|| illegal_argument(format!("no prove-commit duration for {:?}", s.seal_proof)))?;
        if s.expiration < min {
            return Err(illegal_argument(format!(
                "invalid expiration {}, total sector lifetime must exceed {} after activation (earliest {min})",
                s.expiration,
                self.policy().min_sector_expiration
            )));
        }
        if s.expiration > max {
            return Err(illegal_argument(format!(
                "invalid expiration {}, cannot be more than {} past current epoch {curr}",
                s.expiration,
                self.policy().max_sector_expiration_extension
            )));
        }
        Ok(())
    }

    // --- ProveCommitSectors3 ---------------------------------------------------------------

    pub fn prove_commit_sectors3(&mut self, env: &Env, params: ProveCommitSectors3Params) -> Result<BatchReturn, ActorError> {
        let curr = env.curr;
        let n = params.sector_activations.len();
        // Every listed sector must have a precommit, or the whole message fails with not found,
        // before anything else is checked (builtin-actors actors/miner/src/lib.rs:1492-1498,
        // state.rs:1165-1185).
        let mut candidates: Vec<(usize, PreCommit)> = Vec::new();
        for (i, a) in params.sector_activations.iter().enumerate() {
            let pc = self
                .precommits
                .get(&a.sector_number)
                .ok_or_else(|| not_found(format!("loading precommits: sector {} not found", a.sector_number)))?;
            candidates.push((i, pc.clone()));
        }
        if n == 0 {
            return Err(illegal_argument("no sectors to prove"));
        }
        let per_sector = !params.sector_proofs.is_empty();
        let aggregated = !params.aggregate_proof.is_empty();
        if per_sector == aggregated {
            return Err(illegal_argument("exactly one of sector proofs or aggregate proof must be non-empty"));
        }
        if per_sector {
            if params.sector_proofs.len() != n {
                return Err(illegal_argument(format!(
                    "mismatched lengths: {} sector activations, {} proofs",
                    n,
                    params.sector_proofs.len()
                )));
            }
            if params.aggregate_proof_type.is_some() {
                return Err(illegal_argument("aggregate proof type must be null with per-sector proofs"));
            }
        } else {
            if params.aggregate_proof_type != Some(RegisteredAggregateProof::SnarkPackV2) {
                return Err(illegal_argument("aggregate proof type must be SnarkPackV2"));
            }
            if !(MIN_AGGREGATED_SECTORS..=MAX_AGGREGATED_SECTORS).contains(&n) {
                return Err(illegal_argument(format!(
                    "aggregate proof covers {n} sectors, must be {MIN_AGGREGATED_SECTORS}..={MAX_AGGREGATED_SECTORS}"
                )));
            }
            if params.aggregate_proof.len() > MAX_AGGREGATED_PROOF_SIZE {
                return Err(illegal_argument(format!(
                    "sector prove-commit proof of size {} exceeds max size of {MAX_AGGREGATED_PROOF_SIZE}",
                    params.aggregate_proof.len()
                )));
            }
        }

        let mut failures: BTreeMap<usize, ActorError> = BTreeMap::new();
        if let Some(first) = candidates.first() {
            let spt = first.1.info.seal_proof;
            if candidates.iter().any(|(_, pc)| pc.info.seal_proof != spt) {
                return Err(ActorError {
                    code: ExitCode::USR_ILLEGAL_STATE,
                    message: "seal proof group for verification contains mismatched seal proofs".into(),
                });
            }
        }
        for (i, pc) in &candidates {
            let seed_epoch = self.policy().seed_epoch(pc.pre_commit_epoch);
            if curr <= seed_epoch {
                return Err(forbidden(format!("too early to prove sector {}", pc.info.sector_number)));
            }
            let deadline = self.policy().prove_commit_deadline(pc.pre_commit_epoch, pc.info.seal_proof);
            if deadline.is_none_or(|d| curr > d) {
                failures.insert(*i, illegal_argument(format!("commitment for sector {} expired", pc.info.sector_number)));
            }
            if per_sector {
                let size = params.sector_proofs[*i].len();
                let max = pc.info.seal_proof.proof_size().unwrap_or(0);
                if size > max {
                    return Err(illegal_argument(format!(
                        "sector prove-commit proof of size {size} exceeds max size of {max}"
                    )));
                }
            }
        }

        // As the actor does: the CommD the pieces make must be the precommitted unsealed CID
        // (no pieces: the zero CommD, declared as none).
        for (i, pc) in &candidates {
            let pieces = &params.sector_activations[*i].pieces;
            let declared = pc.info.unsealed_cid.0.as_ref().map(commitment).transpose()?;
            let matches = if pieces.is_empty() {
                declared.is_none()
            } else {
                let infos = pieces.iter().map(|p| Ok((commitment(&p.cid)?, p.size.0))).collect::<Result<Vec<_>, ActorError>>()?;
                let computed = env
                    .verifier
                    .comm_d_of_pieces(pc.info.seal_proof, &infos)
                    .map_err(|e| illegal_argument(format!("cannot compute CommD of the pieces of sector {}: {e}", pc.info.sector_number)))?;
                declared == Some(computed)
            };
            if !matches {
                failures.insert(*i, illegal_argument(format!("the pieces of sector {} do not make its precommitted unsealed CID", pc.info.sector_number)));
            }
        }

        let mut infos: BTreeMap<usize, SealVerifyInfo> = BTreeMap::new();
        for (i, pc) in &candidates {
            infos.insert(*i, self.seal_verify_info(env, pc)?);
        }
        if per_sector {
            for (i, info) in &infos {
                if failures.contains_key(i) {
                    continue;
                }
                match env.verifier.verify_seal(self.setup.id, info, &params.sector_proofs[*i]) {
                    Ok(true) => {}
                    Ok(false) => {
                        failures.insert(*i, illegal_argument(format!("invalid seal proof for sector {}", info.sector_number)));
                    }
                    Err(e) => {
                        failures.insert(*i, illegal_argument(format!("invalid seal proof for sector {}: {e}", info.sector_number)));
                    }
                }
            }
        } else {
            // As the actor: the aggregate covers every listed precommit, valid or not.
            let all: Vec<SealVerifyInfo> = infos.values().cloned().collect();
            match env.verifier.verify_aggregate_seals(self.setup.id, &all, &params.aggregate_proof) {
                Ok(true) => {}
                Ok(false) => return Err(illegal_argument("invalid aggregate proof")),
                Err(e) => return Err(illegal_argument(format!("invalid aggregate proof: {e}"))),
            }
        }

        if let Some(first) = failures.values().next()
            && (params.require_activation_success || failures.len() == n)
        {
            return Err(first.clone());
        }
        let activated: Vec<PreCommit> =
            candidates.into_iter().filter(|(i, _)| !failures.contains_key(i)).map(|(_, pc)| pc).collect();
        self.lock_pledge(&activated)?;
        for pc in activated {
            self.activate(curr, pc);
        }
        Ok(BatchReturn {
            success_count: (n - failures.len()) as u32,
            fail_codes: failures.iter().map(|(i, e)| FailCode { idx: *i as u32, code: e.code }).collect(),
        })
    }

    /// The funds side of activating `sectors` (`activate_new_sector_infos`, builtin-actors
    /// actors/miner/src/lib.rs:5325-5326, :5372-5391): their precommit deposits are unlocked, then
    /// the unlocked balance must cover their initial pledge, which is locked; otherwise the whole
    /// message fails.
    fn lock_pledge(&mut self, sectors: &[PreCommit]) -> Result<(), ActorError> {
        let deposits = sectors.iter().fold(TokenAmount::from_atto(0), |sum, pc| sum + &pc.deposit);
        let total_pledge = &self.setup.initial_pledge * sectors.len() as u64;
        let after = Funds { pre_commit_deposits: &self.funds.pre_commit_deposits - &deposits, ..self.funds.clone() };
        let unlocked = after.unlocked();
        if unlocked < total_pledge {
            return Err(insufficient_funds(format!(
                "insufficient funds for aggregate initial pledge requirement {total_pledge}, available: {unlocked}"
            )));
        }
        self.funds = Funds { initial_pledge: &after.initial_pledge + &total_pledge, ..after };
        Ok(())
    }

    fn seal_verify_info(&self, env: &Env, pc: &PreCommit) -> Result<SealVerifyInfo, ActorError> {
        let entropy = self.entropy();
        let ticket_epoch = pc.info.seal_rand_epoch;
        let seed_epoch = self.policy().seed_epoch(pc.pre_commit_epoch);
        let ticket = draw_randomness(
            &env.randomness.ticket_digest(ticket_epoch),
            DomainSeparationTag::SealRandomness,
            ticket_epoch,
            &entropy,
        );
        let seed = draw_randomness(
            &env.randomness.beacon_digest(seed_epoch),
            DomainSeparationTag::InteractiveSealChallengeSeed,
            seed_epoch,
            &entropy,
        );
        let comm_r = commitment(&pc.info.sealed_cid)?;
        let comm_d = match &pc.info.unsealed_cid.0 {
            Some(c) => commitment(c)?,
            None => env
                .verifier
                .zero_comm_d(pc.info.seal_proof)
                .map_err(|e| illegal_argument(format!("no zero CommD for {:?}: {e}", pc.info.seal_proof)))?,
        };
        Ok(SealVerifyInfo { seal_proof: pc.info.seal_proof, sector_number: pc.info.sector_number, comm_r, comm_d, ticket, seed })
    }

    fn activate(&mut self, curr: ChainEpoch, pc: PreCommit) {
        let (deadline, partition) = self.assign_deadline(curr);
        let n = pc.info.sector_number;
        let part = &mut self.deadlines[deadline as usize].partitions[partition as usize];
        part.all.set(n);
        part.unproven.set(n);
        self.precommits.remove(&n);
        self.sectors.insert(
            n,
            Sector { info: pc.info, activation: curr, deadline, partition, initial_pledge: self.setup.initial_pledge.clone() },
        );
    }

    /// Puts a new sector in a deadline that may change now, as the actors' `assign_deadlines`
    /// ranks them: deadlines with a partial partition first, then the fewest partitions after
    /// the assignment, the fewest sectors, the lowest index.
    fn assign_deadline(&mut self, curr: ChainEpoch) -> (u64, u64) {
        let w = &self.setup.policy.window_post;
        let period_start = current_proving_period_start(self.setup.proving_period_offset, curr, w);
        let size = self.setup.partition_sectors;
        let best = (0..w.period_deadlines)
            .filter(|d| deadline_is_mutable(period_start, *d, curr, w))
            .min_by_key(|d| {
                let live: u64 = self.deadlines[*d as usize].partitions.iter().map(|p| p.all.len()).sum();
                let full_now = live.is_multiple_of(size.max(1));
                (full_now, (live + 1).div_ceil(size.max(1)), live, *d)
            })
            // Every deadline is mutable at some point of the period except the current and next.
            .unwrap_or((self.deadline_info(curr).index + 2) % w.period_deadlines);
        let dl = &mut self.deadlines[best as usize];
        let partition = match dl.partitions.last() {
            Some(p) if p.all.len() < size => dl.partitions.len() - 1,
            _ => {
                dl.partitions.push(PartitionState::default());
                dl.partitions.len() - 1
            }
        };
        (best, partition as u64)
    }

    // --- SubmitWindowedPoSt ----------------------------------------------------------------

    pub fn submit_windowed_post(&mut self, env: &Env, params: SubmitWindowedPoStParams) -> Result<(), ActorError> {
        let curr = env.curr;
        let w = self.policy().window_post;
        if params.proofs.len() != 1 {
            return Err(illegal_argument(format!("expected exactly one proof, got {}", params.proofs.len())));
        }
        let proof = &params.proofs[0];
        if proof.post_proof != self.setup.window_post_proof {
            return Err(illegal_argument(format!(
                "expected proof of type {:?}, got {:?}",
                self.setup.window_post_proof, proof.post_proof
            )));
        }
        if params.deadline >= w.period_deadlines {
            return Err(illegal_argument(format!("invalid deadline {} of {}", params.deadline, w.period_deadlines)));
        }
        if params.partitions.len() > POSTED_PARTITIONS_MAX {
            return Err(illegal_argument(format!(
                "too many partitions {}, limit {POSTED_PARTITIONS_MAX}",
                params.partitions.len()
            )));
        }
        let current = self.deadline_info(curr);
        if params.deadline != current.index || !current.is_open() {
            return Err(illegal_argument(format!(
                "invalid deadline {} at epoch {curr}, expected {}",
                params.deadline, current.index
            )));
        }
        if params.chain_commit_epoch < current.challenge {
            return Err(illegal_argument(format!(
                "expected chain commit epoch {} to be after {}",
                params.chain_commit_epoch, current.challenge
            )));
        }
        if params.chain_commit_epoch >= curr {
            return Err(illegal_argument(format!(
                "chain commit epoch {} must be less than the current epoch {curr}",
                params.chain_commit_epoch
            )));
        }
        let commit_rand = draw_randomness(
            &env.randomness.ticket_digest(params.chain_commit_epoch),
            DomainSeparationTag::PoStChainCommit,
            params.chain_commit_epoch,
            &[],
        );
        if params.chain_commit_rand.0 != commit_rand {
            return Err(illegal_argument("post commit randomness mismatched"));
        }
        let max_size = 192 * params.partitions.len();
        if proof.proof_bytes.len() > max_size {
            return Err(illegal_argument(format!("expected proof to be smaller than {max_size} bytes")));
        }

        let dl = &self.deadlines[params.deadline as usize];
        let mut seen = BTreeSet::new();
        let mut to_prove = BitField::new();
        for p in &params.partitions {
            let part = dl
                .partitions
                .get(p.index as usize)
                .ok_or_else(|| not_found(format!("no such partition {} in deadline {}", p.index, params.deadline)))?;
            if !seen.insert(p.index) || dl.post_submissions.get(p.index) {
                return Err(illegal_argument(format!("partition {} already proven in this deadline", p.index)));
            }
            if !part.all.contains_all(&p.skipped) {
                return Err(illegal_argument("skipped faults contains sectors outside partition"));
            }
            // Declared faults that are not recovering are not proven; skipped ones neither.
            let not_proven = &(&part.faulty - &part.recovering) | &p.skipped;
            to_prove |= &(&part.all - &not_proven);
        }

        if !to_prove.is_empty() {
            let randomness = mask_post_randomness(draw_randomness(
                &env.randomness.beacon_digest(current.challenge),
                DomainSeparationTag::WindowedPoStChallengeSeed,
                current.challenge,
                &self.entropy(),
            ));
            let mut challenged = Vec::new();
            for n in to_prove.iter() {
                let sector = &self.sectors[&n];
                challenged.push(ChallengedSector { sector_number: n, comm_r: commitment(&sector.info.sealed_cid)? });
            }
            match env.verifier.verify_window_post(self.setup.id, proof.post_proof, randomness, &challenged, &proof.proof_bytes) {
                Ok(true) => {}
                Ok(false) => return Err(illegal_argument("invalid PoSt")),
                Err(e) => return Err(illegal_argument(format!("invalid PoSt: {e}"))),
            }
        }

        let dl = &mut self.deadlines[params.deadline as usize];
        for p in &params.partitions {
            let part = &mut dl.partitions[p.index as usize];
            let proven = &part.all & &to_prove;
            part.faulty = &(&part.faulty - &proven) | &p.skipped;
            part.recovering = &(&part.recovering - &proven) - &p.skipped;
            part.unproven = &(&part.unproven - &proven) - &p.skipped;
            dl.post_submissions.set(p.index);
        }
        Ok(())
    }

    // --- DeclareFaults / DeclareFaultsRecovered ---------------------------------------------

    fn validate_declaration(&self, curr: ChainEpoch, deadline: u64, partition: u64, sectors: &BitField) -> Result<(), ActorError> {
        let w = &self.policy().window_post;
        if deadline >= w.period_deadlines {
            return Err(illegal_argument(format!("invalid deadline {deadline} of {}", w.period_deadlines)));
        }
        let period_start = current_proving_period_start(self.setup.proving_period_offset, curr, w);
        let target = DeadlineInfo::new(period_start, deadline, curr, w).next_not_elapsed();
        if target.fault_cutoff_passed() {
            return Err(illegal_argument(format!(
                "late fault or recovery declaration for deadline {deadline} at epoch {curr} (cutoff {})",
                target.fault_cutoff
            )));
        }
        let part = self.deadlines[deadline as usize]
            .partitions
            .get(partition as usize)
            .ok_or_else(|| not_found(format!("no such partition {partition} in deadline {deadline}")))?;
        if !part.all.contains_all(sectors) {
            return Err(illegal_argument(format!("sectors not all in deadline {deadline} partition {partition}")));
        }
        Ok(())
    }

    pub fn declare_faults(&mut self, env: &Env, params: DeclareFaultsParams) -> Result<(), ActorError> {
        for f in &params.faults {
            self.validate_declaration(env.curr, f.deadline, f.partition, &f.sectors)?;
        }
        for f in params.faults {
            let part = &mut self.deadlines[f.deadline as usize].partitions[f.partition as usize];
            part.faulty |= &f.sectors;
            part.recovering = &part.recovering - &f.sectors;
            part.unproven = &part.unproven - &f.sectors;
        }
        Ok(())
    }

    pub fn declare_faults_recovered(&mut self, env: &Env, params: DeclareFaultsRecoveredParams) -> Result<(), ActorError> {
        for r in &params.recoveries {
            self.validate_declaration(env.curr, r.deadline, r.partition, &r.sectors)?;
        }
        for r in params.recoveries {
            let part = &mut self.deadlines[r.deadline as usize].partitions[r.partition as usize];
            let recovering = &r.sectors & &part.faulty;
            part.recovering |= &recovering;
        }
        Ok(())
    }

    // --- cron ------------------------------------------------------------------------------

    /// At the last epoch of a deadline (`handle_proving_deadline`, builtin-actors
    /// actors/miner/src/lib.rs:4230): expired precommits whose clean-up epoch has come are
    /// deleted and their deposits burnt (state.rs:1017-1071, called at lib.rs:4251-4262),
    /// partitions without a PoSt lose their sectors to faults (unproven ones included) and pending
    /// recoveries fail.
    pub fn on_epoch(&mut self, curr: ChainEpoch) {
        let dl_info = self.deadline_info(curr);
        if curr != dl_info.last() {
            return;
        }
        let expired: Vec<SectorNumber> =
            self.precommits.iter().filter(|(_, pc)| pc.clean_up_at <= curr).map(|(n, _)| *n).collect();
        self.burn_precommits(&expired);
        let dl = &mut self.deadlines[dl_info.index as usize];
        for (i, part) in dl.partitions.iter_mut().enumerate() {
            if !dl.post_submissions.get(i as u64) {
                part.faulty = part.all.clone();
                part.recovering = BitField::new();
                part.unproven = BitField::new();
            }
        }
        dl.post_submissions = BitField::new();
    }

    /// Deletes the precommits of `sectors` now and burns their deposits, as the clean-up cron
    /// does once they have expired; the sector numbers stay allocated.
    pub fn expire_precommits(&mut self, sectors: &[SectorNumber]) -> Result<(), String> {
        if let Some(missing) = sectors.iter().find(|n| !self.precommits.contains_key(n)) {
            return Err(format!("sector {missing} has no precommit to expire"));
        }
        self.burn_precommits(sectors);
        Ok(())
    }

    /// Deletes precommits and burns their deposits: the state unlocks them (state.rs:1055, :1063)
    /// and charges them as a penalty (lib.rs:4259-4260), which the now unlocked balance repays
    /// in full and the actor burns (lib.rs:4318-4326, :4352; state.rs:850-877).
    fn burn_precommits(&mut self, sectors: &[SectorNumber]) {
        for n in sectors {
            if let Some(pc) = self.precommits.remove(n) {
                self.funds.pre_commit_deposits -= &pc.deposit;
                self.funds.balance -= &pc.deposit;
            }
        }
    }

    // --- state views -----------------------------------------------------------------------

    pub fn is_allocated(&self, n: SectorNumber) -> bool {
        self.allocated.get(n)
    }

    pub fn precommit(&self, n: SectorNumber) -> Option<miner::SectorPreCommitOnChainInfo> {
        self.precommits.get(&n).map(|pc| miner::SectorPreCommitOnChainInfo {
            info: miner::SectorPreCommitInfo::from(&pc.info),
            pre_commit_deposit: pc.deposit.clone(),
            pre_commit_epoch: pc.pre_commit_epoch,
        })
    }

    pub fn sector(&self, n: SectorNumber) -> Option<miner::SectorOnChainInfo> {
        self.sectors.get(&n).map(|s| miner::SectorOnChainInfo {
            sector_number: n,
            seal_proof: s.info.seal_proof,
            sealed_cid: s.info.sealed_cid,
            activation: s.activation,
            expiration: s.info.expiration,
            deal_weight: BigInt::from(0),
            verified_deal_weight: BigInt::from(0),
            initial_pledge: s.initial_pledge.clone(),
            // Actors v16+ store none of these for new sectors (builtin-actors
            // actors/miner/src/lib.rs:5338-5341); Lotus prints `null`.
            expected_day_reward: None,
            expected_storage_pledge: None,
            power_base_epoch: s.activation,
            replaced_day_reward: None,
            sector_key_cid: None,
            flags: 0,
            daily_fee: TokenAmount::from_atto(0),
        })
    }

    /// Where a sector is proven.
    pub fn location(&self, n: SectorNumber) -> Option<(u64, u64)> {
        self.sectors.get(&n).map(|s| (s.deadline, s.partition))
    }

    pub fn sectors(&self, filter: Option<&BitField>) -> Vec<miner::SectorOnChainInfo> {
        self.sectors.keys().filter(|n| filter.is_none_or(|f| f.get(**n))).filter_map(|n| self.sector(*n)).collect()
    }

    /// Sectors neither faulty nor unproven.
    pub fn active_sectors(&self) -> Vec<miner::SectorOnChainInfo> {
        let active = BitField::union(self.partitions_iter().map(|p| p.active_sectors).collect::<Vec<_>>().iter());
        self.sectors(Some(&active))
    }

    fn partitions_iter(&self) -> impl Iterator<Item = miner::Partition> + '_ {
        (0..self.deadlines.len() as u64).flat_map(|d| self.partitions(d))
    }

    pub fn deadlines(&self) -> Vec<miner::Deadline> {
        self.deadlines
            .iter()
            .map(|d| miner::Deadline {
                post_submissions: d.post_submissions.clone(),
                disputable_proof_count: 0,
                daily_fee: TokenAmount::from_atto(0),
            })
            .collect()
    }

    pub fn partitions(&self, deadline: u64) -> Vec<miner::Partition> {
        self.deadlines.get(deadline as usize).map_or_else(Vec::new, |d| {
            d.partitions
                .iter()
                .map(|p| miner::Partition {
                    all_sectors: p.all.clone(),
                    faulty_sectors: p.faulty.clone(),
                    recovering_sectors: p.recovering.clone(),
                    live_sectors: p.all.clone(),
                    active_sectors: &(&p.all - &p.faulty) - &p.unproven,
                })
                .collect()
        })
    }

    pub fn faults(&self) -> BitField {
        BitField::union(self.deadlines.iter().flat_map(|d| d.partitions.iter().map(|p| &p.faulty)))
    }

    pub fn recoveries(&self) -> BitField {
        BitField::union(self.deadlines.iter().flat_map(|d| d.partitions.iter().map(|p| &p.recovering)))
    }
}


fn has_prefix(c: &Cid, codec: u64, mh: u64) -> bool {
    c.version() == cid::Version::V1 && c.codec() == codec && c.hash().code() == mh && c.hash().size() == 32
}

fn commitment(c: &Cid) -> Result<[u8; 32], ActorError> {
    c.hash()
        .digest()
        .try_into()
        .map_err(|_| illegal_argument(format!("commitment CID {c} does not hold 32 bytes")))
}
