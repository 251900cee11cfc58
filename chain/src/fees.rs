//! Message fees as Lotus computes them: the fee cap limited by a maximum fee, and the fees of a
//! replacement for a message stuck in the message pool.

use fvm_shared::econ::TokenAmount;

use crate::message::Message;

/// Lotus' `DefaultDefaultMaxFee` (node/config/def.go:38): the cap a node applies when a
/// `MessageSendSpec` gives no `MaxFee`.
pub fn default_max_fee() -> TokenAmount {
    TokenAmount::from_nano(70_000_000)
}

/// `ReplaceByFeePercentageMinimum` (chain/messagepool/config.go:16): a replacement whose premium
/// is not above 110% of the pending one is refused.
pub const RBF_MIN_PERCENT: u64 = 110;
/// `ReplaceByFeePercentageDefault` (chain/messagepool/config.go:17): what `lotus mpool replace
/// --auto` raises the premium by.
pub const RBF_DEFAULT_PERCENT: u64 = 125;

/// `ComputeRBF` (chain/messagepool/messagepool.go:215): the smallest premium that replaces a
/// message of `premium` at `percent`.
pub fn rbf_premium(premium: &TokenAmount, percent: u64) -> TokenAmount {
    TokenAmount::from_atto(premium.atto() * percent / 100u64 + 1u64)
}

/// How much a message may cost at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeLimit {
    /// Gas limit × fee cap never exceeds this (`MessageSendSpec.MaxFee`); zero means the node's
    /// default.
    pub max_fee: TokenAmount,
    /// Set the fee cap to `max_fee / gas limit` whatever the estimate.
    pub maximize_fee_cap: bool,
}

/// `CapGasFee` (chain/messagepool/messagepool.go:221-244): limits the fee cap by the maximum fee
/// (or raises it to that with `maximize_fee_cap`) and the premium by the fee cap.
pub fn cap_gas_fee(msg: &mut Message, limit: &FeeLimit) {
    let max_fee = if limit.max_fee.is_zero() { default_max_fee() } else { limit.max_fee.clone() };
    let gas_limit = msg.gas_limit.max(1) as u64;
    let total = msg.gas_fee_cap.clone() * gas_limit;
    if limit.maximize_fee_cap || total > max_fee {
        msg.gas_fee_cap = max_fee.div_floor(gas_limit);
    }
    if msg.gas_premium > msg.gas_fee_cap {
        msg.gas_premium = msg.gas_fee_cap.clone();
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplaceError {
    #[error(
        "cannot replace the message: its maximum fee {} allows a premium of at most {} attoFIL/gas, \
         and the message pool only takes a replacement paying at least {} (110% of {})",
        .0.max_fee, .0.allowed.atto(), .0.needed.atto(), .0.pending.atto()
    )]
    MaxFeeReached(Box<FeeShortfall>),
}

/// Why a replacement cannot be priced: amounts in attoFIL (per gas unit for the premiums).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeShortfall {
    pub max_fee: TokenAmount,
    pub allowed: TokenAmount,
    pub needed: TokenAmount,
    pub pending: TokenAmount,
}

