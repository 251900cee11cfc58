//! The chain bridge: every chain task of every sector. It allocates sector numbers, draws
//! tickets and seeds, sends precommits and commits in batches, waits for their receipts, and
//! records CIDs, epochs and exit codes in the Sector status.
//!
//! A batch message is written to each member's `outbox` (MsgUuid and members) before it is
//! pushed, so after a crash the same MsgUuid is pushed again and the node returns the message it
//! signed the first time: no message is sent twice. Before a sector is precommitted again, the
//! chain is asked whether it already is.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cid::Cid;
use filecoin_chain::batching::{self, BatchPolicy, PendingItem};
use filecoin_chain::client::ClientConfig;
use filecoin_chain::exit_code::{ErrorLevel as ChainLevel, classify};
use filecoin_chain::fees::FeeLimit;
use filecoin_chain::message::{MAX_MESSAGE_SIZE, Message, SIGNATURE_ALLOWANCE};
use filecoin_chain::methods::{MAX_AGGREGATED_SECTORS, MIN_AGGREGATED_SECTORS, MinerMethod, miner_message, prove_commit_aggregate, sectors_of};
use filecoin_chain::msg_uuid::msg_uuid;
use filecoin_chain::params::{
    CompactCommD, PieceActivationManifest, PreCommitSectorBatchParams2, ProveCommitSectors3Params,
    SectorActivationManifest, SectorPreCommitInfo,
};
use filecoin_chain::policy::{ChainPolicy, TicketCheck, TicketExpiryAction};
use filecoin_chain::proofs::{CommitProof, aggregate_seal_proofs};
use filecoin_chain::randomness::{DomainSeparationTag, miner_entropy};
use filecoin_chain::tipset::TipSetKey;
use filecoin_chain::{ApiToken, ChainAddress, ChainEpoch, ClientError, LotusClient};
use fvm_ipld_encoding::RawBytes;
use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;
use fvm_shared::commcid::cid_to_replica_commitment_v1;
use fvm_shared::piece::PaddedPieceSize;
use fvm_shared::sector::RegisteredSealProof;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

use super::messages::{Progress, follow, push_message};
use super::{Context, Note, own_namespace, publish};
use crate::config::{Config, TicketExpiry};
use crate::core::control::{abort, rewind};
use crate::core::record::{ChainMessage, Outbox, Randomness, SectorRecord};
use crate::core::retry::{RetryPolicy, on_error};
use crate::core::work::{ChainTask, OperatorTask, Work, hold, work};
use crate::core::{ErrorLevel, Event, Plan, State, StepError, apply};
use crate::crd::{SealingPool, Sector};

/// Epochs a precommit needs to land, kept in hand when checking a ticket.
const INCLUSION_MARGIN: ChainEpoch = 20;
const EPOCHS_IN_DAY: ChainEpoch = 2880;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Chain(#[from] ClientError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("sector {sector}: {reason}")]
    Sector { sector: String, reason: String },
    #[error("the chain token Secret {name}: {reason}")]
    Token { name: String, reason: String },
}

fn sector_error(sector: &Sector, reason: impl Into<String>) -> BridgeError {
    BridgeError::Sector { sector: sector.name_any(), reason: reason.into() }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    PreCommit,
    Commit,
}

impl Kind {
    fn task(self) -> ChainTask {
        match self {
            Kind::PreCommit => ChainTask::SubmitPreCommit,
            Kind::Commit => ChainTask::SubmitCommit,
        }
    }

    fn method_name(self) -> &'static str {
        match self {
            Kind::PreCommit => "PreCommitSectorBatch2",
            Kind::Commit => "ProveCommitSectors3",
        }
    }

    fn method(self) -> MinerMethod {
        match self {
            Kind::PreCommit => MinerMethod::PreCommitSectorBatch2,
            Kind::Commit => MinerMethod::ProveCommitSectors3,
        }
    }

    /// The most a message of this kind carrying `sectors` sectors may cost.
    fn fee_limit(self, config: &Config, sectors: usize) -> FeeLimit {
        match self {
            Kind::PreCommit => config.fees.pre_commit_batch.for_sectors(sectors),
            Kind::Commit => config.fees.commit_batch.for_sectors(sectors),
        }
    }

    fn message(self, record: &SectorRecord) -> Option<&ChainMessage> {
        match self {
            Kind::PreCommit => record.precommit.as_ref(),
            Kind::Commit => record.commit.as_ref(),
        }
    }

    fn message_mut(self, record: &mut SectorRecord) -> Option<&mut ChainMessage> {
        match self {
            Kind::PreCommit => record.precommit.as_mut(),
            Kind::Commit => record.commit.as_mut(),
        }
    }

    fn resend(self) -> Event {
        match self {
            Kind::PreCommit => Event::ReSubmitPC,
            Kind::Commit => Event::ReSubmitProof,
        }
    }
}

pub struct Bridge {
    ctx: Arc<Context>,
    lotus: LotusClient,
    sectors: Store<Sector>,
    policy: ChainPolicy,
    batching: BatchPolicy,
    on_expiry: TicketExpiryAction,
    /// Highest sector number handed out per miner in this process; the cache may lag behind.
    allocated: HashMap<String, u64>,
    /// When each sector became ready for its current batch task, for the batch wait.
    ready_since: HashMap<(String, ChainTask), ChainEpoch>,
    /// Sectors whose batch failed: they are sent alone until they land.
    alone: HashSet<String>,
}

/// Reads the API token from the Secret named in the configuration, in the operator's namespace.
pub async fn token(ctx: &Context, config: &Config) -> Result<Option<ApiToken>, BridgeError> {
    let Some(name) = &config.chain.token_secret else { return Ok(None) };
    let namespace = own_namespace();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let fail = |reason: String| BridgeError::Token { name: format!("{namespace}/{name}"), reason };
    let secret = secrets.get(name).await.map_err(|e| fail(e.to_string()))?;
    let bytes = secret.data.and_then(|d| d.get("token").cloned()).ok_or_else(|| fail("has no `token` key".into()))?;
    let token = String::from_utf8(bytes.0).map_err(|_| fail("the `token` key is not UTF-8".into()))?;
    Ok(Some(ApiToken::new(token.trim())))
}

