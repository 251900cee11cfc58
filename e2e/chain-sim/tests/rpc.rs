//! The simulator through the real client over HTTP: Lotus JSON shapes, randomness, MsgUuid
//! idempotency, precommit checks, injected failures and resubmission, ticket expiry, base-fee
//! spikes, replacement of a stuck message, null rounds, the miner's available balance, auth, and
//! the epoch clock. No proof is verified here (see slow_seal_prove_post.rs). Precommits pay the
//! deposit Lotus estimates, as the operator does, from a miner that starts with no balance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chain_sim::randomness::EpochRandomness;
use chain_sim::{FilecoinProofs, RunningSim, SimConfig, SimControl};
use filecoin_chain::client::{ClientConfig, ClientError, LOOKBACK_NO_LIMIT, LotusClient};
use filecoin_chain::deadline::DeadlineInfo;
use filecoin_chain::exit_code::{ErrorLevel, classify};
use filecoin_chain::fees::{FeeLimit, replacement};
use filecoin_chain::message::{Message, MessageSendSpec, SignedMessage};
use filecoin_chain::methods::{MinerMethod, miner_message};
use filecoin_chain::msg_uuid::msg_uuid;
use filecoin_chain::params::{CompactCommD, PreCommitSectorBatchParams2, SectorPreCommitInfo};
use filecoin_chain::policy::{TicketCheck, TicketExpiryAction};
use filecoin_chain::randomness::{DomainSeparationTag, draw_randomness, miner_entropy};
use filecoin_chain::tipset::TipSetKey;
use filecoin_chain::{ApiToken, ChainAddress, ChainEpoch};
use fvm_shared::address::Address;
use fvm_shared::commcid::replica_commitment_v1_to_cid;
use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;
use fvm_shared::sector::RegisteredSealProof;

const TOKEN: &str = "sim-test-token";

struct Harness {
    sim: RunningSim,
    client: LotusClient,
    control: SimControl,
    miner: ChainAddress,
    worker: ChainAddress,
}

async fn start(config: SimConfig) -> Harness {
    let config = SimConfig { api_token: Some(TOKEN.into()), ..config };
    let sim = RunningSim::start(config, Arc::new(FilecoinProofs), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = LotusClient::new(ClientConfig::new(sim.url(), Some(ApiToken::new(TOKEN)))).unwrap();
    let control = SimControl::new(sim.url(), Some(ApiToken::new(TOKEN)));
    let info = client.state_miner_info(&"t01000".parse().unwrap(), &TipSetKey::head()).await.unwrap();
    Harness { sim, client, control, miner: "t01000".parse().unwrap(), worker: info.worker }
}

fn manual_clock() -> SimConfig {
    SimConfig { epoch_duration_ms: 0, ..SimConfig::default() }
}

impl Harness {
    async fn head(&self) -> ChainEpoch {
        self.client.chain_head().await.unwrap().height
    }

    fn precommit_info(&self, n: u64, ticket_epoch: ChainEpoch, head: ChainEpoch) -> SectorPreCommitInfo {
        let policy = SimConfig::default().policy;
        SectorPreCommitInfo {
            seal_proof: RegisteredSealProof::StackedDRG2KiBV1P1,
            sector_number: n,
            sealed_cid: replica_commitment_v1_to_cid(&[n as u8; 32]).unwrap(),
            seal_rand_epoch: ticket_epoch,
            deal_ids: vec![],
            expiration: policy.expiration_bounds(head + 5, RegisteredSealProof::StackedDRG2KiBV1P1).unwrap().0 + 10,
            unsealed_cid: CompactCommD(None),
        }
    }

    /// `StateMinerPreCommitDepositForPower`: what the operator pays to precommit a sector.
    async fn deposit(&self, info: &SectorPreCommitInfo) -> TokenAmount {
        let query = filecoin_chain::miner::SectorPreCommitInfo::from(info);
        self.client.state_miner_pre_commit_deposit_for_power(&self.miner, &query, &TipSetKey::head()).await.unwrap()
    }

    /// `Filecoin.StateMinerAvailableBalance` as JSON-RPC, which the client does not wrap.
    async fn available_balance(&self, miner: &str) -> Result<String, String> {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "Filecoin.StateMinerAvailableBalance",
            "params": [miner, TipSetKey::head()],
        });
        let reply: serde_json::Value =
            reqwest::Client::new().post(self.sim.url()).bearer_auth(TOKEN).json(&body).send().await.unwrap().json().await.unwrap();
        match reply.get("error") {
            Some(e) => Err(e["message"].as_str().unwrap().to_owned()),
            None => Ok(reply["result"].as_str().unwrap().to_owned()),
        }
    }

    /// A one-sector precommit paying the estimated deposit.
    async fn push_precommit(&self, info: SectorPreCommitInfo, uid: &str, attempt: u32) -> SignedMessage {
        let deposit = self.deposit(&info).await;
        let params = PreCommitSectorBatchParams2 { sectors: vec![info] };
        let msg = miner_message(self.miner, self.worker, MinerMethod::PreCommitSectorBatch2, &params, deposit).unwrap();
        let spec = MessageSendSpec::new(msg_uuid(uid, "precommit", attempt), TokenAmount::from_atto(0));
        self.client.mpool_push_message(&msg, Some(&spec)).await.unwrap()
    }

    /// Advances one epoch at a time until the message (or its replacement) has a receipt.
    async fn land(&self, signed: &SignedMessage) -> ExitCode {
        for _ in 0..20 {
            if let Some(found) = self.client.state_search_msg(&TipSetKey::head(), &signed.cid, LOOKBACK_NO_LIMIT, true).await.unwrap() {
                return found.receipt.exit_code;
            }
            self.control.advance_epochs(1).await.unwrap();
        }
        panic!("message {} did not land in 20 epochs", signed.cid);
    }
}

