//! Every transition of every plan (seed 004), every invalid one, and the data each records.

use jiff::Timestamp;
use sealing_operator::core::record::{ChainMessage, Randomness, SectorRecord};
use sealing_operator::core::transition::{Event, TransitionError, apply};
use sealing_operator::core::{Plan, State};

// The tables exactly as seed 004 writes them: (from, event, to).
const SEALER: &[(&str, &str, &str)] = &[
    ("Empty", "Allocate", "Allocated"),
    ("Allocated", "AcquireDeals", "DealsAcquired"),
    ("DealsAcquired", "AddPiece", "PieceAdded"),
    ("PieceAdded", "BuildTreeD", "TreeDBuilt"),
    ("TreeDBuilt", "AssignTicket", "TicketAssigned"),
    ("TicketAssigned", "PC1", "PC1Done"),
    ("PC1Done", "PC2", "PC2Done"),
    ("PC2Done", "SubmitPC", "PCSubmitted"),
    ("PCSubmitted", "ReSubmitPC", "PC2Done"),
    ("PCSubmitted", "CheckPC", "PCLanded"),
    ("PCLanded", "Persist", "Persisted"),
    ("Persisted", "SubmitPersistance", "PersistanceSubmitted"),
    ("PersistanceSubmitted", "AssignSeed", "SeedAssigned"),
    ("SeedAssigned", "C1", "C1Done"),
    ("C1Done", "C2", "C2Done"),
    ("C2Done", "SubmitProof", "ProofSubmitted"),
    ("ProofSubmitted", "ReSubmitProof", "C2Done"),
    ("ProofSubmitted", "Finish", "Finished"),
];

const SNAPUP: &[(&str, &str, &str)] = &[
    ("Empty", "AllocateSnapUp", "Allocated"),
    ("Allocated", "AddPiece", "PieceAdded"),
    ("PieceAdded", "BuildTreeD", "TreeDBuilt"),
    ("TreeDBuilt", "SnapEncode", "SnapEncoded"),
    ("SnapEncoded", "SnapProve", "SnapProved"),
    ("SnapProved", "Persist", "Persisted"),
    ("Persisted", "RePersist", "SnapProved"),
    ("Persisted", "Finish", "Finished"),
];

const REBUILD: &[(&str, &str, &str)] = &[
    ("Empty", "AllocateRebuild", "Allocated"),
    ("Allocated", "AddPiece", "PieceAdded"),
    ("PieceAdded", "BuildTreeD", "TreeDBuilt"),
    ("TreeDBuilt", "PC1", "PC1Done"),
    ("PC1Done", "PC2", "PC2Done"),
    ("PC2Done", "CheckSealed", "SealedChecked"),
    ("SealedChecked", "SkipSnap", "SnapDone"),
    ("SealedChecked", "AddPiece", "SnapPieceAdded"),
    ("SnapPieceAdded", "BuildTreeD", "SnapTreeDBuilt"),
    ("SnapTreeDBuilt", "SnapEncode", "SnapEncoded"),
    ("SnapEncoded", "SnapProve", "SnapDone"),
    ("SnapDone", "Persist", "Persisted"),
    ("Persisted", "SubmitPersistance", "Finished"),
];

const COMM_D: &str = "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy";
const COMM_R: &str = "bagboea4b5abcbrshxgmmpaucffwp2elaofbcrvb7hmcu3653o4lsw2arlor4hn3c";

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn randomness(epoch: i64) -> Randomness {
    Randomness { epoch, value: "11".repeat(32) }
}

fn landed(cid: &str) -> ChainMessage {
    ChainMessage { cid: cid.into(), epoch: Some(120), exit_code: Some(0), ..Default::default() }
}

