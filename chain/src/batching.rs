//! The batching planner: which pending precommits or commits to send now, in one message, under
//! a maximum batch size, a maximum wait and a base-fee cap; and how to split a batch the chain
//! refused so one bad sector cannot hold the others back. What a message may cost is the
//! sender's (`fees`).

use fvm_shared::econ::TokenAmount;
use fvm_shared::error::ExitCode;
use serde::{Deserialize, Serialize};

use crate::ChainEpoch;
use crate::params::BatchReturn;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchPolicy {
    /// Most items in one message (at least 1).
    pub max_batch_size: usize,
    /// Epochs the oldest ready item may wait for companions.
    pub max_wait: ChainEpoch,
    /// An item whose deadline is this close is sent at once, whatever the fee or the batch size.
    pub urgency_margin: ChainEpoch,
    /// Above this base fee (attoFIL per gas unit) only urgent items are sent.
    #[serde(with = "crate::lotus_json::token_amount")]
    pub max_base_fee: TokenAmount,
}

/// One item waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingItem<K> {
    pub key: K,
    /// The first epoch the item may be sent (e.g. the seed epoch + 1 for a commit).
    pub ready_at: ChainEpoch,
    /// The last epoch the message may land (ticket expiry, prove-commit deadline).
    pub deadline: ChainEpoch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendReason {
    /// An item's deadline is within the urgency margin.
    Urgent,
    /// Enough items for a full batch.
    Full,
    /// The oldest ready item has waited `max_wait`.
    MaxWait,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<K> {
    pub keys: Vec<K>,
    pub reason: SendReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<K> {
    /// The batch to send now, if any.
    pub send: Option<Batch<K>>,
    /// Items past their deadline: sending them would only fail the batch.
    pub expired: Vec<K>,
    /// When to plan again if nothing changes before.
    pub wake_at: Option<ChainEpoch>,
}

/// Decides what to send at epoch `now` with the chain's current `base_fee`.
pub fn plan<K: Clone>(items: &[PendingItem<K>], policy: &BatchPolicy, now: ChainEpoch, base_fee: &TokenAmount) -> Plan<K> {
    let max = policy.max_batch_size.max(1);
    let expired: Vec<K> = items.iter().filter(|i| i.deadline < now).map(|i| i.key.clone()).collect();
    let mut ready: Vec<&PendingItem<K>> = items.iter().filter(|i| i.deadline >= now && i.ready_at <= now).collect();
    // Most urgent first, then oldest.
    ready.sort_by_key(|i| (i.deadline, i.ready_at));
    let not_ready_wake = items.iter().filter(|i| i.deadline >= now && i.ready_at > now).map(|i| i.ready_at).min();

    let urgent = ready.iter().any(|i| i.deadline - now <= policy.urgency_margin);
    let fee_ok = base_fee <= &policy.max_base_fee;
    let oldest = ready.iter().map(|i| i.ready_at).min();
    let reason = if urgent {
        Some(SendReason::Urgent)
    } else if !fee_ok {
        None
    } else if ready.len() >= max {
        Some(SendReason::Full)
    } else if oldest.is_some_and(|o| o + policy.max_wait <= now) {
        Some(SendReason::MaxWait)
    } else {
        None
    };

    if let Some(reason) = reason {
        let keys: Vec<K> = ready.iter().take(max).map(|i| i.key.clone()).collect();
        // More may be left over; plan again right away.
        let wake_at = if ready.len() > max { Some(now) } else { not_ready_wake };
        return Plan { send: Some(Batch { keys, reason }), expired, wake_at };
    }

    let urgent_at = ready.iter().map(|i| i.deadline - policy.urgency_margin).min();
    let max_wait_at = if fee_ok { oldest.map(|o| o + policy.max_wait) } else { None };
    let wake_at = [urgent_at, max_wait_at, not_ready_wake].into_iter().flatten().min();
    Plan { send: None, expired, wake_at }
}

/// What to do after a batch message failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure<K> {
    /// A batch of one: this item is the culprit; classify the exit code for it.
    Isolated(K),
    /// Send the halves separately, so the bad item ends up alone and the rest go through.
    Split(Vec<K>, Vec<K>),
}

pub fn after_batch_failure<K>(mut keys: Vec<K>) -> Option<AfterFailure<K>> {
    match keys.len() {
        0 => None,
        1 => keys.pop().map(AfterFailure::Isolated),
        n => {
            let second = keys.split_off(n / 2);
            Some(AfterFailure::Split(keys, second))
        }
    }
}

/// Splits a ProveCommitSectors3 batch by its `BatchReturn`: the items that activated and the ones
/// that failed, with their exit codes.
pub fn split_by_batch_return<K: Clone>(keys: &[K], ret: &BatchReturn) -> (Vec<K>, Vec<(K, ExitCode)>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (idx, key) in keys.iter().enumerate() {
        let code = ret.code_of(idx as u32);
        if code.is_success() {
            ok.push(key.clone());
        } else {
            failed.push((key.clone(), code));
        }
    }
    (ok, failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::FailCode;

    fn policy() -> BatchPolicy {
        BatchPolicy {
            max_batch_size: 3,
            max_wait: 20,
            urgency_margin: 10,
            max_base_fee: TokenAmount::from_atto(1000),
        }
    }

    fn item(key: u64, ready_at: ChainEpoch, deadline: ChainEpoch) -> PendingItem<u64> {
        PendingItem { key, ready_at, deadline }
    }

    fn cheap() -> TokenAmount {
        TokenAmount::from_atto(100)
    }

    #[test]
    fn waits_for_companions_until_max_wait() {
        let items = [item(1, 100, 1000), item(2, 105, 1000)];
        let p = plan(&items, &policy(), 110, &cheap());
        assert_eq!(p.send, None);
        assert_eq!(p.wake_at, Some(120));
        let p = plan(&items, &policy(), 120, &cheap());
        let batch = p.send.unwrap();
        assert_eq!((batch.keys, batch.reason), (vec![1, 2], SendReason::MaxWait));
    }

    #[test]
    fn full_batch_goes_at_once_and_leftovers_replan_now() {
        let items = [item(1, 100, 900), item(2, 100, 800), item(3, 100, 1000), item(4, 100, 950)];
        let p = plan(&items, &policy(), 101, &cheap());
        let batch = p.send.unwrap();
        assert_eq!(batch.reason, SendReason::Full);
        assert_eq!(batch.keys, vec![2, 1, 4], "most urgent first, capped at max size");
        assert_eq!(p.wake_at, Some(101));
    }

    #[test]
    fn high_base_fee_holds_back_all_but_urgent_items() {
        let expensive = TokenAmount::from_atto(5000);
        let items = [item(1, 0, 1000), item(2, 0, 1000), item(3, 0, 1000)];
        let p = plan(&items, &policy(), 100, &expensive);
        assert_eq!(p.send, None);
        assert_eq!(p.wake_at, Some(990), "woken when the first item turns urgent");
        let p = plan(&items, &policy(), 990, &expensive);
        assert_eq!(p.send.unwrap().reason, SendReason::Urgent);
    }

    #[test]
    fn expired_items_never_join_a_batch() {
        let items = [item(1, 0, 50), item(2, 0, 500), item(3, 0, 500), item(4, 0, 500)];
        let p = plan(&items, &policy(), 60, &cheap());
        assert_eq!(p.expired, vec![1]);
        assert_eq!(p.send.unwrap().keys, vec![2, 3, 4]);
    }

    #[test]
    fn items_not_ready_set_the_wake_time() {
        let items = [item(1, 200, 1000)];
        let p = plan(&items, &policy(), 100, &cheap());
        assert_eq!((p.send, p.wake_at), (None, Some(200)));
        assert_eq!(plan::<u64>(&[], &policy(), 100, &cheap()), Plan { send: None, expired: vec![], wake_at: None });
    }

    #[test]
    fn a_failed_batch_is_bisected_until_the_culprit_is_alone() {
        let bad = 6u64;
        let mut queue = vec![vec![1u64, 2, 3, 4, 5, 6, 7]];
        let mut sent_ok = Vec::new();
        let mut isolated = Vec::new();
        while let Some(batch) = queue.pop() {
            if !batch.contains(&bad) {
                sent_ok.extend(batch);
                continue;
            }
            match after_batch_failure(batch).unwrap() {
                AfterFailure::Isolated(k) => isolated.push(k),
                AfterFailure::Split(a, b) => {
                    queue.push(a);
                    queue.push(b);
                }
            }
        }
        sent_ok.sort();
        assert_eq!(isolated, vec![6]);
        assert_eq!(sent_ok, vec![1, 2, 3, 4, 5, 7]);
        assert_eq!(after_batch_failure::<u64>(vec![]), None);
    }

    #[test]
    fn batch_return_separates_failed_sectors() {
        let ret = BatchReturn { success_count: 2, fail_codes: vec![FailCode { idx: 1, code: ExitCode::USR_ILLEGAL_ARGUMENT }] };
        let (ok, failed) = split_by_batch_return(&[10u64, 11, 12], &ret);
        assert_eq!(ok, vec![10, 12]);
        assert_eq!(failed, vec![(11, ExitCode::USR_ILLEGAL_ARGUMENT)]);
    }
}
