//! The life of one pod bound to a node: prepare, run its containers, report status, stop them
//! when the pod is deleted, and finish the deletion as kubelet does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::container::{self, ContainerRun};
use super::node::NodeContext;
use super::pids;
use super::process;
use super::status::{ContainerView, State, StatusBuilder, exit_code, termination_message};

const FIELD_MANAGER: &str = "sealing-node-agent";
/// First restart delay for restartPolicy OnFailure/Always; doubles up to the cap. Shorter than
/// kubelet's 10 s / 5 min so that crash loops show quickly in tests.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);
const RESTART_BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Updates about the pod from the watch; `None` once the pod is gone from the API.
pub type PodUpdates = watch::Receiver<Option<Pod>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RestartPolicy {
    Never,
    OnFailure,
    Always,
}

pub async fn run(ctx: Arc<NodeContext>, mut updates: PodUpdates) {
    let Some(pod) = updates.borrow().clone() else {
        return;
    };
    let key = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
    let worker = PodWorker::new(ctx, &pod);
    if let Err(e) = worker.drive(pod, &mut updates).await {
        warn!(pod = %key, error = %e, "pod worker stopped");
    }
}

struct PodWorker {
    ctx: Arc<NodeContext>,
    api: Api<Pod>,
    name: String,
    uid: String,
    status: StatusBuilder,
    reference: ObjectReference,
}

impl PodWorker {
    fn new(ctx: Arc<NodeContext>, pod: &Pod) -> Self {
        let api = Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
        PodWorker {
            ctx,
            api,
            name: pod.name_any(),
            uid: pod.uid().unwrap_or_default(),
            status: StatusBuilder::default(),
            reference: pod.object_ref(&()),
        }
    }

