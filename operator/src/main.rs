//! `sealing-operator run`: the Sector, SealingPool and proving controllers and the chain bridge,
//! with health and metrics endpoints.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use clap::{Parser, Subcommand};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use sealing_operator::config::Config;
use sealing_operator::controllers::bridge::{self, Bridge};
use sealing_operator::controllers::proving::Prover;
use sealing_operator::controllers::{Context, own_namespace, pool, sector};
use sealing_operator::crd::{SealingPool, Sector};
use prometheus_client::registry::Registry;
use sealing_operator::metrics;
use sealing_operator::pods::MANAGED_BY;

#[derive(Parser)]
#[command(name = "sealing-operator", version, about = "Seals Filecoin sectors on Kubernetes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers.
    Run {
        /// The configuration file (manifests/config.yaml mounts it here).
        #[arg(long, default_value = "/etc/sealing-operator/config.yaml")]
        config: PathBuf,
        /// Address of the health and metrics endpoints (/healthz, /readyz, /metrics).
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match Cli::parse().command {
        Command::Run { config, listen } => run(config, listen).await,
    }
}

async fn run(config_path: PathBuf, listen: SocketAddr) -> anyhow::Result<()> {
    let config = Config::load(&config_path)?;
    let client = Client::try_default().await.context("cannot reach the Kubernetes API (no kubeconfig or in-cluster account)")?;
    let sectors: Api<Sector> = Api::all(client.clone());
    sectors
        .list(&ListParams::default().limit(1))
        .await
        .context("the Sector CRD is not installed or not readable; run `kubectl apply -f crds/` first")?;

    let ready = Arc::new(AtomicBool::new(false));
    let ctx = Context::new(client.clone(), config, std::env::var("POD_NAME").ok());

    let pods = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"));
    let sector_controller = Controller::new(sectors.clone(), watcher::Config::default())
        .owns(Api::<Pod>::all(client.clone()), pods)
        .shutdown_on_signal();
    let sector_store = sector_controller.store();
    let registry = Arc::new(ctx.metrics.registry(sector_store.clone()));
    let health = serve_health(listen, ready.clone(), registry).await?;
    let pool_controller = Controller::new(Api::<SealingPool>::all(client.clone()), watcher::Config::default())
        .watches(sectors, watcher::Config::default(), |s: Sector| {
            let ns = s.namespace()?;
            Some(ObjectRef::new(&s.spec.pool).within(&ns))
        })
        .shutdown_on_signal();

    let pool_store = pool_controller.store();

    let token = bridge::token(&ctx, &ctx.config).await?;
    let chain_bridge = Bridge::new(ctx.clone(), sector_store.clone(), token.clone())?;
    let bridge_task = tokio::spawn(chain_bridge.run());
    let proving_namespace = ctx.config.proving.namespace.clone().unwrap_or_else(own_namespace);
    let prover = Prover::new(ctx.clone(), sector_store.clone(), pool_store, token, proving_namespace)?;
    let prover_task = tokio::spawn(prover.run());

    ready.store(true, Ordering::Relaxed);
    tracing::info!("controllers started");
    let sector_run = sector_controller.run(sector::reconcile, sector::error_policy, ctx.clone()).for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "sector reconcile");
        }
    });
    let pool_ctx = ctx.clone();
    let pool_run = pool_controller
        .run(move |p, c| pool::reconcile(p, c, sector_store.clone()), pool::error_policy, pool_ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "pool reconcile");
            }
        });
    tokio::join!(sector_run, pool_run);
    bridge_task.abort();
    prover_task.abort();
    health.abort();
    tracing::info!("controllers stopped");
    Ok(())
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `/healthz`, `/readyz` and `/metrics` (OpenMetrics text).
async fn serve_health(listen: SocketAddr, ready: Arc<AtomicBool>, registry: Arc<Registry>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.load(Ordering::Relaxed) { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "starting") }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    match metrics::encode(&registry) {
                        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], text),
                        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain")], "cannot encode the metrics".to_owned()),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "health server stopped");
        }
    }))
}
