//! A real node: the kubelet and containerd of `e2e/nodes/up.sh` (the versions of
//! `e2e/control-plane/versions.env`) join the suite's control plane and run a pod, and
//! `e2e/nodes/down.sh` leaves nothing of the node on this machine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use sealing_e2e::e2e_tests;
use sealing_e2e::harness::node_agent::SHELL_IMAGE;
use sealing_e2e::harness::{Cluster, E2eTest, manifest_dir, wait};
use serde_json::{Value, json};

use crate::support::{create_pod, finished, process_exited, terminated};

pub fn tests() -> Vec<E2eTest> {
    // The node runs on this machine, next to the suite's control plane.
    e2e_tests![local_only: real_node_runs_a_pod_and_stops_without_leftovers]
}

/// Not a node agent's node name.
const NODE: &str = "e2e-real-1";
/// The real node's taint, which keeps every other test's pods off it.
const TAINT_KEY: &str = "sealing.filecoin.io/e2e-dedicated";
const TAINT_VALUE: &str = "real-node";

async fn real_node_runs_a_pod_and_stops_without_leftovers(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let state = cluster
        .control_plane_state_dir()
        .context("the suite started no local control plane")?;
    let versions = read_env(&manifest_dir().join("control-plane/versions.env"))?;
    let kubelet_version = versions
        .get("K8S_VERSION")
        .context("versions.env: K8S_VERSION")?;
    let containerd_version = versions
        .get("CONTAINERD_VERSION")
        .context("versions.env: CONTAINERD_VERSION")?;
    let before = HostState::read()?;

    let taint = format!("{TAINT_KEY}={TAINT_VALUE}:NoSchedule");
    let node_dir = script(&state, "up.sh", &[NODE, "--gpu", "1", "--taint", &taint]).await?;
    let mut guard = NodeGuard(Some(state.clone()));
    let node_env = read_env(&Path::new(&node_dir).join("node.env"))?;
    let field = |key: &str| {
        node_env
            .get(key)
            .cloned()
            .with_context(|| format!("node.env has no {key}"))
    };
    let (node_ip, bridge, cgroup, chain, shim_sockets) = (
        field("NODE_IP")?,
        field("NODE_BRIDGE")?,
        field("NODE_CGROUP")?,
        field("NODE_CHAIN")?,
        field("NODE_SHIM_SOCKETS")?,
    );

    // Ready, run by the kubelet and containerd this project built.
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let node = wait::wait_for(
        &nodes,
        NODE,
        Duration::from_secs(60),
        "the real node to be Ready",
        |n: Option<&Node>| n.is_some_and(wait::node_is_ready),
    )
    .await?;
    let runtime = format!(
        "containerd://{}",
        containerd_version.trim_start_matches('v')
    );
    let info = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .context("the node reports no nodeInfo")?;
    ensure!(
        info.kubelet_version == *kubelet_version && info.container_runtime_version == runtime,
        "kubelet {} with {}, expected {kubelet_version} with {runtime}",
        info.kubelet_version,
        info.container_runtime_version
    );
    let wide = cluster
        .kubectl()
        .args(["get", "node", NODE, "-o", "wide", "--no-headers"])
        .output()?;
    let wide = String::from_utf8_lossy(&wide.stdout).into_owned();
    let columns: Vec<&str> = wide.split_whitespace().collect();
    ensure!(
        columns.first() == Some(&NODE)
            && columns.get(1) == Some(&"Ready")
            && columns.contains(&kubelet_version.as_str())
            && columns.contains(&node_ip.as_str())
            && columns.last() == Some(&runtime.as_str()),
        "kubectl get node -o wide: {wide}"
    );
    let gpus = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| a.get("nvidia.com/gpu"))
        .map(|q| q.0.as_str());
    let taints: Vec<String> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{}={}:{}",
                t.key,
                t.value.as_deref().unwrap_or(""),
                t.effect
            )
        })
        .collect();
    ensure!(
        gpus == Some("1")
            && taints.contains(&taint)
            && taints
                .iter()
                .any(|t| t == "nvidia.com/gpu=present:NoSchedule")
            && node.labels().contains_key("nvidia.com/gpu.product"),
        "GPU node: allocatable nvidia.com/gpu {gpus:?}, taints {taints:?}, labels {:?}",
        node.labels()
    );

    // A container that exits with a code and a termination message, under real cgroup limits
    // and with the fake GPU it was given.
    let ns = cluster.namespace("real-node").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let script_text = r#"printf 'gpu=%s node=%s memory=%s\n' "$NVIDIA_VISIBLE_DEVICES" "$NODE_NAME" \
  "$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)" > /dev/termination-log