/// The replacement for `stuck` given a fresh gas estimate of the same message, as `lotus mpool
/// replace --auto` builds it (cli/mpool.go:469-491): the premium raised to at least 125% of the
/// pending one, the fee cap at least the premium and the estimate, both within `limit`. Refused
/// when the limit keeps the premium below what the message pool accepts as a replacement.
pub fn replacement(stuck: &Message, estimate: &Message, limit: &FeeLimit) -> Result<Message, ReplaceError> {
    let mut msg = stuck.clone();
    msg.cid = None;
    msg.gas_premium = estimate.gas_premium.clone().max(rbf_premium(&stuck.gas_premium, RBF_DEFAULT_PERCENT));
    msg.gas_fee_cap = estimate.gas_fee_cap.clone().max(msg.gas_premium.clone());
    cap_gas_fee(&mut msg, limit);
    let needed = rbf_premium(&stuck.gas_premium, RBF_MIN_PERCENT);
    if msg.gas_premium < needed {
        return Err(ReplaceError::MaxFeeReached(Box::new(FeeShortfall {
            max_fee: if limit.max_fee.is_zero() { default_max_fee() } else { limit.max_fee.clone() },
            allowed: msg.gas_premium,
            needed,
            pending: stuck.gas_premium.clone(),
        })));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(gas_limit: i64, fee_cap: u64, premium: u64) -> Message {
        Message {
            version: 0,
            to: "t01000".parse().unwrap(),
            from: "t01002".parse().unwrap(),
            nonce: 4,
            value: TokenAmount::from_atto(0),
            gas_limit,
            gas_fee_cap: TokenAmount::from_atto(fee_cap),
            gas_premium: TokenAmount::from_atto(premium),
            method: 5,
            params: vec![],
            cid: None,
        }
    }

    fn limit(max_fee: u64, maximize_fee_cap: bool) -> FeeLimit {
        FeeLimit { max_fee: TokenAmount::from_atto(max_fee), maximize_fee_cap }
    }

    #[test]
    fn the_fee_cap_is_limited_by_the_max_fee_and_the_premium_by_the_fee_cap() {
        // messagepool.go:238-243: totalFee = GasFeeCap × GasLimit; above MaxFee the cap becomes
        // MaxFee / GasLimit, and the premium never exceeds the cap.
        let mut m = message(1000, 50, 40);
        cap_gas_fee(&mut m, &limit(20_000, false));
        assert_eq!((m.gas_fee_cap.atto().to_string(), m.gas_premium.atto().to_string()), ("20".into(), "20".into()));
        let mut m = message(1000, 5, 1);
        cap_gas_fee(&mut m, &limit(20_000, false));
        assert_eq!(m.gas_fee_cap, TokenAmount::from_atto(5), "under the max fee: unchanged");
        cap_gas_fee(&mut m, &limit(20_000, true));
        assert_eq!(m.gas_fee_cap, TokenAmount::from_atto(20), "MaximizeFeeCap: MaxFee / GasLimit");
        // MaxFee 0: the node's 0.07 FIL default (node/config/def.go:38).
        let mut m = message(1, 10u64.pow(18), 1);
        cap_gas_fee(&mut m, &limit(0, false));
        assert_eq!(m.gas_fee_cap, TokenAmount::from_nano(70_000_000));
    }

    #[test]
    fn a_replacement_raises_the_premium_by_a_quarter_within_the_max_fee() {
        // ComputeRBF(100, 125) = 126 (messagepool.go:215-219).
        assert_eq!(rbf_premium(&TokenAmount::from_atto(100), RBF_DEFAULT_PERCENT), TokenAmount::from_atto(126));
        let stuck = message(1000, 150, 100);
        let estimate = message(1000, 400, 90);
        let r = replacement(&stuck, &estimate, &limit(1_000_000, false)).unwrap();
        assert_eq!((r.gas_premium, r.gas_fee_cap), (TokenAmount::from_atto(126), TokenAmount::from_atto(400)));
        assert_eq!(r.nonce, stuck.nonce, "a replacement takes the stuck message's nonce");

        // The estimate's premium wins when it is higher.
        let r = replacement(&stuck, &message(1000, 400, 300), &limit(1_000_000, false)).unwrap();
        assert_eq!(r.gas_premium, TokenAmount::from_atto(300));
    }

    #[test]
    fn no_replacement_when_the_max_fee_keeps_the_premium_below_110_percent() {
        // Max fee 110 000 over gas limit 1000: fee cap 110, premium capped at 110 < 111.
        let stuck = message(1000, 105, 100);
        let err = replacement(&stuck, &message(1000, 400, 90), &limit(110_000, false)).unwrap_err();
        assert!(matches!(&err, ReplaceError::MaxFeeReached(s) if s.needed == TokenAmount::from_atto(111)), "{err}");
        assert!(err.to_string().contains("at most 110 attoFIL/gas") && err.to_string().contains("at least 111 (110% of 100)"), "{err}");
        // One attoFIL/gas more and the pool takes it.
        let r = replacement(&stuck, &message(1000, 400, 90), &limit(111_000, false)).unwrap();
        assert_eq!(r.gas_premium, TokenAmount::from_atto(111));
    }
}
