//! Pod status as kubelet reports it: phase, conditions and container states.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Kubelet's cap on a termination message.
pub const MAX_TERMINATION_MESSAGE: usize = 4096;
/// Kubelet's cap on the log tail used by `FallbackToLogsOnError`.
const MAX_LOG_TAIL_BYTES: usize = 2048;
const MAX_LOG_TAIL_LINES: usize = 80;

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Time,
    },
    Terminated(Box<ContainerStateTerminated>),
}

/// What the agent knows about one container.
#[derive(Debug, Clone)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub container_id: Option<String>,
    pub state: State,
    pub last_state: Option<ContainerStateTerminated>,
    pub restart_count: i32,
    /// Whether the container will be started again (restartPolicy OnFailure/Always).
    pub restarting: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

/// The pod phase from its containers, as kubelet derives it.
pub fn phase(containers: &[ContainerView]) -> Phase {
    let never_started = |c: &ContainerView| {
        matches!(c.state, State::Waiting { .. }) && c.restart_count == 0 && c.last_state.is_none()
    };
    if containers.iter().any(never_started) {
        return Phase::Pending;
    }
    let all_done = containers
        .iter()
        .all(|c| matches!(c.state, State::Terminated(_)) && !c.restarting);
    if !all_done {
        return Phase::Running;
    }
    let failed = containers.iter().any(|c| match &c.state {
        State::Terminated(t) => t.exit_code != 0,
        _ => false,
    });
    if failed {
        Phase::Failed
    } else {
        Phase::Succeeded
    }
}

/// Builds pod statuses, keeping each condition's last transition time.
#[derive(Debug, Default)]
pub struct StatusBuilder {
    transitions: BTreeMap<&'static str, (bool, Time)>,
    start_time: Option<Time>,
}

/// A pod-level failure before any container could run (unknown image, bad volume, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct PodFailure {
    pub reason: String,
    pub message: String,
}

impl StatusBuilder {
    /// Keeps the start time an earlier agent reported.
    pub fn set_start_time(&mut self, start: Time) {
        self.start_time = Some(start);
    }

    pub fn build(
        &mut self,
        host_ip: &str,
        containers: &[ContainerView],
        failure: Option<&PodFailure>,
    ) -> PodStatus {
        let phase = if failure.is_some() {
            Phase::Failed
        } else {
            phase(containers)
        };
        let start_time = self
            .start_time
            .get_or_insert_with(|| Time(Timestamp::now()))
            .clone();
        let all_running = !containers.is_empty()
            && containers
                .iter()
                .all(|c| matches!(c.state, State::Running { .. }));
        let (ready_reason, ready) = if phase.is_terminal() {
            (Some("PodCompleted"), false)
        } else if all_running {
            (None, true)
        } else {
            (Some("ContainersNotReady"), false)
        };
        let not_ready_message = (!ready && !phase.is_terminal()).then(|| {
            let names: Vec<&str> = containers
                .iter()
                .filter(|c| !matches!(c.state, State::Running { .. }))
                .map(|c| c.name.as_str())
                .collect();
            format!("containers with unready status: [{}]", names.join(" "))
        });
        let conditions = vec![
            self.condition("PodReadyToStartContainers", failure.is_none(), None, None),
            self.condition("Initialized", true, None, None),
            self.condition(
                "ContainersReady",
                ready,
                ready_reason,
                not_ready_message.clone(),
            ),
            self.condition("Ready", ready, ready_reason, not_ready_message),
            self.condition("PodScheduled", true, None, None),
        ];
        PodStatus {
            phase: Some(phase.as_str().to_owned()),
            conditions: Some(conditions),
            container_statuses: Some(containers.iter().map(container_status).collect()),
            host_ip: Some(host_ip.to_owned()),
            host_ips: Some(vec![HostIP {
                ip: host_ip.to_owned(),
            }]),
            pod_ip: Some(host_ip.to_owned()),
            pod_ips: Some(vec![PodIP {
                ip: host_ip.to_owned(),
            }]),
            start_time: Some(start_time),
            reason: failure.map(|f| f.reason.clone()),
            message: failure.map(|f| f.message.clone()),
            ..PodStatus::default()
        }
    }

    fn condition(
        &mut self,
        type_: &'static str,
        value: bool,
        reason: Option<&str>,
        message: Option<String>,
    ) -> PodCondition {
        let entry = self
            .transitions
            .entry(type_)
            .or_insert_with(|| (value, Time(Timestamp::now())));
        if entry.0 != value {
            *entry = (value, Time(Timestamp::now()));
        }
        PodCondition {
            type_: type_.to_owned(),
            status: if value { "True" } else { "False" }.to_owned(),
            last_transition_time: Some(entry.1.clone()),
            reason: reason.map(str::to_owned),
            message,
            ..PodCondition::default()
        }
    }
}

