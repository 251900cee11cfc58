//! The proving controller: keeps every sealed sector proven. For each miner of a SealingPool it
//! keeps one ProvingDeadline per deadline index (in the operator's namespace), with the epochs,
//! partitions and faults the chain reports, and carries out what `core::proving` plans: proving
//! checks and fault/recovery declarations before the fault cutoff, window PoSt pods at the
//! challenge epoch, SubmitWindowedPoSt before the deadline closes. The pods run in the namespace
//! of the pool whose sectors they read (where hostPath volumes are allowed, as for step pods),
//! owned by that pool and labelled with their deadline.
//!
//! Every pod name and MsgUuid is derived from (deadline, proving period, batch, attempt), so a
//! restart at any point finds the pod it started and pushes the message it pushed before.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use filecoin_chain::client::ClientConfig;
use filecoin_chain::deadline::DeadlineInfo;
use filecoin_chain::methods::{MinerMethod, miner_message};
use filecoin_chain::miner::Partition;
use filecoin_chain::msg_uuid::msg_uuid;
use filecoin_chain::params::{
    DeclareFaultsParams, DeclareFaultsRecoveredParams, FaultDeclaration, PoStPartition, RecoveryDeclaration,
    SubmitWindowedPoStParams,
};
use filecoin_chain::randomness::{DomainSeparationTag, miner_entropy};
use filecoin_chain::tipset::TipSetKey;
use filecoin_chain::{ApiToken, ChainAddress, ChainEpoch, ClientError, LotusClient};
use fvm_ipld_bitfield::BitField;
use fvm_shared::econ::TokenAmount;
use fvm_shared::randomness::Randomness;
use fvm_shared::sector::PoStProof;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use serde_json::Value;

use super::messages::{Progress, follow, push_message};
use super::{Context, Note, create_pod, publish};
use crate::core::outcome::step_result;
use crate::core::proving::{
    Action, CheckResult, Declaration, DeclarationKind, InstanceEnd, PartitionView, ProvingRecord, Timing, Window,
    message_task, plan, retry_batch, roll,
};
use crate::core::record::ChainMessage;
use crate::crd::{ProvingDeadline, ProvingDeadlineSpec, ProvingDeadlineStatus, SealingPool, Sector, Submission};
use crate::pods::{LABEL_DEADLINE, LABEL_MINER, LABEL_PERIOD, PROVING_CHECK, ProvingTask, WINDOW_POST, StoredReplica, ended, proving_pod, sector_subdir};

#[derive(Debug, thiserror::Error)]
pub enum ProvingError {
    #[error(transparent)]
    Chain(#[from] ClientError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("building a proving pod: {0}")]
    Pod(#[from] crate::pods::PodError),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ProvingError {
    ProvingError::Invalid(message.into())
}

/// A miner's sealed sectors that the operator knows: where their files are, and which pool
/// proves them.
struct Replicas {
    by_number: BTreeMap<u64, (StoredReplica, Arc<SealingPool>)>,
}

pub struct Prover {
    ctx: Arc<Context>,
    lotus: LotusClient,
    sectors: Store<Sector>,
    pools: Store<SealingPool>,
    namespace: String,
    timing: Timing,
    /// Partitions per (miner, deadline) and the epoch they were read at.
    partitions: HashMap<(String, u64), (ChainEpoch, Vec<Partition>)>,
}

impl Prover {
    pub fn new(
        ctx: Arc<Context>,
        sectors: Store<Sector>,
        pools: Store<SealingPool>,
        token: Option<ApiToken>,
        namespace: String,
    ) -> Result<Self, ProvingError> {
        let lotus = LotusClient::new(ClientConfig::new(ctx.config.chain.endpoint.clone(), token).with_observer(ctx.metrics.clone()))
            .map_err(|e| invalid(format!("the chain client: {e}")))?;
        let timing = ctx.config.proving.timing();
        Ok(Self { ctx, lotus, sectors, pools, namespace, timing, partitions: HashMap::new() })
    }

    /// Runs until the process is told to stop.
    pub async fn run(mut self) {
        let interval = Duration::from_secs(self.ctx.config.chain.poll_interval_seconds.max(1));
        tracing::info!(namespace = %self.namespace, "proving controller started");
        loop {
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "proving");
            }
            tokio::time::sleep(interval).await;
        }
    }

