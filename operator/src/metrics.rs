//! Prometheus metrics, served at `/metrics` beside the health endpoints: how often the operator
//! calls the chain node and which messages it sends (what an operator of venus or lotus watches
//! per component, seed 001), sectors per state, and how window PoSt deadlines end.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use filecoin_chain::client::CallObserver;
use filecoin_chain::methods::MinerMethod;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::Sector;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: &'static str,
}

/// Actor methods by name; a number the chain crate does not know is its own label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

impl MethodLabels {
    /// The miner method's name, or its number if it is not one the operator sends.
    fn of(method: u64) -> Self {
        Self { method: MinerMethod::from_number(method).map_or_else(|| method.to_string(), |m| format!("{m:?}")) }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

type Seconds = Family<RpcLabels, Histogram, fn() -> Histogram>;

/// The operator's own counters; sectors per state are read from the cache at each scrape.
#[derive(Debug)]
pub struct Metrics {
    calls: Family<CallLabels, Counter>,
    call_seconds: Seconds,
    messages: Family<MethodLabels, Counter>,
    replaced: Family<MethodLabels, Counter>,
    deadlines: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        fn buckets() -> Histogram {
            Histogram::new(exponential_buckets(0.005, 4.0, 8))
        }
        Self {
            calls: Family::default(),
            call_seconds: Family::new_with_constructor(buckets),
            messages: Family::default(),
            replaced: Family::default(),
            deadlines: Family::default(),
        }
    }
}

impl Metrics {
    /// A message pushed to the node (again after a crash counts again: the node answers with the
    /// message it signed the first time).
    pub fn message_pushed(&self, method: u64) {
        self.messages.get_or_create(&MethodLabels::of(method)).inc();
    }

    /// A message the chain did not take, replaced with a higher fee.
    pub fn message_replaced(&self, method: u64) {
        self.replaced.get_or_create(&MethodLabels::of(method)).inc();
    }

    /// A window PoSt deadline instance that ended `Proven` or `Missed`.
    pub fn deadline_ended(&self, result: &'static str) {
        self.deadlines.get_or_create(&ResultLabels { result }).inc();
    }

    /// Everything registered for `/metrics`.
    pub fn registry(self: &Arc<Self>, sectors: Store<Sector>) -> Registry {
        let mut registry = Registry::with_prefix("sealing");
        registry.register("chain_requests", "JSON-RPC calls to the chain node, by method and outcome", self.calls.clone());
        registry.register("chain_request_seconds", "Duration of JSON-RPC calls to the chain node", self.call_seconds.clone());
        registry.register("chain_messages_pushed", "Messages pushed to the chain node, by actor method", self.messages.clone());
        registry.register("chain_messages_replaced", "Messages replaced with a higher fee after the chain did not take them, by actor method", self.replaced.clone());
        registry.register("proving_deadlines", "Window PoSt deadline instances that ended, by result", self.deadlines.clone());
        registry.register_collector(Box::new(SectorStates(sectors)));
        registry
    }
}

impl CallObserver for Metrics {
    fn observe(&self, method: &'static str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.calls.get_or_create(&CallLabels { method, outcome }).inc();
        self.call_seconds.get_or_create(&RpcLabels { method }).observe(elapsed.as_secs_f64());
    }
}

/// `sealing_sectors{namespace, pool, state}`, counted from the operator's cache at each scrape.
struct SectorStates(Store<Sector>);

impl fmt::Debug for SectorStates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SectorStates")
    }
}

impl Collector for SectorStates {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut counts: BTreeMap<(String, String, String), i64> = BTreeMap::new();
        for sector in self.0.state() {
            let state = sector.status.as_ref().map(|s| s.record.state.to_string()).unwrap_or_else(|| "Empty".into());
            *counts.entry((sector.namespace().unwrap_or_default(), sector.spec.pool.clone(), state)).or_default() += 1;
        }
        let mut family = encoder.encode_descriptor("sectors", "Sectors by namespace, pool and state", None, MetricType::Gauge)?;
        for ((namespace, pool, state), n) in counts {
            let labels = [("namespace", namespace), ("pool", pool), ("state", state)];
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The registry in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector::store;

    use super::*;

    #[test]
    fn calls_messages_and_deadlines_are_counted_by_label() {
        let metrics = Arc::new(Metrics::default());
        metrics.observe("ChainHead", true, Duration::from_millis(3));
        metrics.observe("ChainHead", true, Duration::from_millis(4));
        metrics.observe("MpoolPushMessage", false, Duration::from_millis(20));
        metrics.message_pushed(28);
        metrics.message_pushed(99);
        metrics.message_replaced(5);
        metrics.deadline_ended("Proven");
        let (reader, _writer) = store::<Sector>();
        let text = encode(&metrics.registry(reader)).unwrap();
        for line in [
            r#"sealing_chain_requests_total{method="ChainHead",outcome="ok"} 2"#,
            r#"sealing_chain_requests_total{method="MpoolPushMessage",outcome="error"} 1"#,
            r#"sealing_chain_request_seconds_count{method="ChainHead"} 2"#,
            r#"sealing_chain_messages_pushed_total{method="PreCommitSectorBatch2"} 1"#,
            r#"sealing_chain_messages_pushed_total{method="99"} 1"#,
            r#"sealing_chain_messages_replaced_total{method="SubmitWindowedPoSt"} 1"#,
            r#"sealing_proving_deadlines_total{result="Proven"} 1"#,
            "# TYPE sealing_sectors gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