impl Bridge {
    pub fn new(ctx: Arc<Context>, sectors: Store<Sector>, token: Option<ApiToken>) -> Result<Self, BridgeError> {
        let chain = &ctx.config.chain;
        let lotus = LotusClient::new(ClientConfig::new(chain.endpoint.clone(), token).with_observer(ctx.metrics.clone())).map_err(|e| {
            BridgeError::Chain(ClientError::Invalid { method: "connect", reason: e.to_string() })
        })?;
        let policy = ChainPolicy {
            pre_commit_challenge_delay: chain.pre_commit_challenge_delay,
            interactive_porep_confidence: chain.seed_confidence,
            ..ChainPolicy::MAINNET
        };
        let batching_config = &ctx.config.batching;
        let max_base_fee = batching_config
            .max_base_fee
            .as_deref()
            .and_then(|f| f.parse::<u128>().ok())
            .map_or_else(|| TokenAmount::from_whole(1), TokenAmount::from_atto);
        let batching = BatchPolicy {
            max_batch_size: batching_config.max_sectors,
            max_wait: batching_config.max_wait_epochs,
            urgency_margin: INCLUSION_MARGIN * 3,
            max_base_fee,
        };
        let on_expiry = match chain.on_ticket_expiry {
            TicketExpiry::Reticket => TicketExpiryAction::Reticket,
            TicketExpiry::Abort => TicketExpiryAction::Abort,
        };
        Ok(Self {
            ctx,
            lotus,
            sectors,
            policy,
            batching,
            on_expiry,
            allocated: HashMap::new(),
            ready_since: HashMap::new(),
            alone: HashSet::new(),
        })
    }

