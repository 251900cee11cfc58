//! Turns a pod's spec into containers ready to start: image lookup, ConfigMap and Secret
//! data, volumes, environment, command line, mounts and user.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use tokio::time::Instant;

use super::env::{container_env, expand};
use super::node::NodeContext;
use super::process::ProcessSpec;
use super::sources;
use super::status::{ContainerView, PodFailure, State};
use super::volumes::{Mount, container_mounts, prepare_volumes};

const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One container of a pod, with what the agent knows of it.
pub(super) struct ContainerRun {
    pub process: ProcessSpec,
    /// The host file bind-mounted at the container's terminationMessagePath.
    pub termination_file: PathBuf,
    pub log_dir: PathBuf,
    pub fallback_to_logs: bool,
    pub view: ContainerView,
    pub pid: Option<u32>,
    pub restart_at: Option<Instant>,
}

pub(super) async fn prepare(ctx: &NodeContext, pod: &Pod) -> Result<Vec<ContainerRun>, PodFailure> {
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let unsupported = |what: &str| PodFailure {
        reason: "Unsupported".into(),
        message: format!("{what} are not supported by the sealing node agent"),
    };
    if spec.init_containers.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(unsupported("init containers"));
    }
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        return Err(unsupported("ephemeral containers"));
    }
    if let Some(err) = &ctx.namespace_error {
        return Err(PodFailure {
            reason: "CreateContainerError".into(),
            message: err.clone(),
        });
    }
    let images = spec
        .containers
        .iter()
        .map(|c| {
            let image = c.image.clone().unwrap_or_default();
            ctx.config.image(&image).cloned().ok_or_else(|| PodFailure {
                reason: "ErrImagePull".into(),
                message: format!(
                    "container {}: image {image:?} is not in the node agent's image map; add it under `images` in the agent config",
                    c.name
                ),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sources = sources::fetch(&ctx.client, pod).await?;
    let volumes =
        prepare_volumes(pod, &ctx.disk, &sources, &ctx.facts).map_err(|e| PodFailure {
            reason: "FailedMount".into(),
            message: e.to_string(),
        })?;
    let pod_dir = ctx.disk.pod_dir(&uid);
    let log_root = ctx.disk.local(Path::new("/var/log/pods")).join(format!(
        "{}_{}_{}",
        pod.namespace().unwrap_or_default(),
        name,
        uid
    ));
    let pod_user = spec.security_context.as_ref();
    let mut runs = Vec::new();
    for (c, image) in spec.containers.iter().zip(images) {
        let config_error = |message: String| PodFailure {
            reason: "CreateContainerConfigError".into(),
            message,
        };
        let mut env = container_env(pod, c, &image.env, &ctx.service_env, &sources, &ctx.facts)
            .map_err(|e| config_error(format!("container {}: {e}", c.name)))?;
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
        }
        if !env.iter().any(|(k, _)| k == "HOSTNAME") {
            env.insert(0, ("HOSTNAME".into(), name.clone()));
        }
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let (command, args) = match (&c.command, &c.args) {
            (Some(cmd), args) if !cmd.is_empty() => (cmd.clone(), args.clone().unwrap_or_default()),
            (_, Some(args)) if !args.is_empty() => (image.entrypoint.clone(), args.clone()),
            _ => (image.entrypoint.clone(), image.cmd.clone()),
        };
        let mut argv: Vec<String> = command
            .iter()
            .chain(&args)
            .map(|a| expand(a, lookup))
            .collect();
        let Some(program) = argv.first_mut() else {
            return Err(config_error(format!(
                "container {}: no command, and image {:?} has no entrypoint in the agent config",
                c.name, image.image
            )));
        };
        if let Some(host) = image.paths.get(program.as_str()) {
            *program = host.display().to_string();
        }
        let mut mounts = container_mounts(c, &volumes).map_err(|e| PodFailure {
            reason: "FailedMount".into(),
            message: e.to_string(),
        })?;
        let container_dir = pod_dir.join("containers").join(&c.name);
        let termination_file = container_dir.join("termination-log");
        let target = c
            .termination_message_path
            .clone()
            .unwrap_or_else(|| DEFAULT_TERMINATION_MESSAGE_PATH.into());
        mounts.push(Mount {
            source: termination_file.clone(),
            target: target.into(),
            read_only: false,
        });
        let security = c.security_context.as_ref();
        let run_as_user = security
            .and_then(|s| s.run_as_user)
            .or(pod_user.and_then(|s| s.run_as_user));
        let run_as_group = security
            .and_then(|s| s.run_as_group)
            .or(pod_user.and_then(|s| s.run_as_group));
        // As with an image that names no user: unset ids are root's.
        let user = match (run_as_user, run_as_group) {
            (None, None) => None,
            (u, g) => Some((u.unwrap_or(0) as u32, g.unwrap_or(0) as u32)),
        };
        let image_id = format!("local://{}", argv[0]);
        runs.push(ContainerRun {
            process: ProcessSpec {
                argv,
                env,
                // An image's WORKDIR defaults to /.
                working_dir: c
                    .working_dir
                    .clone()
                    .filter(|w| !w.is_empty())
                    .unwrap_or_else(|| "/".into())
                    .into(),
                mounts,
                user,
                log: PathBuf::new(),
            },
            termination_file,
            log_dir: log_root.join(&c.name),
            fallback_to_logs: c.termination_message_policy.as_deref()
                == Some("FallbackToLogsOnError"),
            view: ContainerView {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                image_id,
                container_id: None,
                state: State::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                },
                last_state: None,
                restart_count: 0,
                restarting: false,
            },
            pid: None,
            restart_at: None,
        });
    }
    Ok(runs)
}

/// Container views for a pod that failed before any container started.
pub(super) fn waiting_views(pod: &Pod, failure: &PodFailure) -> Vec<ContainerView> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| ContainerView {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            image_id: String::new(),
            container_id: None,
            state: State::Waiting {
                reason: failure.reason.clone(),
                message: Some(failure.message.clone()),
            },
            last_state: None,
            restart_count: 0,
            restarting: false,
        })
        .collect()
}