#[tokio::test]
async fn lotus_shapes_randomness_and_deadlines() {
    let h = start(manual_clock()).await;
    let head = h.client.chain_head().await.unwrap();
    assert_eq!(head.height, 1000);
    assert_eq!(head.blocks[0].miner, h.miner);
    assert_eq!(h.client.chain_get_tipset_by_height(990, &head.cids).await.unwrap().height, 990);
    assert_eq!(h.client.state_network_version(&TipSetKey::head()).await.unwrap(), 28);
    assert_eq!(h.control.advance_epochs(3).await.unwrap(), 1003);
    assert_eq!(h.head().await, 1003);

    let info = h.client.state_miner_info(&h.miner, &TipSetKey::head()).await.unwrap();
    assert_eq!((info.worker.to_string(), info.owner.to_string()), ("t01002".into(), "t01001".into()));
    assert_eq!((info.sector_size, info.window_po_st_partition_sectors), (2048, 2));
    assert_eq!(info.window_po_st_proof_type, fvm_shared::sector::RegisteredPoStProof::StackedDRGWindow2KiBV1P1);

    // Randomness is the actors' draw over the per-epoch digests, and the head bounds it.
    let entropy = miner_entropy(&Address::new_id(1000));
    let rand = EpochRandomness::new(SimConfig::default().randomness_seed);
    let ticket = h.client.state_get_randomness_from_tickets(DomainSeparationTag::SealRandomness, 990, &entropy, &TipSetKey::head()).await.unwrap();
    assert_eq!(ticket, draw_randomness(&rand.ticket_digest(990), DomainSeparationTag::SealRandomness, 990, &entropy));
    let seed = h.client.state_get_randomness_from_beacon(DomainSeparationTag::InteractiveSealChallengeSeed, 1003, &entropy, &TipSetKey::head()).await.unwrap();
    assert_eq!(seed, draw_randomness(&rand.beacon_digest(1003), DomainSeparationTag::InteractiveSealChallengeSeed, 1003, &entropy));
    let old_tsk = h.client.chain_get_tipset_by_height(995, &TipSetKey::head()).await.unwrap().cids;
    let future = h.client.state_get_randomness_from_beacon(DomainSeparationTag::InteractiveSealChallengeSeed, 1000, &entropy, &old_tsk).await;
    let err = future.unwrap_err().to_string();
    assert!(err.contains("cannot draw randomness from the future"), "{err}");

    let dl = h.client.state_miner_proving_deadline(&h.miner, &TipSetKey::head()).await.unwrap();
    assert_eq!(dl, DeadlineInfo::current(0, 1003, &SimConfig::default().policy.window_post));
    assert_eq!((dl.wpost_period_deadlines, dl.wpost_challenge_window), (48, 4));
    assert_eq!(h.client.state_miner_deadlines(&h.miner, &TipSetKey::head()).await.unwrap().len(), 48);
    assert!(h.client.state_miner_faults(&h.miner, &TipSetKey::head()).await.unwrap().is_empty());
    let deposit = h.client.state_miner_pre_commit_deposit_for_power(&h.miner, &filecoin_chain::miner::SectorPreCommitInfo {
        seal_proof: RegisteredSealProof::StackedDRG2KiBV1P1,
        sector_number: 1,
        sealed_cid: replica_commitment_v1_to_cid(&[1; 32]).unwrap(),
        seal_rand_epoch: 990,
        deal_ids: vec![],
        expiration: 600_000,
        unsealed_cid: None,
    }, &TipSetKey::head()).await.unwrap();
    assert_eq!(deposit, TokenAmount::from_atto(1_100_000_000u64));

    let unknown = h.client.state_miner_info(&"t09999".parse().unwrap(), &TipSetKey::head()).await.unwrap_err();
    assert!(unknown.to_string().contains("actor t09999 not found"), "{unknown}");
    drop(h.sim);
}

