//! Pods run by the node agent under the real scheduler: termination messages, exit codes, GPU
//! placement, deletion, volumes and users.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::DeleteParams;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use sealing_e2e::e2e_tests;
use sealing_e2e::harness::node_agent::{GPU_NODE, SHELL_IMAGE};
use sealing_e2e::harness::{Cluster, E2eTest, wait};
use serde_json::json;

use crate::support::{create_pod, finished, process_exited, read_pid, terminated, wait_for_event};

pub fn tests() -> Vec<E2eTest> {
    let mut tests = e2e_tests![
        pod_writing_a_termination_message_succeeds_with_it,
        failing_command_fails_the_pod_with_its_exit_code,
        gpu_pod_is_scheduled_only_to_the_gpu_node,
        deleting_a_running_pod_kills_its_process,
        container_sees_read_only_volumes_as_its_user,
        on_failure_pod_is_restarted_until_it_succeeds,
        missing_command_fails_the_pod_with_a_start_error,
    ];
    // A real kubelet keeps retrying the pull (ImagePullBackOff); the agent fails the pod.
    tests.extend(e2e_tests![
        local_only: unknown_image_fails_the_pod_naming_the_image,
        // Uses the host's curl, which the kind shell image (busybox) lacks.
        service_account_token_lets_the_pod_use_the_api_under_rbac,
    ]);
    tests
}

const FINISH: Duration = Duration::from_secs(120);

async fn pod_writing_a_termination_message_succeeds_with_it(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = cluster.namespace("message").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let scratch = format!("/var/lib/sealing/e2e/{ns}");
    let script = r#"set -e
echo sealed > /mnt/e2e/scratch/out
echo tmp > /mnt/e2e/scratch/tmp/file
printf '{"pod":"%s","node":"%s","sector":"%s","memMi":"%s","cwd":"%s","expanded":"%s"}' \
  "$POD_NAME" "$NODE_NAME" "$SECTOR" "$MEM_MI" "$(pwd)" "$1" > /dev/termination-log"#;
    create_pod(
        &pods,
        json!({
            "metadata": {"name": "message", "labels": {"sealing.filecoin.io/sector": "42"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "step",
                    "image": SHELL_IMAGE,
                    "command": ["/bin/sh", "-c", script, "sh"],
                    "args": ["sector-$(SECTOR)"],
                    "workingDir": "/mnt/e2e/scratch",
                    "env": [
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        {"name": "SECTOR", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['sealing.filecoin.io/sector']"}}},
                        {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    ],
                    "resources": {"limits": {"memory": "64Mi", "cpu": "100m"}},
                    "volumeMounts": [
                        {"name": "scratch", "mountPath": "/mnt/e2e/scratch"},
                        {"name": "tmp", "mountPath": "/mnt/e2e/scratch/tmp"},
                    ],
                }],
                "volumes": [
                    {"name": "scratch", "hostPath": {"path": scratch, "type": "DirectoryOrCreate"}},
                    {"name": "tmp", "emptyDir": {}},
                ],
            }
        }),
    )
    .await?;
    let pod = finished(&pods, "message", FINISH).await?;
    let t = terminated(&pod)?;
    ensure!(
        wait::pod_phase(&pod) == "Succeeded",
        "pod ended {:?}: {t:?}",
        wait::pod_phase(&pod)
    );
    ensure!(
        t.exit_code == 0 && t.reason.as_deref() == Some("Completed"),
        "terminated state {t:?}"
    );
    let message: serde_json::Value = serde_json::from_str(t.message.as_deref().unwrap_or_default())
        .context("termination message is JSON")?;
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    ensure!(
        cluster.node_gpus(&node).await? == 0,
        "a pod without the GPU toleration must avoid the tainted GPU node, got {node}"
    );
    let expected = json!({"pod": "message", "node": node, "sector": "42", "memMi": "64",
                          "cwd": "/mnt/e2e/scratch", "expanded": "sector-42"});
    ensure!(
        message == expected,
        "termination message {message} != {expected}"
    );

    if let Some(out) = cluster.node_path(&node, &format!("{scratch}/out")) {
        let written =
            std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
        ensure!(
            written == "sealed\n",
            "hostPath file on the node's disk holds {written:?}"
        );
        let gpu_copy = cluster
            .node_path(GPU_NODE, &format!("{scratch}/out"))
            .unwrap_or_default();
        ensure!(
            !gpu_copy.exists(),
            "nodes must not share hostPath directories"
        );
        ensure!(
            !Path::new(&scratch).exists(),
            "the hostPath must not be written on the host's own /"
        );
    }
    Ok(())
}

async fn failing_command_fails_the_pod_with_its_exit_code(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = cluster.namespace("failing").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    create_pod(
        &pods,
        json!({
            "metadata": {"name": "failing"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "step",
                    "image": SHELL_IMAGE,
                    "command": ["/bin/sh", "-c", "echo 'pc1: sector 42: out of space' >&2; exit 3"],
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }],
            }
        }),
    )
    .await?;
    let pod = finished(&pods, "failing", FINISH).await?;
    let t = terminated(&pod)?;
    ensure!(
        wait::pod_phase(&pod) == "Failed",
        "pod ended {:?}",
        wait::pod_phase(&pod)
    );
    ensure!(t.exit_code == 3, "exit code {} (want 3)", t.exit_code);
    ensure!(
        t.reason.as_deref() == Some("Error"),
        "reason {:?}",
        t.reason
    );
    let message = t.message.unwrap_or_default();
    ensure!(
        message.contains("pc1: sector 42: out of space"),
        "message from the log tail: {message:?}"
    );
    Ok(())
}