    async fn tick(&mut self) -> Result<(), ProvingError> {
        let head = self.lotus.chain_head().await?.height;
        let miners: BTreeSet<String> = self.pools.state().iter().map(|p| p.spec.miner.clone()).collect();
        let api: Api<ProvingDeadline> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let existing: HashMap<String, ProvingDeadline> =
            api.list(&Default::default()).await?.items.into_iter().map(|d| (d.name_any(), d)).collect();
        for miner in miners {
            if let Err(error) = self.miner(&miner, head, &existing).await {
                tracing::warn!(%miner, %error, "proving");
            }
        }
        Ok(())
    }

    async fn miner(&mut self, miner: &str, head: ChainEpoch, existing: &HashMap<String, ProvingDeadline>) -> Result<(), ProvingError> {
        let address = ChainAddress::from_str(miner).map_err(|e| invalid(e.to_string()))?;
        let current = self.lotus.state_miner_proving_deadline(&address, &TipSetKey::head()).await?;
        let policy = current.policy();
        let deadlines = self.lotus.state_miner_deadlines(&address, &TipSetKey::head()).await?;
        let replicas = self.replicas(miner);
        for index in 0..policy.period_deadlines {
            let info = DeadlineInfo::new(current.period_start, index, head, &policy).next_not_elapsed();
            let window = Window {
                period_start: info.period_start,
                open: info.open,
                close: info.close,
                challenge: info.challenge,
                fault_cutoff: info.fault_cutoff,
                challenge_window: info.wpost_challenge_window,
            };
            let name = deadline_name(miner, index);
            let deadline = match existing.get(&name) {
                Some(d) => d.clone(),
                None => self.create(&name, miner, index).await?,
            };
            let partitions = self.partitions(&address, miner, index, &window, head).await?;
            let proven = deadlines.get(index as usize).map_or(0, |d| d.post_submissions.len() as u32);
            self.deadline(&deadline, &address, &window, &partitions, proven, &replicas, head).await?;
        }
        Ok(())
    }

