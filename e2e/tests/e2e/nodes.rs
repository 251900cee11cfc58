//! The node agent's Nodes: registration, capacity, Ready heartbeats, and what happens to a
//! running pod when the agent crashes and comes back; kwok's fake Nodes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};
use nix::unistd::{Gid, Uid};
use sealing_e2e::e2e_tests;
use sealing_e2e::harness::node_agent::{CPU_NODE, GPU_NODE, SHELL_IMAGE};
use sealing_e2e::harness::{Cluster, E2eTest, NodeAgentProcess, wait};
use serde_json::json;

use crate::support::{create_pod, process_exited, read_pid, terminated};

pub fn tests() -> Vec<E2eTest> {
    // They look at the agent's own nodes, disks and processes, or need the local kwok.
    e2e_tests![
        local_only: nodes_are_ready_with_gpu_capacity_and_renewed_leases,
        slow_agent_crash_fails_running_pod_and_kills_it,
        kwok_fake_gpu_nodes_are_ready_and_take_pods,
        window_post_priority_class_preempts_a_sealing_pod_holding_the_gpu,
        agent_without_mount_namespaces_fails_pods_instead_of_running_them,
    ]
}

async fn nodes_are_ready_with_gpu_capacity_and_renewed_leases(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let gpu = nodes.get(GPU_NODE).await?;
    let cpu = nodes.get(CPU_NODE).await?;
    ensure!(
        wait::node_is_ready(&gpu) && wait::node_is_ready(&cpu),
        "both nodes must be Ready"
    );
    let gpus = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| a.get("nvidia.com/gpu"))
            .map(|q| q.0.clone())
    };
    ensure!(
        gpus(&gpu).as_deref() == Some("1"),
        "gpu-1 allocatable nvidia.com/gpu = {:?}",
        gpus(&gpu)
    );
    ensure!(
        gpus(&cpu).is_none(),
        "cpu-1 must have no GPUs, has {:?}",
        gpus(&cpu)
    );
    ensure!(
        gpu.labels()
            .get("nvidia.com/gpu.product")
            .is_some_and(|p| p.contains("A100")),
        "gpu-1 carries GPU Feature Discovery labels"
    );
    let taints = gpu
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    ensure!(
        taints
            .iter()
            .any(|t| t.key == "nvidia.com/gpu" && t.effect == "NoSchedule"),
        "gpu-1 taints {taints:?}"
    );

    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "kube-node-lease");
    let first = wait::wait_for(
        &leases,
        GPU_NODE,
        Duration::from_secs(30),
        "node lease",
        |l: Option<&Lease>| {
            l.is_some_and(|l| l.spec.as_ref().is_some_and(|s| s.renew_time.is_some()))
        },
    )
    .await?;
    let renewed_at = |l: &Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.renew_time.clone())
            .map(|t| t.0)
    };
    let before = renewed_at(&first);
    ensure!(
        first
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(GPU_NODE),
        "lease holder {:?}",
        first.spec
    );
    wait::wait_for(
        &leases,
        GPU_NODE,
        Duration::from_secs(30),
        "the lease to be renewed",
        |l: Option<&Lease>| l.is_some_and(|l| renewed_at(l) > before),
    )
    .await?;
    Ok(())
}