    /// Runs until the process is told to stop.
    pub async fn run(mut self) {
        let interval = Duration::from_secs(self.ctx.config.chain.poll_interval_seconds.max(1));
        tracing::info!(endpoint = self.lotus.endpoint(), "chain bridge started");
        loop {
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "chain bridge");
            }
            tokio::time::sleep(interval).await;
        }
    }

    async fn tick(&mut self) -> Result<(), BridgeError> {
        let head = self.lotus.chain_head().await?;
        let epoch = head.height;
        tracing::debug!(epoch, "chain bridge tick");
        let base_fee = head.parent_base_fee().cloned().unwrap_or_else(|| TokenAmount::from_atto(0));
        let now = Timestamp::now();

        let mut outboxes: BTreeMap<(String, String), Vec<Arc<Sector>>> = BTreeMap::new();
        let mut batches: BTreeMap<(String, String, Kind), Vec<Arc<Sector>>> = BTreeMap::new();
        let mut sent: BTreeMap<(Kind, String), Vec<Arc<Sector>>> = BTreeMap::new();
        for sector in self.sectors.state() {
            let record = record_of(&sector);
            if sector.metadata.deletion_timestamp.is_some() || record.state.is_terminal() || record.running.is_some() {
                continue;
            }
            let ns = sector.namespace().unwrap_or_default();
            if let Some(outbox) = &record.outbox {
                outboxes.entry((ns, outbox.msg_uuid.clone())).or_default().push(sector.clone());
                continue;
            }
            if hold(&record, now).is_some() || sector.spec.paused {
                continue;
            }
            let result = match work(sector.spec.plan, record.state) {
                Some(Work::Operator(OperatorTask::Allocate)) if sector.spec.plan == Plan::Sealer => {
                    self.allocate(&sector, &record).await
                }
                Some(Work::Operator(OperatorTask::Allocate)) if sector.spec.plan == Plan::Rebuild => {
                    self.allocate_rebuild(&sector, &record).await
                }
                Some(Work::Chain(ChainTask::GetTicket)) => self.ticket(&sector, &record, epoch).await,
                Some(Work::Chain(ChainTask::GetSeed)) => self.seed(&sector, &record, epoch).await,
                Some(Work::Chain(task @ (ChainTask::WaitPreCommit | ChainTask::WaitCommit))) => {
                    let kind = if task == ChainTask::WaitPreCommit { Kind::PreCommit } else { Kind::Commit };
                    match kind.message(&record) {
                        Some(message) => sent.entry((kind, message.cid.clone())).or_default().push(sector.clone()),
                        None => self.report(&sector, sector_error(&sector, "no message to wait for")).await,
                    }
                    Ok(())
                }
                Some(Work::Chain(ChainTask::SubmitPreCommit)) => {
                    match self.precommit_ready(&sector, &record, epoch).await {
                        Ok(true) => batches.entry((ns, sector.spec.miner.clone(), Kind::PreCommit)).or_default().push(sector.clone()),
                        Ok(false) => {}
                        Err(e) => self.report(&sector, e).await,
                    }
                    Ok(())
                }
                Some(Work::Chain(ChainTask::SubmitCommit)) => {
                    batches.entry((ns, sector.spec.miner.clone(), Kind::Commit)).or_default().push(sector.clone());
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(error) = result {
                self.report(&sector, error).await;
            }
        }

        // One lookup per message, whatever the number of sectors it carries.
        for ((kind, _), members) in sent {
            if let Err(error) = self.wait(kind, &members, epoch).await {
                for sector in &members {
                    self.report(sector, sector_error(sector, error.to_string())).await;
                }
            }
        }
        for ((_, msg_uuid), members) in outboxes {
            if let Err(error) = self.push(&members, &msg_uuid, epoch, &base_fee).await {
                for sector in &members {
                    self.report(sector, sector_error(sector, error.to_string())).await;
                }
            }
        }
        // Forget when sectors no longer waiting in any batch became ready; across all batches, or
        // each batch would reset the others' wait and none would ever reach its maximum wait.
        let waiting: HashSet<(String, ChainTask)> =
            batches.iter().flat_map(|((_, _, kind), members)| members.iter().map(|s| (uid(s), kind.task()))).collect();
        self.ready_since.retain(|key, _| waiting.contains(key));
        for ((_, _, kind), members) in batches {
            if let Err(error) = self.batch(kind, members, epoch, &base_fee).await {
                tracing::warn!(%error, "sending a batch");
            }
        }
        Ok(())
    }

    /// A chain problem of one sector becomes a Warning Event on it; the task is tried again on
    /// the next tick.
    async fn report(&self, sector: &Sector, error: BridgeError) {
        tracing::warn!(sector = %sector.name_any(), %error, "chain task");
        let note = Note { warning: true, reason: "ChainError", message: error.to_string() };
        publish(&self.ctx, sector, vec![note]).await;
    }

    /// Writes a new record for `sector`, failing (to be retried) if it changed meanwhile.
    async fn write(&self, sector: &Sector, record: SectorRecord, notes: Vec<Note>) -> Result<(), BridgeError> {
        self.write_fresh(sector, record, notes).await.map(drop)
    }

    /// `write`, returning the object as written (its new resourceVersion) for a further write.
    async fn write_fresh(&self, sector: &Sector, record: SectorRecord, notes: Vec<Note>) -> Result<Sector, BridgeError> {
        let ns = sector.namespace().unwrap_or_default();
        let before = record_of(sector).state;
        let mut updated = sector.clone();
        let after = record.state;
        updated.status.get_or_insert_with(Default::default).record = record;
        let api: Api<Sector> = Api::namespaced(self.ctx.client.clone(), &ns);
        let written = api.replace_status(&sector.name_any(), &PostParams::default(), &updated).await?;
        let mut notes = notes;
        if before != after {
            notes.push(Note { warning: after == State::Aborted, reason: "StateChanged", message: format!("{before} -> {after}") });
        }
        publish(&self.ctx, sector, notes).await;
        Ok(written)
    }

    fn event(&self, sector: &Sector, record: &SectorRecord, event: Event) -> Result<SectorRecord, BridgeError> {
        apply(sector.spec.plan, record, event, Timestamp::now()).map_err(|e| sector_error(sector, e.to_string()))
    }

    async fn fail(&self, sector: &Sector, record: &SectorRecord, error: StepError) -> Result<(), BridgeError> {
        let policy = self.retry_policy(sector).await;
        let message = format!("{}: {}", error.step, error.message);
        let warning = Note { warning: true, reason: level_reason(error.level), message };
        let (next, _) = on_error(record, error, &policy, Timestamp::now());
        self.write(sector, next, vec![warning]).await
    }

    async fn retry_policy(&self, sector: &Sector) -> RetryPolicy {
        let ns = sector.namespace().unwrap_or_default();
        let pools: Api<SealingPool> = Api::namespaced(self.ctx.client.clone(), &ns);
        match pools.get_opt(&sector.spec.pool).await {
            Ok(Some(pool)) => RetryPolicy::from(&pool.spec.retry),
            _ => RetryPolicy::default(),
        }
    }

    fn miner(&self, sector: &Sector) -> Result<ChainAddress, BridgeError> {
        ChainAddress::from_str(&sector.spec.miner).map_err(|e| sector_error(sector, e.to_string()))
    }

    /// The next sector number of the miner that neither another Sector nor the chain has.
    async fn allocate(&mut self, sector: &Sector, record: &SectorRecord) -> Result<(), BridgeError> {
        let miner = self.miner(sector)?;
        // From the API server, not the cache: a number the cache has not seen yet must not be
        // handed out again.
        let all: Api<Sector> = Api::all(self.ctx.client.clone());
        let known = all
            .list(&Default::default())
            .await?
            .items
            .iter()
            .filter(|s| s.spec.miner == sector.spec.miner)
            .filter_map(|s| s.spec.sector_number.or_else(|| s.status.as_ref().and_then(|st| st.record.sector_number)))
            .max();
        let floor = self.allocated.get(&sector.spec.miner).copied().max(known).map_or(1, |n| n + 1);
        let mut number = floor;
        while self.lotus.state_miner_sector_allocated(&miner, number, &TipSetKey::head()).await? {
            number += 1;
        }
        let next = self.event(sector, record, Event::Allocate { sector_number: number })?;
        self.write(sector, next, vec![]).await?;
        self.allocated.insert(sector.spec.miner.clone(), number);
        Ok(())
    }

    /// A rebuild starts from what the chain says of the sector (its CommR, and that it was never
    /// upgraded) and from the ticket it was sealed with, which only the Sector that sealed it
    /// holds. What cannot be rebuilt pauses the sector with a permanent error saying why.
    async fn allocate_rebuild(&self, sector: &Sector, record: &SectorRecord) -> Result<(), BridgeError> {
        let refuse = |message: String| StepError::new(ErrorLevel::Permanent, OperatorTask::Allocate.as_str(), message);
        let Some(number) = sector.spec.sector_number else {
            return self.fail(sector, record, refuse("spec.sectorNumber must name the sector to rebuild".into())).await;
        };
        let miner = self.miner(sector)?;
        let Some(info) = self.lotus.state_sector_get_info(&miner, number, &TipSetKey::head()).await? else {
            return self.fail(sector, record, refuse(format!("sector {number} of {miner} is not on chain: there is nothing to rebuild"))).await;
        };
        if info.sector_key_cid.is_some() {
            let message = format!("sector {number} was upgraded with SnapDeals; rebuilding its snap data is not supported yet");
            return self.fail(sector, record, refuse(message)).await;
        }
        let comm_r = info.sealed_cid.to_string();
        let ns = sector.namespace();
        let sealed_it = self.sectors.state().into_iter().find(|s| {
            let r = record_of(s);
            s.namespace() == ns && s.spec.plan == Plan::Sealer && s.spec.miner == sector.spec.miner && r.sector_number == Some(number) && r.comm_r.as_deref() == Some(comm_r.as_str())
        });
        let Some((original, ticket)) = sealed_it.and_then(|s| record_of(&s).ticket.map(|t| (s.name_any(), t))) else {
            let message = format!(
                "no Sector of the sealer plan in namespace {} sealed sector {number} (CommR {comm_r}), so the ticket it was sealed with is unknown",
                ns.unwrap_or_default()
            );
            return self.fail(sector, record, refuse(message)).await;
        };
        let note = Note {
            warning: false,
            reason: "RebuildStarted",
            message: format!("rebuilding sector {number} with the ticket of Sector {original} (epoch {}); the replica must come out as {comm_r}", ticket.epoch),
        };
        let next = self.event(sector, record, Event::AllocateRebuild { sector_number: number, ticket, comm_r })?;
        self.write(sector, next, vec![note]).await
    }

    async fn ticket(&self, sector: &Sector, record: &SectorRecord, epoch: ChainEpoch) -> Result<(), BridgeError> {
        let miner = self.miner(sector)?;
        let ticket_epoch = self.policy.ticket_epoch(epoch);
        let value = self
            .lotus
            .state_get_randomness_from_tickets(
                DomainSeparationTag::SealRandomness,
                ticket_epoch,
                &miner_entropy(miner.address()),
                &TipSetKey::head(),
            )
            .await?;
        let next = self.event(sector, record, Event::AssignTicket(Randomness { epoch: ticket_epoch, value: hex::encode(value) }))?;
        self.write(sector, next, vec![]).await
    }

    async fn seed(&self, sector: &Sector, record: &SectorRecord, epoch: ChainEpoch) -> Result<(), BridgeError> {
        let landed = record.precommit.as_ref().and_then(|m| m.epoch).ok_or_else(|| sector_error(sector, "no landed precommit to draw the seed after"))?;
        if epoch < self.policy.seed_ready_at(landed) {
            return Ok(());
        }
        let miner = self.miner(sector)?;
        let seed_epoch = self.policy.seed_epoch(landed);
        let value = self
            .lotus
            .state_get_randomness_from_beacon(
                DomainSeparationTag::InteractiveSealChallengeSeed,
                seed_epoch,
                &miner_entropy(miner.address()),
                &TipSetKey::head(),
            )
            .await?;
        let next = self.event(sector, record, Event::AssignSeed(Randomness { epoch: seed_epoch, value: hex::encode(value) }))?;
        self.write(sector, next, vec![]).await
    }

    /// Whether a sector in PC2Done should join a precommit batch. A sector whose precommit is
    /// already on chain (an earlier message landed late) is moved on instead; an expired ticket
    /// re-tickets or aborts the sector.
    async fn precommit_ready(&self, sector: &Sector, record: &SectorRecord, epoch: ChainEpoch) -> Result<bool, BridgeError> {
        let number = record.sector_number.ok_or_else(|| sector_error(sector, "no sector number"))?;
        if record.precommit.is_some() {
            let miner = self.miner(sector)?;
            if let Some(on_chain) = self.lotus.state_sector_precommit_info(&miner, number, &TipSetKey::head()).await? {
                let comm_r = record.comm_r.as_deref().unwrap_or_default();
                if on_chain.info.sealed_cid.to_string() == comm_r {
                    let landed = ChainMessage {
                        cid: record.precommit.as_ref().map(|m| m.cid.clone()).unwrap_or_default(),
                        epoch: Some(on_chain.pre_commit_epoch),
                        exit_code: Some(0),
                        ..Default::default()
                    };
                    let next = self.event(sector, record, Event::SubmitPC(landed.clone()))?;
                    let next = self.event(sector, &next, Event::CheckPC(landed))?;
                    self.write(sector, next, vec![]).await?;
                    return Ok(false);
                }
            }
        }
        let ticket = record.ticket.as_ref().ok_or_else(|| sector_error(sector, "no ticket"))?;
        match self.policy.check_ticket(ticket.epoch, epoch, INCLUSION_MARGIN, self.on_expiry) {
            TicketCheck::Usable { .. } => Ok(true),
            TicketCheck::Reticket { .. } => {
                let next = rewind(sector.spec.plan, record, State::TreeDBuilt, Timestamp::now())
                    .map_err(|e| sector_error(sector, e.to_string()))?;
                let note = Note { warning: true, reason: "TicketExpired", message: format!("the ticket of epoch {} expired before the precommit; drawing a new one", ticket.epoch) };
                self.write(sector, next, vec![note]).await?;
                Ok(false)
            }
            TicketCheck::Abort { expired_after } => {
                let next = abort(sector.spec.plan, record, Timestamp::now()).map_err(|e| sector_error(sector, e.to_string()))?;
                let note = Note { warning: true, reason: "TicketExpired", message: format!("the ticket expired after epoch {expired_after}; aborting as configured") };
                self.write(sector, next, vec![note]).await?;
                Ok(false)
            }
        }
    }

    /// Plans and starts the batches of one miner and kind: drops the members the chain would
    /// refuse, writes each remaining member's outbox, then pushes.
    async fn batch(&mut self, kind: Kind, members: Vec<Arc<Sector>>, epoch: ChainEpoch, base_fee: &TokenAmount) -> Result<(), BridgeError> {
        let task = kind.task();
        let mut groups: Vec<Vec<Arc<Sector>>> = Vec::new();
        let (alone, together): (Vec<_>, Vec<_>) = members.into_iter().partition(|s| self.alone.contains(&uid(s)));
        groups.extend(alone.into_iter().map(|s| vec![s]));
        let items: Vec<PendingItem<usize>> = together
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let ready_at = *self.ready_since.entry((uid(s), task)).or_insert(epoch);
                PendingItem { key: i, ready_at, deadline: self.deadline(kind, s) }
            })
            .collect();
        let plan = batching::plan(&items, &self.batching, epoch, base_fee);
        if let Some(send) = plan.send {
            groups.push(send.keys.iter().map(|i| together[*i].clone()).collect());
        }
        // Past their deadline: only a commit can be (a precommit's ticket is checked before).
        if kind == Kind::Commit {
            groups.extend(plan.expired.iter().map(|i| vec![together[*i].clone()]));
        }
        for group in groups {
            let group = match kind {
                Kind::Commit => self.committable(group, epoch).await?,
                Kind::PreCommit => group,
            };
            let Some(first) = group.first() else { continue };
            let attempt = record_of(first).attempts_of(task.as_str()) + 1;
            let uuid = msg_uuid(&uid(first), task.as_str(), attempt).to_string();
            let names: Vec<String> = group.iter().map(|s| s.name_any()).collect();
            let mut written = Vec::new();
            for sector in &group {
                let mut record = record_of(sector);
                *record.attempts.entry(task.as_str().to_owned()).or_default() += 1;
                record.outbox = Some(Outbox { task: task.as_str().into(), msg_uuid: uuid.clone(), sectors: names.clone() });
                match self.write_fresh(sector, record, vec![]).await {
                    Ok(fresh) => written.push(Arc::new(fresh)),
                    Err(error) => tracing::warn!(%error, sector = %sector.name_any(), "writing the outbox"),
                }
            }
            if !written.is_empty() {
                self.push(&written, &uuid, epoch, base_fee).await?;
            }
        }
        Ok(())
    }

    /// The members of a commit batch the actor can prove. One whose precommit is gone would fail
    /// the whole message (builtin-actors actors/miner/src/state.rs:1165-1185,
    /// get_precommitted_sectors), and one whose precommit expired fails alone but for nothing
    /// (lib.rs:4641-4650): both are aborted with the reason, and a sector already active (an
    /// earlier commit landed) is finished.
    async fn committable(&self, group: Vec<Arc<Sector>>, epoch: ChainEpoch) -> Result<Vec<Arc<Sector>>, BridgeError> {
        let mut keep = Vec::new();
        for sector in group {
            let record = record_of(&sector);
            let miner = self.miner(&sector)?;
            let number = record.sector_number.ok_or_else(|| sector_error(&sector, "no sector number"))?;
            let dropped = match self.lotus.state_sector_precommit_info(&miner, number, &TipSetKey::head()).await? {
                Some(pci) => match self.policy.prove_commit_deadline(pci.pre_commit_epoch, seal_proof(&sector)) {
                    Some(due) if epoch > due => format!("the precommit of sector {number} expired at epoch {due} (PreCommitEpoch {} + the longest prove-commit wait); it cannot be proven", pci.pre_commit_epoch),
                    _ => {
                        keep.push(sector);
                        continue;
                    }
                },
                None => match self.lotus.state_sector_get_info(&miner, number, &TipSetKey::head()).await? {
                    Some(info) if Some(info.sealed_cid.to_string()) == record.comm_r => {
                        let landed = ChainMessage { cid: record.commit.map(|m| m.cid).unwrap_or_default(), epoch: Some(info.activation), exit_code: Some(0), ..Default::default() };
                        let next = self.event(&sector, &record_of(&sector), Event::SubmitProof(landed.clone()))?;
                        let next = self.event(&sector, &next, Event::Finish(landed))?;
                        let note = Note { warning: false, reason: "AlreadyActive", message: format!("sector {number} is already active on chain (since epoch {}); nothing to prove", info.activation) };
                        self.write(&sector, next, vec![note]).await?;
                        continue;
                    }
                    _ => format!("the chain has no precommit of sector {number} (it expired or never landed); it cannot be proven"),
                },
            };
            let error = StepError::new(ErrorLevel::Abort, Kind::Commit.task().as_str(), format!("left out of the commit batch: {dropped}"));
            self.fail(&sector, &record, error).await?;
        }
        Ok(keep)
    }

    /// The last epoch a batch item may land.
    fn deadline(&self, kind: Kind, sector: &Sector) -> ChainEpoch {
        let record = record_of(sector);
        match kind {
            Kind::PreCommit => record.ticket.map_or(0, |t| self.policy.ticket_last_precommit_epoch(t.epoch)),
            Kind::Commit => record
                .precommit
                .and_then(|m| m.epoch)
                .and_then(|e| self.policy.prove_commit_deadline(e, seal_proof(sector)))
                .unwrap_or(ChainEpoch::MAX),
        }
    }

    /// Pushes the message of an outbox (again, after a crash: the node returns the message it
    /// already signed for this MsgUuid) and records its CID in every member it carries. Members
    /// it does not carry (the message would have exceeded Lotus' size limit, or one's precommit
    /// is gone) go back to wait for the next batch.
    async fn push(&self, members: &[Arc<Sector>], uuid: &str, epoch: ChainEpoch, base_fee: &TokenAmount) -> Result<(), BridgeError> {
        let Some(first) = members.first() else { return Ok(()) };
        let outbox = record_of(first).outbox.ok_or_else(|| sector_error(first, "no outbox"))?;
        let kind = if outbox.task == ChainTask::SubmitCommit.as_str() { Kind::Commit } else { Kind::PreCommit };
        if members.len() < outbox.sectors.len() {
            // A crash interrupted writing the outbox: the members that have it go alone, and the
            // others start a new batch, since nothing was pushed before every outbox was written.
            tracing::info!(uuid, "completing an interrupted batch with the members that recorded it");
        }
        let miner = self.miner(first)?;
        let info = self.lotus.state_miner_info(&miner, &TipSetKey::head()).await?;
        let prepared = match kind {
            Kind::PreCommit => self.precommit_message(members, &miner, info.worker, epoch).await?,
            Kind::Commit => self.commit_message(members, &miner, info.worker, epoch, base_fee).await?,
        };
        let spec_uuid = uuid::Uuid::parse_str(uuid).map_err(|e| sector_error(first, e.to_string()))?;
        let limit = kind.fee_limit(&self.ctx.config, prepared.carried);
        let (sent, signed) = push_message(&self.ctx, &self.lotus, &prepared.message, spec_uuid, &limit, epoch).await?;
        // What the node signed for this MsgUuid, which after a crash may be an earlier build.
        let carried = sectors_of(signed.message.method, &signed.message.params);
        for sector in members {
            let mut record = record_of(sector);
            record.outbox = None;
            if !record.sector_number.is_some_and(|n| carried.contains(&n)) {
                let reason = prepared.left_out.clone().unwrap_or_else(|| "the message pushed for this batch does not carry it".into());
                let note = Note { warning: false, reason: "LeftForNextBatch", message: format!("{} {}: {reason}; it goes in the next batch", kind.method_name(), sent.cid) };
                self.write(sector, record, vec![note]).await?;
                continue;
            }
            let event = match kind {
                Kind::PreCommit => Event::SubmitPC(sent.clone()),
                Kind::Commit => Event::SubmitProof(sent.clone()),
            };
            let next = self.event(sector, &record, event)?;
            let note = Note { warning: false, reason: "MessageSent", message: format!("{} {} with {} sector(s){}", kind.method_name(), sent.cid, carried.len(), prepared.how) };
            self.write(sector, next, vec![note]).await?;
        }
        Ok(())
    }

    async fn precommit_message(&self, members: &[Arc<Sector>], miner: &ChainAddress, worker: ChainAddress, head: ChainEpoch) -> Result<Prepared, BridgeError> {
        let mut sectors = Vec::new();
        let mut deposits = Vec::new();
        for sector in members {
            let record = record_of(sector);
            let fail = |what: &str| sector_error(sector, format!("cannot precommit without {what}"));
            let proof = seal_proof(sector);
            let comm_r = record.comm_r.as_deref().ok_or_else(|| fail("CommR"))?;
            let ticket = record.ticket.as_ref().ok_or_else(|| fail("a ticket"))?;
            let wanted = head + self.policy.max_prove_commit_duration(proof).unwrap_or(0) + ChainEpoch::from(sector.spec.expiration_days) * EPOCHS_IN_DAY;
            let expiration = self.policy.precommit_expiration(ticket.epoch, head, proof, wanted).ok_or_else(|| fail("a proof type that can be proven interactively"))?;
            let unsealed = if sector.spec.pieces.is_empty() {
                None
            } else {
                Some(parse_cid(sector, record.comm_d.as_deref().ok_or_else(|| fail("CommD"))?)?)
            };
            let info = SectorPreCommitInfo {
                seal_proof: proof,
                sector_number: record.sector_number.ok_or_else(|| fail("a sector number"))?,
                sealed_cid: parse_cid(sector, comm_r)?,
                seal_rand_epoch: ticket.epoch,
                deal_ids: vec![],
                expiration,
                unsealed_cid: CompactCommD(unsealed),
            };
            let query = filecoin_chain::miner::SectorPreCommitInfo::from(&info);
            deposits.push(self.lotus.state_miner_pre_commit_deposit_for_power(miner, &query, &TipSetKey::head()).await?);
            sectors.push(info);
        }
        let build = |n: usize| {
            let value = deposits.iter().take(n).fold(TokenAmount::from_atto(0), |sum, d| sum + d);
            let params = PreCommitSectorBatchParams2 { sectors: sectors[..n].to_vec() };
            miner_message(*miner, worker, MinerMethod::PreCommitSectorBatch2, &params, value)
        };
        let (message, carried) = fitting(sectors.len(), build).map_err(|e| sector_error(&members[0], e))?;
        Ok(Prepared { message, carried, how: String::new(), left_out: left_out(carried, sectors.len()) })
    }

    /// ProveCommitSectors3 for the members whose precommit is on chain: per-sector proofs, or an
    /// aggregate when one is configured, possible and estimated cheaper (as Curio chooses,
    /// tasks/seal/task_submit_commit.go:428-510). The value is each sector's initial pledge for
    /// the rest of its life less its precommit deposit (`commit_collateral`).
    async fn commit_message(&self, members: &[Arc<Sector>], miner: &ChainAddress, worker: ChainAddress, head: ChainEpoch, base_fee: &TokenAmount) -> Result<Prepared, BridgeError> {
        let mut proven = Vec::new();
        for sector in members {
            let record = record_of(sector);
            let fail = |what: &str| sector_error(sector, format!("cannot prove without {what}"));
            let number = record.sector_number.ok_or_else(|| fail("a sector number"))?;
            let Some(pci) = self.lotus.state_sector_precommit_info(miner, number, &TipSetKey::head()).await? else { continue };
            let proof = STANDARD.decode(record.proof.as_deref().ok_or_else(|| fail("a proof"))?).map_err(|e| sector_error(sector, format!("the proof is not base64: {e}")))?;
            let pieces = sector
                .spec
                .pieces
                .iter()
                .map(|p| Ok(PieceActivationManifest { cid: parse_cid(sector, &p.cid)?, size: PaddedPieceSize(p.size), verified_allocation_key: None, notify: vec![] }))
                .collect::<Result<Vec<_>, BridgeError>>()?;
            let size = sector.spec.sector_size.bytes();
            let pledge = self.lotus.state_miner_initial_pledge_for_sector(pci.info.expiration - head, size, 0, &TipSetKey::head()).await?;
            let collateral = commit_collateral(&pledge, &pci.pre_commit_deposit);
            proven.push((sector.clone(), SectorActivationManifest { sector_number: number, pieces }, proof, collateral));
        }
        let Some((first, ..)) = proven.first() else {
            return Err(sector_error(&members[0], "no member of the batch has a precommit on chain; nothing to prove"));
        };
        let first = first.clone();
        // One sector that fails to activate must not fail the others.
        let require_activation_success = false;
        let value = |n: usize| proven.iter().take(n).fold(TokenAmount::from_atto(0), |sum, p| sum + &p.3);
        let per_sector = |n: usize| {
            let params = ProveCommitSectors3Params {
                sector_activations: proven[..n].iter().map(|p| p.1.clone()).collect(),
                sector_proofs: proven[..n].iter().map(|p| RawBytes::new(p.2.clone())).collect(),
                aggregate_proof: RawBytes::default(),
                aggregate_proof_type: None,
                require_activation_success,
                require_notification_success: require_activation_success,
            };
            miner_message(*miner, worker, MinerMethod::ProveCommitSectors3, &params, value(n))
        };
        let (message, carried) = fitting(proven.len(), per_sector).map_err(|e| sector_error(&first, e))?;
        let sectors: Vec<Arc<Sector>> = proven.iter().map(|p| p.0.clone()).collect();
        let no_precommit = (proven.len() < members.len()).then(|| "its precommit is not on chain".to_owned());
        let individual = Prepared { message, carried, how: String::new(), left_out: left_out(carried, proven.len()).or(no_precommit.clone()) };
        if proven.len() < MIN_AGGREGATED_SECTORS {
            return Ok(individual);
        }
        let proofs: Vec<Vec<u8>> = proven.iter().map(|p| p.2.clone()).collect();
        let Some(aggregate) = self.aggregate(&sectors, &proofs).await else { return Ok(individual) };
        let activations: Vec<SectorActivationManifest> = proven.iter().map(|p| p.1.clone()).collect();
        let params = match prove_commit_aggregate(activations, aggregate, require_activation_success) {
            Ok(params) => params,
            Err(e) => {
                self.aggregation_failed(&sectors, e.to_string()).await;
                return Ok(individual);
            }
        };
        let aggregated = miner_message(*miner, worker, MinerMethod::ProveCommitSectors3, &params, value(proven.len())).map_err(|e| sector_error(&first, e.to_string()))?;
        if !aggregated.fits_message_pool().unwrap_or(false) {
            return Ok(individual);
        }
        // Cost = (base fee + premium) × gas limit of each, as estimated by the node.
        let limit = Kind::Commit.fee_limit(&self.ctx.config, proven.len());
        let spec = filecoin_chain::message::MessageSendSpec::new(uuid::Uuid::nil(), limit.max_fee);
        let aggregate_cost = self.cost(&aggregated, &spec, base_fee).await?;
        let individual_cost = if individual.carried == proven.len() { Some(self.cost(&individual.message, &spec, base_fee).await?) } else { None };
        let costs = format!("aggregate {} attoFIL, per-sector proofs {}", aggregate_cost.atto(), individual_cost.as_ref().map_or_else(|| "too large for one message".into(), |c| format!("{} attoFIL", c.atto())));
        if individual_cost.is_some_and(|c| c <= aggregate_cost) {
            return Ok(Prepared { how: format!(", one proof per sector (estimated {costs})"), ..individual });
        }
        Ok(Prepared {
            message: aggregated,
            carried: proven.len(),
            how: format!(", proofs aggregated (SnarkPackV2; estimated {costs})"),
            left_out: no_precommit,
        })
    }

    /// What the node estimates `message` would cost: (base fee + premium) × gas limit.
    async fn cost(&self, message: &Message, spec: &filecoin_chain::message::MessageSendSpec, base_fee: &TokenAmount) -> Result<TokenAmount, BridgeError> {
        let estimate = self.lotus.gas_estimate_message_gas(message, Some(spec), &TipSetKey::head()).await?;
        Ok((base_fee.clone() + &estimate.gas_premium) * estimate.gas_limit.max(0) as u64)
    }

    /// The SnarkPackV2 aggregate of a batch's proofs, when aggregation is configured and the batch
    /// is big enough. Aggregation failing (no SRS, say) is a Warning Event on every member and
    /// the batch goes with one proof per sector instead.
    async fn aggregate(&self, members: &[Arc<Sector>], proofs: &[Vec<u8>]) -> Option<Vec<u8>> {
        let config = self.ctx.config.batching.aggregate.as_ref()?;
        if members.len() < config.min_sectors || members.len() > MAX_AGGREGATED_SECTORS {
            return None;
        }
        let mut inputs = Vec::new();
        for (sector, proof) in members.iter().zip(proofs) {
            let Some(input) = commit_proof(sector, proof) else {
                self.aggregation_failed(members, format!("{} has no valid CommR, seed and sector number", sector.name_any())).await;
                return None;
            };
            inputs.push(input);
        }
        let seal = members.first().map(|s| seal_proof(s))?;
        let started = std::time::Instant::now();
        let reason = match tokio::task::spawn_blocking(move || aggregate_seal_proofs(seal, &inputs)).await {
            Ok(Ok(aggregate)) => {
                tracing::info!(sectors = members.len(), bytes = aggregate.len(), seconds = started.elapsed().as_secs_f32(), "aggregated commit proofs");
                return Some(aggregate);
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        self.aggregation_failed(members, reason).await;
        None
    }

    async fn aggregation_failed(&self, members: &[Arc<Sector>], reason: String) {
        tracing::warn!(%reason, "cannot aggregate the commit proofs");
        let message = format!("cannot aggregate the proofs of {} sectors ({reason}); sending one proof per sector", members.len());
        for sector in members {
            publish(&self.ctx, &**sector, vec![Note { warning: true, reason: "AggregationFailed", message: message.clone() }]).await;
        }
    }

    /// Follows a sent message carrying `members` until it lands, replacing it while the chain
    /// does not take it, and moves each member on, or back to be sent again.
    async fn wait(&mut self, kind: Kind, members: &[Arc<Sector>], epoch: ChainEpoch) -> Result<(), BridgeError> {
        let Some(first) = members.first() else { return Ok(()) };
        let Some(sent) = kind.message(&record_of(first)).cloned() else { return Ok(()) };
        let limit = kind.fee_limit(&self.ctx.config, members.len());
        let (landed, code) = match follow(&self.ctx, &self.lotus, &sent, &limit, epoch).await? {
            Progress::Landed(landed, code) => (landed, code),
            Progress::Pending => return Ok(()),
            Progress::Replaced(replaced, note) => {
                for sector in members {
                    let mut record = record_of(sector);
                    if let Some(message) = kind.message_mut(&mut record) {
                        *message = replaced.clone();
                    }
                    let note = Note { warning: true, reason: "MessageReplaced", message: format!("{} {note}", kind.method_name()) };
                    self.write(sector, record, vec![note]).await?;
                }
                return Ok(());
            }
            Progress::Stuck(reason) => {
                for sector in members {
                    publish(&self.ctx, &**sector, vec![Note { warning: true, reason: "MessageStuck", message: format!("{} {reason}", kind.method_name()) }]).await;
                }
                return Ok(());
            }
        };
        for sector in members {
            if let Err(error) = self.landed(kind, sector, &landed, code, members.len() > 1).await {
                self.report(sector, error).await;
            }
        }
        Ok(())
    }

    /// Moves one member of a landed message on: a precommit to PCLanded with the actor's
    /// PreCommitEpoch, a commit to Finished once the sector is active; a failed message back to
    /// be sent again, alone.
    async fn landed(&mut self, kind: Kind, sector: &Sector, landed: &ChainMessage, code: ExitCode, was_batch: bool) -> Result<(), BridgeError> {
        let record = record_of(sector);
        let id = uid(sector);
        if code.is_success() {
            let miner = self.miner(sector)?;
            let number = record.sector_number.ok_or_else(|| sector_error(sector, "no sector number"))?;
            let mut landed = landed.clone();
            let event = match kind {
                Kind::PreCommit => {
                    // The seed is drawn at PreCommitEpoch + PreCommitChallengeDelay, the epoch the
                    // actor checks the proof against (builtin-actors actors/miner/src/lib.rs:4672,
                    // validate_precommits). StateSearchMsg's Height is the tipset after the one
                    // that executed the message (lotus chain/stmgr/searchwait.go:267-330), so
                    // lotus-miner and Curio read the epoch from the precommit itself.
                    let Some(on_chain) = self.lotus.state_sector_precommit_info(&miner, number, &TipSetKey::head()).await? else {
                        return Err(sector_error(sector, format!("the precommit {} landed but the chain has no precommit of sector {number}; looking again", landed.cid)));
                    };
                    landed.epoch = Some(on_chain.pre_commit_epoch);
                    Event::CheckPC(landed.clone())
                }
                Kind::Commit => {
                    if self.lotus.state_sector_get_info(&miner, number, &TipSetKey::head()).await?.is_none() {
                        let next = self.event(sector, &record, Event::ReSubmitProof)?;
                        let error = StepError::new(ErrorLevel::Temporary, "wait-commit", format!("the commit {} landed but sector {number} did not activate; proving again", landed.cid));
                        return self.fail(sector, &next, error).await;
                    }
                    Event::Finish(landed.clone())
                }
            };
            let note = Note { warning: false, reason: "MessageLanded", message: format!("{} {} at epoch {}", kind.method_name(), landed.cid, landed.epoch.unwrap_or_default()) };
            self.alone.remove(&id);
            let next = self.event(sector, &record, event)?;
            return self.write(sector, next, vec![note]).await;
        }
        // A failed batch: every member goes alone from now on, so only the bad one keeps failing.
        let level = if was_batch { ChainLevel::Temporary } else { classify(kind.method(), code).unwrap_or(ChainLevel::Temporary) };
        self.alone.insert(id);
        let reason = format!("{} {} failed with exit code {}", kind.method_name(), landed.cid, code.value());
        let mut next = self.event(sector, &record, kind.resend())?;
        let note_level = match level {
            ChainLevel::Temporary => ErrorLevel::Temporary,
            ChainLevel::Permanent => ErrorLevel::Permanent,
            ChainLevel::Abort => ErrorLevel::Abort,
        };
        if let Some(m) = kind.message_mut(&mut next) {
            m.epoch = landed.epoch;
            m.exit_code = landed.exit_code;
        }
        self.fail(sector, &next, StepError::new(note_level, kind.task().as_str(), reason)).await
    }
}

/// A batch message ready to push.
struct Prepared {
    message: Message,
    /// How many of the members (the first ones) it carries.
    carried: usize,
    /// How the proofs go, for the MessageSent Event.
    how: String,
    /// Why members were left out, if any were.
    left_out: Option<String>,
}

/// The message of the first `n` items for the largest `n` whose message Lotus' message pool
/// takes (64 KiB, lotus chain/messagepool/messagepool.go:67 and check.go:259), and that `n`.
fn fitting(items: usize, build: impl Fn(usize) -> Result<Message, filecoin_chain::params::ParamsError>) -> Result<(Message, usize), String> {
    let mut n = items;
    loop {
        let message = build(n).map_err(|e| e.to_string())?;
        let size = message.encoded_len().map_err(|e| e.to_string())?;
        if message.fits_message_pool().map_err(|e| e.to_string())? {
            return Ok((message, n));
        }
        if n <= 1 {
            return Err(format!("one sector's message is {size} bytes, over Lotus' 64 KiB message limit"));
        }
        // Items are about the same size: jump close to what fits, then step down.
        let limit = MAX_MESSAGE_SIZE - SIGNATURE_ALLOWANCE;
        n = (n * limit / size).clamp(1, n - 1);
    }
}

/// What a commit sends for one sector: its initial pledge less the precommit deposit the actor
/// already holds and applies to it, never below zero (lotus storage/pipeline/commit_batch.go:601-604;
/// Curio does the same).
fn commit_collateral(pledge: &TokenAmount, deposit: &TokenAmount) -> TokenAmount {
    if pledge > deposit { pledge - deposit } else { TokenAmount::from_atto(0) }
}

fn left_out(carried: usize, items: usize) -> Option<String> {
    (carried < items).then(|| format!("with {items} sectors the message would exceed Lotus' 64 KiB limit, so it carries the first {carried}"))
}


fn record_of(sector: &Sector) -> SectorRecord {
    sector.status.as_ref().map(|s| s.record.clone()).unwrap_or_default()
}

/// What aggregation needs of a sector: its number, CommR and seed, and its C2 proof.
fn commit_proof(sector: &Sector, proof: &[u8]) -> Option<CommitProof> {
    let record = record_of(sector);
    let comm_r = Cid::from_str(record.comm_r.as_deref()?).ok()?;
    Some(CommitProof {
        sector_number: record.sector_number?,
        comm_r: cid_to_replica_commitment_v1(&comm_r).ok()?,
        seed: hex::decode(&record.seed?.value).ok()?.try_into().ok()?,
        proof: proof.to_vec(),
    })
}

fn uid(sector: &Sector) -> String {
    sector.metadata.uid.clone().unwrap_or_else(|| sector.name_any())
}

fn seal_proof(sector: &Sector) -> RegisteredSealProof {
    RegisteredSealProof::from(sector.spec.seal_proof().id())
}

fn parse_cid(sector: &Sector, text: &str) -> Result<Cid, BridgeError> {
    Cid::try_from(text).map_err(|e| sector_error(sector, format!("{text:?} is not a CID: {e}")))
}

fn level_reason(level: ErrorLevel) -> &'static str {
    match level {
        ErrorLevel::Temporary => "TemporaryError",
        ErrorLevel::Permanent => "PermanentError",
        ErrorLevel::Abort => "AbortError",
    }
}

