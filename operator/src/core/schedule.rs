//! The pool scheduler: which waiting steps start now, and on which node, without exceeding a
//! node's per-phase concurrency (lotus' PreCommit1 worker count, seed 000) or its GPUs. Sectors
//! stay on the node that holds their data; C2 may go to any node with a free GPU.

use std::collections::BTreeMap;

use super::work::Step;

/// Concurrency and GPUs of one phase, from the pool's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseLimit {
    pub per_node: u32,
    pub gpus: u32,
}

/// A node the pool may use, with what already runs there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeState {
    pub name: String,
    pub gpus: u32,
    pub gpus_in_use: u32,
    pub running: BTreeMap<Step, u32>,
    /// Sectors whose scratch data is on this node; new sectors go to the least loaded node.
    pub sectors: u32,
    /// The proof parameters are known to be in the node's cache.
    pub params_ready: bool,
}

/// A sector whose next step is a pod that may start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub sector: String,
    pub step: Step,
    /// The node holding the sector's data, once it has some.
    pub node: Option<String>,
    /// Earlier waits first among equal steps (e.g. the sector's creation order).
    pub queued: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub sector: String,
    pub step: Step,
    pub node: String,
}

/// Steps closer to the end of a plan go first: finishing a sector frees its scratch space and
/// brings its power on chain sooner, and a GPU step never waits behind a CPU step for a slot.
fn urgency(step: Step) -> u8 {
    match step {
        Step::C2 => 9,
        Step::SnapProve => 8,
        Step::C1 => 7,
        Step::Persist => 6,
        Step::PC2 => 5,
        Step::SnapEncode => 4,
        Step::CheckSealed => 4,
        Step::PC1 => 3,
        Step::TreeD => 2,
        Step::AddPiece => 1,
    }
}

/// Places as many waiting steps as the limits allow. Nodes are filled in order of least load so
/// work spreads out; a step whose sector's node is full waits rather than moving its data.
pub fn schedule(
    nodes: &[NodeState],
    limits: &dyn Fn(Step) -> PhaseLimit,
    waiting: &[Waiting],
) -> Vec<Placement> {
    let mut nodes: Vec<NodeState> = nodes.to_vec();
    let mut queue: Vec<&Waiting> = waiting.iter().collect();
    queue.sort_by(|a, b| urgency(b.step).cmp(&urgency(a.step)).then(a.queued.cmp(&b.queued)));

    let mut placed = Vec::new();
    for item in queue {
        let limit = limits(item.step);
        let fits = |n: &NodeState| {
            n.running.get(&item.step).copied().unwrap_or(0) < limit.per_node
                && n.gpus.saturating_sub(n.gpus_in_use) >= limit.gpus
                && (n.params_ready || !item.step.needs_params())
        };
        let chosen = match (&item.node, item.step.needs_sector_node()) {
            (Some(home), true) => nodes.iter().position(|n| &n.name == home && fits(n)),
            (home, _) => {
                let home_fits = home.as_ref().and_then(|h| nodes.iter().position(|n| &n.name == h && fits(n)));
                home_fits.or_else(|| {
                    nodes
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| fits(n))
                        .min_by_key(|(_, n)| {
                            let running = n.running.values().sum::<u32>();
                            // A new sector's data stays where it starts, so weigh data first;
                            // C2 moves no data, so weigh running pods.
                            let load = if home.is_none() { (n.sectors, running) } else { (running, n.sectors) };
                            (load, n.name.clone())
                        })
                        .map(|(i, _)| i)
                })
            }
        };
        if let Some(index) = chosen {
            let node = &mut nodes[index];
            *node.running.entry(item.step).or_default() += 1;
            node.gpus_in_use += limit.gpus;
            if item.node.is_none() {
                node.sectors += 1;
            }
            placed.push(Placement { sector: item.sector.clone(), step: item.step, node: node.name.clone() });
        }
    }
    placed
}

/// How many committed-capacity sectors the pledge loop creates now to keep `target` in flight.
pub fn pledge_shortfall(in_flight: u32, target: u32) -> u32 {
    target.saturating_sub(in_flight)
}