exit 3"#;
    create_pod(
        &pods,
        pod(
            "exits",
            script_text,
            json!({"limits": {"cpu": "100m", "memory": "32Mi", "nvidia.com/gpu": "1"}}),
        ),
    )
    .await?;
    let exited = finished(&pods, "exits", Duration::from_secs(120)).await?;
    ensure!(
        wait::pod_phase(&exited) == "Failed",
        "phase {}",
        wait::pod_phase(&exited)
    );
    let state_of = terminated(&exited)?;
    let container_id = exited
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.container_id.clone())
        .unwrap_or_default();
    let message = format!("gpu=fake-gpu-0 node={NODE} memory={}\n", 32 * 1024 * 1024);
    ensure!(
        state_of.exit_code == 3
            && state_of.signal.is_none()
            && state_of.reason.as_deref() == Some("Error")
            && state_of.message.as_deref() == Some(message.as_str())
            && container_id.starts_with("containerd://"),
        "terminated {state_of:?} (container {container_id}), expected exit code 3, reason Error, message {message:?}"
    );

    // A running pod for down.sh to stop: its processes and network namespace must go too.
    create_pod(
        &pods,
        pod(
            "runs",
            "trap 'exit 0' TERM; while :; do sleep 1; done",
            json!({"limits": {"cpu": "100m", "memory": "32Mi"}}),
        ),
    )
    .await?;
    wait::wait_for(
        &pods,
        "runs",
        Duration::from_secs(120),
        "pod to run",
        wait::pod_running,
    )
    .await?;
    let container_pids = pids_in_cgroup(&cgroup)?;
    ensure!(
        !container_pids.is_empty(),
        "no process in the node's cgroup {cgroup}"
    );
    let pod_netns: BTreeSet<String> = container_pids
        .iter()
        .filter_map(|pid| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    let host_netns = std::fs::read_link("/proc/self/ns/net")?
        .to_string_lossy()
        .into_owned();
    ensure!(
        pod_netns.iter().any(|n| *n != host_netns),
        "the pods share the host's network namespace: {pod_netns:?}"
    );

    guard.0 = None;
    script(&state, "down.sh", &[NODE]).await?;

    // Nothing of the node is left: processes, mounts, network namespaces, bridge and veths,
    // iptables chains, node address, cgroups, and its objects in the API server.
    let alive: Vec<u32> = container_pids
        .iter()
        .copied()
        .filter(|&p| !process_exited(p))
        .collect();
    ensure!(
        alive.is_empty(),
        "container processes {alive:?} survived down.sh"
    );
    let naming = processes_naming(&node_dir)?;
    ensure!(
        naming.is_empty(),
        "processes of {node_dir} survived: {naming:?}"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mounts: Vec<&str> = mountinfo
        .lines()
        .filter(|l| {
            let point = l.split(' ').nth(4).unwrap_or("");
            point == node_dir || point.starts_with(&format!("{node_dir}/"))
        })
        .collect();
    ensure!(mounts.is_empty(), "mounts left: {mounts:?}");
    let held: Vec<String> = pod_netns
        .iter()
        .filter(|n| **n != host_netns)
        .filter(|n| netns_in_use(n))
        .cloned()
        .collect();
    ensure!(
        held.is_empty(),
        "pod network namespaces {held:?} still exist"
    );
    let cgroups: Vec<PathBuf> = cgroup_mounts()?
        .into_iter()
        .map(|m| m.join(cgroup.trim_start_matches('/')))
        .filter(|p| p.exists())
        .collect();
    ensure!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    ensure!(
        !Path::new(&shim_sockets).exists(),
        "the shims' socket directory {shim_sockets} is still there"
    );
    let after = HostState::read()?;
    ensure!(
        !after.interfaces.contains(&bridge),
        "bridge {bridge} is still there"
    );
    ensure!(
        after.iptables.values().all(|rules| !rules.contains(&chain)),
        "iptables chain {chain} is still there"
    );
    ensure!(
        !after.lo_addresses.contains(&node_ip),
        "{node_ip} is still on lo"
    );
    ensure!(
        after == before,
        "the host differs from before the node started:\nbefore {before:#?}\nafter {after:#?}"
    );
    ensure!(
        nodes.get_opt(NODE).await?.is_none(),
        "Node {NODE} is still registered"
    );
    let bindings: Api<ClusterRoleBinding> = Api::all(cluster.client.clone());
    ensure!(
        bindings
            .get_opt(&format!("sealing-node-{NODE}"))
            .await?
            .is_none(),
        "the node's ClusterRoleBinding is still there"
    );
    let bound = Api::<Pod>::all(cluster.client.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={NODE}")))
        .await?;
    ensure!(
        bound.items.is_empty(),
        "pods still bound to {NODE}: {:?}",
        bound.items.iter().map(|p| p.name_any()).collect::<Vec<_>>()
    );
    Ok(())
}

/// A pod for the real node only: it tolerates the node's taints and selects it by name.
fn pod(name: &str, script: &str, resources: Value) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": NODE},
            "tolerations": [
                {"key": TAINT_KEY, "operator": "Equal", "value": TAINT_VALUE, "effect": "NoSchedule"},
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            ],
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "step",
                "image": SHELL_IMAGE,
                "command": ["/bin/sh", "-c", script],
                "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "resources": resources,
            }],
        },
    })
}

