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
use filecoin_chain::methods::{MAX_AGGREGATED_SECTORS, MinerMethod, miner_message, prove_commit_aggregate};
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
use fvm_shared::commcid::cid_to_replica_commitment_v1;
use fvm_shared::piece::PaddedPieceSize;
use fvm_shared::sector::RegisteredSealProof;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};

use super::{Context, Note, own_namespace, publish, push_message, search_message};
use crate::config::{Config, TicketExpiry};
use crate::core::control::{abort, rewind};
use crate::core::record::{ChainMessage, Outbox, Randomness, SectorRecord};
use crate::core::retry::{RetryPolicy, on_error};
use crate::core::work::{ChainTask, OperatorTask, Work, hold, work};
use crate::core::{ErrorLevel, Event, Plan, State, StepError, apply};
use crate::crd::{SealingPool, Sector};

/// Epochs a precommit needs to land, kept in hand when checking a ticket.
const INCLUSION_MARGIN: ChainEpoch = 20;
/// A message not on chain this many epochs after it was pushed is treated as dropped.
const DROPPED_AFTER: ChainEpoch = 120;
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
    /// When a message was first seen pending, to notice dropped messages.
    pending_since: HashMap<String, ChainEpoch>,
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
            max_fee_per_item: TokenAmount::from_atto(0),
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
            pending_since: HashMap::new(),
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
                Some(Work::Chain(ChainTask::WaitPreCommit)) => self.wait(&sector, &record, Kind::PreCommit, epoch).await,
                Some(Work::Chain(ChainTask::WaitCommit)) => self.wait(&sector, &record, Kind::Commit, epoch).await,
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

        for ((_, msg_uuid), members) in outboxes {
            if let Err(error) = self.push(&members, &msg_uuid).await {
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
        let ns = sector.namespace().unwrap_or_default();
        let before = record_of(sector).state;
        let mut updated = sector.clone();
        let after = record.state;
        updated.status.get_or_insert_with(Default::default).record = record;
        let api: Api<Sector> = Api::namespaced(self.ctx.client.clone(), &ns);
        api.replace_status(&sector.name_any(), &PostParams::default(), &updated).await?;
        let mut notes = notes;
        if before != after {
            notes.push(Note { warning: after == State::Aborted, reason: "StateChanged", message: format!("{before} -> {after}") });
        }
        publish(&self.ctx, sector, notes).await;
        Ok(())
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

    /// Plans and starts the batches of one miner and kind: writes each member's outbox, then pushes.
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
        for group in groups {
            let Some(first) = group.first() else { continue };
            let attempt = record_of(first).attempts_of(task.as_str()) + 1;
            let uuid = msg_uuid(&uid(first), task.as_str(), attempt).to_string();
            let names: Vec<String> = group.iter().map(|s| s.name_any()).collect();
            let mut written = Vec::new();
            for sector in &group {
                let mut record = record_of(sector);
                *record.attempts.entry(task.as_str().to_owned()).or_default() += 1;
                record.outbox = Some(Outbox { task: task.as_str().into(), msg_uuid: uuid.clone(), sectors: names.clone() });
                match self.write(sector, record.clone(), vec![]).await {
                    Ok(()) => {
                        let mut fresh = (**sector).clone();
                        fresh.status.get_or_insert_with(Default::default).record = record;
                        written.push(Arc::new(fresh));
                    }
                    Err(error) => tracing::warn!(%error, sector = %sector.name_any(), "writing the outbox"),
                }
            }
            if !written.is_empty() {
                self.push(&written, &uuid).await?;
            }
        }
        Ok(())
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
    /// already signed for this MsgUuid) and records its CID in every member present.
    async fn push(&self, members: &[Arc<Sector>], uuid: &str) -> Result<(), BridgeError> {
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
        let (params, value) = match kind {
            Kind::PreCommit => self.precommit_params(members, &miner).await?,
            Kind::Commit => self.commit_params(members).await?,
        };
        let message = match &params {
            Params::PreCommit(p) => miner_message(miner, info.worker, kind.method(), p, value),
            Params::Commit(p) => miner_message(miner, info.worker, kind.method(), p, value),
        }
        .map_err(|e| sector_error(first, e.to_string()))?;
        let spec_uuid = uuid::Uuid::parse_str(uuid).map_err(|e| sector_error(first, e.to_string()))?;
        let sent = push_message(&self.ctx, &self.lotus, &message, spec_uuid).await?;
        for sector in members {
            let mut record = record_of(sector);
            record.outbox = None;
            let event = match kind {
                Kind::PreCommit => Event::SubmitPC(sent.clone()),
                Kind::Commit => Event::SubmitProof(sent.clone()),
            };
            let next = self.event(sector, &record, event)?;
            let proofs = match &params {
                Params::Commit(p) if !p.aggregate_proof.is_empty() => ", proofs aggregated (SnarkPackV2)",
                _ => "",
            };
            let note = Note { warning: false, reason: "MessageSent", message: format!("{} {} with {} sector(s){proofs}", kind.method_name(), sent.cid, members.len()) };
            self.write(sector, next, vec![note]).await?;
        }
        Ok(())
    }

    async fn precommit_params(&self, members: &[Arc<Sector>], miner: &ChainAddress) -> Result<(Params, TokenAmount), BridgeError> {
        let head = self.lotus.chain_head().await?.height;
        let mut sectors = Vec::new();
        let mut deposit = TokenAmount::from_atto(0);
        for sector in members {
            let record = record_of(sector);
            let fail = |what: &str| sector_error(sector, format!("cannot precommit without {what}"));
            let proof = seal_proof(sector);
            let comm_r = record.comm_r.as_deref().ok_or_else(|| fail("CommR"))?;
            let ticket = record.ticket.as_ref().ok_or_else(|| fail("a ticket"))?;
            let (min, max) = self.policy.expiration_bounds(head, proof).ok_or_else(|| fail("a proof type that can be proven interactively"))?;
            let wanted = head + self.policy.max_prove_commit_duration(proof).unwrap_or(0) + ChainEpoch::from(sector.spec.expiration_days) * EPOCHS_IN_DAY;
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
                expiration: wanted.clamp(min, max),
                unsealed_cid: CompactCommD(unsealed),
            };
            let query = filecoin_chain::miner::SectorPreCommitInfo {
                seal_proof: info.seal_proof,
                sector_number: info.sector_number,
                sealed_cid: info.sealed_cid,
                seal_rand_epoch: info.seal_rand_epoch,
                deal_ids: vec![],
                expiration: info.expiration,
                unsealed_cid: info.unsealed_cid.0,
            };
            deposit += self.lotus.state_miner_pre_commit_deposit_for_power(miner, &query, &TipSetKey::head()).await?;
            sectors.push(info);
        }
        Ok((Params::PreCommit(PreCommitSectorBatchParams2 { sectors }), deposit))
    }

    async fn commit_params(&self, members: &[Arc<Sector>]) -> Result<(Params, TokenAmount), BridgeError> {
        let mut activations = Vec::new();
        let mut proofs = Vec::new();
        let mut pledge = TokenAmount::from_atto(0);
        for sector in members {
            let record = record_of(sector);
            let fail = |what: &str| sector_error(sector, format!("cannot prove without {what}"));
            let proof = STANDARD.decode(record.proof.as_deref().ok_or_else(|| fail("a proof"))?).map_err(|e| sector_error(sector, format!("the proof is not base64: {e}")))?;
            let pieces = sector
                .spec
                .pieces
                .iter()
                .map(|p| Ok(PieceActivationManifest { cid: parse_cid(sector, &p.cid)?, size: PaddedPieceSize(p.size), verified_allocation_key: None, notify: vec![] }))
                .collect::<Result<Vec<_>, BridgeError>>()?;
            activations.push(SectorActivationManifest { sector_number: record.sector_number.ok_or_else(|| fail("a sector number"))?, pieces });
            proofs.push(proof);
            let duration = ChainEpoch::from(sector.spec.expiration_days) * EPOCHS_IN_DAY;
            let size = sector.spec.sector_size.bytes();
            pledge += self.lotus.state_miner_initial_pledge_for_sector(duration, size, 0, &TipSetKey::head()).await?;
        }
        // One sector that fails to activate must not fail the others.
        let require_activation_success = false;
        if let Some(aggregate) = self.aggregate(members, &proofs).await {
            match prove_commit_aggregate(activations.clone(), aggregate, require_activation_success) {
                Ok(params) => return Ok((Params::Commit(params), pledge)),
                Err(e) => self.aggregation_failed(members, e.to_string()).await,
            }
        }
        let params = ProveCommitSectors3Params {
            sector_activations: activations,
            sector_proofs: proofs.into_iter().map(RawBytes::new).collect(),
            aggregate_proof: RawBytes::default(),
            aggregate_proof_type: None,
            require_activation_success,
            require_notification_success: require_activation_success,
        };
        Ok((Params::Commit(params), pledge))
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

    /// Waits for a sent message's receipt and moves the sector on, or back to send again.
    async fn wait(&mut self, sector: &Sector, record: &SectorRecord, kind: Kind, epoch: ChainEpoch) -> Result<(), BridgeError> {
        let sent = match kind {
            Kind::PreCommit => record.precommit.clone(),
            Kind::Commit => record.commit.clone(),
        }
        .ok_or_else(|| sector_error(sector, "no message to wait for"))?;
        let cid = parse_cid(sector, &sent.cid)?;
        let Some((landed, code)) = search_message(&self.lotus, &cid).await? else {
            let since = *self.pending_since.entry(sent.cid.clone()).or_insert(epoch);
            if epoch - since > DROPPED_AFTER {
                self.pending_since.remove(&sent.cid);
                let resend = match kind {
                    Kind::PreCommit => Event::ReSubmitPC,
                    Kind::Commit => Event::ReSubmitProof,
                };
                let next = self.event(sector, record, resend)?;
                let error = StepError::new(ErrorLevel::Temporary, kind.task().as_str(), format!("message {} not on chain after {DROPPED_AFTER} epochs; sending again", sent.cid));
                return self.fail(sector, &next, error).await;
            }
            return Ok(());
        };
        self.pending_since.remove(&sent.cid);
        let id = uid(sector);
        if code.is_success() {
            let note = Note { warning: false, reason: "MessageLanded", message: format!("{} at epoch {}", kind.method_name(), landed.epoch.unwrap_or_default()) };
            let event = match kind {
                Kind::PreCommit => Event::CheckPC(landed),
                Kind::Commit => {
                    let miner = self.miner(sector)?;
                    let number = record.sector_number.ok_or_else(|| sector_error(sector, "no sector number"))?;
                    if self.lotus.state_sector_get_info(&miner, number, &TipSetKey::head()).await?.is_none() {
                        let next = self.event(sector, record, Event::ReSubmitProof)?;
                        let error = StepError::new(ErrorLevel::Temporary, "wait-commit", format!("the commit {} landed but sector {number} did not activate; proving again", landed.cid));
                        return self.fail(sector, &next, error).await;
                    }
                    Event::Finish(landed)
                }
            };
            self.alone.remove(&id);
            let next = self.event(sector, record, event)?;
            return self.write(sector, next, vec![note]).await;
        }
        // A failed batch: every member goes alone from now on, so only the bad one keeps failing.
        let was_batch = self.sectors.state().iter().filter(|s| message_of(s, kind).is_some_and(|m| m.cid == sent.cid)).count() > 1;
        let level = if was_batch { ChainLevel::Temporary } else { classify(kind.method(), code).unwrap_or(ChainLevel::Temporary) };
        self.alone.insert(id);
        let reason = format!("{} {} failed with exit code {}", kind.method_name(), sent.cid, code.value());
        let next = match kind {
            Kind::PreCommit => self.event(sector, record, Event::ReSubmitPC)?,
            Kind::Commit => self.event(sector, record, Event::ReSubmitProof)?,
        };
        let mut next = next;
        let note_level = match level {
            ChainLevel::Temporary => ErrorLevel::Temporary,
            ChainLevel::Permanent => ErrorLevel::Permanent,
            ChainLevel::Abort => ErrorLevel::Abort,
        };
        if let Some(m) = match kind {
            Kind::PreCommit => next.precommit.as_mut(),
            Kind::Commit => next.commit.as_mut(),
        } {
            m.epoch = landed.epoch;
            m.exit_code = landed.exit_code;
        }
        self.fail(sector, &next, StepError::new(note_level, kind.task().as_str(), reason)).await
    }
}

enum Params {
    PreCommit(PreCommitSectorBatchParams2),
    Commit(ProveCommitSectors3Params),
}

fn record_of(sector: &Sector) -> SectorRecord {
    sector.status.as_ref().map(|s| s.record.clone()).unwrap_or_default()
}

fn message_of(sector: &Sector, kind: Kind) -> Option<ChainMessage> {
    let record = record_of(sector);
    match kind {
        Kind::PreCommit => record.precommit,
        Kind::Commit => record.commit,
    }
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
