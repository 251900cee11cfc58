//! Registers a Node and keeps it Ready: the Node object with labels, taints and capacity, its
//! Ready condition, and its Lease in kube-node-lease, renewed every heartbeat.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client};
use serde_json::json;
use tracing::warn;

use super::config::{AgentConfig, NodeConfig};
use super::env::NodeFacts;
use super::volumes::NodeDisk;

const FIELD_MANAGER: &str = "sealing-node-agent";
const LEASE_NAMESPACE: &str = "kube-node-lease";
const LEASE_DURATION_SECONDS: u64 = 40;
/// The address every simulated node and pod reports: they all run on this machine.
pub const HOST_IP: &str = "127.0.0.1";

/// What the pod workers of one node share.
pub struct NodeContext {
    pub client: Client,
    pub node: NodeConfig,
    pub config: Arc<AgentConfig>,
    pub disk: NodeDisk,
    pub facts: NodeFacts,
    /// KUBERNETES_SERVICE_HOST/PORT and friends, as kubelet injects them.
    pub service_env: BTreeMap<String, String>,
    /// Set when this machine cannot create mount namespaces; every pod then fails with it.
    pub namespace_error: Option<String>,
    /// Publishes the pod Events kubelet would (Started, Killing, Failed, BackOff, ...).
    pub recorder: Recorder,
}

impl NodeContext {
    pub fn new(
        client: Client,
        config: Arc<AgentConfig>,
        node: NodeConfig,
        api_server: &http::Uri,
        namespace_error: Option<String>,
    ) -> Self {
        let disk = NodeDisk {
            root: config.root_dir.join(&node.name),
            pass_through: config.pass_through_paths.clone(),
        };
        let facts = NodeFacts {
            host_ip: HOST_IP.into(),
            pod_ip: HOST_IP.into(),
            allocatable: capacity(&node),
        };
        let host = api_server
            .host()
            .unwrap_or(HOST_IP)
            .trim_matches(['[', ']'])
            .to_owned();
        let port = api_server
            .port_u16()
            .unwrap_or(if api_server.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        let service_env = BTreeMap::from([
            ("KUBERNETES_SERVICE_HOST".to_owned(), host.clone()),
            ("KUBERNETES_SERVICE_PORT".to_owned(), port.to_string()),
            ("KUBERNETES_SERVICE_PORT_HTTPS".to_owned(), port.to_string()),
            ("KUBERNETES_PORT".to_owned(), format!("tcp://{host}:{port}")),
        ]);
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "sealing-node-agent".into(),
                instance: Some(node.name.clone()),
            },
        );
        NodeContext {
            recorder,
            client,
            node,
            config,
            disk,
            facts,
            service_env,
            namespace_error,
        }
    }

    /// Creates or updates the Node and its status.
    pub async fn register(&self) -> Result<(), kube::Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let mut labels = self.node.labels.clone();
        labels.insert("kubernetes.io/hostname".into(), self.node.name.clone());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        labels.insert(
            "kubernetes.io/arch".into(),
            std::env::consts::ARCH
                .replace("x86_64", "amd64")
                .replace("aarch64", "arm64"),
        );
        let node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node.name,
                "labels": labels,
                "annotations": {"sealing.filecoin.io/node-agent": "true"},
            },
            "spec": {"taints": self.node.taints},
        });
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        nodes
            .patch(&self.node.name, &pp, &Patch::Apply(&node))
            .await?;
        self.heartbeat_status(Timestamp::now()).await
    }

    async fn heartbeat_status(&self, since: Timestamp) -> Result<(), kube::Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let now = Time(Timestamp::now());
        let since = Time(since);
        let condition = |type_: &str, status: &str, reason: &str, message: &str| {
            json!({"type": type_, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": now, "lastTransitionTime": since})
        };
        let capacity = capacity(&self.node);
        let status = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node.name},
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "conditions": [
                    condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "node agent has sufficient memory available"),
                    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "node agent has no disk pressure"),
                    condition("PIDPressure", "False", "KubeletHasSufficientPID", "node agent has sufficient PID available"),
                    condition("Ready", "True", "KubeletReady", "sealing node agent is posting ready status"),
                ],
                "addresses": [
                    {"type": "InternalIP", "address": HOST_IP},
                    {"type": "Hostname", "address": self.node.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                "nodeInfo": {
                    "machineID": self.node.name,
                    "systemUUID": self.node.name,
                    "bootID": self.node.name,
                    "kernelVersion": kernel_version(),
                    "osImage": "sealing node agent",
                    "containerRuntimeVersion": concat!("sealing-node-agent://", env!("CARGO_PKG_VERSION")),
                    "kubeletVersion": concat!("v0.0.0-sealing-node-agent-", env!("CARGO_PKG_VERSION")),
                    "kubeProxyVersion": "",
                    "operatingSystem": "linux",
                    "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
                },
            },
        });
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        nodes
            .patch_status(&self.node.name, &pp, &Patch::Apply(&status))
            .await?;
        Ok(())
    }

    async fn renew_lease(&self) -> Result<(), kube::Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node_uid = nodes
            .get(&self.node.name)
            .await?
            .metadata
            .uid
            .unwrap_or_default();
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.node.name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.node.name, "uid": node_uid}],
            },
            "spec": {
                "holderIdentity": self.node.name,
                "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                "renewTime": MicroTime(Timestamp::now()),
            },
        });
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        leases
            .patch(&self.node.name, &pp, &Patch::Apply(&lease))
            .await?;
        Ok(())
    }

    /// Renews the Lease and the Ready condition forever.
    pub async fn heartbeat(self: Arc<Self>) {
        let since = Timestamp::now();
        let mut tick = tokio::time::interval(Duration::from_secs(self.config.heartbeat_seconds));
        loop {
            tick.tick().await;
            // Like kubelet, register again when someone deleted the Node.
            let nodes: Api<Node> = Api::all(self.client.clone());
            if let Ok(None) = nodes.get_opt(&self.node.name).await {
                warn!(node = %self.node.name, "node was deleted; registering it again");
                if let Err(e) = self.register().await {
                    warn!(node = %self.node.name, error = %e, "could not register the node again");
                }
            }
            if let Err(e) = self.renew_lease().await {
                warn!(node = %self.node.name, error = %e, "could not renew node lease");
            }
            if let Err(e) = self.heartbeat_status(since).await {
                warn!(node = %self.node.name, error = %e, "could not update node status");
            }
        }
    }
}

/// Configured capacity, with kubelet's default pod limit when none is given.
fn capacity(node: &NodeConfig) -> BTreeMap<String, Quantity> {
    let mut capacity = node.capacity.clone();
    capacity
        .entry("pods".into())
        .or_insert_with(|| Quantity("110".into()));
    capacity
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