async fn gpu_pod_is_scheduled_only_to_the_gpu_node(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = cluster.namespace("gpu").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let gpu_pod = |name: &str, gpus: u32| {
        json!({
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [{
                    "name": "c2",
                    "image": SHELL_IMAGE,
                    "command": ["/bin/sh", "-c", "printf %s \"$NODE_NAME\" > /dev/termination-log"],
                    "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                    "resources": {"limits": {"nvidia.com/gpu": gpus.to_string()}},
                }],
            }
        })
    };
    create_pod(&pods, gpu_pod("one-gpu", 1)).await?;
    create_pod(&pods, gpu_pod("two-gpus", 2)).await?;

    let pod = finished(&pods, "one-gpu", FINISH).await?;
    let spec = pod.spec.clone().unwrap_or_default();
    let node = spec.node_name.clone().unwrap_or_default();
    ensure!(
        cluster.node_gpus(&node).await? >= 1,
        "GPU pod placed on {node}, which has no GPU"
    );
    if cluster.is_local() {
        ensure!(node == GPU_NODE, "GPU pod placed on {node}");
    }
    ensure!(
        spec.scheduler_name.as_deref() == Some("default-scheduler"),
        "scheduler {:?}",
        spec.scheduler_name
    );
    let scheduled = condition(&pod, "PodScheduled");
    ensure!(
        scheduled.as_ref().map(|c| c.0.as_str()) == Some("True"),
        "PodScheduled {scheduled:?}"
    );
    ensure!(
        wait::pod_phase(&pod) == "Succeeded",
        "GPU pod ended {:?}",
        wait::pod_phase(&pod)
    );
    let message = terminated(&pod)?.message.unwrap_or_default();
    ensure!(message == node, "the GPU pod ran on {message:?}");

    // No node has two GPUs: the scheduler must refuse, naming the resource.
    let unschedulable = wait::wait_for(
        &pods,
        "two-gpus",
        FINISH,
        "PodScheduled=False",
        |p: Option<&Pod>| {
            p.and_then(|p| condition(p, "PodScheduled"))
                .is_some_and(|(status, reason, _)| status == "False" && reason == "Unschedulable")
        },
    )
    .await?;
    let (_, _, message) = condition(&unschedulable, "PodScheduled").unwrap_or_default();
    ensure!(
        message.contains("nvidia.com/gpu"),
        "scheduler message {message:?}"
    );
    ensure!(
        unschedulable
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_none(),
        "a pod asking for 2 GPUs must not be bound"
    );
    Ok(())
}

/// (status, reason, message) of a pod condition.
fn condition(pod: &Pod, type_: &str) -> Option<(String, String, String)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