    async fn create(&self, name: &str, miner: &str, index: u64) -> Result<ProvingDeadline, ProvingError> {
        let api: Api<ProvingDeadline> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let deadline = ProvingDeadline::new(name, ProvingDeadlineSpec { miner: miner.to_owned(), deadline_index: index as u32 });
        match api.create(&PostParams::default(), &deadline).await {
            Ok(created) => Ok(created),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(api.get(name).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// The deadline's partitions: read again every tick while the deadline is close to its
    /// check or challenge, otherwise once per challenge window.
    async fn partitions(&mut self, address: &ChainAddress, miner: &str, index: u64, window: &Window, head: ChainEpoch) -> Result<Vec<PartitionView>, ProvingError> {
        let key = (miner.to_owned(), index);
        let busy = head >= self.timing.check_from(window) - window.challenge_window;
        let fresh = self.partitions.get(&key).is_some_and(|(at, _)| !busy && head - at < window.challenge_window);
        if !fresh {
            let read = self.lotus.state_miner_partitions(address, index, &TipSetKey::head()).await?;
            self.partitions.insert(key.clone(), (head, read));
        }
        let (_, partitions) = &self.partitions[&key];
        Ok(partitions
            .iter()
            .enumerate()
            .map(|(i, p)| PartitionView {
                index: i as u64,
                live: p.live_sectors.iter().collect(),
                faulty: p.faulty_sectors.iter().collect(),
                recovering: p.recovering_sectors.iter().collect(),
            })
            .collect())
    }

    /// Sectors of `miner` that have reached the store, by sector number.
    fn replicas(&self, miner: &str) -> Replicas {
        let pools: HashMap<(String, String), Arc<SealingPool>> = self
            .pools
            .state()
            .into_iter()
            .map(|p| ((p.namespace().unwrap_or_default(), p.name_any()), p))
            .collect();
        let mut by_number = BTreeMap::new();
        for sector in self.sectors.state() {
            let Some(status) = &sector.status else { continue };
            let record = &status.record;
            let (Some(number), Some(comm_r)) = (record.sector_number, &record.comm_r) else { continue };
            let rebuilt = super::sector::rebuilt(&sector);
            if sector.spec.miner != miner || (record.commit.is_none() && !rebuilt) {
                continue;
            }
            // A rebuilt copy stands in for the one that was lost, whichever is listed first.
            if !rebuilt && by_number.contains_key(&number) {
                continue;
            }
            let Some(pool) = pools.get(&(sector.namespace().unwrap_or_default(), sector.spec.pool.clone())) else { continue };
            let Ok(subdir) = sector_subdir(&sector) else { continue };
            let replica = StoredReplica { sector_number: number, comm_r: comm_r.clone(), store_path: pool.spec.storage.store_path.clone(), subdir };
            by_number.insert(number, (replica, pool.clone()));
        }
        Replicas { by_number }
    }

    #[allow(clippy::too_many_arguments)]
    async fn deadline(
        &self,
        deadline: &ProvingDeadline,
        address: &ChainAddress,
        window: &Window,
        partitions: &[PartitionView],
        proven: u32,
        replicas: &Replicas,
        head: ChainEpoch,
    ) -> Result<(), ProvingError> {
        let before = deadline.status.clone().unwrap_or_default();
        let mut status = before.clone();
        let (mut record, ended_instance) = roll(before.current.as_ref(), window);
        let mut notes = Vec::new();
        if let Some(end) = ended_instance {
            let old = before.current.as_ref();
            status.last_error = None;
            if let Some(submission) = instance_submission(end, old, u64::from(deadline.spec.deadline_index)) {
                notes.push(Note {
                    warning: end == InstanceEnd::Missed,
                    reason: if end == InstanceEnd::Missed { "PoStMissed" } else { "PoStProven" },
                    message: submission.message.clone().unwrap_or_default(),
                });
                status.last_submission = Some(submission);
            }
        }
        let actions = plan(window, partitions, head, &mut record, &self.timing);
        let job = Job { prover: self, deadline, address, window, replicas, head };
        for action in actions {
            if let Err(error) = job.act(&mut record, action, &mut status, &mut notes).await {
                tracing::warn!(deadline = %deadline.name_any(), %error, "proving");
                let message = error.to_string();
                if status.last_error.as_deref() != Some(message.as_str()) {
                    notes.push(Note { warning: true, reason: "ProvingError", message: message.clone() });
                }
                status.last_error = Some(message);
            }
        }

        status.period_start = Some(window.period_start);
        status.open = Some(window.open);
        status.close = Some(window.close);
        status.challenge = Some(window.challenge);
        status.fault_cutoff = Some(window.fault_cutoff);
        status.partitions = partitions.len() as u32;
        status.sectors = partitions.iter().map(|p| p.live.len() as u64).sum();
        status.faults = partitions.iter().map(|p| p.faulty.len() as u64).sum();
        status.recovering = partitions.iter().map(|p| p.recovering.len() as u64).sum();
        status.proven_partitions = proven;
        status.phase = Some(phase(&record, window, head, &self.timing, status.sectors > 0).into());
        status.observed_generation = deadline.metadata.generation;
        status.current = Some(record);
        if status != before {
            // Replaced whole: a merge patch would keep fields of the previous instance.
            let api: Api<ProvingDeadline> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
            let mut updated = deadline.clone();
            updated.status = Some(status);
            api.replace_status(&deadline.name_any(), &PostParams::default(), &updated).await?;
        }
        if let (Some(end), Some(old)) = (ended_instance, before.current.as_ref()) {
            if let Some(result) = end.result() {
                self.ctx.metrics.deadline_ended(result);
            }
            self.clean_pods(deadline, old.period_start).await;
        }
        publish(&self.ctx, deadline, notes).await;
        Ok(())
    }

    /// Deletes the pods of instances before `previous`: the last instance's stay for
    /// `kubectl logs`.
    async fn clean_pods(&self, deadline: &ProvingDeadline, previous: i64) {
        let all: Api<Pod> = Api::all(self.ctx.client.clone());
        let selector = format!("{LABEL_DEADLINE}={},{LABEL_MINER}={}", deadline.name_any(), deadline.spec.miner);
        let listed = match all.list(&ListParams::default().labels(&selector)).await {
            Ok(listed) => listed,
            Err(error) => return tracing::warn!(%error, "listing old proving pods"),
        };
        for pod in listed {
            let period: Option<i64> = pod.labels().get(LABEL_PERIOD).and_then(|p| p.parse().ok());
            let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &pod.namespace().unwrap_or_default());
            if period.is_some_and(|p| p < previous)
                && let Err(error) = pods.delete(&pod.name_any(), &DeleteParams::default()).await
            {
                tracing::warn!(pod = %pod.name_any(), %error, "deleting an old proving pod");
            }
        }
    }
}

/// One deadline's tick: what its actions need.
struct Job<'a> {
    prover: &'a Prover,
    deadline: &'a ProvingDeadline,
    address: &'a ChainAddress,
    window: &'a Window,
    replicas: &'a Replicas,
    head: ChainEpoch,
}

/// Where a proving pod is.
enum PodState {
    Absent,
    Running,
    Ended(Result<Value, String>),
}

impl Job<'_> {
    async fn act(&self, record: &mut ProvingRecord, action: Action, status: &mut ProvingDeadlineStatus, notes: &mut Vec<Note>) -> Result<(), ProvingError> {
        match action {
            Action::Check { sectors } => self.check(record, &sectors, notes).await,
            Action::Declare(declaration) => self.declare(record, declaration, notes).await,
            Action::WaitDeclaration(kind) => self.wait_declaration(record, kind, notes).await,
            Action::Prove { batch, sectors } => self.prove(record, batch, &sectors, notes).await,
            Action::Submit { batch } => self.submit(record, batch, status, notes).await,
            Action::WaitSubmission { batch } => self.wait_submission(record, batch, status, notes).await,
        }
    }

