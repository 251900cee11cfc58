//! Pause, resume at the current or a chosen state, abort; retries and backoff; the lotus
//! failure states; and what work each state needs.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use sealing_operator::core::control::{
    ControlAction, ControlError, ControlSpec, Datum, ResumeRequest, abort, control_action, pause, requirements, resume,
};
use sealing_operator::core::lotus::{Handling, LotusFailure};
use sealing_operator::core::record::{ChainMessage, PauseReason, Randomness, SectorRecord};
use sealing_operator::core::retry::{Outcome, RetryPolicy, on_error};
use sealing_operator::core::work::{ChainTask, Hold, Step, Work, hold, work};
use sealing_operator::core::{ErrorLevel, Plan, State, StepError};

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn rand(epoch: i64) -> Randomness {
    Randomness { epoch, value: "ab".repeat(32) }
}

/// A sealer sector paused at C1Done, with everything it gathered on the way.
fn paused_at_c1_done(precommit_landed: bool) -> SectorRecord {
    let precommit = if precommit_landed {
        ChainMessage { cid: "bafy2bzpc".into(), epoch: Some(100), exit_code: Some(0), ..Default::default() }
    } else {
        ChainMessage { cid: "bafy2bzpc".into(), epoch: None, exit_code: None, ..Default::default() }
    };
    let record = SectorRecord {
        state: State::C1Done,
        sector_number: Some(7),
        comm_d: Some("baga6ea4seacommd".into()),
        ticket: Some(rand(90)),
        comm_r: Some("bagboea4b5abccommr".into()),
        precommit: Some(precommit),
        persisted: Some("/store/s-t01000-7".into()),
        seed: Some(rand(111)),
        ..Default::default()
    };
    pause(&record, now()).unwrap()
}

#[test]
fn pause_then_resume_at_the_current_state() {
    let record = SectorRecord {
        state: State::PC1Done,
        sector_number: Some(7),
        comm_d: Some("baga6ea4seacommd".into()),
        ticket: Some(rand(90)),
        ..Default::default()
    };
    let paused = pause(&record, now()).unwrap();
    assert_eq!(paused.paused.as_ref().map(|p| p.reason), Some(PauseReason::Requested));
    assert_eq!(hold(&paused, now()), Some(Hold::Paused));
    let resumed = resume(Plan::Sealer, &paused, None, now()).unwrap();
    assert_eq!(resumed.state, State::PC1Done);
    assert_eq!(resumed.paused, None);
    assert_eq!(hold(&resumed, now()), None);
}

#[test]
fn resume_at_an_earlier_state_clears_what_later_states_produced_but_keeps_chain_facts() {
    let resumed = resume(Plan::Sealer, &paused_at_c1_done(true), Some(State::TicketAssigned), now()).unwrap();
    assert_eq!(resumed.state, State::TicketAssigned);
    assert_eq!(resumed.ticket, Some(rand(90)), "the ticket is kept: it is what the precommit on chain used");
    assert_eq!((resumed.comm_r, resumed.seed, resumed.persisted), (None, None, None));
    assert!(resumed.precommit.is_some_and(|m| m.landed_ok()), "the landed precommit stays recorded");
    assert_eq!(resumed.entered_at.get(&State::TicketAssigned), Some(&now()));
}

#[test]
fn resume_at_tree_d_built_redraws_the_ticket_when_no_precommit_landed() {
    let resumed = resume(Plan::Sealer, &paused_at_c1_done(false), Some(State::TreeDBuilt), now()).unwrap();
    assert_eq!(resumed.state, State::TreeDBuilt);
    assert_eq!(resumed.ticket, None);
    assert_eq!(resumed.comm_d.as_deref(), Some("baga6ea4seacommd"));
    assert_eq!(work(Plan::Sealer, resumed.state), Some(Work::Chain(ChainTask::GetTicket)));
}

#[test]
fn resume_before_the_ticket_is_rejected_once_the_precommit_is_on_chain() {
    let err = resume(Plan::Sealer, &paused_at_c1_done(true), Some(State::TreeDBuilt), now()).unwrap_err();
    assert_eq!(err, ControlError::PreCommitOnChain { state: State::TreeDBuilt });
    assert!(err.to_string().contains("TicketAssigned"), "the reason says what to do instead: {err}");
}