/// Runs `e2e/nodes/<name>` for the suite's control plane and returns its stdout.
async fn script(state: &Path, name: &'static str, args: &[&str]) -> anyhow::Result<String> {
    let state = state.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || run_script(&state, name, &args)).await?
}

fn run_script(state: &Path, name: &str, args: &[String]) -> anyhow::Result<String> {
    let path = manifest_dir().join("nodes").join(name);
    let out = Command::new(&path)
        .args(args)
        .env("SEALING_STATE_DIR", state)
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    if !out.status.success() {
        bail!(
            "{name} {} exited with {}:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Stops the node (of the control plane in this state directory) when the test ends early,
/// by an error or its timeout, so that a failure leaves nothing running either.
struct NodeGuard(Option<PathBuf>);

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if let Some(state) = self.0.take()
            && let Err(e) = run_script(&state, "down.sh", &[NODE.to_owned()])
        {
            eprintln!("e2e: stopping the real node: {e:#}");
        }
    }
}

/// `KEY=VALUE` lines (comments and blank lines skipped).
fn read_env(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// The mount points of the cgroup hierarchies.
fn cgroup_mounts() -> anyhow::Result<Vec<PathBuf>> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    Ok(mounts
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            matches!(fields.get(2), Some(&"cgroup") | Some(&"cgroup2"))
                .then(|| PathBuf::from(fields[1]))
        })
        .collect())
}

/// The processes in cgroup `cgroup` and below, in any hierarchy.
fn pids_in_cgroup(cgroup: &str) -> anyhow::Result<BTreeSet<u32>> {
    fn walk(dir: &Path, pids: &mut BTreeSet<u32>) {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), pids);
            }
        }
    }
    let mut pids = BTreeSet::new();
    for mount in cgroup_mounts()? {
        walk(&mount.join(cgroup.trim_start_matches('/')), &mut pids);
    }
    Ok(pids)
}

/// Processes whose command line names a path under `dir`.
fn processes_naming(dir: &str) -> anyhow::Result<Vec<String>> {
    let prefix = format!("{dir}/");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&prefix) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    Ok(found)
}

/// Whether network namespace `ns` (as `net:[inode]`) is held by a process or a mount.
fn netns_in_use(ns: &str) -> bool {
    let by_process = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read_link(e.path().join("ns/net")).is_ok_and(|l| l.to_string_lossy() == ns)
        });
    let by_mount = std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(3) == Some(ns)));
    by_process || by_mount
}

/// What a node could leave on the machine outside its directory. No other test changes it.
#[derive(Debug, PartialEq)]
struct HostState {
    interfaces: BTreeSet<String>,
    named_netns: BTreeSet<String>,
    /// `iptables -S` of each table.
    iptables: BTreeMap<String, String>,
    lo_addresses: String,
    ip_forward: String,
    var_lib_kubelet: bool,
}

impl HostState {
    fn read() -> anyhow::Result<Self> {
        let names = |dir: &str| -> BTreeSet<String> {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        };
        let mut iptables = BTreeMap::new();
        for table in ["nat", "filter", "mangle", "raw"] {
            iptables.insert(
                table.to_owned(),
                output("iptables", &["-w", "-t", table, "-S"])?,
            );
        }
        Ok(HostState {
            interfaces: names("/sys/class/net"),
            named_netns: names("/run/netns"),
            iptables,
            lo_addresses: output("ip", &["-o", "addr", "show", "dev", "lo"])?,
            ip_forward: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?,
            var_lib_kubelet: Path::new("/var/lib/kubelet").exists(),
        })
    }
}

fn output(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    ensure!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