    fn name(&self) -> String {
        self.deadline.name_any()
    }

    fn index(&self) -> u64 {
        u64::from(self.deadline.spec.deadline_index)
    }

    fn uid(&self) -> String {
        self.deadline.metadata.uid.clone().unwrap_or_else(|| self.name())
    }

    /// The known replicas among `sectors`, the pool to run their pod with, and the unknown ones
    /// (no Sector resource holds their files: they cannot be proven).
    fn split(&self, sectors: &BTreeSet<u64>) -> (Vec<StoredReplica>, Option<Arc<SealingPool>>, Vec<u64>) {
        let mut known = Vec::new();
        let mut pool = None;
        let mut unknown = Vec::new();
        for number in sectors {
            match self.replicas.by_number.get(number) {
                Some((replica, p)) => {
                    known.push(replica.clone());
                    pool.get_or_insert_with(|| p.clone());
                }
                None => unknown.push(*number),
            }
        }
        (known, pool, unknown)
    }

    /// The proving pod `name` in `pool`'s namespace, and its result once it has ended.
    async fn pod_state(&self, name: &str, pool: &SealingPool, verb: &str) -> Result<PodState, ProvingError> {
        let pods: Api<Pod> = Api::namespaced(self.prover.ctx.client.clone(), &pool.namespace().unwrap_or_default());
        Ok(match pods.get_opt(name).await? {
            None => PodState::Absent,
            Some(pod) => match ended(&pod) {
                None => PodState::Running,
                Some(end) => PodState::Ended(step_result(verb, &end).map_err(|e| e.message)),
            },
        })
    }