async fn deleting_a_running_pod_kills_its_process(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = cluster.namespace("delete").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let pid_dir = format!("/var/lib/sealing/e2e/{ns}");
    // `polite` exits on SIGTERM; `stubborn` ignores it and must be SIGKILLed after the grace period.
    for (name, trap) in [("polite", ""), ("stubborn", "trap '' TERM; ")] {
        create_pod(
            &pods,
            json!({
                "metadata": {"name": name},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 2,
                    // So that on a real kubelet `sleep` is not PID 1, which ignores SIGTERM.
                    "shareProcessNamespace": true,
                    "containers": [{
                        "name": "sleeper",
                        "image": SHELL_IMAGE,
                        // `$$$$` is the shell's `$$`: Kubernetes expands `$$` to `$`.
                        "command": ["/bin/sh", "-c", format!("{trap}echo $$$$ > /mnt/e2e/pids/{name}; exec sleep 1000")],
                        "volumeMounts": [{"name": "pids", "mountPath": "/mnt/e2e/pids"}],
                    }],
                    "volumes": [{"name": "pids", "hostPath": {"path": pid_dir, "type": "DirectoryOrCreate"}}],
                }
            }),
        )
        .await?;
    }
    let mut victims = BTreeMap::new();
    for name in ["polite", "stubborn"] {
        let pod = wait::wait_for(&pods, name, FINISH, "pod to run", wait::pod_running).await?;
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let pid = match cluster.node_path(&node, &format!("{pid_dir}/{name}")) {
            Some(file) => Some(read_pid(&file).await?),
            None => None,
        };
        if let Some(pid) = pid {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ensure!(
                String::from_utf8_lossy(&cmdline).contains("sleep"),
                "pid {pid} is not the container's sleep"
            );
        }
        victims.insert(name, (pod.uid().unwrap_or_default(), pid));
    }

    // The watch's Delete event carries the final status the agent reported before removing the pod.
    let mut last_seen: BTreeMap<String, Pod> = BTreeMap::new();
    let mut events = watcher(pods.clone(), watcher::Config::default()).boxed();
    let deadline = tokio::time::Instant::now() + FINISH;
    // The watch must be established before the deletions, or it could miss them.
    loop {
        match tokio::time::timeout_at(deadline, events.next())
            .await
            .context("the pod watch did not start")?
        {
            Some(Ok(watcher::Event::InitDone)) => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("watching the pods: {e}"),
            None => bail!("the pod watch ended"),
        }
    }
    for name in victims.keys() {
        pods.delete(name, &DeleteParams::default()).await?;
    }
    while !victims.keys().all(|n| gone(&last_seen, n)) {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .context("pods were not deleted in time")?;
        match event {
            Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) => {
                last_seen.insert(p.name_any(), p);
            }
            Some(Ok(watcher::Event::Delete(p))) => {
                let mut p = p;
                p.annotations_mut()
                    .insert("e2e/deleted".into(), "true".into());
                last_seen.insert(p.name_any(), p);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("watching the pods: {e}"),
            None => bail!("the pod watch ended"),
        }
    }
    for (name, want) in [("polite", 143), ("stubborn", 137)] {
        let pod = &last_seen[name];
        let code = terminated(pod)?.exit_code;
        ensure!(
            code == want,
            "{name}: exit code {code}, want {want} (signal {})",
            want - 128
        );
        if let (_, Some(pid)) = &victims[name] {
            ensure!(
                process_exited(*pid),
                "{name}: process {pid} still runs after deletion"
            );
        }
    }
    Ok(())
}

fn gone(seen: &BTreeMap<String, Pod>, name: &str) -> bool {
    seen.get(name)
        .is_some_and(|p| p.annotations().contains_key("e2e/deleted"))
}

async fn container_sees_read_only_volumes_as_its_user(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = cluster.namespace("user").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let script = r#"w() { if touch "$1/probe" 2>/dev/null; then echo rw; else echo ro; fi; }
printf '%s %s %s %s' "$(id -u)" "$(id -g)" "$(w /mnt/e2e/ro)" "$(w /mnt/e2e/rw)" > /dev/termination-log"#;
    create_pod(
        &pods,
        json!({
            "metadata": {"name": "user"},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {"runAsUser": 65534, "runAsGroup": 65534},
                "containers": [{
                    "name": "c",
                    "image": SHELL_IMAGE,
                    "command": ["/bin/sh", "-c", script],
                    // One world-writable emptyDir, mounted twice: only the mount flag differs.
                    "volumeMounts": [
                        {"name": "scratch", "mountPath": "/mnt/e2e/ro", "readOnly": true},
                        {"name": "scratch", "mountPath": "/mnt/e2e/rw"},
                    ],
                }],
                "volumes": [{"name": "scratch", "emptyDir": {}}],
            }
        }),
    )
    .await?;
    let pod = finished(&pods, "user", FINISH).await?;
    let t = terminated(&pod)?;
    ensure!(
        wait::pod_phase(&pod) == "Succeeded",
        "pod ended {:?}: {t:?}",
        wait::pod_phase(&pod)
    );
    let message = t.message.unwrap_or_default();
    ensure!(
        message == "65534 65534 ro rw",
        "container saw {message:?} (want uid gid /ro /rw)"
    );
    Ok(())
}

async fn unknown_image_fails_the_pod_naming_the_image(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = cluster.namespace("image").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let image = "registry.invalid/no-such-image:1.0";
    create_pod(
        &pods,
        json!({
            "metadata": {"name": "no-image"},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": image}]}
        }),
    )
    .await?;
    let pod = finished(&pods, "no-image", FINISH).await?;
    let status = pod.status.clone().unwrap_or_default();
    ensure!(
        wait::pod_phase(&pod) == "Failed",
        "pod ended {:?}",
        wait::pod_phase(&pod)
    );
    ensure!(
        status.reason.as_deref() == Some("ErrImagePull"),
        "reason {:?}",
        status.reason
    );
    let message = status.message.unwrap_or_default();
    ensure!(
        message.contains(image),
        "message {message:?} must name the image"
    );
    let event = wait_for_event(&cluster.client, &ns, "no-image", "ErrImagePull", FINISH).await?;
    ensure!(
        event.contains(image),
        "`kubectl describe` shows {event:?}, which must name the image"
    );
    Ok(())
}

