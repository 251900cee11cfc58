//! Helpers shared by the test modules.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use kube::Api;
use kube::api::PostParams;
use serde_json::Value;

use sealing_e2e::harness::wait;

/// Creates a pod from JSON in `ns`.
pub async fn create_pod(pods: &Api<Pod>, manifest: Value) -> anyhow::Result<Pod> {
    let pod: Pod = serde_json::from_value(manifest).context("test pod manifest")?;
    pods.create(&PostParams::default(), &pod)
        .await
        .context("creating the test pod")
}

/// Waits for the pod to finish and returns it.
pub async fn finished(pods: &Api<Pod>, name: &str, timeout: Duration) -> anyhow::Result<Pod> {
    Ok(wait::wait_for(pods, name, timeout, "pod to finish", wait::pod_finished).await?)
}

/// The terminated state of the pod's first container.
pub fn terminated(pod: &Pod) -> anyhow::Result<ContainerStateTerminated> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.clone())
        .with_context(|| format!("pod has no terminated container: {:?}", pod.status))
}

/// Reads a pid that a container writes when it starts, polling with a deadline.
pub async fn read_pid(file: &Path) -> anyhow::Result<u32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(pid) = text.trim().parse()
        {
            return Ok(pid);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{} never held a pid", file.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether process `pid` has exited (gone, or a zombie waiting to be reaped).
pub fn process_exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| stat[i + 2..].starts_with(['Z', 'X'])),
    }
}

/// Waits for an Event about object `name` in `ns` with `reason`, and returns its message.
pub async fn wait_for_event(
    client: &kube::Client,
    ns: &str,
    name: &str,
    reason: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Event;
    use kube::runtime::{WatchStreamExt, watcher};

    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let selector = format!("involvedObject.name={name}");
    let mut stream = watcher(events, watcher::Config::default().fields(&selector))
        .applied_objects()
        .boxed();
    let found = tokio::time::timeout(timeout, async {
        while let Some(event) = stream.next().await {
            let event = event?;
            if event.reason.as_deref() == Some(reason) {
                return Ok(event.message.unwrap_or_default());
            }
        }
        bail!("the event watch ended")
    })
    .await;
    match found {
        Ok(result) => result,
        Err(_) => bail!(
            "no {reason} event about {ns}/{name} within {}s",
            timeout.as_secs()
        ),
    }
}