    async fn start_pod(&self, name: &str, task: &ProvingTask, replicas: &[StoredReplica], pool: &SealingPool, notes: &mut Vec<Note>) -> Result<(), ProvingError> {
        let pods: Api<Pod> = Api::namespaced(self.prover.ctx.client.clone(), &pool.namespace().unwrap_or_default());
        if create_pod(&pods, &proving_pod(self.deadline, pool, name, self.window.period_start, task, replicas)?).await? {
            notes.push(Note { warning: false, reason: "PodStarted", message: format!("{name} over {} sector(s)", replicas.len()) });
        }
        Ok(())
    }

    async fn check(&self, record: &mut ProvingRecord, sectors: &BTreeSet<u64>, notes: &mut Vec<Note>) -> Result<(), ProvingError> {
        let (known, pool, unknown) = self.split(sectors);
        let mut bad: BTreeSet<u64> = unknown.iter().copied().collect();
        if let Some(pool) = pool {
            let name = format!("{}-check-{}", self.name(), self.window.period_start);
            match self.pod_state(&name, &pool, PROVING_CHECK).await? {
                PodState::Absent => return self.start_pod(&name, &ProvingTask::Check, &known, &pool, notes).await,
                PodState::Running => return Ok(()),
                PodState::Ended(Err(error)) => {
                    notes.push(Note { warning: true, reason: "CheckFailed", message: format!("{name}: {error}") });
                    record.check = Some(CheckResult { bad: vec![], error: Some(error) });
                    return Ok(());
                }
                PodState::Ended(Ok(result)) => bad.extend(numbers(&result["bad"])),
            }
        }
        if !bad.is_empty() {
            let list: Vec<String> = bad.iter().map(u64::to_string).collect();
            notes.push(Note { warning: true, reason: "BadSectors", message: format!("sectors {} cannot be proven (files missing or corrupt, or unknown to the operator)", list.join(", ")) });
        }
        record.check = Some(CheckResult { bad: bad.into_iter().collect(), error: None });
        Ok(())
    }

    async fn declare(&self, record: &mut ProvingRecord, mut declaration: Declaration, notes: &mut Vec<Note>) -> Result<(), ProvingError> {
        let declared = declaration
            .partitions
            .iter()
            .map(|p| {
                let sectors = BitField::try_from_bits(p.sectors.iter().copied()).map_err(|e| invalid(format!("sector numbers: {e}")))?;
                Ok((p.partition, sectors))
            })
            .collect::<Result<Vec<_>, ProvingError>>()?;
        // One declaration per kind and proving period: its MsgUuid says which.
        let task = message_task(declaration.kind.as_str(), self.window.period_start);
        let deadline = self.index();
        let worker = self.worker().await?;
        let (method, sent) = match declaration.kind {
            DeclarationKind::Faults => {
                let faults = declared.into_iter().map(|(partition, sectors)| FaultDeclaration { deadline, partition, sectors }).collect();
                (MinerMethod::DeclareFaults, self.push(worker, MinerMethod::DeclareFaults, &DeclareFaultsParams { faults }, &task, 1).await?)
            }
            DeclarationKind::Recoveries => {
                let recoveries = declared.into_iter().map(|(partition, sectors)| RecoveryDeclaration { deadline, partition, sectors }).collect();
                let params = DeclareFaultsRecoveredParams { recoveries };
                (MinerMethod::DeclareFaultsRecovered, self.push(worker, MinerMethod::DeclareFaultsRecovered, &params, &task, 1).await?)
            }
        };
        let sectors: Vec<String> = declaration.partitions.iter().flat_map(|p| &p.sectors).map(u64::to_string).collect();
        notes.push(Note {
            warning: declaration.kind == DeclarationKind::Faults,
            reason: if declaration.kind == DeclarationKind::Faults { "FaultsDeclared" } else { "RecoveriesDeclared" },
            message: format!("{method:?} for sectors {} in {}", sectors.join(", "), sent.cid),
        });
        declaration.message = Some(sent);
        record.declarations.push(declaration);
        Ok(())
    }