#[test]
fn resume_at_a_state_outside_the_plan_is_rejected_with_the_valid_states() {
    let err = resume(Plan::Sealer, &paused_at_c1_done(false), Some(State::SnapEncoded), now()).unwrap_err();
    assert!(matches!(err, ControlError::NotInPlan { plan: Plan::Sealer, state: State::SnapEncoded, .. }));
    let msg = err.to_string();
    assert!(msg.contains("SnapEncoded") && msg.contains("sealer") && msg.contains("TreeDBuilt"), "{msg}");
}

#[test]
fn resume_at_a_state_whose_data_the_sector_lacks_is_rejected_naming_the_data() {
    let err = resume(Plan::Sealer, &paused_at_c1_done(true), Some(State::C2Done), now()).unwrap_err();
    assert_eq!(err.to_string(), "resuming at C2Done needs a PoRep proof, which this sector (now C1Done) does not have");
    // The precommit was sent but never landed, so PCLanded's requirement is missing too.
    let err = resume(Plan::Sealer, &paused_at_c1_done(false), Some(State::PCLanded), now()).unwrap_err();
    assert!(err.to_string().contains("a landed precommit"), "{err}");
    let fresh = pause(&SectorRecord { state: State::PieceAdded, ..Default::default() }, now()).unwrap();
    let err = resume(Plan::Sealer, &fresh, Some(State::PieceAdded), now()).unwrap_err();
    assert!(err.to_string().contains("a sector number"), "{err}");
}

#[test]
fn resume_needs_a_paused_live_sector() {
    let running = SectorRecord { state: State::PC1Done, sector_number: Some(1), ..Default::default() };
    assert_eq!(resume(Plan::Sealer, &running, None, now()), Err(ControlError::NotPaused));
    let finished = SectorRecord { state: State::Finished, ..Default::default() };
    assert_eq!(resume(Plan::Sealer, &finished, None, now()), Err(ControlError::Terminal(State::Finished)));
    assert_eq!(pause(&finished, now()), Err(ControlError::Terminal(State::Finished)));
}

#[test]
fn resume_at_aborted_aborts_as_damocles_does() {
    let resumed = resume(Plan::Sealer, &paused_at_c1_done(false), Some(State::Aborted), now()).unwrap();
    assert_eq!(resumed.state, State::Aborted);
    assert_eq!(abort(Plan::Sealer, &resumed, now()), Err(ControlError::Terminal(State::Aborted)));
}

#[test]
fn rebuild_requirements_skip_the_snap_branch_unless_resuming_inside_it() {
    assert!(!requirements(Plan::Rebuild, State::Persisted).contains(&Datum::SnapCommD));
    assert!(requirements(Plan::Rebuild, State::SnapEncoded).contains(&Datum::SnapCommD));
    assert_eq!(requirements(Plan::Rebuild, State::Allocated), vec![Datum::SectorNumber, Datum::Ticket, Datum::CommR]);
}

#[test]
fn every_plan_state_can_be_resumed_at_by_a_sector_that_has_walked_there() {
    // A record holding every datum satisfies every requirement: resume validation is about data,
    // not about the state names themselves.
    let full = SectorRecord {
        state: State::Allocated,
        sector_number: Some(1),
        comm_d: Some("d".into()),
        ticket: Some(rand(1)),
        comm_r: Some("r".into()),
        precommit: Some(ChainMessage { cid: "p".into(), epoch: Some(1), exit_code: Some(0), ..Default::default() }),
        persisted: Some("/p".into()),
        seed: Some(rand(2)),
        proof: Some("x".into()),
        commit: Some(ChainMessage { cid: "c".into(), epoch: Some(2), exit_code: Some(0), ..Default::default() }),
        snap: Some(sealing_operator::core::record::SnapUpdate {
            comm_d: Some("d2".into()),
            comm_r: Some("r2".into()),
            proof: Some("y".into()),
        }),
        ..Default::default()
    };
    let ticket_at = Plan::Sealer.position(State::TicketAssigned);
    for plan in [Plan::Sealer, Plan::Snapup, Plan::Rebuild] {
        for state in plan.states() {
            let paused = pause(&full, now()).unwrap();
            let result = resume(plan, &paused, Some(*state), now()).map(|r| r.state);
            if plan == Plan::Sealer && plan.position(*state) < ticket_at {
                assert_eq!(result, Err(ControlError::PreCommitOnChain { state: *state }), "{plan} {state}");
            } else {
                assert_eq!(result, Ok(*state), "{plan} {state}");
            }
        }
    }
}

