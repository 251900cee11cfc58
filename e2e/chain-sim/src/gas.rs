//! Gas as the FVM charges it on network versions 25-28 (ref-fvm fvm/src/gas/price_list.rs,
//! `TEEP_PRICES` at :315, selected for those versions at :1088) where a price is defined for what
//! a miner message does (message inclusion, seal proof verification), plus modelled execution
//! costs for the actor work no price list gives; and Lotus' gas estimation on top of it.

use filecoin_chain::fees::{FeeLimit, cap_gas_fee};
use filecoin_chain::message::{Message, MessageError, MessageSendSpec};
use filecoin_chain::methods::MinerMethod;
use filecoin_chain::params::{
    self, DeclareFaultsParams, DeclareFaultsRecoveredParams, PreCommitSectorBatchParams2, ProveCommitSectors3Params,
    SubmitWindowedPoStParams,
};
use fvm_shared::econ::TokenAmount;

/// `BlockGasLimit` (lotus build/buildconstants/params_shared_vals.go:85).
pub const BLOCK_GAS_LIMIT: i64 = 10_000_000_000;
/// `GasLimitOverestimation` (lotus chain/messagepool/config.go:24).
pub const GAS_LIMIT_OVERESTIMATION: f64 = 1.25;
/// `BaseFeeMaxChangeDenom` (lotus build/buildconstants/params_shared_vals.go:89).
const BASE_FEE_MAX_CHANGE_DENOM: f64 = 8.0;
/// The blocks `GasEstimateMessageGas` asks the fee cap to cover (lotus node/impl/full/gas.go:138).
const FEE_CAP_QUEUE_BLOCKS: i32 = 20;

// `on_chain_message` (price_list.rs:623-628) with TEEP's values, inherited from WATERMELON_PRICES
// (price_list.rs:84-100, :395).
const ON_CHAIN_MESSAGE_COMPUTE: i64 = 38_863;
const ON_CHAIN_MESSAGE_STORAGE_FLAT: i64 = 36 * 1300;
const ON_CHAIN_MESSAGE_STORAGE_PER_BYTE: i64 = 1300;
const ACTOR_UPDATE: i64 = 475_000;
/// `send_invoke_method` (price_list.rs:97).
const SEND_INVOKE_METHOD: i64 = 75_000;
/// `send_transfer_funds` (price_list.rs:96, `on_value_transfer` :633-635): charged when a message
/// carries value (fvm/src/call_manager/default.rs:686-691).
pub const SEND_TRANSFER_FUNDS: i64 = 6_000;

/// `verify_seal_base` (price_list.rs:316), charged per sector of a batch verification
/// (fvm/src/kernel/filecoin.rs:170-180).
pub const VERIFY_SEAL: i64 = 42_000_000;
/// `verify_aggregate_seal_per` for 32 GiB (price_list.rs:317-321): the FVM takes the 32 GiB
/// entry for proof types without one, 2 KiB included (price_list.rs:768-788).
pub const VERIFY_AGGREGATE_SEAL_PER_PROOF: i64 = 449_900;
/// `verify_aggregate_seal_steps` for 32 GiB (price_list.rs:335-349): (first count, cost).
const VERIFY_AGGREGATE_SEAL_STEPS: [(u64, i64); 8] = [
    (4, 103_994_170),
    (7, 112_356_810),
    (13, 122_912_610),
    (26, 137_559_930),
    (52, 162_039_100),
    (103, 210_960_780),
    (205, 318_351_180),
    (410, 528_274_980),
];

// Modelled, not taken from a source: what the miner actor's own work (state loads and flushes,
// power and reward actor calls, HAMT and bitfield updates) costs beyond the priced syscalls
// above, sized so that a one-sector message uses tens of millions of gas as on mainnet.
/// Every miner method: invocation, miner state load and flush, power actor update.
pub const EXECUTION_BASE: i64 = 15_000_000;
/// PreCommitSectorBatch2, per sector: precommit map write, allocation bitfield, deposit.
pub const PRECOMMIT_PER_SECTOR: i64 = 6_000_000;
/// ProveCommitSectors3, per sector: activation, deadline assignment, pledge and power.
pub const ACTIVATION_PER_SECTOR: i64 = 10_000_000;
/// SubmitWindowedPoSt, per partition: partition load, post submission record.
pub const POST_PER_PARTITION: i64 = 10_000_000;
/// DeclareFaults / DeclareFaultsRecovered, per declaration (one deadline partition).
pub const DECLARATION: i64 = 5_000_000;

