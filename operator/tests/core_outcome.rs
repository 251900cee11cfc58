//! Step pod results (sealer-pod's termination message) to events and errors; placement.

use std::time::Duration;

use jiff::Timestamp;
use sealing_operator::core::outcome::{Completion, PodEnd, complete, start, step_outcome};
use sealing_operator::core::record::SectorRecord;
use sealing_operator::core::retry::{Outcome, RetryPolicy};
use sealing_operator::core::work::Step;
use sealing_operator::core::{ErrorLevel, Event, Plan, State};

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn ended(exit_code: i32, message: Option<&str>) -> PodEnd {
    PodEnd { exit_code, message: message.map(Into::into), reason: None }
}

#[test]
fn successful_results_become_the_step_events() {
    let pc2 = r#"{"step":"pc2","ok":true,"result":{"comm_r":"bagboea4b5abcr","comm_d":"baga6ea4seaqd"}}"#;
    assert_eq!(
        step_outcome(Step::PC2, &ended(0, Some(pc2))),
        Ok(Event::PC2 { comm_r: "bagboea4b5abcr".into(), comm_d: "baga6ea4seaqd".into() })
    );
    let c2 = r#"{"step":"c2","ok":true,"result":{"proof":"cHJvb2Y=","comm_r":"x","comm_d":"y"}}"#;
    assert_eq!(step_outcome(Step::C2, &ended(0, Some(c2))), Ok(Event::C2 { proof: "cHJvb2Y=".into() }));
    let tree_d = r#"{"step":"tree-d","ok":true,"result":{"comm_d":"baga6ea4seaqd"}}"#;
    assert_eq!(step_outcome(Step::TreeD, &ended(0, Some(tree_d))), Ok(Event::BuildTreeD { comm_d: "baga6ea4seaqd".into() }));
}

#[test]
fn reported_errors_keep_their_level_and_message() {
    let doc = r#"{"step":"c2","ok":false,"error":{"level":"permanent","message":"missing parameters for 2KiB PoRep"}}"#;
    let err = step_outcome(Step::C2, &ended(11, Some(doc))).unwrap_err();
    assert_eq!((err.level, err.step.as_str(), err.message.as_str()), (ErrorLevel::Permanent, "c2", "missing parameters for 2KiB PoRep"));
}

#[test]
fn a_killed_or_crashed_pod_without_a_result_is_temporary() {
    let killed = PodEnd { exit_code: 137, message: None, reason: Some("OOMKilled".into()) };
    let err = step_outcome(Step::PC1, &killed).unwrap_err();
    assert_eq!(err.level, ErrorLevel::Temporary);
    assert!(err.message.contains("137") && err.message.contains("OOMKilled"), "{}", err.message);
    assert_eq!(step_outcome(Step::PC1, &ended(12, Some("garbled"))).unwrap_err().level, ErrorLevel::Abort);
    assert_eq!(step_outcome(Step::PC1, &ended(11, None)).unwrap_err().level, ErrorLevel::Permanent);
}

#[test]
fn a_result_missing_a_field_names_it() {
    let doc = r#"{"step":"pc2","ok":true,"result":{"comm_r":"bagboea4b5abcr"}}"#;
    let err = step_outcome(Step::PC2, &ended(0, Some(doc))).unwrap_err();
    assert_eq!(err.level, ErrorLevel::Permanent);
    assert!(err.message.contains("comm_d"), "{}", err.message);
}

#[test]
fn start_counts_attempts_and_fixes_the_home_node_on_the_first_data_step_only() {
    let record = SectorRecord { state: State::DealsAcquired, sector_number: Some(1), ..Default::default() };
    let placed = start(&record, Step::AddPiece, "node-a", now());
    assert_eq!(placed.node.as_deref(), Some("node-a"));
    let running = placed.running.clone().unwrap();
    assert_eq!((running.step, running.attempt, running.node.as_str()), (Step::AddPiece, 1, "node-a"));
    let again = start(&placed, Step::AddPiece, "node-a", now());
    assert_eq!(again.running.unwrap().attempt, 2);
    let c2 = start(&SectorRecord { node: Some("node-a".into()), ..record }, Step::C2, "gpu-b", now());
    assert_eq!(c2.node.as_deref(), Some("node-a"), "C2 elsewhere does not move the sector's data");
    assert_eq!(c2.running.unwrap().node, "gpu-b");
}

#[test]
fn completing_clears_the_running_step_and_advances_or_backs_off() {
    let policy = RetryPolicy { max_attempts: 3, initial_backoff: Duration::from_secs(5), max_backoff: Duration::from_secs(60) };
    let record = start(&SectorRecord { state: State::TicketAssigned, ..Default::default() }, Step::PC1, "a", now());
    let (next, how) = complete(Plan::Sealer, &record, Ok(Event::PC1), &policy, now()).unwrap();
    assert_eq!((next.state, next.running, how), (State::PC1Done, None, Completion::Advanced));
    let failure = step_outcome(Step::PC1, &ended(137, None));
    let (next, how) = complete(Plan::Sealer, &record, failure, &policy, now()).unwrap();
    assert_eq!(next.state, State::TicketAssigned);
    assert_eq!(next.running, None);
    assert!(matches!(how, Completion::Failed(Outcome::Retry { .. })));
    assert_eq!(next.attempts_of("pc1"), 1, "the attempt stays counted");
}