fn spec(paused: bool, resume: Option<(&str, Option<State>)>) -> ControlSpec {
    ControlSpec {
        paused,
        abort: false,
        resume: resume.map(|(at, state)| ResumeRequest { state, requested_at: at.into() }),
    }
}

#[test]
fn the_spec_drives_pause_resume_and_abort_once_each() {
    let running = SectorRecord { state: State::PC1Done, ..Default::default() };
    let paused = pause(&running, now()).unwrap();
    assert_eq!(control_action(&running, &spec(false, None), None), None);
    assert_eq!(control_action(&running, &spec(true, None), None), Some(ControlAction::Pause));
    assert_eq!(control_action(&paused, &spec(true, None), None), None);
    assert_eq!(control_action(&paused, &spec(false, None), None), Some(ControlAction::Resume(None)));
    let at_tree_d = spec(false, Some(("t1", Some(State::TreeDBuilt))));
    assert_eq!(control_action(&paused, &at_tree_d, None), Some(ControlAction::Resume(Some(State::TreeDBuilt))));
    assert_eq!(control_action(&paused, &at_tree_d, Some("t1")), Some(ControlAction::Resume(None)));
    // A resume request waits while the spec still says paused.
    assert_eq!(control_action(&paused, &spec(true, Some(("t2", None))), Some("t1")), None);
    let aborting = ControlSpec { abort: true, ..spec(true, None) };
    assert_eq!(control_action(&paused, &aborting, None), Some(ControlAction::Abort));
    let done = SectorRecord { state: State::Aborted, ..Default::default() };
    assert_eq!(control_action(&done, &aborting, None), None);
}

#[test]
fn an_error_pause_waits_for_an_explicit_resume_request() {
    let running = SectorRecord { state: State::C1Done, ..Default::default() };
    let (paused, outcome) =
        on_error(&running, StepError::new(ErrorLevel::Permanent, "c2", "no parameters"), &RetryPolicy::default(), now());
    assert_eq!(outcome, Outcome::Paused);
    assert_eq!(control_action(&paused, &spec(false, None), None), None);
    assert_eq!(control_action(&paused, &spec(false, Some(("t1", None))), None), Some(ControlAction::Resume(None)));
}

#[test]
fn backoff_doubles_from_the_initial_value_up_to_the_cap() {
    let policy =
        RetryPolicy { max_attempts: 10, initial_backoff: Duration::from_secs(30), max_backoff: Duration::from_secs(300) };
    let waits: Vec<u64> = (1..=6).map(|n| policy.backoff(n).as_secs()).collect();
    assert_eq!(waits, [30, 60, 120, 240, 300, 300]);
    assert_eq!(policy.backoff(u32::MAX).as_secs(), 300);
}

#[test]
fn temporary_errors_retry_with_backoff_then_become_permanent_and_pause() {
    let policy = RetryPolicy { max_attempts: 3, initial_backoff: Duration::from_secs(10), max_backoff: Duration::from_secs(60) };
    let mut record = SectorRecord { state: State::PC1Done, ..Default::default() };
    let error = || StepError::new(ErrorLevel::Temporary, "pc2", "GPU busy");
    let (next, outcome) = on_error(&record, error(), &policy, now());
    assert_eq!(outcome, Outcome::Retry { after: now() + SignedDuration::from_secs(10) });
    assert_eq!(hold(&next, now()), Some(Hold::BackingOff { until: now() + SignedDuration::from_secs(10) }));
    assert_eq!(hold(&next, now() + SignedDuration::from_secs(11)), None);
    record = next;
    let (next, outcome) = on_error(&record, error(), &policy, now());
    assert_eq!(outcome, Outcome::Retry { after: now() + SignedDuration::from_secs(20) });
    record = next;
    let (next, outcome) = on_error(&record, error(), &policy, now());
    assert_eq!(outcome, Outcome::Paused);
    let last = next.last_error.unwrap();
    assert_eq!(last.level, ErrorLevel::Permanent);
    assert_eq!(last.message, "GPU busy (gave up after 3 attempts)");
    assert_eq!(last.step, "pc2");
    assert_eq!(next.state, State::PC1Done);
}