#[tokio::test]
async fn msg_uuid_pushed_twice_yields_one_message_and_precommit_lands() {
    let h = start(manual_clock()).await;
    let head = h.head().await;
    let info = h.precommit_info(7, head - 10, head);
    let first = h.push_precommit(info.clone(), "sector-7-uid", 0).await;
    let second = h.push_precommit(info.clone(), "sector-7-uid", 0).await;
    assert_eq!(first.cid, second.cid);
    let counts = h.control.message_counts().await.unwrap();
    assert_eq!(counts.by_method.get(&28), Some(&1));
    assert_eq!(counts.by_sector[&7][&28], 1);

    assert!(h.client.state_sector_precommit_info(&h.miner, 7, &TipSetKey::head()).await.unwrap().is_none());
    assert_eq!(h.land(&first).await, ExitCode::OK);
    // StateWaitMsg blocks until two more epochs exist on top of the message.
    let client = h.client.clone();
    let cid = first.cid;
    let waiter = tokio::spawn(async move { client.state_wait_msg(&cid, 2, LOOKBACK_NO_LIMIT, false).await });
    h.control.advance_epochs(2).await.unwrap();
    let lookup = waiter.await.unwrap().unwrap();
    assert_eq!(lookup.receipt.exit_code, ExitCode::OK);
    assert!(h.head().await >= lookup.height + 2);

    // The message executed at the epoch of the tipset that included it; the lookup reports the
    // next tipset, whose receipts hold it (lotus chain/consensus/compute_state.go:205, :389;
    // chain/stmgr/searchwait.go:332-346; node/impl/full/state.go:643-649).
    let pc = h.client.state_sector_precommit_info(&h.miner, 7, &TipSetKey::head()).await.unwrap().unwrap();
    assert_eq!((pc.pre_commit_epoch, pc.info.sealed_cid), (lookup.height - 1, info.sealed_cid));
    assert!(h.client.state_miner_sector_allocated(&h.miner, 7, &TipSetKey::head()).await.unwrap());

    // The seed epoch is precommit epoch + 10 (2k devnet); it cannot be drawn before the chain gets there.
    let seed_epoch = SimConfig::default().policy.seed_epoch(pc.pre_commit_epoch);
    let entropy = miner_entropy(&Address::new_id(1000));
    let early = h.client.state_get_randomness_from_beacon(DomainSeparationTag::InteractiveSealChallengeSeed, seed_epoch, &entropy, &TipSetKey::head()).await;
    assert!(early.is_err());
    h.control.advance_epochs((seed_epoch - h.head().await) as u64).await.unwrap();
    assert!(h.client.state_get_randomness_from_beacon(DomainSeparationTag::InteractiveSealChallengeSeed, seed_epoch, &entropy, &TipSetKey::head()).await.is_ok());
}

#[tokio::test]
async fn injected_failure_is_classified_and_resubmitted() {
    let h = start(manual_clock()).await;
    h.control.fail_next(28, ExitCode::SYS_OUT_OF_GAS.value(), 1).await.unwrap();
    let head = h.head().await;
    let info = h.precommit_info(8, head - 10, head);
    let attempt0 = h.push_precommit(info.clone(), "sector-8-uid", 0).await;
    let code = h.land(&attempt0).await;
    assert_eq!(code, ExitCode::SYS_OUT_OF_GAS);
    assert_eq!(classify(MinerMethod::PreCommitSectorBatch2, code), Some(ErrorLevel::Temporary));
    assert!(h.client.state_sector_precommit_info(&h.miner, 8, &TipSetKey::head()).await.unwrap().is_none());

    // The bridge resubmits under the next attempt's MsgUuid: a new message, and it lands.
    let attempt1 = h.push_precommit(info, "sector-8-uid", 1).await;
    assert_ne!(attempt1.cid, attempt0.cid);
    assert_eq!(h.land(&attempt1).await, ExitCode::OK);
    assert!(h.client.state_sector_precommit_info(&h.miner, 8, &TipSetKey::head()).await.unwrap().is_some());
    assert_eq!(h.control.message_counts().await.unwrap().by_sector[&8][&28], 2);
}

