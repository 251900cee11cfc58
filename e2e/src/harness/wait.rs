//! Waiting on the cluster with a deadline: a watch-driven condition, never a fixed sleep.

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::HarnessError;

/// Waits until `cond` holds for object `name` (which may not exist yet), or fails after
/// `timeout` with the object's last state in the error.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    cond: impl Condition<K>,
) -> Result<K, HarnessError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(obj))) => Ok(obj),
        Ok(Ok(None)) => Err(HarnessError::Timeout {
            what: format!("{what} ({name})"),
            seconds: timeout.as_secs(),
            last: "the object was deleted".into(),
        }),
        Ok(Err(e)) => Err(HarnessError::Timeout {
            what: format!("{what} ({name})"),
            seconds: timeout.as_secs(),
            last: format!("the watch failed: {e}"),
        }),
        Err(_) => {
            let last = match api.get_opt(name).await {
                Ok(Some(obj)) => summarize(&obj),
                Ok(None) => "no such object".into(),
                Err(e) => format!("could not read it: {e}"),
            };
            Err(HarnessError::Timeout {
                what: format!("{what} ({name})"),
                seconds: timeout.as_secs(),
                last,
            })
        }
    }
}

/// Waits until object `name` is gone.
pub async fn wait_deleted<K>(
    api: &Api<K>,
    name: &str,
    uid: &str,
    timeout: Duration,
) -> Result<(), HarnessError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    let gone = kube::runtime::conditions::is_deleted(uid);
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, gone)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(HarnessError::Timeout {
            what: format!("deletion of {name}"),
            seconds: timeout.as_secs(),
            last: format!("the watch failed: {e}"),
        }),
        Err(_) => {
            let last = match api.get_opt(name).await {
                Ok(Some(obj)) => summarize(&obj),
                Ok(None) => "no such object".into(),
                Err(e) => format!("could not read it: {e}"),
            };
            Err(HarnessError::Timeout {
                what: format!("deletion of {name}"),
                seconds: timeout.as_secs(),
                last,
            })
        }
    }
}

/// The object's status (or the whole object) as JSON, cut to a readable length.
fn summarize<K: Serialize>(obj: &K) -> String {
    let value = serde_json::to_value(obj).unwrap_or_default();
    let shown = value.get("status").cloned().unwrap_or(value);
    let mut text = shown.to_string();
    if text.len() > 2000 {
        let cut = (0..=2000)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

pub fn node_is_ready(node: &Node) -> bool {
    node.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The pod's phase, `""` before it has one.
pub fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// True once the pod has finished (Succeeded or Failed).
pub fn pod_finished(pod: Option<&Pod>) -> bool {
    pod.is_some_and(|p| matches!(pod_phase(p), "Succeeded" | "Failed"))
}

/// True once the pod runs: phase Running and every container running.
pub fn pod_running(pod: Option<&Pod>) -> bool {
    pod.is_some_and(|p| {
        pod_phase(p) == "Running"
            && p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
                .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
    })
}