fn container_status(c: &ContainerView) -> ContainerStatus {
    let running = matches!(c.state, State::Running { .. });
    let state = match &c.state {
        State::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..ContainerState::default()
        },
        State::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(started_at.clone()),
            }),
            ..ContainerState::default()
        },
        State::Terminated(t) => ContainerState {
            terminated: Some((**t).clone()),
            ..ContainerState::default()
        },
    };
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id: c.container_id.clone(),
        ready: running,
        started: Some(running),
        restart_count: c.restart_count,
        state: Some(state),
        last_state: Some(ContainerState {
            terminated: c.last_state.clone(),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

/// Exit code as a container runtime reports it: the code, or 128 + the killing signal.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The termination message: the file's content, or for `FallbackToLogsOnError` with a failed
/// container and an empty file, the log's tail.
pub fn termination_message(
    file_content: &[u8],
    fallback_to_logs: bool,
    exit_code: i32,
    log: &[u8],
) -> Option<String> {
    let message = truncate_utf8(file_content, MAX_TERMINATION_MESSAGE);
    if !message.trim().is_empty() {
        return Some(message);
    }
    if fallback_to_logs && exit_code != 0 {
        let tail = log_tail(log);
        if !tail.is_empty() {
            return Some(tail);
        }
    }
    None
}

fn truncate_utf8(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    String::from_utf8_lossy(cut).into_owned()
}

fn log_tail(log: &[u8]) -> String {
    let text = String::from_utf8_lossy(log);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(MAX_LOG_TAIL_LINES)..].join("\n");
    let start = tail.len().saturating_sub(MAX_LOG_TAIL_BYTES);
    let start = (start..=tail.len())
        .find(|&i| tail.is_char_boundary(i))
        .unwrap_or(tail.len());
    tail[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: State, restarting: bool) -> ContainerView {
        ContainerView {
            name: "c".into(),
            image: "i".into(),
            image_id: "local:///bin/sh".into(),
            container_id: None,
            state,
            last_state: None,
            restart_count: 0,
            restarting,
        }
    }

    fn terminated(code: i32) -> State {
        State::Terminated(Box::new(ContainerStateTerminated {
            exit_code: code,
            ..Default::default()
        }))
    }

    #[test]
    fn phase_follows_the_containers() {
        let waiting = State::Waiting {
            reason: "ContainerCreating".into(),
            message: None,
        };
        let running = State::Running {
            started_at: Time(Timestamp::now()),
        };
        assert_eq!(phase(&[view(waiting, false)]), Phase::Pending);
        assert_eq!(phase(&[view(running.clone(), false)]), Phase::Running);
        assert_eq!(
            phase(&[view(terminated(0), false), view(running, false)]),
            Phase::Running
        );
        assert_eq!(phase(&[view(terminated(0), false)]), Phase::Succeeded);
        assert_eq!(
            phase(&[view(terminated(0), false), view(terminated(3), false)]),
            Phase::Failed
        );
        assert_eq!(
            phase(&[view(terminated(3), true)]),
            Phase::Running,
            "a container about to restart keeps the pod running"
        );
    }

    #[test]
    fn ready_conditions_and_failure_reason_are_reported() {
        let mut b = StatusBuilder::default();
        let s = b.build(
            "127.0.0.1",
            &[view(
                State::Running {
                    started_at: Time(Timestamp::now()),
                },
                false,
            )],
            None,
        );
        let cond = |s: &PodStatus, t: &str| {
            s.conditions
                .as_ref()
                .unwrap()
                .iter()
                .find(|c| c.type_ == t)
                .unwrap()
                .status
                .clone()
        };
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "Ready"), "True");
        let done = b.build("127.0.0.1", &[view(terminated(0), false)], None);
        assert_eq!(cond(&done, "Ready"), "False");
        assert_eq!(done.start_time, s.start_time, "startTime is kept");
        let failure = PodFailure {
            reason: "ErrImagePull".into(),
            message: "image \"x\" unknown".into(),
        };
        let failed = b.build("127.0.0.1", &[], Some(&failure));
        assert_eq!(failed.phase.as_deref(), Some("Failed"));
        assert_eq!(failed.reason.as_deref(), Some("ErrImagePull"));
    }

    #[test]
    fn termination_message_is_capped_and_falls_back_to_logs_only_on_error() {
        let big = vec![b'x'; 5000];
        assert_eq!(
            termination_message(&big, false, 0, b"").unwrap().len(),
            MAX_TERMINATION_MESSAGE
        );
        assert_eq!(
            termination_message(b"{\"ok\":true}", true, 1, b"log").as_deref(),
            Some("{\"ok\":true}")
        );
        assert_eq!(
            termination_message(b"", true, 2, b"a\nb\nboom\n").as_deref(),
            Some("a\nb\nboom")
        );
        assert_eq!(termination_message(b"", true, 0, b"fine\n"), None);
        assert_eq!(termination_message(b"", false, 2, b"boom\n"), None);
        let long_log: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let tail = termination_message(b"", true, 1, long_log.as_bytes()).unwrap();
        assert!(tail.ends_with("line 199") && !tail.contains("line 119\n") && tail.len() <= 2048);
    }
}