/// `on_chain_message(msg_size)`: compute plus the sender's actor update plus storage by size
/// (price_list.rs:623-628). Lotus passes the unsigned length for BLS-signed messages
/// (lotus chain/types/signedmessage.go:86-99, chain/vm/fvm.go:482).
pub fn on_chain_message(len: usize) -> i64 {
    ON_CHAIN_MESSAGE_COMPUTE + ACTOR_UPDATE + ON_CHAIN_MESSAGE_STORAGE_FLAT + ON_CHAIN_MESSAGE_STORAGE_PER_BYTE * len as i64
}

/// `on_verify_aggregate_seals` for `n` proofs (price_list.rs:763-796).
pub fn verify_aggregate_seals(n: u64) -> i64 {
    let step = VERIFY_AGGREGATE_SEAL_STEPS.iter().rev().find(|(start, _)| *start <= n).map_or(0, |(_, cost)| *cost);
    VERIFY_AGGREGATE_SEAL_PER_PROOF * n as i64 + step
}

/// The gas a message uses: its inclusion, the transfer of its value if any, and the execution of
/// its method. The same whatever the outcome: the model has no partial execution.
pub fn gas_used(msg: &Message) -> Result<i64, MessageError> {
    let transfer = if msg.value.is_zero() { 0 } else { SEND_TRANSFER_FUNDS };
    Ok(on_chain_message(msg.encoded_len()?) + transfer + execution(msg.method, &msg.params))
}

fn execution(method: u64, bytes: &[u8]) -> i64 {
    let base = SEND_INVOKE_METHOD + EXECUTION_BASE;
    let work = match MinerMethod::from_number(method) {
        Some(MinerMethod::PreCommitSectorBatch2) => params::decode::<PreCommitSectorBatchParams2>(bytes)
            .map_or(0, |p| PRECOMMIT_PER_SECTOR * p.sectors.len() as i64),
        Some(MinerMethod::ProveCommitSectors3) => params::decode::<ProveCommitSectors3Params>(bytes).map_or(0, |p| {
            let n = p.sector_activations.len();
            let proofs = if p.aggregate_proof.is_empty() {
                VERIFY_SEAL * p.sector_proofs.len() as i64
            } else {
                verify_aggregate_seals(n as u64)
            };
            proofs + ACTIVATION_PER_SECTOR * n as i64
        }),
        Some(MinerMethod::SubmitWindowedPoSt) => params::decode::<SubmitWindowedPoStParams>(bytes)
            .map_or(0, |p| POST_PER_PARTITION * p.partitions.len() as i64),
        Some(MinerMethod::DeclareFaults) => {
            params::decode::<DeclareFaultsParams>(bytes).map_or(0, |p| DECLARATION * p.faults.len() as i64)
        }
        Some(MinerMethod::DeclareFaultsRecovered) => params::decode::<DeclareFaultsRecoveredParams>(bytes)
            .map_or(0, |p| DECLARATION * p.recoveries.len() as i64),
        None => 0,
    };
    base + work
}

/// What the estimate starts from: the premium the node suggests and the head's base fee.
#[derive(Debug, Clone)]
pub struct GasDefaults {
    pub gas_premium: TokenAmount,
    pub base_fee: TokenAmount,
}

/// `GasEstimateFeeCap` (lotus node/impl/gasutils/gasutils.go:314-330): the base fee after 20
/// blocks of 12.5% increases, in 1/256ths, plus the premium.
pub fn estimate_fee_cap(base_fee: &TokenAmount, premium: &TokenAmount) -> TokenAmount {
    TokenAmount::from_atto(base_fee.atto() * fee_cap_increase_256() / 256u64) + premium
}

/// `uint64(increaseFactor * (1<<8))` of gasutils.go:321-323.
fn fee_cap_increase_256() -> u64 {
    ((1.0 + 1.0 / BASE_FEE_MAX_CHANGE_DENOM).powi(FEE_CAP_QUEUE_BLOCKS) * 256.0) as u64
}