/// One event of each kind, with payloads consistent with each other.
fn all_events() -> Vec<Event> {
    vec![
        Event::Allocate { sector_number: 7 },
        Event::AllocateSnapUp { sector_number: 7, comm_r: COMM_R.into() },
        Event::AllocateRebuild { sector_number: 7, ticket: randomness(90), comm_r: COMM_R.into() },
        Event::AcquireDeals,
        Event::AddPiece,
        Event::BuildTreeD { comm_d: COMM_D.into() },
        Event::AssignTicket(randomness(90)),
        Event::PC1,
        Event::PC2 { comm_r: COMM_R.into(), comm_d: COMM_D.into() },
        Event::SubmitPC(ChainMessage { cid: "bafy2bzpc".into(), epoch: None, exit_code: None, ..Default::default() }),
        Event::ReSubmitPC,
        Event::CheckPC(landed("bafy2bzpc")),
        Event::Persist { location: "/var/lib/sealing/store/s-t01000-7".into() },
        Event::RePersist,
        Event::SubmitPersistance,
        Event::AssignSeed(randomness(130)),
        Event::C1,
        Event::C2 { proof: "cHJvb2Y=".into() },
        Event::SubmitProof(ChainMessage { cid: "bafy2bzcommit".into(), epoch: None, exit_code: None, ..Default::default() }),
        Event::ReSubmitProof,
        Event::Finish(landed("bafy2bzcommit")),
        Event::SnapEncode { comm_r: COMM_R.into(), comm_d: COMM_D.into() },
        Event::SnapProve { proof: "c25hcA==".into() },
        Event::CheckSealed,
        Event::SkipSnap,
        Event::Abort,
    ]
}

fn at(state: State) -> SectorRecord {
    SectorRecord { state, ..Default::default() }
}

fn table(plan: Plan) -> &'static [(&'static str, &'static str, &'static str)] {
    match plan {
        Plan::Sealer => SEALER,
        Plan::Snapup => SNAPUP,
        Plan::Rebuild => REBUILD,
    }
}

#[test]
fn every_listed_transition_of_every_plan_leads_where_seed_004_says() {
    for plan in [Plan::Sealer, Plan::Snapup, Plan::Rebuild] {
        for (from, event_name, to) in table(plan) {
            let from: State = from.parse().unwrap();
            let event = all_events().into_iter().find(|e| e.name() == *event_name).unwrap();
            // Payload checks compare with data recorded earlier; start from a record without any.
            let next = apply(plan, &at(from), event, now())
                .unwrap_or_else(|e| panic!("{plan} {from} --{event_name}--> {to}: {e}"));
            assert_eq!(next.state.as_str(), *to, "{plan} {from} --{event_name}-->");
            assert_eq!(next.entered_at.get(&next.state), Some(&now()));
        }
    }
}

#[test]
fn every_transition_not_listed_is_rejected_and_abort_works_from_every_live_state() {
    for plan in [Plan::Sealer, Plan::Snapup, Plan::Rebuild] {
        for state in State::ALL {
            for event in all_events() {
                let name = event.name();
                let listed = table(plan).iter().any(|(f, e, _)| *f == state.as_str() && *e == name);
                let result = apply(plan, &at(state), event, now());
                match (state.is_terminal(), name, listed) {
                    (true, _, _) => assert_eq!(result, Err(TransitionError::Terminal(state))),
                    (false, "Abort", _) => assert_eq!(result.unwrap().state, State::Aborted),
                    (false, _, true) => assert!(result.is_ok(), "{plan} {state} {name}: {result:?}"),
                    (false, _, false) => assert_eq!(
                        result,
                        Err(TransitionError::NotAllowed { plan, state, event: name }),
                        "{plan} {state} {name}"
                    ),
                }
            }
        }
    }
}

