//! Runs a simulator: the shared chain state, the epoch clock and the HTTP server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use cid::Cid;
use filecoin_chain::ApiToken;
use filecoin_chain::ChainEpoch;
use filecoin_chain::message::MsgLookup;
use filecoin_chain::policy::CHAIN_FINALITY;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::chain::{Chain, ChainError};
use crate::config::{ConfigError, SimConfig};
use crate::verifier::ProofVerifier;

pub struct SimState {
    chain: Mutex<Chain>,
    head: watch::Sender<ChainEpoch>,
}

impl SimState {
    pub fn new(chain: Chain) -> Self {
        let (head, _) = watch::channel(chain.head());
        Self { chain: Mutex::new(chain), head }
    }

    /// The chain; a panic while holding the lock elsewhere does not make the state unusable.
    pub fn lock(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Advances `n` epochs, null rounds included (may verify proofs: call from a blocking
    /// context). Returns the head.
    pub fn advance(&self, n: u64) -> ChainEpoch {
        for _ in 0..n {
            let mut chain = self.lock();
            if chain.advance() {
                let head = chain.head();
                drop(chain);
                self.head.send_replace(head);
            }
        }
        self.lock().head()
    }

    /// `StateWaitMsg` (lotus chain/stmgr/searchwait.go:30-159): waits until the message (or,
    /// with `allow_replaced`, its replacement) executed and the head is `confidence` epochs past
    /// the tipset holding its receipt. A message executed before the call is found only within
    /// `limit` epochs of the head then (-1: no limit).
    pub async fn wait_msg(&self, cid: Cid, confidence: u64, limit: ChainEpoch, allow_replaced: bool) -> Result<MsgLookup, ChainError> {
        if confidence > CHAIN_FINALITY as u64 {
            return Err(ChainError::ConfidenceTooHigh(confidence));
        }
        let mut rx = self.head.subscribe();
        let since = self.lock().head();
        loop {
            {
                let chain = self.lock();
                if let Some(lookup) = chain.waited_msg(&cid, since, limit, allow_replaced)?
                    && chain.head() - lookup.height >= confidence as ChainEpoch
                {
                    return Ok(lookup);
                }
            }
            if rx.changed().await.is_err() {
                // The simulator is shutting down; the HTTP server goes with it.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A simulator serving on a local address.
pub struct RunningSim {
    addr: SocketAddr,
    state: Arc<SimState>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningSim {
    pub async fn start(config: SimConfig, verifier: Arc<dyn ProofVerifier>, bind: SocketAddr) -> Result<Self, StartError> {
        config.validate()?;
        let token = config.api_token.as_deref().map(ApiToken::new);
        let period = config.epoch_duration();
        let state = Arc::new(SimState::new(Chain::new(config, verifier)));
        let listener = tokio::net::TcpListener::bind(bind).await.map_err(|source| StartError::Bind { bind, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { bind, source })?;
        let app = crate::rpc::router(Arc::clone(&state), token);
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "simulator HTTP server stopped");
            }
        })];
        if !period.is_zero() {
            let clock = Arc::clone(&state);
            tasks.push(tokio::spawn(async move {
                let mut interval = tokio::time::interval(period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    let s = Arc::clone(&clock);
                    if tokio::task::spawn_blocking(move || s.advance(1)).await.is_err() {
                        tracing::error!("epoch advance panicked; the clock stops");
                        return;
                    }
                }
            }));
        }
        tracing::info!(%addr, "chain simulator listening");
        Ok(Self { addr, state, tasks })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Lotus-style endpoint, `http://<addr>/rpc/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/rpc/v1", self.addr)
    }

    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}