/// `GasEstimateMessageGas` (lotus node/impl/full/gas.go:109-148): the gas used × 1.25 (capped at
/// the block gas limit) when no limit is set, the suggested premium and the estimated fee cap
/// when unset, then `CapGasFee` with the send spec's MaxFee (0: the node's 0.07 FIL) and
/// MaximizeFeeCap. The gas used is measured as `gasEstimateGasLimitInternal` runs the message:
/// with the block gas limit and zero fees (gasutils.go:257-260).
pub fn estimate(mut msg: Message, spec: Option<&MessageSendSpec>, defaults: &GasDefaults) -> Result<Message, MessageError> {
    let zero = TokenAmount::from_atto(0);
    if msg.gas_limit == 0 {
        let probe = Message {
            gas_limit: BLOCK_GAS_LIMIT,
            gas_fee_cap: zero.clone(),
            gas_premium: zero.clone(),
            cid: None,
            ..msg.clone()
        };
        let used = gas_used(&probe)?;
        msg.gas_limit = ((used as f64 * GAS_LIMIT_OVERESTIMATION) as i64).min(BLOCK_GAS_LIMIT);
    }
    if msg.gas_premium == zero {
        msg.gas_premium = defaults.gas_premium.clone();
    }
    if msg.gas_fee_cap == zero {
        msg.gas_fee_cap = estimate_fee_cap(&defaults.base_fee, &msg.gas_premium);
    }
    let limit = FeeLimit {
        max_fee: spec.map_or_else(|| zero.clone(), |s| s.max_fee.clone()),
        maximize_fee_cap: spec.is_some_and(|s| s.maximize_fee_cap),
    };
    cap_gas_fee(&mut msg, &limit);
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use filecoin_chain::address::ChainAddress;
    use filecoin_chain::fees::default_max_fee;
    use filecoin_chain::methods::{miner_message, prove_commit_aggregate, prove_commit_per_sector};
    use filecoin_chain::params::SectorActivationManifest;

    use super::*;

    fn addr(s: &str) -> ChainAddress {
        s.parse().unwrap()
    }

    fn defaults() -> GasDefaults {
        GasDefaults { gas_premium: TokenAmount::from_atto(1000), base_fee: TokenAmount::from_atto(100) }
    }

    #[test]
    fn inclusion_and_aggregate_costs_are_the_teep_price_list() {
        // ref-fvm fvm/src/gas/price_list.rs:623-628 with :84-100: 38863 compute, 475000 actor
        // update, 36×1300 flat storage and 1300 per byte.
        assert_eq!(on_chain_message(0), 38_863 + 475_000 + 46_800);
        assert_eq!(on_chain_message(100) - on_chain_message(0), 130_000);
        // price_list.rs:317-349 and :790-793: 449900 per proof plus the step at or below n.
        assert_eq!(verify_aggregate_seals(4), 4 * 449_900 + 103_994_170);
        assert_eq!(verify_aggregate_seals(6), 6 * 449_900 + 103_994_170);
        assert_eq!(verify_aggregate_seals(7), 7 * 449_900 + 112_356_810);
        assert_eq!(verify_aggregate_seals(819), 819 * 449_900 + 528_274_980);
    }

    #[test]
    fn a_message_carrying_value_pays_the_transfer() {
        // ref-fvm fvm/src/call_manager/default.rs:686-691 charges `on_value_transfer`
        // (price_list.rs:633-635), 6000 (:96), only for a non-zero value.
        let with = |atto: u64| miner_message(addr("t01000"), addr("t01002"), MinerMethod::DeclareFaults, &DeclareFaultsParams { faults: vec![] }, TokenAmount::from_atto(atto)).unwrap();
        let (free, paid) = (with(0), with(1_000_000_000));
        let storage = ON_CHAIN_MESSAGE_STORAGE_PER_BYTE * (paid.encoded_len().unwrap() - free.encoded_len().unwrap()) as i64;
        assert_eq!(gas_used(&paid).unwrap() - gas_used(&free).unwrap(), 6000 + storage);
    }

    #[test]
    fn the_fee_cap_covers_twenty_blocks_of_base_fee_increases() {
        // lotus node/impl/gasutils/gasutils.go:321-324: uint64(1.125^20 × 256) = 2699.
        assert_eq!(fee_cap_increase_256(), 2699);
        let cap = estimate_fee_cap(&TokenAmount::from_atto(100), &TokenAmount::from_atto(1000));
        assert_eq!(cap, TokenAmount::from_atto(100 * 2699 / 256 + 1000));
    }

    #[test]
    fn estimate_overestimates_the_gas_used_and_caps_the_fee_by_the_max_fee() {
        let msg = miner_message(addr("t01000"), addr("t01002"), MinerMethod::DeclareFaults, &DeclareFaultsParams { faults: vec![] }, TokenAmount::from_atto(0)).unwrap();
        let est = estimate(msg.clone(), None, &defaults()).unwrap();
        // lotus node/impl/full/gas.go:116-121 (× GasLimitOverestimation 1.25, chain/messagepool/
        // config.go:24), measured on the message with the block gas limit (gasutils.go:257-260).
        let probe = Message { gas_limit: BLOCK_GAS_LIMIT, ..msg.clone() };
        assert_eq!(est.gas_limit, (gas_used(&probe).unwrap() as f64 * 1.25) as i64);
        assert_eq!(est.gas_premium, TokenAmount::from_atto(1000));
        assert_eq!(est.gas_fee_cap, estimate_fee_cap(&TokenAmount::from_atto(100), &TokenAmount::from_atto(1000)));

        // gas.go:145 → CapGasFee (chain/messagepool/messagepool.go:221-244): MaxFee / GasLimit.
        let spec = MessageSendSpec::new(uuid::Uuid::nil(), TokenAmount::from_atto(est.gas_limit as u64 * 7));
        let capped = estimate(msg.clone(), Some(&spec), &defaults()).unwrap();
        assert_eq!((capped.gas_fee_cap.clone(), capped.gas_premium), (TokenAmount::from_atto(7), TokenAmount::from_atto(7)));
        // MaximizeFeeCap raises the cap to MaxFee / GasLimit; MaxFee 0 is the 0.07 FIL default
        // (lotus node/config/def.go:38-40).
        let maximized = estimate(msg.clone(), Some(&MessageSendSpec::new(uuid::Uuid::nil(), TokenAmount::from_atto(0)).maximizing_fee_cap(true)), &defaults()).unwrap();
        assert_eq!(maximized.gas_fee_cap, default_max_fee().div_floor(est.gas_limit as u64));
        // A set gas limit is kept (gas.go:116).
        let fixed = estimate(Message { gas_limit: 123_456_789, ..msg }, None, &defaults()).unwrap();
        assert_eq!(fixed.gas_limit, 123_456_789);
    }

    #[test]
    fn an_aggregate_of_four_or_more_is_estimated_cheaper_than_per_sector_proofs() {
        // Per-sector: 42,000,000 each (price_list.rs:316, charged per seal at fvm/src/kernel/
        // filecoin.rs:170-180); aggregate: 449,900 × n + step (price_list.rs:763-796), so from
        // the smallest aggregate (4) on, the aggregate is cheaper even with its proof bytes in the
        // message (1300 gas per byte, price_list.rs:85-88).
        for n in [4u64, 10, 100] {
            let per_sector = prove_commit_per_sector((0..n).map(|s| (s, vec![1; 192])).collect(), true).unwrap();
            let manifests = (0..n).map(|s| SectorActivationManifest { sector_number: s, pieces: vec![] }).collect();
            let aggregate = prove_commit_aggregate(manifests, vec![2; 25_000], true).unwrap();
            let msg = |p: &ProveCommitSectors3Params| miner_message(addr("t01000"), addr("t01002"), MinerMethod::ProveCommitSectors3, p, TokenAmount::from_atto(0)).unwrap();
            let a = estimate(msg(&aggregate), None, &defaults()).unwrap().gas_limit;
            let s = estimate(msg(&per_sector), None, &defaults()).unwrap().gas_limit;
            assert!(a < s, "{n} sectors: aggregate {a} ≥ per-sector {s}");
        }
    }
}