#[cfg(test)]
mod tests {
    use filecoin_chain::params::{ProveCommitSectors3Params, SectorActivationManifest};

    use super::*;

    /// ProveCommitSectors3 of `n` 32 GiB sectors, one 1920-byte proof each.
    fn commit_of(n: usize) -> Result<Message, filecoin_chain::params::ParamsError> {
        let params = ProveCommitSectors3Params {
            sector_activations: (0..n as u64).map(|i| SectorActivationManifest { sector_number: 1000 + i, pieces: vec![] }).collect(),
            sector_proofs: (0..n).map(|_| RawBytes::new(vec![7; 1920])).collect(),
            aggregate_proof: RawBytes::default(),
            aggregate_proof_type: None,
            require_activation_success: false,
            require_notification_success: false,
        };
        miner_message("t01000".parse().unwrap(), "t01002".parse().unwrap(), MinerMethod::ProveCommitSectors3, &params, TokenAmount::from_whole(1))
    }

    #[test]
    fn a_commit_batch_is_cut_to_what_lotus_message_pool_takes() {
        // 34 per-sector proofs of 32 GiB sectors (1920 bytes each) exceed Lotus' 64 KiB
        // (chain/messagepool/messagepool.go:67, less 128 bytes for the signature, check.go:259).
        assert!(!commit_of(34).unwrap().fits_message_pool().unwrap());
        let (message, carried) = fitting(40, commit_of).unwrap();
        assert_eq!(carried, 33);
        assert!(message.encoded_len().unwrap() <= MAX_MESSAGE_SIZE - SIGNATURE_ALLOWANCE);
        assert_eq!(sectors_of(message.method, &message.params).len(), 33);
        let (_, all) = fitting(20, commit_of).unwrap();
        assert_eq!(all, 20, "a batch that fits is sent whole");
        assert_eq!(left_out(33, 40).as_deref(), Some("with 40 sectors the message would exceed Lotus' 64 KiB limit, so it carries the first 33"));
        assert_eq!(left_out(20, 20), None);
    }

    #[test]
    fn one_message_too_large_for_a_single_sector_is_an_error() {
        let huge = |_: usize| miner_message("t01000".parse().unwrap(), "t01002".parse().unwrap(), MinerMethod::ProveCommitSectors3, &vec![0u8; 70_000], TokenAmount::from_atto(0));
        let err = fitting(3, huge).unwrap_err();
        assert!(err.contains("over Lotus' 64 KiB message limit"), "{err}");
    }

    #[test]
    fn commit_collateral_is_the_pledge_less_the_precommit_deposit() {
        // lotus storage/pipeline/commit_batch.go:601-604.
        let atto = TokenAmount::from_atto;
        assert_eq!(commit_collateral(&atto(11_000), &atto(1_100)), atto(9_900));
        assert_eq!(commit_collateral(&atto(1_000), &atto(1_100)), atto(0), "never negative");
    }
}
