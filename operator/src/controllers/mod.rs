//! The controllers: thin adapters that read the cluster, ask the sealing core, and write back.

pub mod conditions;
pub mod pool;
pub mod sector;

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::config::Config;

/// Everything a reconcile needs, shared by all controllers.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub recorder: Recorder,
    pub placements: pool::RecentPlacements,
}

impl Context {
    pub fn new(client: Client, config: Config, instance: Option<String>) -> Arc<Self> {
        let reporter = Reporter { controller: "sealing-operator".into(), instance };
        Arc::new(Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            config,
            placements: pool::RecentPlacements::default(),
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
}

/// Conflicts (someone else wrote first) are retried at once; anything else after a pause.
pub fn retry_after(error: &Error) -> Duration {
    match error {
        Error::Kube(kube::Error::Api(status)) if status.code == 409 => Duration::from_millis(200),
        _ => Duration::from_secs(10),
    }
}