    async fn wait_declaration(&self, record: &mut ProvingRecord, kind: DeclarationKind, notes: &mut Vec<Note>) -> Result<(), ProvingError> {
        let Some(declaration) = record.declarations.iter_mut().find(|d| d.kind == kind) else { return Ok(()) };
        let Some(message) = declaration.message.as_mut() else { return Ok(()) };
        if self.landed(message, notes).await? && message.exit_code != Some(0) {
            notes.push(Note { warning: true, reason: "DeclarationFailed", message: format!("{} {} failed with exit code {:?}", kind.as_str(), message.cid, message.exit_code) });
        }
        Ok(())
    }

    async fn prove(&self, record: &mut ProvingRecord, batch: usize, sectors: &BTreeSet<u64>, notes: &mut Vec<Note>) -> Result<(), ProvingError> {
        let Some(post) = record.posts.get_mut(batch) else { return Ok(()) };
        let (known, pool, unknown) = self.split(sectors);
        let Some(pool) = pool else {
            post.error = Some(format!("none of sectors {sectors:?} is known to the operator; nothing can be proven"));
            post.attempt = self.prover.timing.max_post_attempts;
            return Ok(());
        };
        let name = format!("{}-post-{}-{batch}-{}", self.name(), self.window.period_start, post.attempt);
        match self.pod_state(&name, &pool, WINDOW_POST).await? {
            PodState::Absent => {
                let randomness = self
                    .prover
                    .lotus
                    .state_get_randomness_from_beacon(DomainSeparationTag::WindowedPoStChallengeSeed, self.window.challenge, &miner_entropy(self.address.address()), &TipSetKey::head())
                    .await?;
                let task = ProvingTask::WindowPost { randomness: hex::encode(randomness) };
                self.start_pod(&name, &task, &known, &pool, notes).await?;
            }
            PodState::Running => {}
            PodState::Ended(Err(error)) => {
                notes.push(Note { warning: true, reason: "PoStFailed", message: format!("{name}: {error}") });
                retry_batch(post, format!("{name}: {error}"), &self.prover.timing);
            }
            PodState::Ended(Ok(result)) => match result["proof"].as_str() {
                Some(proof) => {
                    let faulty = numbers(&result["faulty"]);
                    post.proof = Some(proof.to_owned());
                    post.sectors = known.iter().map(|r| r.sector_number).filter(|n| !faulty.contains(n)).collect();
                    post.skipped = faulty.into_iter().chain(unknown).collect();
                }
                None => {
                    post.error = Some(format!("{name}: no sector could be proven: {}", result["faults"]));
                    post.attempt = self.prover.timing.max_post_attempts;
                }
            },
        }
        Ok(())
    }

