//! Window PoSt end to end: sectors sealed by the Sector controller are kept proven by the
//! ProvingDeadline controller against the chain simulator, which runs `verify_window_post` on
//! every submission. Called by the sealing test with the sectors it sealed, since a 2 KiB C2
//! costs two minutes of CPU.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use filecoin_chain::policy::WindowPoStPolicy;
use filecoin_chain::tipset::TipSetKey;
use filecoin_chain::{ChainAddress, LotusClient};
use kube::{Api, ResourceExt};
use sealing_operator::controllers::proving::deadline_name;
use sealing_operator::core::proving::{DeclarationKind, ProvingRecord};
use sealing_operator::crd::ProvingDeadline;

const MINER: &str = "t01000";
const SUBMIT_WINDOWED_POST: u64 = 5;
const POLL: Duration = Duration::from_millis(500);

/// The simulator's window PoSt policy for these tests: 8 deadlines of 16 epochs (500 ms each),
/// so a proving period takes 64 s and a deadline leaves 10 s between its challenge and its close.
pub const POLICY: WindowPoStPolicy = WindowPoStPolicy {
    period_deadlines: 8,
    proving_period: 128,
    challenge_window: 16,
    challenge_lookback: 4,
    fault_declaration_cutoff: 12,
};

/// A sealed sector and where its replica is in the store.
pub struct SealedSector {
    pub number: u64,
    pub store_dir: PathBuf,
}

/// What the test sees of the proving controller, one poll at a time: every instance record and
/// every instance end (`lastSubmission`) of the deadlines it watches.
struct Observer {
    api: Api<ProvingDeadline>,
    lotus: LotusClient,
    names: BTreeSet<String>,
    records: BTreeMap<(String, i64), ProvingRecord>,
    ends: BTreeMap<(String, i64), String>,
}

impl Observer {
    async fn poll(&mut self) -> anyhow::Result<BTreeMap<String, ProvingDeadline>> {
        let mut seen = BTreeMap::new();
        for name in &self.names {
            let Some(deadline) = self.api.get_opt(name).await? else { continue };
            let status = deadline.status.clone().unwrap_or_default();
            if let Some(current) = status.current {
                self.records.insert((name.clone(), current.period_start), current);
            }
            if let Some(last) = status.last_submission {
                if matches!(last.result.as_str(), "Proven" | "Missed") {
                    let previous = self.ends.insert((name.clone(), last.period_start), last.result.clone());
                    if previous.is_none() {
                        eprintln!("e2e: {name} period {} {}: {}", last.period_start, last.result, last.message.as_deref().unwrap_or(""));
                    }
                }
                ensure!(last.result != "Missed", "{name} missed the period from epoch {}: {:?}", last.period_start, last.message);
                ensure!(last.result != "Rejected", "{name}: a PoSt was rejected: {:?}", last.message);
            }
            seen.insert(name.clone(), deadline);
        }
        Ok(seen)
    }

    fn proven_periods(&self, name: &str) -> Vec<i64> {
        self.ends.iter().filter(|((n, _), r)| n == name && r.as_str() == "Proven").map(|((_, p), _)| *p).collect()
    }

    async fn head(&self) -> anyhow::Result<i64> {
        Ok(self.lotus.chain_head().await?.height)
    }

