//! The window PoSt planner of one deadline, in memory: when the proving check runs, what is
//! declared faulty or recovered, what each PoSt covers, and how an instance ends.

use std::collections::BTreeSet;

use sealing_operator::core::proving::{
    Action, CheckResult, Declaration, DeclarationKind, InstanceEnd, PartitionSectors, PartitionView, PostBatch,
    ProvingRecord, Timing, Window, message_task, plan, retry_batch, roll,
};
use sealing_operator::core::record::ChainMessage;

/// Deadline of 12 epochs opening at 1000: challenge 996, fault cutoff 990, the check from 966.
fn window(period_start: i64) -> Window {
    Window { period_start, open: period_start + 1000, close: period_start + 1012, challenge: period_start + 996, fault_cutoff: period_start + 990, challenge_window: 12 }
}

fn set(items: &[u64]) -> BTreeSet<u64> {
    items.iter().copied().collect()
}

fn partition(index: u64, live: &[u64], faulty: &[u64], recovering: &[u64]) -> PartitionView {
    PartitionView { index, live: set(live), faulty: set(faulty), recovering: set(recovering) }
}

fn on(partition: u64, sectors: &[u64]) -> PartitionSectors {
    PartitionSectors { partition, sectors: sectors.to_vec() }
}

fn landed(code: i64) -> ChainMessage {
    ChainMessage { cid: "bafy2bzacea".into(), epoch: Some(1005), exit_code: Some(code), ..Default::default() }
}

fn pending() -> ChainMessage {
    ChainMessage { cid: "bafy2bzacea".into(), epoch: None, exit_code: None, ..Default::default() }
}

#[test]
fn nothing_happens_before_the_check_window_but_the_partitions_to_prove_are_noted() {
    let w = window(0);
    let mut record = ProvingRecord::new(&w);
    let parts = [partition(0, &[1, 2], &[], &[]), partition(1, &[3], &[3], &[])];
    assert_eq!(plan(&w, &parts, 965, &mut record, &Timing::default()), vec![]);
    assert_eq!(record.needed, vec![0], "partition 1 holds only a faulty sector");
}

#[test]
fn the_proving_check_covers_every_live_sector_two_windows_before_the_cutoff() {
    let w = window(0);
    let mut record = ProvingRecord::new(&w);
    let parts = [partition(0, &[1, 2], &[], &[]), partition(1, &[3, 4], &[4], &[])];
    assert_eq!(plan(&w, &parts, 966, &mut record, &Timing::default()), vec![Action::Check { sectors: set(&[1, 2, 3, 4]) }]);
}

#[test]
fn bad_sectors_are_declared_faulty_and_repaired_ones_recovered_per_partition() {
    let w = window(0);
    let mut record = ProvingRecord::new(&w);
    // 1 is bad and healthy on chain: fault. 4 is faulty and good again: recovery. 5 was declared
    // recovering but is bad again: fault. 6 is faulty and still bad: nothing.
    let parts = [partition(0, &[1, 2], &[], &[]), partition(1, &[4, 5], &[4, 5], &[5]), partition(2, &[6], &[6], &[])];
    record.check = Some(CheckResult { bad: vec![1, 5, 6], error: None });
    let actions = plan(&w, &parts, 980, &mut record, &Timing::default());
    assert_eq!(
        actions,
        vec![
            Action::Declare(Declaration { kind: DeclarationKind::Faults, partitions: vec![on(0, &[1]), on(1, &[5])], message: None }),
            Action::Declare(Declaration { kind: DeclarationKind::Recoveries, partitions: vec![on(1, &[4])], message: None }),
        ]
    );
}

#[test]
fn declarations_stop_before_the_cutoff_and_a_sent_one_is_waited_for() {
    let w = window(0);
    let parts = [partition(0, &[1, 2], &[], &[])];
    let mut record = ProvingRecord::new(&w);
    record.check = Some(CheckResult { bad: vec![1], error: None });
    assert_eq!(plan(&w, &parts, 988, &mut record, &Timing::default()), vec![], "988 is within the 2-epoch margin of cutoff 990");

    let declared = Declaration { kind: DeclarationKind::Faults, partitions: vec![on(0, &[1])], message: Some(pending()) };
    record.declarations.push(declared);
    assert_eq!(plan(&w, &parts, 985, &mut record, &Timing::default()), vec![Action::WaitDeclaration(DeclarationKind::Faults)]);
    assert_eq!(plan(&w, &parts, 991, &mut record, &Timing::default()), vec![Action::WaitDeclaration(DeclarationKind::Faults)], "its receipt is still recorded after the cutoff");
}

#[test]
fn a_failed_check_declares_nothing() {
    let w = window(0);
    let parts = [partition(0, &[1], &[], &[])];
    let mut record = ProvingRecord::new(&w);
    record.check = Some(CheckResult { bad: vec![], error: Some("pod failed".into()) });
    assert_eq!(plan(&w, &parts, 980, &mut record, &Timing::default()), vec![]);
}

