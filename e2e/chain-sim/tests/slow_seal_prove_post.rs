//! End to end with real proofs (slow: one C2, about two minutes on two cores): a 2 KiB
//! committed-capacity sector sealed by `sealer-pod` with a ticket from the simulator is
//! precommitted, proven with the seed the simulator draws, verified by the simulator with
//! filecoin-proofs-api and ends active after an accepted window PoSt; the same proof is refused
//! by a chain whose seed differs, and a missed deadline marks the sector faulty.
//!
//! Needs `sealer-pod` (`cargo build --release -p sealer-pod`, or SEALER_POD_BIN) and the 2 KiB
//! proof parameters in the parameter cache (FIL_PROOFS_PARAMETER_CACHE or
//! /var/tmp/filecoin-proof-parameters).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chain_sim::{FilecoinProofs, RunningSim, SimConfig, SimControl};
use filecoin_chain::client::{ClientConfig, LOOKBACK_NO_LIMIT, LotusClient};
use filecoin_chain::exit_code::{ErrorLevel, classify};
use filecoin_chain::message::{MessageSendSpec, SignedMessage};
use filecoin_chain::methods::{MinerMethod, miner_message, prove_commit_per_sector};
use filecoin_chain::msg_uuid::msg_uuid;
use filecoin_chain::params::{
    BatchReturn, CompactCommD, PoStPartition, PreCommitSectorBatchParams2, SectorPreCommitInfo, SubmitWindowedPoStParams,
};
use filecoin_chain::randomness::{DomainSeparationTag, miner_entropy};
use filecoin_chain::tipset::TipSetKey;
use filecoin_chain::{ChainAddress, ChainEpoch, DeadlineInfo};
use fvm_ipld_bitfield::BitField;
use fvm_shared::address::Address;
use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;
use fvm_shared::randomness::Randomness;
use fvm_shared::sector::{PoStProof, RegisteredPoStProof, RegisteredSealProof};
use serde_json::Value;

const SECTOR: u64 = 1;
const POREP_2K_PARAMS: &str = "v28-stacked-proof-of-replication-merkletree-poseidon_hasher-8-0-0-sha256_hasher-032d3138d22506ec0082ed72b2dcba18df18477904e35bafee82b3793b06832f.params";

fn sealer_pod() -> PathBuf {
    let bin = std::env::var_os("SEALER_POD_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        dir.join("../../target/release/sealer-pod")
    });
    assert!(
        bin.is_file(),
        "sealer-pod not found at {}: build it with `cargo build --release -p sealer-pod` or set SEALER_POD_BIN",
        bin.display()
    );
    bin
}

fn require_parameters() {
    let dir = std::env::var_os("FIL_PROOFS_PARAMETER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/filecoin-proof-parameters"));
    assert!(
        dir.join(POREP_2K_PARAMS).is_file(),
        "2 KiB PoRep parameters missing from {}: run the project's parameter script first",
        dir.display()
    );
}

/// Runs one sealer-pod step and returns its `result` object.
fn step(bin: &Path, sector_dir: &Path, name: &str, extra: &[&str]) -> Value {
    let mut cmd = Command::new(bin);
    cmd.arg(name).args(["--sector-dir", sector_dir.to_str().unwrap(), "--miner", "t01000"]);
    cmd.args(["--sector-number", &SECTOR.to_string(), "--sector-size", "2KiB"]);
    cmd.args(extra).args(["--result-path", sector_dir.join(format!("{name}.result")).to_str().unwrap()]);
    run(cmd, name)
}

