//! `chain-sim`: serve a simulated Filecoin chain on a local address.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use chain_sim::{FilecoinProofs, RunningSim, SimConfig};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "A Filecoin chain simulator with the Lotus v1 JSON-RPC methods a sealer needs")]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:1234", env = "CHAIN_SIM_LISTEN")]
    listen: SocketAddr,
    /// JSON config file (see SimConfig); defaults apply to fields it leaves out.
    #[arg(long, env = "CHAIN_SIM_CONFIG")]
    config: Option<String>,
    /// Overrides epochDurationMs (0 stops the clock).
    #[arg(long)]
    epoch_duration_ms: Option<u64>,
    /// File holding the API token clients must send as a bearer token.
    #[arg(long, env = "CHAIN_SIM_TOKEN_FILE")]
    token_file: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => SimConfig::from_file(path)?,
        None => SimConfig::default(),
    };
    if let Some(ms) = args.epoch_duration_ms {
        config.epoch_duration_ms = ms;
    }
    if let Some(path) = &args.token_file {
        let token = std::fs::read_to_string(path).with_context(|| format!("reading the API token file {path}"))?;
        config.api_token = Some(token.trim().to_owned());
    }
    let sim = RunningSim::start(config, Arc::new(FilecoinProofs), args.listen).await?;
    // Scripts read this line to find the endpoint.
    println!("{}", sim.url());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}
