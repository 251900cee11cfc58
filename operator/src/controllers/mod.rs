//! The controllers: thin adapters that read the cluster, ask the sealing core, and write back.

pub mod bridge;
pub mod conditions;
pub mod messages;
pub mod pool;
pub mod proving;
pub mod sector;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};

use crate::config::Config;
use crate::metrics::Metrics;

/// The operator's own namespace (the downward API's POD_NAMESPACE), where its Secret and its
/// ProvingDeadlines live.
pub fn own_namespace() -> String {
    std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "sealing-system".into())
}

/// Creates `pod` unless a pod of its name exists (or is still going away: the caller looks again
/// later). Whether this call created it.
pub async fn create_pod(pods: &Api<Pod>, pod: &Pod) -> Result<bool, kube::Error> {
    match pods.create(&PostParams::default(), pod).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Everything a reconcile needs, shared by all controllers.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub recorder: Recorder,
    pub placements: pool::RecentPlacements,
    pub metrics: Arc<Metrics>,
}

impl Context {
    pub fn new(client: Client, config: Config, instance: Option<String>) -> Arc<Self> {
        let reporter = Reporter { controller: "sealing-operator".into(), instance };
        Arc::new(Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            config,
            placements: pool::RecentPlacements::default(),
            metrics: Arc::new(Metrics::default()),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the object has no {0}")]
    Metadata(&'static str),
    #[error("building the step pod: {0}")]
    Pod(#[from] crate::pods::PodError),
    #[error("the sealing core refused a transition: {0}")]
    Transition(#[from] crate::core::transition::TransitionError),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Not a failure: the deletion waits for the pod removing the sector's data.
    #[error("waiting for pod {0} to remove the sector's data")]
    Removing(String),
}

/// Conflicts (someone else wrote first) are retried at once; anything else after a pause.
pub fn retry_after(error: &Error) -> Duration {
    match error {
        Error::Kube(kube::Error::Api(status)) if status.code == 409 => Duration::from_millis(200),
        Error::Removing(_) => Duration::from_secs(2),
        _ => Duration::from_secs(10),
    }
}

/// Something to tell the user through an Event, once the status is written.
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

pub async fn publish<K: Resource<DynamicType = ()>>(ctx: &Context, object: &K, notes: Vec<Note>) {
    let reference = object.object_ref(&());
    for note in notes {
        // The recorder folds events with the same reason and action into one series, whatever
        // their text; each distinct message gets its own action so no transition is hidden.
        let action: String = note.message.chars().take(128).collect();
        let event = KubeEvent {
            type_: if note.warning { EventType::Warning } else { EventType::Normal },
            reason: note.reason.into(),
            note: Some(shortened(note.message, EVENT_NOTE_LIMIT)),
            action,
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(%error, "cannot record an event");
        }
    }
}

/// The API server refuses an Event whose note is longer than 1 KiB.
const EVENT_NOTE_LIMIT: usize = 1024;

/// `text` cut to at most `limit` bytes on a character boundary, marked with an ellipsis.
fn shortened(text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::shortened;

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        assert_eq!(shortened("short".into(), 1024), "short");
        let long = "é".repeat(1000);
        let cut = shortened(long, 1024);
        assert!(cut.len() <= 1024 && cut.ends_with('…'), "{}", cut.len());
    }
}
