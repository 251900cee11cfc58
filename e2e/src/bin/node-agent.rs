//! `node-agent --config agent.yaml [--kubeconfig PATH]`: registers the configured Nodes and
//! runs the pods bound to them as local processes.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use kube::config::{KubeConfigOptions, Kubeconfig};
use sealing_e2e::agent::{self, config::AgentConfig};

#[derive(Parser)]
#[command(
    version,
    about = "Runs the pods bound to simulated Nodes as local processes"
)]
struct Args {
    /// Node agent configuration (YAML): nodes, image map, root directory.
    #[arg(long, env = "NODE_AGENT_CONFIG")]
    config: PathBuf,
    /// Kubeconfig to use; defaults to $KUBECONFIG or ~/.kube/config.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = AgentConfig::load(&args.config)?;
    let kube_config = match &args.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("finding a kubeconfig")?,
    };
    let api_server = match &config.api_server {
        Some(url) => url
            .parse()
            .with_context(|| format!("apiServer {url:?} is not a URL"))?,
        None => kube_config.cluster_url.clone(),
    };
    let client = kube::Client::try_from(kube_config).context("building the Kubernetes client")?;
    agent::run(config, client, api_server).await?;
    Ok(())
}