#[tokio::test]
async fn expired_ticket_is_refused_and_reticketing_recovers() {
    let policy = SimConfig::default().policy;
    let h = start(manual_clock()).await;
    let head = h.head().await;
    // A ticket older than the randomness lookback.
    let stale = head - policy.max_pre_commit_randomness_lookback - 1;
    assert_eq!(policy.check_ticket(stale, head, 2, TicketExpiryAction::Abort), TicketCheck::Abort { expired_after: stale + policy.max_pre_commit_randomness_lookback });
    let TicketCheck::Reticket { new_ticket_epoch } = policy.check_ticket(stale, head, 2, TicketExpiryAction::Reticket) else {
        panic!("expected re-ticketing");
    };

    // Sent anyway, the chain refuses it, and the refusal means the sector must be sealed again.
    let refused = h.push_precommit(h.precommit_info(9, stale, head), "sector-9-uid", 0).await;
    let code = h.land(&refused).await;
    assert_eq!(code, ExitCode::USR_ILLEGAL_ARGUMENT);
    assert_eq!(classify(MinerMethod::PreCommitSectorBatch2, code), Some(ErrorLevel::Abort));
    assert!(!h.client.state_miner_sector_allocated(&h.miner, 9, &TipSetKey::head()).await.unwrap());

    let head = h.head().await;
    let fresh = h.push_precommit(h.precommit_info(9, new_ticket_epoch, head), "sector-9-uid", 1).await;
    assert_eq!(h.land(&fresh).await, ExitCode::OK);
}

#[tokio::test]
async fn a_base_fee_spike_holds_messages_until_it_passes() {
    let h = start(manual_clock()).await;
    let head = h.head().await;
    let signed = h.push_precommit(h.precommit_info(10, head - 10, head), "sector-10-uid", 0).await;
    h.control.set_base_fee(&(signed.message.gas_fee_cap.clone() * 10u64)).await.unwrap();
    h.control.advance_epochs(5).await.unwrap();
    assert!(h.client.state_search_msg(&TipSetKey::head(), &signed.cid, LOOKBACK_NO_LIMIT, false).await.unwrap().is_none());
    let tip = h.client.chain_head().await.unwrap();
    assert!(tip.parent_base_fee().unwrap() > &signed.message.gas_fee_cap);
    h.control.set_base_fee(&TokenAmount::from_atto(100)).await.unwrap();
    assert_eq!(h.land(&signed).await, ExitCode::OK);
}

#[tokio::test]
async fn a_dropped_message_holds_back_the_senders_next_nonce_until_replaced() {
    let h = start(manual_clock()).await;
    let head = h.head().await;
    h.control.drop_next(28, 1).await.unwrap();
    let dropped = h.push_precommit(h.precommit_info(11, head - 10, head), "sector-11-uid", 0).await;
    let next = h.push_precommit(h.precommit_info(12, head - 10, head), "sector-12-uid", 0).await;
    assert_eq!((dropped.message.nonce, next.message.nonce), (0, 1));
    h.control.advance_epochs(10).await.unwrap();
    // A block takes a sender's messages from its nonce on, in order: behind the gap nothing goes
    // (lotus chain/messagepool/selection.go:804-817).
    for m in [&dropped, &next] {
        assert!(h.client.state_search_msg(&TipSetKey::head(), &m.cid, LOOKBACK_NO_LIMIT, true).await.unwrap().is_none());
    }
    // Replaced as `lotus mpool replace --auto` does (cli/mpool.go:463-518), both land.
    let stuck = h.client.chain_get_message(&dropped.cid).await.unwrap();
    let unpriced = Message { gas_fee_cap: TokenAmount::from_atto(0), gas_premium: TokenAmount::from_atto(0), cid: None, ..stuck.clone() };
    let estimate = h.client.gas_estimate_message_gas(&unpriced, None, &TipSetKey::head()).await.unwrap();
    let limit = FeeLimit { max_fee: TokenAmount::from_atto(0), maximize_fee_cap: false };
    let msg = replacement(&stuck, &estimate, &limit).unwrap();
    let signed = h.client.wallet_sign_message(&msg.from, &msg).await.unwrap();
    h.client.mpool_push(&signed).await.unwrap();
    assert_eq!(h.land(&next).await, ExitCode::OK);
    assert_eq!(h.land(&dropped).await, ExitCode::OK);
}