fn run(mut cmd: Command, name: &str) -> Value {
    let started = std::time::Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run sealer-pod {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("sealer-pod {name} printed no result: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(doc["ok"], true, "sealer-pod {name} failed: {doc}");
    eprintln!("sealer-pod {name}: {:.1?}", started.elapsed());
    doc["result"].clone()
}

struct Node {
    _sim: RunningSim,
    client: LotusClient,
    control: SimControl,
}

async fn node() -> Node {
    // The miner holds enough to lock the deposit and pledge, so the messages carry no value.
    let config = SimConfig { epoch_duration_ms: 0, miner_balance: 1_000_000_000_000_000_000, ..SimConfig::default() };
    let sim = RunningSim::start(config, Arc::new(FilecoinProofs), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = LotusClient::new(ClientConfig::new(sim.url(), None)).unwrap();
    let control = SimControl::new(sim.url(), None);
    Node { _sim: sim, client, control }
}

fn miner() -> ChainAddress {
    "t01000".parse().unwrap()
}

fn worker() -> ChainAddress {
    "t01002".parse().unwrap()
}

impl Node {
    async fn head(&self) -> ChainEpoch {
        self.client.chain_head().await.unwrap().height
    }

    async fn push<P: serde::Serialize>(&self, method: MinerMethod, params: &P, step: &str) -> SignedMessage {
        let msg = miner_message(miner(), worker(), method, params, TokenAmount::from_atto(0)).unwrap();
        let spec = MessageSendSpec::new(msg_uuid("sector-1", step, 0), TokenAmount::from_atto(0));
        self.client.mpool_push_message(&msg, Some(&spec)).await.unwrap()
    }

    async fn land(&self, signed: &SignedMessage) -> (ExitCode, Vec<u8>, ChainEpoch) {
        for _ in 0..20 {
            let found = self.client.state_search_msg(&TipSetKey::head(), &signed.cid, LOOKBACK_NO_LIMIT, false).await.unwrap();
            if let Some(l) = found {
                return (l.receipt.exit_code, l.receipt.r#return, l.height);
            }
            self.control.advance_epochs(1).await.unwrap();
        }
        panic!("message {} did not land", signed.cid);
    }

    async fn advance_to(&self, epoch: ChainEpoch) {
        let head = self.head().await;
        if epoch > head {
            self.control.advance_epochs((epoch - head) as u64).await.unwrap();
        }
    }

    async fn pre_commit_epoch(&self) -> ChainEpoch {
        let pc = self.client.state_sector_precommit_info(&miner(), SECTOR, &TipSetKey::head()).await.unwrap();
        pc.expect("the sector is precommitted").pre_commit_epoch
    }

    async fn beacon(&self, dst: DomainSeparationTag, epoch: ChainEpoch, entropy: &[u8]) -> [u8; 32] {
        self.client.state_get_randomness_from_beacon(dst, epoch, entropy, &TipSetKey::head()).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sealed_sector_is_proven_active_and_wrong_seed_is_rejected() {
    let bin = sealer_pod();
    require_parameters();
    let policy = SimConfig::default().policy;
    let entropy = miner_entropy(&Address::new_id(1000));
    let chain = node().await;
    // A second chain with the same history whose precommit lands one epoch later, so its seed
    // differs: the proof made for the first chain's seed is a proof for the wrong seed there.
    let other = node().await;

    // Ticket, then PC1/PC2 with it.
    let head = chain.head().await;
    let ticket_epoch = policy.ticket_epoch(head);
    let ticket = chain
        .client
        .state_get_randomness_from_tickets(DomainSeparationTag::SealRandomness, ticket_epoch, &entropy, &TipSetKey::head())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sector_dir = dir.path();
    step(&bin, sector_dir, "add-piece", &[]);
    step(&bin, sector_dir, "tree-d", &[]);
    step(&bin, sector_dir, "pc1", &["--ticket", &hex::encode(ticket)]);
    let pc2 = step(&bin, sector_dir, "pc2", &[]);
    let comm_r = pc2["comm_r"].as_str().expect("pc2 reports comm_r").to_owned();

    let info = SectorPreCommitInfo {
        seal_proof: RegisteredSealProof::StackedDRG2KiBV1P1,
        sector_number: SECTOR,
        sealed_cid: comm_r.parse().expect("comm_r is a CID"),
        seal_rand_epoch: ticket_epoch,
        deal_ids: vec![],
        expiration: policy.expiration_bounds(head + 10, RegisteredSealProof::StackedDRG2KiBV1P1).unwrap().0 + 100,
        unsealed_cid: CompactCommD(None),
    };
    let precommit = PreCommitSectorBatchParams2 { sectors: vec![info] };
    let (code, _, _) = chain.land(&chain.push(MinerMethod::PreCommitSectorBatch2, &precommit, "precommit").await).await;
    assert_eq!(code, ExitCode::OK);
    other.control.advance_epochs(1).await.unwrap();
    let (code, _, _) = other.land(&other.push(MinerMethod::PreCommitSectorBatch2, &precommit, "precommit").await).await;
    assert_eq!(code, ExitCode::OK);
    // The seed follows the precommit epoch, the epoch of the tipset that included the message,
    // one before the lookup's height (lotus chain/stmgr/searchwait.go:332-346).
    let pc_epoch = chain.pre_commit_epoch().await;
    let other_pc_epoch = other.pre_commit_epoch().await;
    assert_ne!(pc_epoch, other_pc_epoch);

    // Seed after the challenge delay plus confidence; then C1/C2.
    chain.advance_to(policy.seed_ready_at(pc_epoch)).await;
    let seed = chain.beacon(DomainSeparationTag::InteractiveSealChallengeSeed, policy.seed_epoch(pc_epoch), &entropy).await;
    step(&bin, sector_dir, "c1", &["--ticket", &hex::encode(ticket), "--seed", &hex::encode(seed)]);
    let c2 = step(&bin, sector_dir, "c2", &[]);
    let proof = base64_decode(c2["proof"].as_str().expect("c2 reports the proof"));
    assert_eq!(proof.len(), 192);

    // The chain whose seed differs refuses it: invalid proof, a permanent error for the sector.
    other.advance_to(policy.seed_ready_at(other_pc_epoch)).await;
    let commit = prove_commit_per_sector(vec![(SECTOR, proof.clone())], true).unwrap();
    let (code, _, _) = other.land(&other.push(MinerMethod::ProveCommitSectors3, &commit, "commit").await).await;
    assert_eq!(code, ExitCode::USR_ILLEGAL_ARGUMENT);
    assert_eq!(classify(MinerMethod::ProveCommitSectors3, code), Some(ErrorLevel::Permanent));
    assert!(other.client.state_sector_get_info(&miner(), SECTOR, &TipSetKey::head()).await.unwrap().is_none());

    // The right chain verifies it and activates the sector.
    let (code, ret, _) = chain.land(&chain.push(MinerMethod::ProveCommitSectors3, &commit, "commit").await).await;
    assert_eq!(code, ExitCode::OK);
    assert_eq!(filecoin_chain::params::decode::<BatchReturn>(&ret).unwrap(), BatchReturn::all_ok(1));
    let on_chain = chain.client.state_sector_get_info(&miner(), SECTOR, &TipSetKey::head()).await.unwrap().unwrap();
    assert_eq!(on_chain.sealed_cid.to_string(), comm_r);
    assert!(chain.client.state_sector_precommit_info(&miner(), SECTOR, &TipSetKey::head()).await.unwrap().is_none());

    // Find its deadline and partition, wait for the deadline to open, prove it.
    let mut location = None;
    for d in 0..policy.window_post.period_deadlines {
        for (p, part) in chain.client.state_miner_partitions(&miner(), d, &TipSetKey::head()).await.unwrap().iter().enumerate() {
            if part.all_sectors.get(SECTOR) {
                location = Some((d, p as u64));
            }
        }
    }
    let (deadline, partition) = location.expect("the active sector is in a partition");
    let di = open_deadline(&chain, deadline).await;
    let randomness = chain.beacon(DomainSeparationTag::WindowedPoStChallengeSeed, di.challenge, &entropy).await;
    let commit_rand = chain
        .client
        .state_get_randomness_from_tickets(DomainSeparationTag::PoStChainCommit, di.challenge, &[], &TipSetKey::head())
        .await
        .unwrap();
    let sealed = sector_dir.join("sealed");
    let cache = sector_dir.join("cache");
    let mut cmd = Command::new(&bin);
    cmd.args(["window-post", "--miner", "t01000", "--sector-size", "2KiB", "--randomness", &hex::encode(randomness)]);
    cmd.args(["--sector", &format!("{SECTOR},{comm_r},{},{}", sealed.display(), cache.display())]);
    cmd.args(["--result-path", sector_dir.join("window-post.result").to_str().unwrap()]);
    let post = run(cmd, "window-post");
    let post_proof = base64_decode(post["proof"].as_str().expect("window-post reports a proof"));

    let submit = SubmitWindowedPoStParams {
        deadline,
        partitions: vec![PoStPartition { index: partition, skipped: BitField::new() }],
        proofs: vec![PoStProof { post_proof: RegisteredPoStProof::StackedDRGWindow2KiBV1P1, proof_bytes: post_proof }],
        chain_commit_epoch: di.challenge,
        chain_commit_rand: Randomness(commit_rand.to_vec()),
    };
    let (code, _, _) = chain.land(&chain.push(MinerMethod::SubmitWindowedPoSt, &submit, "wdpost").await).await;
    assert_eq!(code, ExitCode::OK);
    let active = chain.client.state_miner_active_sectors(&miner(), &TipSetKey::head()).await.unwrap();
    assert_eq!(active.iter().map(|s| s.sector_number).collect::<Vec<_>>(), vec![SECTOR]);
    assert!(chain.client.state_miner_faults(&miner(), &TipSetKey::head()).await.unwrap().is_empty());

    // The next instance of the deadline passes without a PoSt: the sector becomes faulty.
    chain.advance_to(di.close + di.wpost_proving_period).await;
    let faults = chain.client.state_miner_faults(&miner(), &TipSetKey::head()).await.unwrap();
    assert_eq!(faults.iter().collect::<Vec<_>>(), vec![SECTOR]);
    let counts = chain.control.message_counts().await.unwrap();
    assert_eq!((counts.by_method[&28], counts.by_method[&34], counts.by_method[&5]), (1, 1, 1));
}

async fn open_deadline(node: &Node, index: u64) -> DeadlineInfo {
    for _ in 0..400 {
        let di = node.client.state_miner_proving_deadline(&miner(), &TipSetKey::head()).await.unwrap();
        if di.index == index && di.is_open() {
            return di;
        }
        node.control.advance_epochs(1).await.unwrap();
    }
    panic!("deadline {index} never opened");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).expect("base64 proof")
}