/// Agent crash (SIGKILL) while a pod runs: the orphaned process survives the crash, and the
/// restarted agent kills it and reports the pod Failed instead of running it again.
async fn slow_agent_crash_fails_running_pod_and_kills_it(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    const NODE: &str = "crash-1";
    let dir = cluster.run_dir.join("crash-agent");
    let root = dir.join("nodes");
    // Its own agent and a dedicated node, so the crash touches no other test.
    let config = json!({
        "rootDir": root,
        "heartbeatSeconds": 5,
        "nodes": [{
            "name": NODE,
            "taints": [{"key": "sealing.filecoin.io/e2e-dedicated", "value": "crash", "effect": "NoSchedule"}],
            "capacity": {"cpu": "2", "memory": "4Gi"},
        }],
        "images": [{"image": "local/shell", "entrypoint": ["/bin/sh"]}],
    });
    let mut agent = NodeAgentProcess::start(&cluster.binaries, &cluster.kubeconfig, &config, &dir)?;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    wait::wait_for(
        &nodes,
        NODE,
        Duration::from_secs(60),
        "node to be Ready",
        |n: Option<&Node>| n.is_some_and(wait::node_is_ready),
    )
    .await?;

    let ns = cluster.namespace("crash").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    create_pod(
        &pods,
        json!({
            "metadata": {"name": "long-step"},
            "spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"kubernetes.io/hostname": NODE},
                "tolerations": [{"key": "sealing.filecoin.io/e2e-dedicated", "operator": "Equal", "value": "crash", "effect": "NoSchedule"}],
                "containers": [{
                    "name": "pc1",
                    "image": SHELL_IMAGE,
                    // `$$$$` is the shell's `$$`: Kubernetes expands `$$` to `$`.
                    "command": ["/bin/sh", "-c", "echo $$$$ > /mnt/e2e/state/pid; exec sleep 1000"],
                    "volumeMounts": [{"name": "state", "mountPath": "/mnt/e2e/state"}],
                }],
                "volumes": [{"name": "state", "hostPath": {"path": "/var/lib/sealing/crash"}}],
            }
        }),
    )
    .await?;
    wait::wait_for(
        &pods,
        "long-step",
        Duration::from_secs(60),
        "pod to run",
        wait::pod_running,
    )
    .await?;
    let pid_file = root.join(NODE).join("var/lib/sealing/crash/pid");
    let pid = read_pid(&pid_file).await?;

    agent.kill();
    ensure!(
        !process_exited(pid),
        "the container must outlive the crashed agent"
    );

    let mut agent = NodeAgentProcess::start(&cluster.binaries, &cluster.kubeconfig, &config, &dir)?;
    let pod = wait::wait_for(
        &pods,
        "long-step",
        Duration::from_secs(60),
        "pod to be marked Failed",
        wait::pod_finished,
    )
    .await?;
    let t = terminated(&pod)?;
    ensure!(
        wait::pod_phase(&pod) == "Failed",
        "pod ended {:?}",
        wait::pod_phase(&pod)
    );
    ensure!(
        t.exit_code == 137 && t.reason.as_deref() == Some("ContainerStatusUnknown"),
        "terminated {t:?}"
    );
    ensure!(
        process_exited(pid),
        "the restarted agent must kill the orphan {pid} before reporting the pod"
    );

    // The restarted agent still completes deletions.
    let uid = pod.uid().unwrap_or_default();
    pods.delete("long-step", &DeleteParams::default()).await?;
    wait::wait_deleted(&pods, "long-step", &uid, Duration::from_secs(60)).await?;
    agent.stop()?;
    nodes
        .delete(NODE, &DeleteParams::default())
        .await
        .context("removing the crash node")?;
    Ok(())
}

/// kwok (started with the local control plane) keeps fake GPU Nodes Ready and runs the pods
/// bound to them on paper, which scale tests use to simulate clusters larger than this machine.
async fn kwok_fake_gpu_nodes_are_ready_and_take_pods(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let names: Vec<String> = (0..3).map(|i| format!("kwok-gpu-{i}")).collect();
    for name in &names {
        let node: Node = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"type": "kwok", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            },
            "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]},
            "status": {
                "capacity": {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": "8"},
                "allocatable": {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": "8"},
            },
        }))?;
        nodes
            .create(&Default::default(), &node)
            .await
            .with_context(|| format!("creating {name}"))?;
    }
    for name in &names {
        wait::wait_for(
            &nodes,
            name,
            Duration::from_secs(60),
            "kwok node to be Ready",
            |n: Option<&Node>| n.is_some_and(wait::node_is_ready),
        )
        .await?;
    }
    let ns = cluster.namespace("kwok").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    create_pod(
        &pods,
        json!({
            "metadata": {"name": "c2-on-h100"},
            "spec": {
                "nodeSelector": {"type": "kwok"},
                "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [{"name": "c2", "image": "sealer-pod:dev", "resources": {"limits": {"nvidia.com/gpu": "8"}}}],
            }
        }),
    )
    .await?;
    let pod = wait::wait_for(
        &pods,
        "c2-on-h100",
        Duration::from_secs(60),
        "pod to run on a kwok node",
        wait::pod_running,
    )
    .await?;
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    ensure!(names.contains(&node), "pod placed on {node}");
    for name in &names {
        nodes.delete(name, &DeleteParams::default()).await?;
    }
    Ok(())
}