#[tokio::test]
async fn a_delayed_message_lands_later() {
    let h = start(manual_clock()).await;
    h.control.delay_next(28, 4, 1).await.unwrap();
    let head = h.head().await;
    let delayed = h.push_precommit(h.precommit_info(12, head - 10, head), "sector-12-uid", 0).await;
    assert_eq!(h.land(&delayed).await, ExitCode::OK);
    // Included 1 + 4 epochs after the push, found in the tipset after that.
    let found = h.client.state_search_msg(&TipSetKey::head(), &delayed.cid, LOOKBACK_NO_LIMIT, false).await.unwrap().unwrap();
    assert_eq!(found.height, head + 1 + 4 + 1);
}

#[tokio::test]
async fn requests_without_the_token_are_refused() {
    let h = start(manual_clock()).await;
    let anonymous = LotusClient::new(ClientConfig::new(h.sim.url(), None)).unwrap();
    let err = anonymous.chain_head().await.unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized { status: 401, .. }), "{err}");
    let wrong = LotusClient::new(ClientConfig::new(h.sim.url(), Some(ApiToken::new("nope")))).unwrap();
    assert!(matches!(wrong.chain_head().await, Err(ClientError::Unauthorized { .. })));
}

#[tokio::test]
async fn epochs_advance_on_the_clock() {
    let h = start(SimConfig { epoch_duration_ms: 50, ..SimConfig::default() }).await;
    let start_height = h.head().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = h.head().await;
        if now >= start_height + 5 {
            break;
        }
        assert!(Instant::now() < deadline, "head stuck at {now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn aggregate_prove_commit_goes_through_the_aggregate_verifier() {
    // Without the SnarkPack SRS (v28-fil-inner-product-v1.srs, which cannot be made locally) the
    // verifier cannot accept any aggregate; a bogus one must be refused with 16 either way.
    let h = start(manual_clock()).await;
    let head = h.head().await;
    let infos: Vec<_> = (20..24).map(|n| h.precommit_info(n, head - 10, head)).collect();
    let deposits = h.deposit(&infos[0]).await * 4u64;
    let params = PreCommitSectorBatchParams2 { sectors: infos };
    let msg = miner_message(h.miner, h.worker, MinerMethod::PreCommitSectorBatch2, &params, deposits).unwrap();
    let signed = h.client.mpool_push_message(&msg, None).await.unwrap();
    assert_eq!(h.land(&signed).await, ExitCode::OK);
    let pc = h.client.state_sector_precommit_info(&h.miner, 20, &TipSetKey::head()).await.unwrap().unwrap();
    h.control.advance_epochs(SimConfig::default().policy.pre_commit_challenge_delay as u64 + 1).await.unwrap();
    assert!(h.head().await > SimConfig::default().policy.seed_epoch(pc.pre_commit_epoch));

    let commit = filecoin_chain::methods::prove_commit_aggregate(
        (20..24).map(|n| filecoin_chain::params::SectorActivationManifest { sector_number: n, pieces: vec![] }).collect(),
        vec![0x5a; 1024],
        true,
    ).unwrap();
    let msg = miner_message(h.miner, h.worker, MinerMethod::ProveCommitSectors3, &commit, TokenAmount::from_atto(0)).unwrap();
    let signed = h.client.mpool_push_message(&msg, None).await.unwrap();
    assert_eq!(h.land(&signed).await, ExitCode::USR_ILLEGAL_ARGUMENT);
    assert!(h.client.state_sector_get_info(&h.miner, 20, &TipSetKey::head()).await.unwrap().is_none());
    let counts = h.control.message_counts().await.unwrap();
    assert_eq!(counts.by_sector[&23][&34], 1);
    assert_eq!(counts.aggregated[&23], 1, "the message is counted as an aggregate");
}

#[tokio::test]
async fn sim_config_never_returns_the_token() {
    let h = start(manual_clock()).await;
    let config = h.control.config().await.unwrap();
    assert_eq!(config.api_token, None);
    assert_eq!(config.policy.pre_commit_challenge_delay, 10);
}

#[tokio::test]
async fn a_stuck_message_is_replaced_as_lotus_mpool_replace_does() {
    let h = start(manual_clock()).await;
    let head = h.head().await;
    // The base fee jumps as soon as the precommit is in the pool, above its fee cap.
    let spike = TokenAmount::from_atto(SimConfig::default().base_fee * 1000);
    h.control.raise_base_fee_after_next(28, Some(30), None, &spike).await.unwrap();
    let stuck = h.push_precommit(h.precommit_info(30, head - 10, head), "sector-30-uid", 0).await;
    assert_eq!(h.client.chain_head().await.unwrap().parent_base_fee(), Some(&spike));
    assert!(stuck.message.gas_fee_cap < spike);
    // MpoolPushMessage signs from the worker's key address (lotus node/impl/full/mpool.go:201-204).
    assert!(stuck.message.from.to_string().starts_with("t3"), "{}", stuck.message.from);
    h.control.advance_epochs(3).await.unwrap();
    assert!(h.client.state_search_msg(&TipSetKey::head(), &stuck.cid, LOOKBACK_NO_LIMIT, true).await.unwrap().is_none());

    // ChainGetMessage gives the pending message back (lotus node/impl/full/chain.go:653-660).
    let original = h.client.chain_get_message(&stuck.cid).await.unwrap();
    assert_eq!((original.nonce, original.gas_premium.clone()), (stuck.message.nonce, stuck.message.gas_premium.clone()));

    // A premium under ComputeMinRBF (premium × 110% + 1, chain/messagepool/messagepool.go:210-213)
    // is refused with msgSet.add's text (messagepool.go:280-294).
    let min = filecoin_chain::fees::rbf_premium(&original.gas_premium, 110);
    let cheap = Message { gas_premium: min.clone() - TokenAmount::from_atto(1), gas_fee_cap: spike.clone() * 2u64, cid: None, ..original.clone() };
    let signed = h.client.wallet_sign_message(&cheap.from, &cheap).await.unwrap();
    let err = h.client.mpool_push(&signed).await.unwrap_err().to_string();
    assert!(err.contains(&format!("already in mpool, increase GasPremium to {} from {} to trigger replace by fee: replace by fee has too low GasPremium", min.atto(), (min.clone() - TokenAmount::from_atto(1)).atto())), "{err}");
    // WalletSignMessage signs for the owner and worker only (lotus chain/wallet/multi.go:123).
    let err = h.client.wallet_sign_message(&"t01999".parse().unwrap(), &cheap).await.unwrap_err().to_string();
    assert!(err.contains("failed to sign message: key not found for t01999"), "{err}");

    // The replacement `lotus mpool replace --auto` makes (cli/mpool.go:469-497): a fresh
    // estimate, the premium raised to 125%, within the 0.07 FIL default max fee.
    let unpriced = Message { gas_fee_cap: TokenAmount::from_atto(0), gas_premium: TokenAmount::from_atto(0), cid: None, ..original.clone() };
    let estimate = h.client.gas_estimate_message_gas(&unpriced, None, &TipSetKey::head()).await.unwrap();
    let limit = FeeLimit { max_fee: TokenAmount::from_atto(0), maximize_fee_cap: false };
    let msg = replacement(&original, &estimate, &limit).unwrap();
    assert!(msg.gas_fee_cap >= spike, "the estimate covers the new base fee");
    let signed = h.client.wallet_sign_message(&msg.from, &msg).await.unwrap();
    let new_cid = h.client.mpool_push(&signed).await.unwrap();
    assert_eq!(new_cid, signed.cid);
    assert_eq!(h.land(&signed).await, ExitCode::OK);

    // The original never executed: allowReplaced finds the replacement (chain/stmgr/
    // searchwait.go:362-377), without it StateSearchMsg says null (node/impl/full/state.go:659-662)
    // and StateWaitMsg fails (searchwait.go:363-368).
    let found = h.client.state_search_msg(&TipSetKey::head(), &stuck.cid, LOOKBACK_NO_LIMIT, true).await.unwrap().unwrap();
    assert_eq!(found.message, new_cid);
    assert!(h.client.state_search_msg(&TipSetKey::head(), &stuck.cid, LOOKBACK_NO_LIMIT, false).await.unwrap().is_none());
    let waited = h.client.state_wait_msg(&stuck.cid, 0, LOOKBACK_NO_LIMIT, true).await.unwrap();
    assert_eq!(waited.message, new_cid);
    let err = h.client.state_wait_msg(&stuck.cid, 0, LOOKBACK_NO_LIMIT, false).await.unwrap_err().to_string();
    assert!(err.contains("message was replaced: found message with equal nonce as the one we are looking for"), "{err}");
    let pc = h.client.state_sector_precommit_info(&h.miner, 30, &TipSetKey::head()).await.unwrap().unwrap();
    assert_eq!(pc.pre_commit_epoch, found.height - 1);

    // A nonce already executed is refused (messagepool.go:885-887).
    let again = Message { gas_premium: msg.gas_premium.clone() * 2u64, gas_fee_cap: msg.gas_fee_cap.clone() * 2u64, cid: None, ..msg };
    let signed = h.client.wallet_sign_message(&again.from, &again).await.unwrap();
    let err = h.client.mpool_push(&signed).await.unwrap_err().to_string();
    assert!(err.contains("minimum expected nonce is 1, got 0: message nonce too low"), "{err}");

    // One message for sector 30, replaced once.
    let counts = h.control.message_counts().await.unwrap();
    assert_eq!((counts.by_method[&28], counts.by_sector[&30][&28], counts.replaced[&28]), (1, 1, 1));
}

#[tokio::test]
async fn null_rounds_keep_the_head_and_lookups_skip_to_the_next_tipset() {
    let h = start(manual_clock()).await;
    let head = h.head().await;
    let signed = h.push_precommit(h.precommit_info(40, head - 10, head), "sector-40-uid", 0).await;
    h.control.null_rounds(3).await.unwrap();
    // Three epochs pass without a tipset: ChainHead stays.
    assert_eq!(h.control.advance_epochs(3).await.unwrap(), head);
    assert_eq!(h.head().await, head);
    assert_eq!(h.control.advance_epochs(1).await.unwrap(), head + 4);

    // A null height answers with the tipset before it (lotus node/impl/full/chain.go:242-248,
    // chain/store/store.go:1293-1297).
    let by_height = h.client.chain_get_tipset_by_height(head + 2, &TipSetKey::head()).await.unwrap();
    assert_eq!(by_height.height, head);
    // Ticket randomness of a null round is the next tipset's (chain/rand/rand.go:182-190, :95-100;
    // chain/store/index.go:192-195).
    let entropy = miner_entropy(&Address::new_id(1000));
    let rand = EpochRandomness::new(SimConfig::default().randomness_seed);
    let drawn = h.client.state_get_randomness_from_tickets(DomainSeparationTag::SealRandomness, head + 2, &entropy, &TipSetKey::head()).await.unwrap();
    assert_eq!(drawn, draw_randomness(&rand.ticket_digest(head + 4), DomainSeparationTag::SealRandomness, head + 2, &entropy));

    // No message in a null round: the precommit was included at head + 4 and is found in the
    // tipset after it.
    assert_eq!(h.land(&signed).await, ExitCode::OK);
    let found = h.client.state_search_msg(&TipSetKey::head(), &signed.cid, LOOKBACK_NO_LIMIT, false).await.unwrap().unwrap();
    assert_eq!(found.height, head + 5);
    let pc = h.client.state_sector_precommit_info(&h.miner, 40, &TipSetKey::head()).await.unwrap().unwrap();
    assert_eq!(pc.pre_commit_epoch, head + 4);
}

#[tokio::test]
async fn oversized_messages_are_refused_with_lotus_text() {
    let h = start(manual_clock()).await;
    let head = h.head().await;
    // 1200 precommits make a message over 64 KiB (lotus chain/messagepool/messagepool.go:67,
    // :737-740, through MpoolPushMessage's push, node/impl/full/mpool.go:217-219).
    let info = h.precommit_info(50, head - 10, head);
    let params = PreCommitSectorBatchParams2 { sectors: vec![info; 1200] };
    let msg = miner_message(h.miner, h.worker, MinerMethod::PreCommitSectorBatch2, &params, TokenAmount::from_atto(0)).unwrap();
    let err = h.client.mpool_push_message(&msg, None).await.unwrap_err().to_string();
    assert!(err.contains("mpool push: failed to push message: mpool message too large ("), "{err}");
    assert!(err.contains("B): message too big"), "{err}");
    assert!(h.control.message_counts().await.unwrap().by_method.is_empty());
}

#[tokio::test]
async fn expired_precommits_are_gone_and_their_prove_commit_fails_whole() {
    let h = start(manual_clock()).await;
    let head = h.head().await;
    let signed = h.push_precommit(h.precommit_info(60, head - 10, head), "sector-60-uid", 0).await;
    assert_eq!(h.land(&signed).await, ExitCode::OK);
    // The estimate paid is ×110/100 of the deposit locked; the rest is available.
    assert_eq!(h.available_balance("t01000").await.unwrap(), "100000000");
    h.control.expire_precommits(&[60]).await.unwrap();
    // The deposit is burnt (builtin-actors actors/miner/src/state.rs:1055-1063, lib.rs:4251-4262,
    // :4318-4326, :4352): it leaves the balance rather than becoming available.
    assert_eq!(h.available_balance("t01000").await.unwrap(), "100000000");
    assert!(h.client.state_sector_precommit_info(&h.miner, 60, &TipSetKey::head()).await.unwrap().is_none());
    assert!(h.client.state_miner_sector_allocated(&h.miner, 60, &TipSetKey::head()).await.unwrap());
    let err = h.control.expire_precommits(&[61]).await.unwrap_err().to_string();
    assert!(err.contains("sector 61 has no precommit to expire"), "{err}");
    // builtin-actors actors/miner/src/state.rs:1178-1181 via lib.rs:1492-1495: not found, 17.
    let commit = filecoin_chain::methods::prove_commit_per_sector(vec![(60, vec![1; 192])], false).unwrap();
    let msg = miner_message(h.miner, h.worker, MinerMethod::ProveCommitSectors3, &commit, TokenAmount::from_atto(0)).unwrap();
    let signed = h.client.mpool_push_message(&msg, None).await.unwrap();
    assert_eq!(h.land(&signed).await, ExitCode::USR_NOT_FOUND);
}

#[tokio::test]
async fn the_available_balance_is_the_balance_less_what_is_locked() {
    // StateMinerAvailableBalance [miner, tsk] (lotus api/api_full.go:478-483): the actor's
    // available balance, `get_available_balance` (builtin-actors actors/miner/src/state.rs:954-971,
    // through lotus chain/actors/builtin/miner/v18.go:59-69), plus the funds vested by then
    // (node/impl/full/state.go:1670-1696), none here; an attoFIL decimal string.
    let h = start(SimConfig { miner_balance: 500, ..manual_clock() }).await;
    assert_eq!(h.available_balance("t01000").await.unwrap(), "500");
    let err = h.available_balance("t09999").await.unwrap_err();
    assert!(err.contains("actor t09999 not found"), "{err}");

    // A precommit paying less than its deposit, starting balance included, fails with 19
    // (builtin-actors actors/miner/src/lib.rs:1435-1437) and its value stays with the sender.
    let head = h.head().await;
    let info = h.precommit_info(70, head - 10, head);
    let deposit = TokenAmount::from_atto(SimConfig::default().pre_commit_deposit);
    let params = PreCommitSectorBatchParams2 { sectors: vec![info] };
    let short = miner_message(h.miner, h.worker, MinerMethod::PreCommitSectorBatch2, &params, deposit.clone() - TokenAmount::from_atto(501)).unwrap();
    let signed = h.client.mpool_push_message(&short, None).await.unwrap();
    assert_eq!(h.land(&signed).await, ExitCode::USR_INSUFFICIENT_FUNDS);
    assert_eq!(h.available_balance("t01000").await.unwrap(), "500");
    assert!(!h.client.state_miner_sector_allocated(&h.miner, 70, &TipSetKey::head()).await.unwrap());

    // The starting balance makes up the last 500: the whole deposit is locked, nothing is left.
    let exact = miner_message(h.miner, h.worker, MinerMethod::PreCommitSectorBatch2, &params, deposit.clone() - TokenAmount::from_atto(500)).unwrap();
    let signed = h.client.mpool_push_message(&exact, None).await.unwrap();
    assert_eq!(h.land(&signed).await, ExitCode::OK);
    assert_eq!(h.available_balance("t01000").await.unwrap(), "0");
    let pc = h.client.state_sector_precommit_info(&h.miner, 70, &TipSetKey::head()).await.unwrap().unwrap();
    assert_eq!(pc.pre_commit_deposit, deposit);
}