    /// Publishes a pod Event in the background: Events are for people, and a failure to
    /// record one must not hold up the pod.
    fn event(&self, type_: EventType, reason: &str, action: &str, note: String) {
        let recorder = self.ctx.recorder.clone();
        let reference = self.reference.clone();
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        let pod = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &reference).await {
                warn!(%pod, error = %e, "could not record an event");
            }
        });
    }

    fn pod_dir(&self) -> PathBuf {
        self.ctx.disk.pod_dir(&self.uid)
    }

    async fn drive(mut self, pod: Pod, updates: &mut PodUpdates) -> Result<(), kube::Error> {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending");
        if phase == "Succeeded" || phase == "Failed" {
            return self.finish(updates).await;
        }
        if self.started_before(&pod) {
            self.report_lost(&pod).await?;
            return self.finish(updates).await;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            return self.delete_now().await;
        }
        let mut containers = match container::prepare(&self.ctx, &pod).await {
            Ok(c) => c,
            Err(failure) => {
                info!(pod = %self.name, reason = %failure.reason, message = %failure.message, "pod cannot run");
                self.event(
                    EventType::Warning,
                    &failure.reason,
                    "Prepare",
                    failure.message.clone(),
                );
                let status = self.status.build(
                    &self.ctx.facts.host_ip,
                    &container::waiting_views(&pod, &failure),
                    Some(&failure),
                );
                self.patch_status(status).await?;
                return self.finish(updates).await;
            }
        };
        self.publish(&containers).await;
        let policy = restart_policy(&pod);
        let mut exits = FuturesUnordered::new();
        for (i, c) in containers.iter_mut().enumerate() {
            match self.start(i, c) {
                Some(wait) => exits.push(wait),
                None => self.schedule_restart(c, policy),
            }
        }
        self.publish(&containers).await;

        let mut terminating: Option<Instant> = None;
        let mut killed = false;
        let mut gone = false;
        loop {
            let done = containers
                .iter()
                .all(|c| matches!(c.view.state, State::Terminated(_)) && c.restart_at.is_none());
            if done && exits.is_empty() {
                break;
            }
            let next_restart = containers.iter().filter_map(|c| c.restart_at).min();
            tokio::select! {
                Some((i, result)) = exits.next() => {
                    let c: &mut ContainerRun = &mut containers[i];
                    self.record_exit(c, result);
                    if terminating.is_none() {
                        self.schedule_restart(c, policy);
                    }
                    self.publish(&containers).await;
                }
                _ = sleep_until_opt(next_restart), if terminating.is_none() && next_restart.is_some() => {
                    let now = Instant::now();
                    for (i, c) in containers.iter_mut().enumerate() {
                        if c.restart_at.is_some_and(|t| t <= now) {
                            c.restart_at = None;
                            c.view.restarting = false;
                            c.view.restart_count += 1;
                            if let State::Terminated(t) = &c.view.state {
                                c.view.last_state = Some((**t).clone());
                            }
                            match self.start(i, c) {
                                Some(wait) => exits.push(wait),
                                None => self.schedule_restart(c, policy),
                            }
                        }
                    }
                    self.publish(&containers).await;
                }
                _ = sleep_until_opt(terminating), if terminating.is_some() && !killed => {
                    for c in containers.iter().filter_map(|c| c.pid) {
                        process::signal_group(c, Signal::SIGKILL);
                    }
                    killed = true;
                }
                changed = updates.changed(), if !gone => {
                    let current = if changed.is_ok() { updates.borrow().clone() } else { None };
                    match current {
                        None => {
                            gone = true;
                            // Force-deleted: nothing will read a status any more.
                            for pid in containers.iter().filter_map(|c| c.pid) {
                                process::signal_group(pid, Signal::SIGKILL);
                            }
                            killed = true;
                            terminating.get_or_insert_with(Instant::now);
                        }
                        Some(p) if p.metadata.deletion_timestamp.is_some() && terminating.is_none() => {
                            let grace = p.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0) as u64;
                            info!(pod = %self.name, grace, "pod deleted; stopping its containers");
                            for c in containers.iter().filter(|c| c.pid.is_some()) {
                                self.event(
                                    EventType::Normal,
                                    "Killing",
                                    "KillContainer",
                                    format!("Stopping container {} (grace period {grace}s)", c.view.name),
                                );
                            }
                            terminating = Some(Instant::now() + Duration::from_secs(grace));
                            for c in containers.iter_mut() {
                                c.restart_at = None;
                                c.view.restarting = false;
                                if let Some(pid) = c.pid {
                                    process::signal_group(pid, Signal::SIGTERM);
                                }
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        if gone || updates.borrow().is_none() {
            self.cleanup();
            return Ok(());
        }
        self.publish(&containers).await;
        if terminating.is_some() {
            return self.delete_now().await;
        }
        self.finish(updates).await
    }

    /// Waits for a finished pod to be deleted, then completes the deletion.
    async fn finish(self, updates: &mut PodUpdates) -> Result<(), kube::Error> {
        loop {
            let deleting = updates
                .borrow()
                .as_ref()
                .map(|p| p.metadata.deletion_timestamp.is_some());
            match deleting {
                None => {
                    self.cleanup();
                    return Ok(());
                }
                Some(true) => return self.delete_now().await,
                Some(false) => {}
            }
            if updates.changed().await.is_err() {
                return Ok(());
            }
        }
    }

    /// Kubelet's last step: remove the pod object once nothing of it runs any more.
    async fn delete_now(&self) -> Result<(), kube::Error> {
        self.cleanup();
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match retrying(|| self.api.delete(&self.name, &dp)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes the pod's volumes and files; logs are kept.
    fn cleanup(&self) {
        let dir = self.pod_dir();
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(pod = %self.name, dir = %dir.display(), error = %e, "could not remove pod directory");
        }
    }

    /// Whether a container of this pod was started by an earlier agent process.
    fn started_before(&self, pod: &Pod) -> bool {
        let reported = pod
            .status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
            .any(|c| {
                c.restart_count > 0
                    || c.last_state
                        .as_ref()
                        .is_some_and(|s| s.terminated.is_some())
                    || c.state
                        .as_ref()
                        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
            });
        reported || pids::pid_files(&self.pod_dir()).next().is_some()
    }

    /// After an agent restart the pod's processes are not ours to wait on: kill any that
    /// survived and report the pod Failed rather than silently running the step twice.
    async fn report_lost(&mut self, pod: &Pod) -> Result<(), kube::Error> {
        super::kubelet::kill_recorded(&self.pod_dir()).await;
        let now = Time(Timestamp::now());
        let views: Vec<ContainerView> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| {
                let previous = pod
                    .status
                    .iter()
                    .flat_map(|s| s.container_statuses.iter().flatten())
                    .find(|s| s.name == c.name);
                let state = match previous.and_then(|s| s.state.as_ref()).and_then(|s| s.terminated.clone()) {
                    Some(t) => State::Terminated(Box::new(t)),
                    None => State::Terminated(Box::new(ContainerStateTerminated {
                        exit_code: 137,
                        reason: Some("ContainerStatusUnknown".into()),
                        message: Some("the node agent restarted while the container was running; its process was killed".into()),
                        started_at: previous
                            .and_then(|s| s.state.as_ref())
                            .and_then(|s| s.running.as_ref())
                            .and_then(|r| r.started_at.clone()),
                        finished_at: Some(now.clone()),
                        ..ContainerStateTerminated::default()
                    })),
                };
                ContainerView {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                    image_id: previous.map(|s| s.image_id.clone()).unwrap_or_default(),
                    container_id: previous.and_then(|s| s.container_id.clone()),
                    state,
                    last_state: None,
                    restart_count: previous.map_or(0, |s| s.restart_count),
                    restarting: false,
                }
            })
            .collect();
        if let Some(start) = pod.status.as_ref().and_then(|s| s.start_time.clone()) {
            self.status.set_start_time(start);
        }
        warn!(pod = %self.name, "container lost across a node agent restart; marking the pod Failed");
        self.event(
            EventType::Warning,
            "ContainerStatusUnknown",
            "RecoverPod",
            "the node agent restarted while the pod's containers ran; they were killed and the pod failed".into(),
        );
        let status = self.status.build(&self.ctx.facts.host_ip, &views, None);
        self.patch_status(status).await
    }

    /// Schedules the next start of a container that ended, when the restart policy wants one.
    fn schedule_restart(&self, c: &mut ContainerRun, policy: RestartPolicy) {
        if !should_restart(policy, &c.view.state) {
            return;
        }
        let delay = backoff(c.view.restart_count);
        c.restart_at = Some(Instant::now() + delay);
        c.view.restarting = true;
        self.event(
            EventType::Warning,
            "BackOff",
            "RestartContainer",
            format!(
                "Back-off {delay:?} restarting failed container {}",
                c.view.name
            ),
        );
    }

    /// Starts container `i`; returns the future that resolves when its process exits.
    fn start(
        &self,
        i: usize,
        c: &mut ContainerRun,
    ) -> Option<
        futures::future::BoxFuture<'static, (usize, std::io::Result<std::process::ExitStatus>)>,
    > {
        let prepared = (|| {
            std::fs::create_dir_all(&c.log_dir)?;
            if let Some(dir) = c.termination_file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&c.termination_file, b"")?;
            // Writable by the container's user, whoever it runs as.
            std::fs::set_permissions(
                &c.termination_file,
                std::os::unix::fs::PermissionsExt::from_mode(0o666),
            )
        })();
        c.process.log = c.log_dir.join(format!("{}.log", c.view.restart_count));
        let spawned = prepared
            .map_err(|e| format!("preparing the container's files: {e}"))
            .and_then(|()| process::spawn(&c.process).map_err(|e| e.to_string()));
        let now = Time(Timestamp::now());
        match spawned {
            Ok(mut child) => {
                let pid = child.id().unwrap_or_default();
                if let Err(e) = pids::record_pid(&self.pod_dir(), &c.view.name, pid) {
                    warn!(pod = %self.name, error = %e, "could not record the container's pid");
                }
                info!(pod = %self.name, container = %c.view.name, pid, "container started");
                self.event(
                    EventType::Normal,
                    "Started",
                    "StartContainer",
                    format!("Started container {} ({})", c.view.name, c.process.argv[0]),
                );
                c.pid = Some(pid);
                c.view.container_id = Some(format!(
                    "node-agent://{}-{}-{}",
                    self.uid, c.view.name, c.view.restart_count
                ));
                c.view.state = State::Running { started_at: now };
                Some(Box::pin(async move { (i, child.wait().await) }))
            }
            Err(message) => {
                warn!(pod = %self.name, container = %c.view.name, %message, "container failed to start");
                self.event(
                    EventType::Warning,
                    "Failed",
                    "StartContainer",
                    format!("Error: container {}: {message}", c.view.name),
                );
                c.view.state = State::Terminated(Box::new(ContainerStateTerminated {
                    exit_code: 128,
                    reason: Some("StartError".into()),
                    message: Some(message),
                    started_at: Some(now.clone()),
                    finished_at: Some(now),
                    ..ContainerStateTerminated::default()
                }));
                None
            }
        }
    }

    fn record_exit(&self, c: &mut ContainerRun, result: std::io::Result<std::process::ExitStatus>) {
        let pid = c.pid.take();
        // Whatever the container left running dies with it, as in a real pid namespace.
        if let Some(pid) = pid {
            process::signal_group(pid, Signal::SIGKILL);
            pids::remove_pid(&self.pod_dir(), &c.view.name);
        }
        let started_at = match &c.view.state {
            State::Running { started_at } => Some(started_at.clone()),
            _ => None,
        };
        let code = match &result {
            Ok(status) => exit_code(*status),
            Err(_) => 128,
        };
        let file = std::fs::read(&c.termination_file).unwrap_or_default();
        let log = if c.fallback_to_logs && code != 0 {
            std::fs::read(&c.process.log).unwrap_or_default()
        } else {
            Vec::new()
        };
        let message = match result {
            Err(e) => Some(format!("waiting for the process failed: {e}")),
            Ok(_) => termination_message(&file, c.fallback_to_logs, code, &log),
        };
        info!(pod = %self.name, container = %c.view.name, exit_code = code, "container exited");
        let terminated = ContainerStateTerminated {
            exit_code: code,
            reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
            message,
            started_at,
            finished_at: Some(Time(Timestamp::now())),
            container_id: c.view.container_id.clone(),
            ..ContainerStateTerminated::default()
        };
        c.view.state = State::Terminated(Box::new(terminated));
    }

    /// Reports the containers' state; a failure is logged and the next report carries the
    /// state again, so supervision of the processes never stops over an API hiccup.
    async fn publish(&mut self, containers: &[ContainerRun]) {
        let mut views: Vec<ContainerView> = containers.iter().map(|c| c.view.clone()).collect();
        for (v, c) in views.iter_mut().zip(containers) {
            if c.restart_at.is_some()
                && let State::Terminated(t) = &v.state
            {
                v.last_state = Some((**t).clone());
                v.state = State::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: Some(format!(
                        "back-off restarting failed container {}",
                        c.view.name
                    )),
                };
            }
        }
        let status = self.status.build(&self.ctx.facts.host_ip, &views, None);
        if let Err(e) = self.patch_status(status).await {
            warn!(pod = %self.name, error = %e, "could not report pod status");
        }
    }

    async fn patch_status(
        &self,
        status: k8s_openapi::api::core::v1::PodStatus,
    ) -> Result<(), kube::Error> {
        // A merge patch replaces the condition and container lists whole, which is what we
        // want: this agent is their only writer once the pod is bound.
        let patch = serde_json::json!({ "status": status });
        let pp = PatchParams::apply(FIELD_MANAGER);
        let patch = Patch::Merge(&patch);
        let result = retrying(|| self.api.patch_status(&self.name, &pp, &patch)).await;
        match result {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Runs an API call again on server errors, throttling and connection failures, with a
/// back-off from 0.5 s to 8 s for about a minute; client errors are returned at once.
async fn retrying<T, F, Fut>(mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(500);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match call().await {
            Err(kube::Error::Api(e)) if e.code < 500 && e.code != 429 => {
                return Err(kube::Error::Api(e));
            }
            Err(e) if Instant::now() + delay < deadline => {
                warn!(error = %e, retry_in = ?delay, "Kubernetes API call failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            other => return other,
        }
    }
}

fn restart_policy(pod: &Pod) -> RestartPolicy {
    match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
        Some("Never") => RestartPolicy::Never,
        Some("OnFailure") => RestartPolicy::OnFailure,
        _ => RestartPolicy::Always,
    }
}

fn should_restart(policy: RestartPolicy, state: &State) -> bool {
    let code = match state {
        State::Terminated(t) => t.exit_code,
        _ => return false,
    };
    match policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => code != 0,
        RestartPolicy::Always => true,
    }
}

fn backoff(restarts: i32) -> Duration {
    let factor = 2u32.saturating_pow(restarts.clamp(0, 16) as u32);
    RESTART_BACKOFF
        .saturating_mul(factor)
        .min(RESTART_BACKOFF_CAP)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_and_backoff() {
        let failed = State::Terminated(Box::new(ContainerStateTerminated {
            exit_code: 1,
            ..Default::default()
        }));
        let ok = State::Terminated(Box::new(ContainerStateTerminated {
            exit_code: 0,
            ..Default::default()
        }));
        assert!(!should_restart(RestartPolicy::Never, &failed));
        assert!(should_restart(RestartPolicy::OnFailure, &failed));
        assert!(!should_restart(RestartPolicy::OnFailure, &ok));
        assert!(should_restart(RestartPolicy::Always, &ok));
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), RESTART_BACKOFF_CAP);
    }
}
