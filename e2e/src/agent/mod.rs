//! A node agent: registers simulated Nodes and runs the pods bound to them as local processes,
//! so the real sealer-pod binary runs real steps under a real control plane.
//!
//! Restart semantics: a pod whose container was running when the agent stopped is reported
//! Failed (exit code 137, reason ContainerStatusUnknown) by the next agent, and any process it
//! left behind is killed; the agent never silently runs a step a second time.

pub mod config;
mod container;
pub mod env;
mod kubelet;
pub mod node;
mod pids;
mod pod;
pub mod process;
pub mod sources;
pub mod status;
pub mod volumes;

use std::sync::Arc;

use kube::Client;
use tracing::{error, info};

use config::AgentConfig;
use node::NodeContext;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("registering node {node}: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("waiting for a shutdown signal: {0}")]
    Signal(#[source] std::io::Error),
}

/// Runs the agent until SIGINT or SIGTERM, then kills the containers it started.
pub async fn run(
    config: AgentConfig,
    client: Client,
    api_server: http::Uri,
) -> Result<(), AgentError> {
    let namespace_error = process::check_mount_namespaces().await.err();
    if let Some(e) = &namespace_error {
        error!(error = %e, "pods on this agent will fail");
    }
    let config = Arc::new(config);
    let mut nodes = Vec::new();
    for node in &config.nodes {
        let ctx = Arc::new(NodeContext::new(
            client.clone(),
            config.clone(),
            node.clone(),
            &api_server,
            namespace_error.clone(),
        ));
        ctx.register()
            .await
            .map_err(|source| AgentError::Register {
                node: node.name.clone(),
                source,
            })?;
        info!(node = %node.name, root = %ctx.disk.root.display(), "node registered");
        tokio::spawn(ctx.clone().heartbeat());
        tokio::spawn(kubelet::run(ctx.clone()));
        nodes.push(ctx);
    }
    shutdown_signal().await.map_err(AgentError::Signal)?;
    info!("shutting down; killing the containers of this agent");
    for ctx in &nodes {
        kubelet::kill_all(ctx).await;
    }
    Ok(())
}

/// Container processes still running under an agent's `rootDir` (pid, pid file): after a
/// clean stop there should be none.
pub fn running_containers(root_dir: &std::path::Path) -> Vec<(u32, std::path::PathBuf)> {
    let Ok(nodes) = std::fs::read_dir(root_dir) else {
        return Vec::new();
    };
    let mut running = Vec::new();
    for node in nodes.flatten() {
        let pods = node.path().join("var/lib/kubelet/pods");
        for pod in std::fs::read_dir(&pods).into_iter().flatten().flatten() {
            for (pid, started) in pids::pid_files(&pod.path()) {
                if process::is_running(pid, started) {
                    running.push((pid, pod.path()));
                }
            }
        }
    }
    running
}

async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
