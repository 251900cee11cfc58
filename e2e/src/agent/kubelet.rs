//! Watches the pods bound to one node and hands each to its own worker.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::watch;
use tracing::{info, warn};

use super::node::NodeContext;
use super::{pids, pod, process};

pub async fn run(ctx: Arc<NodeContext>) {
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let selector = format!("spec.nodeName={}", ctx.node.name);
    let mut events = watcher(pods, watcher::Config::default().fields(&selector))
        .default_backoff()
        .boxed();
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut listed: HashSet<String> = HashSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitApply(p)) => {
                listed.insert(p.uid().unwrap_or_default());
                dispatch(&ctx, &mut workers, p);
            }
            Ok(watcher::Event::InitDone) => {
                // Pods deleted while the watch was down.
                workers.retain(|uid, tx| {
                    let keep = listed.contains(uid);
                    if !keep {
                        tx.send_replace(None);
                    }
                    keep
                });
                reap_orphans(&ctx, &listed).await;
            }
            Ok(watcher::Event::Apply(p)) => dispatch(&ctx, &mut workers, p),
            Ok(watcher::Event::Delete(p)) => {
                if let Some(tx) = workers.remove(&p.uid().unwrap_or_default()) {
                    tx.send_replace(None);
                }
            }
            Err(e) => warn!(node = %ctx.node.name, error = %e, "pod watch failed; retrying"),
        }
    }
}

fn dispatch(
    ctx: &Arc<NodeContext>,
    workers: &mut HashMap<String, watch::Sender<Option<Pod>>>,
    p: Pod,
) {
    let uid = p.uid().unwrap_or_default();
    if let Some(tx) = workers.get(&uid) {
        tx.send_replace(Some(p));
        return;
    }
    info!(node = %ctx.node.name, pod = %format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()), "pod bound to node");
    let (tx, rx) = watch::channel(Some(p));
    workers.insert(uid, tx);
    tokio::spawn(pod::run(ctx.clone(), rx));
}

/// Kills processes and removes directories of pods that no longer exist.
async fn reap_orphans(ctx: &NodeContext, live: &HashSet<String>) {
    let pods_dir = ctx.disk.pod_dir("");
    let Ok(entries) = std::fs::read_dir(&pods_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let uid = entry.file_name().to_string_lossy().into_owned();
        if live.contains(&uid) {
            continue;
        }
        warn!(node = %ctx.node.name, %uid, "cleaning up a pod that was deleted while the agent was away");
        kill_recorded(&entry.path()).await;
        if let Err(e) = std::fs::remove_dir_all(entry.path()) {
            warn!(node = %ctx.node.name, %uid, error = %e, "could not remove pod directory");
        }
    }
}

/// Kills every container process recorded under a pod directory that is still the same
/// process, and waits until each is dead.
pub async fn kill_recorded(pod_dir: &Path) {
    for (pid, started) in pids::pid_files(pod_dir) {
        if !process::kill_and_wait(pid, started, KILL_TIMEOUT).await {
            warn!(pid, dir = %pod_dir.display(), "container process survived SIGKILL");
        }
    }
}

/// Kills every container of the node, for a clean agent shutdown.
pub async fn kill_all(ctx: &NodeContext) {
    let Ok(entries) = std::fs::read_dir(ctx.disk.pod_dir("")) else {
        return;
    };
    for entry in entries.flatten() {
        kill_recorded(&entry.path()).await;
    }
}

const KILL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