    async fn submit(&self, record: &mut ProvingRecord, batch: usize, status: &mut ProvingDeadlineStatus, notes: &mut Vec<Note>) -> Result<(), ProvingError> {
        let Some(post) = record.posts.get_mut(batch) else { return Ok(()) };
        let proof = STANDARD.decode(post.proof.as_deref().unwrap_or_default()).map_err(|e| invalid(format!("the PoSt proof is not base64: {e}")))?;
        let challenge = self.window.challenge;
        let commit_rand = self
            .prover
            .lotus
            .state_get_randomness_from_tickets(DomainSeparationTag::PoStChainCommit, challenge, &[], &TipSetKey::head())
            .await?;
        let info = self.prover.lotus.state_miner_info(self.address, &TipSetKey::head()).await?;
        let skipped: BTreeSet<u64> = post.skipped.iter().copied().collect();
        let partitions = post
            .partitions
            .iter()
            .map(|p| {
                let sectors: Vec<u64> = self.partition_sectors(*p).into_iter().filter(|s| skipped.contains(s)).collect();
                let skipped = BitField::try_from_bits(sectors).map_err(|e| invalid(format!("sector numbers: {e}")))?;
                Ok(PoStPartition { index: *p, skipped })
            })
            .collect::<Result<Vec<_>, ProvingError>>()?;
        let params = SubmitWindowedPoStParams {
            deadline: self.index(),
            partitions,
            proofs: vec![PoStProof { post_proof: info.window_po_st_proof_type, proof_bytes: proof }],
            chain_commit_epoch: challenge,
            chain_commit_rand: Randomness(commit_rand.to_vec()),
        };
        let task = message_task(&format!("window-post-{batch}"), self.window.period_start);
        let sent = self.push(info.worker, MinerMethod::SubmitWindowedPoSt, &params, &task, post.attempt).await?;
        notes.push(Note { warning: false, reason: "PoStSubmitted", message: format!("SubmitWindowedPoSt {} for partitions {:?}, skipping {:?}", sent.cid, post.partitions, post.skipped) });
        status.last_submission = Some(submission(self.window.period_start, &sent, "Pending", None));
        post.message = Some(sent);
        Ok(())
    }

    async fn wait_submission(&self, record: &mut ProvingRecord, batch: usize, status: &mut ProvingDeadlineStatus, notes: &mut Vec<Note>) -> Result<(), ProvingError> {
        let Some(post) = record.posts.get_mut(batch) else { return Ok(()) };
        let Some(message) = post.message.as_mut() else { return Ok(()) };
        if !self.landed(message, notes).await? {
            return Ok(());
        }
        let landed = message.clone();
        if landed.exit_code == Some(0) {
            notes.push(Note { warning: false, reason: "PoStAccepted", message: format!("SubmitWindowedPoSt {} landed at epoch {:?} for partitions {:?}", landed.cid, landed.epoch, post.partitions) });
            status.last_submission = Some(submission(self.window.period_start, &landed, "Accepted", None));
        } else {
            let error = format!("SubmitWindowedPoSt {} failed with exit code {:?}", landed.cid, landed.exit_code);
            notes.push(Note { warning: true, reason: "PoStRejected", message: error.clone() });
            status.last_submission = Some(submission(self.window.period_start, &landed, "Rejected", Some(error.clone())));
            retry_batch(post, error, &self.prover.timing);
        }
        Ok(())
    }

    fn partition_sectors(&self, partition: u64) -> Vec<u64> {
        let key = (self.deadline.spec.miner.clone(), self.index());
        self.prover
            .partitions
            .get(&key)
            .and_then(|(_, ps)| ps.get(partition as usize))
            .map(|p| p.all_sectors.iter().collect())
            .unwrap_or_default()
    }

    async fn worker(&self) -> Result<ChainAddress, ProvingError> {
        Ok(self.prover.lotus.state_miner_info(self.address, &TipSetKey::head()).await?.worker)
    }

    /// Pushes a miner message with the MsgUuid of (deadline, task, attempt), within the window
    /// PoSt fee limit (lotus-miner sends declarations with it too, storage/wdpost/wdpost_run_faults.go:171).
    async fn push<P: serde::Serialize>(&self, worker: ChainAddress, method: MinerMethod, params: &P, task: &str, attempt: u32) -> Result<ChainMessage, ProvingError> {
        let message = miner_message(*self.address, worker, method, params, TokenAmount::from_atto(0)).map_err(|e| invalid(e.to_string()))?;
        let ctx = &self.prover.ctx;
        let (sent, _) = push_message(ctx, &self.prover.lotus, &message, msg_uuid(&self.uid(), task, attempt), &ctx.config.fees.window_post.limit(), self.head).await?;
        Ok(sent)
    }

