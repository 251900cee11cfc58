//! The pool scheduler: per-node per-phase concurrency, GPUs, data locality and order.

use std::collections::BTreeMap;

use sealing_operator::core::schedule::{NodeState, PhaseLimit, Placement, Waiting, pledge_shortfall, schedule};
use sealing_operator::core::work::Step;

fn node(name: &str, gpus: u32) -> NodeState {
    NodeState { name: name.into(), gpus, params_ready: true, ..Default::default() }
}

fn waiting(sector: &str, step: Step, node: Option<&str>, queued: u64) -> Waiting {
    Waiting { sector: sector.into(), step, node: node.map(Into::into), queued }
}

/// PC1 one per node (like FORCE_BUILDER_P1_WORKERS=1), PC2/C2 two per node with one GPU each.
fn limits(step: Step) -> PhaseLimit {
    match step {
        Step::PC1 => PhaseLimit { per_node: 1, gpus: 0 },
        Step::PC2 | Step::C2 => PhaseLimit { per_node: 2, gpus: 1 },
        _ => PhaseLimit { per_node: 4, gpus: 0 },
    }
}

fn placed(p: &[Placement]) -> Vec<(String, Step, String)> {
    p.iter().map(|p| (p.sector.clone(), p.step, p.node.clone())).collect()
}

#[test]
fn pc1_concurrency_one_starts_one_of_three_sectors_on_their_node() {
    let nodes = [node("a", 1)];
    let queue: Vec<_> = (0..3).map(|i| waiting(&format!("s{i}"), Step::PC1, Some("a"), i)).collect();
    assert_eq!(placed(&schedule(&nodes, &limits, &queue)), [("s0".into(), Step::PC1, "a".into())]);

    let busy = [NodeState { running: BTreeMap::from([(Step::PC1, 1)]), ..node("a", 1) }];
    assert!(schedule(&busy, &limits, &queue).is_empty(), "a running PC1 fills the only slot");
}

#[test]
fn gpu_steps_never_exceed_the_gpus_a_node_has() {
    let nodes = [node("a", 1)];
    let queue = [waiting("s0", Step::PC2, Some("a"), 0), waiting("s1", Step::PC2, Some("a"), 1)];
    assert_eq!(schedule(&nodes, &limits, &queue).len(), 1, "two PC2 slots but one GPU");
    assert!(schedule(&[node("cpu", 0)], &limits, &queue).is_empty());
}

#[test]
fn c2_goes_to_another_gpu_node_when_its_own_is_busy_but_pc2_waits_for_its_data() {
    let nodes = [NodeState { gpus_in_use: 1, ..node("a", 1) }, node("b", 1)];
    let queue = [waiting("s0", Step::C2, Some("a"), 0), waiting("s1", Step::PC2, Some("a"), 1)];
    assert_eq!(placed(&schedule(&nodes, &limits, &queue)), [("s0".into(), Step::C2, "b".into())]);
}

#[test]
fn c2_prefers_the_sector_node_when_it_has_room() {
    let nodes = [node("a", 1), node("b", 1)];
    let queue = [waiting("s0", Step::C2, Some("b"), 0)];
    assert_eq!(placed(&schedule(&nodes, &limits, &queue)), [("s0".into(), Step::C2, "b".into())]);
}

#[test]
fn later_steps_go_first_when_they_compete_for_a_gpu() {
    let nodes = [node("a", 1)];
    let queue = [waiting("early", Step::PC2, Some("a"), 0), waiting("late", Step::C2, Some("a"), 5)];
    assert_eq!(placed(&schedule(&nodes, &limits, &queue)), [("late".into(), Step::C2, "a".into())]);
}

#[test]
fn new_sectors_spread_over_the_least_loaded_nodes() {
    let nodes = [NodeState { sectors: 3, ..node("a", 0) }, node("b", 0), node("c", 0)];
    let queue: Vec<_> = (0..3).map(|i| waiting(&format!("s{i}"), Step::AddPiece, None, i)).collect();
    let nodes_used: Vec<String> = schedule(&nodes, &limits, &queue).into_iter().map(|p| p.node).collect();
    assert_eq!(nodes_used, ["b", "c", "b"]);
}

#[test]
fn a_cpu_only_pool_runs_gpu_phases_with_zero_gpus() {
    let cpu_only = |step: Step| PhaseLimit { gpus: 0, ..limits(step) };
    let queue = [waiting("s0", Step::PC2, Some("cpu"), 0)];
    assert_eq!(schedule(&[node("cpu", 0)], &cpu_only, &queue).len(), 1);
}

#[test]
fn a_sector_whose_node_is_gone_waits() {
    let queue = [waiting("s0", Step::PC1, Some("gone"), 0)];
    assert!(schedule(&[node("a", 1)], &limits, &queue).is_empty());
}

#[test]
fn pledge_loop_fills_up_to_the_target() {
    assert_eq!(pledge_shortfall(1, 3), 2);
    assert_eq!(pledge_shortfall(5, 3), 0);
}

#[test]
fn steps_that_load_parameters_wait_for_a_node_that_has_them() {
    let nodes = [NodeState { params_ready: false, ..node("a", 1) }, NodeState { params_ready: false, ..node("b", 1) }];
    let queue = [waiting("s0", Step::C2, Some("a"), 0), waiting("s1", Step::PC2, Some("a"), 1)];
    assert_eq!(placed(&schedule(&nodes, &limits, &queue)), [("s1".into(), Step::PC2, "a".into())]);
    let ready = [nodes[0].clone(), node("b", 1)];
    assert_eq!(placed(&schedule(&ready, &limits, &queue[..1])), [("s0".into(), Step::C2, "b".into())]);
}