async fn on_failure_pod_is_restarted_until_it_succeeds(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = cluster.namespace("restart").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    // Fails on its first run, succeeds on the second: the emptyDir outlives the container.
    let script = "if [ -f /mnt/e2e/work/ran ]; then echo second > /dev/termination-log; exit 0; fi; touch /mnt/e2e/work/ran; exit 7";
    create_pod(
        &pods,
        json!({
            "metadata": {"name": "flaky"},
            "spec": {
                "restartPolicy": "OnFailure",
                "containers": [{
                    "name": "step",
                    "image": SHELL_IMAGE,
                    "command": ["/bin/sh", "-c", script],
                    "volumeMounts": [{"name": "work", "mountPath": "/mnt/e2e/work"}],
                }],
                "volumes": [{"name": "work", "emptyDir": {}}],
            }
        }),
    )
    .await?;
    let pod = finished(&pods, "flaky", FINISH).await?;
    ensure!(
        wait::pod_phase(&pod) == "Succeeded",
        "pod ended {:?}",
        wait::pod_phase(&pod)
    );
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .context("no container status")?;
    ensure!(
        status.restart_count == 1,
        "restartCount {}",
        status.restart_count
    );
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| t.exit_code);
    ensure!(last == Some(7), "lastState exit code {last:?}");
    let message = terminated(&pod)?.message;
    ensure!(
        message.as_deref() == Some("second\n"),
        "final message {message:?}"
    );
    wait_for_event(&cluster.client, &ns, "flaky", "BackOff", FINISH).await?;
    Ok(())
}

async fn missing_command_fails_the_pod_with_a_start_error(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = cluster.namespace("missing").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    create_pod(
        &pods,
        json!({
            "metadata": {"name": "missing"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": SHELL_IMAGE, "command": ["/no/such/sealer-step"]}],
            }
        }),
    )
    .await?;
    let pod = finished(&pods, "missing", FINISH).await?;
    let t = terminated(&pod)?;
    ensure!(
        wait::pod_phase(&pod) == "Failed",
        "pod ended {:?}",
        wait::pod_phase(&pod)
    );
    ensure!(
        t.exit_code == 128 && t.reason.as_deref() == Some("StartError"),
        "terminated {t:?}"
    );
    let message = t.message.unwrap_or_default();
    ensure!(
        message.contains("/no/such/sealer-step"),
        "message {message:?} must name the program"
    );
    Ok(())
}

async fn service_account_token_lets_the_pod_use_the_api_under_rbac(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = cluster.namespace("token").await?;
    let bindings: Api<RoleBinding> = Api::namespaced(cluster.client.clone(), &ns);
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "default-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
    }))?;
    bindings.create(&Default::default(), &binding).await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    // What an in-cluster client does: the mounted token and CA, and the service address.
    let script = r#"sa=/var/run/secrets/kubernetes.io/serviceaccount
api="https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/$(cat $sa/namespace)"
curl -sS --cacert $sa/ca.crt -H "Authorization: Bearer $(cat $sa/token)" "$api/pods" > /tmp/pods.json
curl -sS --cacert $sa/ca.crt -H "Authorization: Bearer $(cat $sa/token)" -X DELETE "$api/pods/in-cluster" > /tmp/delete.json
grep -q '"kind": "PodList"' /tmp/pods.json && grep -q '"name": "in-cluster"' /tmp/pods.json && echo listed || cat /tmp/pods.json
grep -q 'cannot delete' /tmp/delete.json && grep -o 'system:serviceaccount:[a-z0-9-]*:default' /tmp/delete.json | head -1"#;
    create_pod(
        &pods,
        json!({
            "metadata": {"name": "in-cluster"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "c",
                    "image": SHELL_IMAGE,
                    "command": ["/bin/sh", "-c", format!("({script}) > /dev/termination-log 2>&1")],
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
            }
        }),
    )
    .await?;
    let pod = finished(&pods, "in-cluster", FINISH).await?;
    let message = terminated(&pod)?.message.unwrap_or_default();
    // Reading is allowed by the binding; deleting is not, and the refusal names the account.
    let expected = format!("listed\nsystem:serviceaccount:{ns}:default");
    ensure!(
        message.trim() == expected,
        "the pod saw {message:?}, want {expected:?}"
    );
    Ok(())
}