    /// Records the receipt of `message` once it is on chain; replaces it if the chain has not
    /// taken it for too long.
    async fn landed(&self, message: &mut ChainMessage, notes: &mut Vec<Note>) -> Result<bool, ProvingError> {
        let ctx = &self.prover.ctx;
        match follow(ctx, &self.prover.lotus, message, &ctx.config.fees.window_post.limit(), self.head).await? {
            Progress::Landed(landed, _) => {
                *message = landed;
                Ok(true)
            }
            Progress::Pending => Ok(false),
            Progress::Replaced(replaced, note) => {
                notes.push(Note { warning: true, reason: "MessageReplaced", message: note });
                *message = replaced;
                Ok(false)
            }
            Progress::Stuck(reason) => {
                notes.push(Note { warning: true, reason: "MessageStuck", message: reason });
                Ok(false)
            }
        }
    }
}

/// `<miner>-<index>` with two digits, e.g. `t01000-07`, so that kubectl lists them in order.
pub fn deadline_name(miner: &str, index: u64) -> String {
    format!("{miner}-{index:02}")
}

fn numbers(value: &Value) -> Vec<u64> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default()
}

fn submission(period_start: i64, message: &ChainMessage, result: &str, error: Option<String>) -> Submission {
    Submission {
        period_start,
        cid: Some(message.cid.clone()),
        epoch: message.epoch,
        exit_code: message.exit_code,
        result: result.into(),
        message: error,
        time: Time(Timestamp::now()),
    }
}

/// The last submission's summary of an instance that has ended.
fn instance_submission(end: InstanceEnd, record: Option<&ProvingRecord>, index: u64) -> Option<Submission> {
    let record = record?;
    let last = record.posts.iter().rev().find_map(|p| p.message.clone());
    let result = end.result()?;
    let message = if end == InstanceEnd::Missed {
        let why = record.posts.iter().find_map(|p| p.error.clone()).unwrap_or_else(|| "no accepted proof before the deadline closed".into());
        format!("deadline {index} of the period from epoch {} missed for partitions {:?}: {why}; their sectors are faulty now", record.period_start, record.needed)
    } else {
        format!("deadline {index} of the period from epoch {} proven: partitions {:?}", record.period_start, record.needed)
    };
    Some(Submission {
        period_start: record.period_start,
        cid: last.as_ref().map(|m| m.cid.clone()),
        epoch: last.as_ref().and_then(|m| m.epoch),
        exit_code: last.as_ref().and_then(|m| m.exit_code),
        result: result.into(),
        message: Some(message),
        time: Time(Timestamp::now()),
    })
}

/// A word for where the instance stands, for `kubectl get provingdeadlines`.
fn phase(record: &ProvingRecord, window: &Window, head: ChainEpoch, timing: &Timing, has_sectors: bool) -> &'static str {
    if !has_sectors {
        return "Empty";
    }
    if timing.proving_started(window, head) && record.needed.is_empty() {
        return "NothingToProve";
    }
    if !record.posts.is_empty() {
        return if record.proven() {
            "Proven"
        } else if record.posts.iter().any(|p| p.message.as_ref().is_some_and(|m| m.epoch.is_none())) {
            "Submitting"
        } else if head >= window.close {
            "Missed"
        } else {
            "Proving"
        };
    }
    if head < timing.check_from(window) {
        "Waiting"
    } else if record.check.is_none() && head < window.fault_cutoff {
        "Checking"
    } else if !record.declarations.is_empty() && head < window.fault_cutoff {
        "Declaring"
    } else {
        "Waiting"
    }
}