/// Walks the sealer plan, including one ReSubmitPC and one ReSubmitProof loop, and checks what
/// the sector knows at the end.
#[test]
fn sealer_happy_path_with_resubmit_loops_records_every_result() {
    let events = [
        "Allocate", "AcquireDeals", "AddPiece", "BuildTreeD", "AssignTicket", "PC1", "PC2", "SubmitPC", "ReSubmitPC",
        "SubmitPC", "CheckPC", "Persist", "SubmitPersistance", "AssignSeed", "C1", "C2", "SubmitProof", "ReSubmitProof",
        "SubmitProof", "Finish",
    ];
    let mut record = SectorRecord::default();
    for name in events {
        let event = all_events().into_iter().find(|e| e.name() == name).unwrap();
        record = apply(Plan::Sealer, &record, event, now()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert_eq!(record.state, State::Finished);
    assert_eq!(record.sector_number, Some(7));
    assert_eq!(record.comm_d.as_deref(), Some(COMM_D));
    assert_eq!(record.comm_r.as_deref(), Some(COMM_R));
    assert_eq!(record.ticket, Some(randomness(90)));
    assert_eq!(record.seed, Some(randomness(130)));
    assert_eq!(record.precommit, Some(landed("bafy2bzpc")));
    assert_eq!(record.commit, Some(landed("bafy2bzcommit")));
    assert_eq!(record.proof.as_deref(), Some("cHJvb2Y="));
    assert_eq!(record.persisted.as_deref(), Some("/var/lib/sealing/store/s-t01000-7"));
}

#[test]
fn rebuild_snap_branch_records_the_new_commitments_apart_from_the_original() {
    let events = ["AllocateRebuild", "AddPiece", "BuildTreeD", "PC1", "PC2", "CheckSealed", "AddPiece", "BuildTreeD"];
    let mut record = SectorRecord::default();
    for name in events {
        let event = all_events().into_iter().find(|e| e.name() == name).unwrap();
        record = apply(Plan::Rebuild, &record, event, now()).unwrap();
    }
    assert_eq!(record.state, State::SnapTreeDBuilt);
    assert_eq!(record.snap.as_ref().and_then(|s| s.comm_d.as_deref()), Some(COMM_D));
    assert_eq!(record.comm_r.as_deref(), Some(COMM_R));
}

#[test]
fn pc2_with_a_comm_d_other_than_tree_d_is_a_mismatch() {
    let record = SectorRecord { state: State::PC1Done, comm_d: Some(COMM_D.into()), ..Default::default() };
    let err = apply(Plan::Sealer, &record, Event::PC2 { comm_r: COMM_R.into(), comm_d: "baga6ea4seaqother".into() }, now())
        .unwrap_err();
    assert!(matches!(err, TransitionError::Mismatch { .. }));
    assert!(err.to_string().contains("CommD"), "{err}");
}

#[test]
fn rebuilt_replica_must_reproduce_the_comm_r_on_chain() {
    let record = SectorRecord { state: State::PC1Done, comm_r: Some(COMM_R.into()), ..Default::default() };
    let err = apply(Plan::Rebuild, &record, Event::PC2 { comm_r: "bagboea4b5abcother".into(), comm_d: COMM_D.into() }, now())
        .unwrap_err();
    assert!(err.to_string().contains("CommR (on chain vs rebuilt)"), "{err}");
}

#[test]
fn landing_events_need_a_successful_receipt() {
    let failed = ChainMessage { cid: "bafy2bzpc".into(), epoch: Some(100), exit_code: Some(16), ..Default::default() };
    let err = apply(Plan::Sealer, &at(State::PCSubmitted), Event::CheckPC(failed), now()).unwrap_err();
    assert!(matches!(err, TransitionError::NotLanded { event: "CheckPC", .. }));
    let pending = ChainMessage { cid: "bafy2bzc".into(), epoch: None, exit_code: None, ..Default::default() };
    assert!(apply(Plan::Sealer, &at(State::ProofSubmitted), Event::Finish(pending), now()).is_err());
}

#[test]
fn a_successful_step_clears_the_last_error_and_backoff() {
    use sealing_operator::core::ErrorLevel;
    use sealing_operator::core::record::ErrorRecord;
    let record = SectorRecord {
        state: State::TicketAssigned,
        failures: 2,
        retry_after: Some(now()),
        last_error: Some(ErrorRecord { level: ErrorLevel::Temporary, step: "pc1".into(), message: "io".into(), time: now() }),
        ..Default::default()
    };
    let next = apply(Plan::Sealer, &record, Event::PC1, now()).unwrap();
    assert_eq!((next.failures, next.retry_after, next.last_error), (0, None, None));
}

#[test]
fn the_record_round_trips_through_json_with_states_as_strings() {
    let mut record = SectorRecord::default();
    for name in ["Allocate", "AcquireDeals", "AddPiece", "BuildTreeD", "AssignTicket"] {
        let event = all_events().into_iter().find(|e| e.name() == name).unwrap();
        record = apply(Plan::Sealer, &record, event, now()).unwrap();
    }
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["state"], "TicketAssigned");
    assert!(json["enteredAt"]["TreeDBuilt"].is_string());
    let back: SectorRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, record);
}