#[test]
fn abort_errors_end_the_sector_and_resume_resets_the_failure_count() {
    let record = SectorRecord {
        state: State::TicketAssigned,
        failures: 2,
        sector_number: Some(1),
        comm_d: Some("baga6ea4seacommd".into()),
        ticket: Some(rand(90)),
        ..Default::default()
    };
    let (aborted, outcome) =
        on_error(&record, StepError::new(ErrorLevel::Abort, "pc1", "piece larger than sector"), &RetryPolicy::default(), now());
    assert_eq!((outcome, aborted.state), (Outcome::Aborted, State::Aborted));
    assert_eq!(aborted.last_error.unwrap().level, ErrorLevel::Abort);

    let (paused, _) = on_error(
        &record,
        StepError::new(ErrorLevel::Permanent, "pc1", "missing file"),
        &RetryPolicy::default(),
        now(),
    );
    let resumed = resume(Plan::Sealer, &paused, None, now()).unwrap();
    assert_eq!((resumed.failures, resumed.last_error, resumed.paused), (0, None, None));
}

#[test]
fn every_live_state_of_every_plan_has_work_and_terminal_states_have_none() {
    for plan in [Plan::Sealer, Plan::Snapup, Plan::Rebuild] {
        for state in plan.states() {
            assert_eq!(work(plan, *state).is_some(), !state.is_terminal(), "{plan} {state}");
        }
        assert_eq!(work(plan, State::Aborted), None);
    }
    assert_eq!(work(Plan::Sealer, State::PC1Done), Some(Work::Pod(Step::PC2)));
    assert_eq!(work(Plan::Sealer, State::PCSubmitted), Some(Work::Chain(ChainTask::WaitPreCommit)));
    assert_eq!(work(Plan::Snapup, State::TreeDBuilt), Some(Work::Pod(Step::SnapEncode)));
    assert_eq!(work(Plan::Rebuild, State::TreeDBuilt), Some(Work::Pod(Step::PC1)));
    assert!(!Step::C2.needs_sector_node() && Step::PC2.needs_sector_node());
}

#[test]
fn lotus_failure_states_map_to_a_sealer_state_with_work_and_a_level() {
    for failure in LotusFailure::ALL {
        match failure.handling() {
            Handling::Sealing { state, level } => {
                if state != State::Finished {
                    assert!(work(Plan::Sealer, state).is_some(), "{failure:?} maps to {state}, which has no work");
                }
                let record = SectorRecord { state, ..Default::default() };
                let (_, outcome) = on_error(&record, StepError::new(level, "x", "y"), &RetryPolicy::default(), now());
                let expected = match level {
                    ErrorLevel::Temporary => matches!(outcome, Outcome::Retry { .. }),
                    ErrorLevel::Permanent => outcome == Outcome::Paused,
                    ErrorLevel::Abort => outcome == Outcome::Aborted,
                };
                assert!(expected, "{failure:?}: {level} gave {outcome:?}");
            }
            Handling::Proving => assert!(matches!(failure, LotusFailure::Faulty | LotusFailure::FaultReported)),
        }
    }
    assert_eq!(
        LotusFailure::SealPreCommit2Failed.handling(),
        Handling::Sealing { state: State::PC1Done, level: ErrorLevel::Temporary }
    );
    assert_eq!(LotusFailure::DealsExpired.handling(), Handling::Sealing { state: State::Allocated, level: ErrorLevel::Abort });
}