    /// Polls until `done` says so, failing after `timeout`.
    async fn until<F>(&mut self, timeout: Duration, what: &str, mut done: F) -> anyhow::Result<()>
    where
        F: FnMut(&Self, &BTreeMap<String, ProvingDeadline>, i64) -> anyhow::Result<bool>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = self.poll().await?;
            let head = self.head().await?;
            if done(self, &seen, head)? {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("timed out after {}s waiting for {what}; proven so far: {:?}", timeout.as_secs(), self.ends);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Where each sector is on chain: deadline and partition index.
fn miner() -> anyhow::Result<ChainAddress> {
    MINER.parse().map_err(|e| anyhow::anyhow!("{e}"))
}

pub async fn locate(lotus: &LotusClient, sectors: &[u64]) -> anyhow::Result<BTreeMap<u64, (u64, u64)>> {
    let miner = miner()?;
    let mut found = BTreeMap::new();
    for index in 0..POLICY.period_deadlines {
        for (p, partition) in lotus.state_miner_partitions(&miner, index, &TipSetKey::head()).await?.iter().enumerate() {
            for number in sectors {
                if partition.all_sectors.get(*number) {
                    found.insert(*number, (index, p as u64));
                }
            }
        }
    }
    ensure!(found.len() == sectors.len(), "every active sector is in a partition: {found:?} of {sectors:?}");
    Ok(found)
}

fn moved(path: &Path) -> PathBuf {
    path.with_extension("moved")
}

/// The sealed sectors are proven in consecutive deadlines for two proving periods, also across
/// an operator killed just before a challenge; then `faulty`'s sealed file disappears (a fault
/// is declared before the cutoff and its PoSt leaves it out) and comes back (a recovery is
/// declared and the sector is proven again).
pub async fn sealed_sectors_stay_proven(
    client: kube::Client,
    endpoint: &str,
    token: &str,
    sim: &chain_sim::SimControl,
    restart_operator: impl Fn() -> anyhow::Result<()>,
    sectors: &[SealedSector],
    faulty: u64,
) -> anyhow::Result<()> {
    let token = Some(filecoin_chain::ApiToken::new(token));
    let lotus = LotusClient::new(filecoin_chain::client::ClientConfig::new(endpoint.to_owned(), token))?;
    let numbers: Vec<u64> = sectors.iter().map(|s| s.number).collect();
    let locations = locate(&lotus, &numbers).await?;
    let names: BTreeSet<String> = locations.values().map(|(d, _)| deadline_name(MINER, *d)).collect();
    eprintln!("e2e: sectors at (deadline, partition) {locations:?}");
    let api: Api<ProvingDeadline> = Api::namespaced(client, "sealing-system");
    let mut observer = Observer { api, lotus, names: names.clone(), records: BTreeMap::new(), ends: BTreeMap::new() };
    let period = POLICY.proving_period;
    let periods = |n: u64| Duration::from_secs(n * (period as u64) / 2 + 30);

    // Two consecutive proven periods for every deadline holding the sectors; the operator is
    // killed just before one of the challenges in between, and that deadline is still proven.
    let first = names.iter().next().context("a deadline")?.clone();
    observer.until(periods(3), "a first proven period", |o, _, _| Ok(!o.proven_periods(&first).is_empty())).await?;
    let mut killed_for = None;
    observer
        .until(periods(3), "two consecutive proven periods with an operator restart before a challenge", |o, seen, head| {
            if killed_for.is_none()
                && let Some(status) = seen.get(&first).and_then(|d| d.status.as_ref())
                && let (Some(challenge), Some(period_start)) = (status.challenge, status.period_start)
                && (challenge - 3..challenge).contains(&head)
            {
                eprintln!("e2e: killing the operator at epoch {head}, challenge {challenge} of {first}");
                restart_operator()?;
                killed_for = Some(period_start);
            }
            let restart_proven = killed_for.is_some_and(|p| o.proven_periods(&first).contains(&p));
            let consecutive = names.iter().all(|n| o.proven_periods(n).windows(2).any(|w| w[1] == w[0] + period));
            Ok(restart_proven && consecutive)
        })
        .await?;
    let posts = sim.message_counts().await?.by_method.get(&SUBMIT_WINDOWED_POST).copied().unwrap_or_default();
    ensure!(posts >= 2 * names.len() as u64, "at least two accepted PoSts per deadline reached the chain: {posts}");

    // The faulty sector's sealed file disappears just after its deadline closed, well before the
    // next instance's proving check.
    let sector = sectors.iter().find(|s| s.number == faulty).context("the faulty sector is one of the sealed ones")?;
    let (fault_deadline, _) = locations[&faulty];
    let name = deadline_name(MINER, fault_deadline);
    let sealed = sector.store_dir.join("sealed");
    let mut fault_period = 0;
    let check_lead = 2 * POLICY.challenge_window + 4;
    observer
        .until(periods(2), "a new instance of the faulty sector's deadline", |_, seen, head| {
            let Some(status) = seen.get(&name).and_then(|d| d.status.as_ref()) else { return Ok(false) };
            let (Some(cutoff), Some(period_start)) = (status.fault_cutoff, status.period_start) else { return Ok(false) };
            let unchecked = status.current.as_ref().is_some_and(|c| c.period_start == period_start && c.check.is_none());
            fault_period = period_start;
            Ok(unchecked && head < cutoff - check_lead)
        })
        .await?;
    std::fs::rename(&sealed, moved(&sealed)).with_context(|| format!("moving {} away", sealed.display()))?;
    eprintln!("e2e: moved the sealed file of sector {faulty} away before the period from epoch {fault_period}");
    observer
        .until(periods(2), "the fault to be declared before the cutoff", |o, seen, _| {
            let Some(record) = o.records.get(&(name.clone(), fault_period)) else { return Ok(false) };
            let Some(declared) = record.declaration(DeclarationKind::Faults) else { return Ok(false) };
            let Some(landed) = declared.message.as_ref().and_then(|m| m.epoch) else { return Ok(false) };
            let status = seen.get(&name).and_then(|d| d.status.as_ref()).context("status")?;
            ensure!(status.period_start == Some(fault_period), "the fault was declared in the period from {fault_period}: {status:?}");
            let cutoff = status.fault_cutoff.context("fault cutoff")?;
            ensure!(declared.names(faulty), "the declaration names sector {faulty}: {declared:?}");
            ensure!(declared.message.as_ref().and_then(|m| m.exit_code) == Some(0), "the declaration succeeded: {declared:?}");
            ensure!(landed < cutoff, "the declaration landed at {landed}, before the fault cutoff {cutoff}");
            Ok(true)
        })
        .await?;
    std::fs::rename(moved(&sealed), &sealed).with_context(|| format!("restoring {}", sealed.display()))?;

    // That instance proves the other sectors and leaves the faulty one out.
    observer
        .until(periods(2), "the deadline with the faulty sector to close", |o, seen, _| {
            Ok(seen.get(&name).and_then(|d| d.status.as_ref()).and_then(|s| s.period_start).is_some_and(|p| p > fault_period)
                && o.records.contains_key(&(name.clone(), fault_period)))
        })
        .await?;
    let record = observer.records[&(name.clone(), fault_period)].clone();
    ensure!(record.posts.iter().all(|p| !p.sectors.contains(&faulty)), "the PoSt of the faulty period left sector {faulty} out: {:?}", record.posts);
    let others_in_deadline = locations.iter().any(|(n, (d, _))| *n != faulty && *d == fault_deadline);
    ensure!(!others_in_deadline || (record.proven() && !record.posts.is_empty()), "the other sectors of the deadline were proven: {record:?}");

    // The file is back: a recovery is declared and the sector is proven again.
    observer
        .until(periods(3), "the recovered sector to be proven again", |o, _, _| {
            Ok(o.records.iter().any(|((n, p), r)| {
                *n == name
                    && *p > fault_period
                    && r.declaration(DeclarationKind::Recoveries).is_some_and(|d| {
                        d.names(faulty) && d.message.as_ref().is_some_and(|m| m.exit_code == Some(0))
                    })
                    && o.ends.get(&(n.clone(), *p)).is_some_and(|e| e == "Proven")
                    && r.posts.iter().any(|b| b.sectors.contains(&faulty) && b.accepted())
            }))
        })
        .await?;
    let faults = observer.lotus.state_miner_faults(&miner()?, &TipSetKey::head()).await?;
    ensure!(!faults.get(faulty), "sector {faulty} is no longer faulty on chain");
    let deadline = observer.api.get(&name).await?;
    ensure!(deadline.status.as_ref().is_some_and(|s| s.sectors >= 1), "kubectl get provingdeadlines counts the sectors: {:?}", deadline.status);
    eprintln!("e2e: {} proving periods observed, {:?}", observer.ends.len(), deadline.name_any());
    Ok(())
}