/// With the shipped `sealing-window-post` PriorityClass, kube-scheduler evicts a sealing pod that
/// holds a node's only GPU to place a window PoSt pod there, instead of leaving it Pending while
/// the deadline runs out. A kwok node keeps the test's GPU apart from the sealing tests' one.
async fn window_post_priority_class_preempts_a_sealing_pod_holding_the_gpu(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    const NODE: &str = "kwok-one-gpu";
    let manifest = Cluster::repo_root().join("manifests/priorityclass.yaml");
    let applied = cluster.kubectl().args(["apply", "-f"]).arg(&manifest).output()?;
    ensure!(applied.status.success(), "kubectl apply {}: {}", manifest.display(), String::from_utf8_lossy(&applied.stderr));

    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": NODE, "annotations": {"kwok.x-k8s.io/node": "fake"}, "labels": {"type": NODE}},
        "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "1"},
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "1"},
        },
    }))?;
    nodes.create(&Default::default(), &node).await.context("creating the kwok node")?;
    wait::wait_for(&nodes, NODE, Duration::from_secs(60), "kwok node to be Ready", |n: Option<&Node>| n.is_some_and(wait::node_is_ready)).await?;

    let ns = cluster.namespace("preempt").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let gpu_pod = |name: &str, priority: Option<&str>| {
        json!({
            "metadata": {"name": name},
            "spec": {
                "nodeSelector": {"type": NODE},
                "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
                "priorityClassName": priority,
                "containers": [{"name": "step", "image": "sealer-pod:dev", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
            }
        })
    };
    let c2 = create_pod(&pods, gpu_pod("c2", None)).await?;
    wait::wait_for(&pods, "c2", Duration::from_secs(60), "the sealing pod to run", wait::pod_running).await?;
    let post = create_pod(&pods, gpu_pod("window-post", Some("sealing-window-post"))).await?;
    ensure!(post.spec.as_ref().and_then(|s| s.priority).is_some_and(|p| p == 1_000_000), "the PriorityClass gave the pod its priority: {:?}", post.spec.and_then(|s| s.priority));

    wait::wait_deleted(&pods, "c2", &c2.uid().unwrap_or_default(), Duration::from_secs(120)).await?;
    let post = wait::wait_for(&pods, "window-post", Duration::from_secs(120), "the window PoSt pod to run", wait::pod_running).await?;
    ensure!(post.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE), "placed on the GPU it preempted: {:?}", post.spec.and_then(|s| s.node_name));
    nodes.delete(NODE, &DeleteParams::default()).await?;
    Ok(())
}

/// An agent that cannot isolate containers (not root) must say so in every pod's status
/// rather than run the pod without its volumes.
async fn agent_without_mount_namespaces_fails_pods_instead_of_running_them(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    const NODE: &str = "unprivileged-1";
    const NOBODY: u32 = 65534;
    let dir = cluster.run_dir.join("unprivileged-agent");
    std::fs::create_dir_all(&dir)?;
    nix::unistd::chown(
        &dir,
        Some(Uid::from_raw(NOBODY)),
        Some(Gid::from_raw(NOBODY)),
    )?;
    let config = json!({
        "rootDir": dir.join("nodes"),
        "heartbeatSeconds": 5,
        "nodes": [{
            "name": NODE,
            "taints": [{"key": "sealing.filecoin.io/e2e-dedicated", "value": "unprivileged", "effect": "NoSchedule"}],
            "capacity": {"cpu": "2", "memory": "4Gi"},
        }],
        "images": [{"image": "local/shell", "entrypoint": ["/bin/sh"]}],
    });
    let mut agent = NodeAgentProcess::start_as(
        &cluster.binaries,
        &cluster.kubeconfig,
        &config,
        &dir,
        Some(NOBODY),
    )?;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    wait::wait_for(
        &nodes,
        NODE,
        Duration::from_secs(60),
        "node to be Ready",
        |n: Option<&Node>| n.is_some_and(wait::node_is_ready),
    )
    .await?;
    let ns = cluster.namespace("unprivileged").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    create_pod(
        &pods,
        json!({
            "metadata": {"name": "step"},
            "spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"kubernetes.io/hostname": NODE},
                "tolerations": [{"key": "sealing.filecoin.io/e2e-dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [{"name": "c", "image": SHELL_IMAGE, "command": ["/bin/true"]}],
            }
        }),
    )
    .await?;
    let pod = wait::wait_for(
        &pods,
        "step",
        Duration::from_secs(60),
        "pod to fail",
        wait::pod_finished,
    )
    .await?;
    let status = pod.status.clone().unwrap_or_default();
    ensure!(
        wait::pod_phase(&pod) == "Failed",
        "pod ended {:?}",
        wait::pod_phase(&pod)
    );
    ensure!(
        status.reason.as_deref() == Some("CreateContainerError"),
        "reason {:?}",
        status.reason
    );
    let message = status.message.unwrap_or_default();
    ensure!(
        message.contains("mount namespace") && message.contains("root"),
        "message {message:?}"
    );
    agent.stop()?;
    nodes.delete(NODE, &DeleteParams::default()).await?;
    Ok(())
}