#[test]
fn the_post_starts_after_the_challenge_in_batches_of_three_partitions_without_faulty_sectors() {
    let w = window(0);
    let parts: Vec<PartitionView> = (0..4).map(|i| partition(i, &[10 * i + 1, 10 * i + 2], &[10 * i + 2], &[])).collect();
    let mut record = ProvingRecord::new(&w);
    let timing = Timing::default();
    assert_eq!(plan(&w, &parts, 996, &mut record, &timing), vec![], "the challenge epoch itself needs one epoch of confidence");
    let actions = plan(&w, &parts, 997, &mut record, &timing);
    assert_eq!(
        actions,
        vec![Action::Prove { batch: 0, sectors: set(&[1, 11, 21]) }, Action::Prove { batch: 1, sectors: set(&[31]) }]
    );
    assert_eq!(record.posts.iter().map(|p| p.partitions.clone()).collect::<Vec<_>>(), vec![vec![0, 1, 2], vec![3]]);
    assert_eq!(record.needed, vec![0, 1, 2, 3]);
}

#[test]
fn a_recovering_sector_is_proven() {
    let w = window(0);
    let parts = [partition(0, &[1, 2], &[1, 2], &[2])];
    let mut record = ProvingRecord::new(&w);
    assert_eq!(plan(&w, &parts, 1000, &mut record, &Timing::default()), vec![Action::Prove { batch: 0, sectors: set(&[2]) }]);
}

#[test]
fn a_deadline_whose_sectors_are_all_faulty_has_nothing_to_prove() {
    let w = window(0);
    let parts = [partition(0, &[1], &[1], &[])];
    let mut record = ProvingRecord::new(&w);
    assert_eq!(plan(&w, &parts, 1000, &mut record, &Timing::default()), vec![]);
    assert!(record.needed.is_empty() && record.posts.is_empty(), "{record:?}");
    let (_, end) = roll(Some(&record), &window(96));
    assert_eq!(end, Some(InstanceEnd::Idle));
}

#[test]
fn a_proof_is_submitted_then_waited_for_and_nothing_is_done_after_the_close() {
    let w = window(0);
    let parts = [partition(0, &[1], &[], &[])];
    let mut record = ProvingRecord::new(&w);
    let timing = Timing::default();
    plan(&w, &parts, 997, &mut record, &timing);
    record.posts[0].proof = Some("cHJvb2Y=".into());
    assert_eq!(plan(&w, &parts, 998, &mut record, &timing), vec![Action::Submit { batch: 0 }]);
    record.posts[0].message = Some(pending());
    assert_eq!(plan(&w, &parts, 999, &mut record, &timing), vec![Action::WaitSubmission { batch: 0 }]);
    assert_eq!(plan(&w, &parts, 1012, &mut record, &timing), vec![], "the deadline has closed");
    record.posts[0].message = Some(landed(0));
    assert!(record.proven());
    assert_eq!(plan(&w, &parts, 1001, &mut record, &timing), vec![]);
}

#[test]
fn a_new_period_ends_the_instance_proven_or_missed() {
    let w = window(0);
    let next = window(96);
    let mut record = ProvingRecord::new(&w);
    record.needed = vec![0, 1];
    record.posts = vec![PostBatch { partitions: vec![0, 1], attempt: 1, message: Some(landed(0)), ..Default::default() }];
    let (fresh, end) = roll(Some(&record), &next);
    assert_eq!(end, Some(InstanceEnd::Proven));
    assert_eq!(fresh, ProvingRecord::new(&next));

    record.posts[0].message = Some(landed(16));
    assert_eq!(roll(Some(&record), &next).1, Some(InstanceEnd::Missed), "a rejected proof");
    record.posts.clear();
    assert_eq!(roll(Some(&record), &next).1, Some(InstanceEnd::Missed), "no proof at all (the operator was down)");
    assert_eq!(roll(Some(&record), &w), (record.clone(), None), "the same instance goes on");
}

#[test]
fn a_failed_post_is_retried_once_then_given_up() {
    let w = window(0);
    let parts = [partition(0, &[1], &[], &[])];
    let mut record = ProvingRecord::new(&w);
    let timing = Timing::default();
    plan(&w, &parts, 997, &mut record, &timing);
    record.posts[0].message = Some(landed(16));
    retry_batch(&mut record.posts[0], "rejected".into(), &timing);
    assert_eq!(record.posts[0].attempt, 2);
    assert_eq!(record.posts[0].message, None);
    assert_eq!(plan(&w, &parts, 1001, &mut record, &timing), vec![Action::Prove { batch: 0, sectors: set(&[1]) }]);
    retry_batch(&mut record.posts[0], "pod failed".into(), &timing);
    assert_eq!(record.posts[0].attempt, 2);
    assert_eq!(record.posts[0].error.as_deref(), Some("pod failed"));
    assert_eq!(plan(&w, &parts, 1002, &mut record, &timing), vec![], "attempts are used up");
}

#[test]
fn each_period_declares_and_proves_with_messages_of_its_own() {
    let faults = DeclarationKind::Faults.as_str();
    assert_ne!(message_task(faults, 0), message_task(faults, 96), "a second fault of the deadline is a new message");
    assert_ne!(message_task(faults, 0), message_task(DeclarationKind::Recoveries.as_str(), 0));
    assert_ne!(message_task("window-post-0", 0), message_task("window-post-1", 0));
    assert_eq!(message_task(faults, 96), message_task(faults, 96), "the same message after a restart");
}
