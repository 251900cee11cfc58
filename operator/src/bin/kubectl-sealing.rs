//! `kubectl sealing list|pause|resume [--state S]|abort SECTOR`: venus-worker's `worker
//! list/pause/resume` (seed 003) for Sector resources. Everything goes through the Sector's spec,
//! so what this does can also be done with `kubectl patch`.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use sealing_operator::core::State;
use sealing_operator::crd::Sector;

#[derive(Parser)]
#[command(name = "kubectl-sealing", version, about = "Manage sealing sectors: list, pause, resume, abort")]
struct Cli {
    /// Namespace of the sectors (default: the kubeconfig's).
    #[arg(short, long, global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List sectors with their state, pause and last error.
    List {
        /// All namespaces.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
    /// Hold a sector after its current step.
    Pause { sector: String },
    /// Resume a paused sector, at its current state or at --state.
    Resume {
        sector: String,
        /// The state to resume at, e.g. TreeDBuilt, or Aborted.
        #[arg(long)]
        state: Option<State>,
        /// How long to wait for the operator's answer.
        #[arg(long, default_value = "30")]
        wait_seconds: u64,
    },
    /// Give up on a sector: it moves to Aborted and its scratch data is removed.
    Abort { sector: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let client = Client::try_default().await.context("cannot reach the cluster named by the kubeconfig")?;
    let namespace = cli.namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
    let api: Api<Sector> = Api::namespaced(client.clone(), &namespace);
    match cli.command {
        Command::List { all_namespaces } => {
            let api = if all_namespaces { Api::all(client) } else { api };
            list(&api, all_namespaces).await
        }
        Command::Pause { sector } => {
            patch(&api, &sector, serde_json::json!({"spec": {"paused": true}})).await?;
            println!("sector {sector} pauses after its current step");
            Ok(())
        }
        Command::Abort { sector } => {
            patch(&api, &sector, serde_json::json!({"spec": {"abort": true}})).await?;
            println!("sector {sector} is being aborted");
            Ok(())
        }
        Command::Resume { sector, state, wait_seconds } => resume(&api, &sector, state, Duration::from_secs(wait_seconds)).await,
    }
}

async fn patch(api: &Api<Sector>, name: &str, body: serde_json::Value) -> anyhow::Result<Sector> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .with_context(|| format!("cannot update sector {name}"))
}

async fn resume(api: &Api<Sector>, name: &str, state: Option<State>, wait: Duration) -> anyhow::Result<()> {
    let requested_at = Timestamp::now().to_string();
    let mut request = serde_json::json!({ "requestedAt": requested_at });
    if let Some(state) = state {
        request["state"] = serde_json::json!(state.as_str());
    }
    patch(api, name, serde_json::json!({"spec": {"paused": false, "resume": request}})).await?;
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        let sector = api.get(name).await.with_context(|| format!("cannot read sector {name}"))?;
        let answer = sector.status.as_ref().and_then(|s| s.last_resume.as_ref()).filter(|r| r.requested_at == requested_at);
        if let Some(answer) = answer {
            if answer.accepted {
                println!("sector {name}: {}", answer.message);
                return Ok(());
            }
            bail!("sector {name}: resume refused: {}", answer.message);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("sector {name}: the operator has not answered the resume request within {}s; is it running?", wait.as_secs())
}

async fn list(api: &Api<Sector>, all_namespaces: bool) -> anyhow::Result<()> {
    let sectors = api.list(&ListParams::default()).await.context("cannot list sectors")?;
    let now = Timestamp::now();
    let mut rows = vec![vec![
        "NAME".to_owned(),
        "SECTOR ID".into(),
        "PAUSED".into(),
        "PAUSED ELAPSED".into(),
        "STATE".into(),
        "NODE".into(),
        "LAST ERROR".into(),
    ]];
    for sector in sectors {
        let record = sector.status.as_ref().map(|s| s.record.clone()).unwrap_or_default();
        let name = match (all_namespaces, sector.namespace()) {
            (true, Some(ns)) => format!("{ns}/{}", sector.name_any()),
            _ => sector.name_any(),
        };
        let id = record.sector_number.map(|n| format!("s-{}-{n}", sector.spec.miner)).unwrap_or_else(|| "-".into());
        let (paused, elapsed) = match &record.paused {
            Some(p) => {
                let secs = now.duration_since(p.since).as_secs().max(0);
                ("true".to_owned(), format!("{}m{}s", secs / 60, secs % 60))
            }
            None => ("false".to_owned(), "-".into()),
        };
        let error = record.last_error.as_ref().map(|e| format!("{}: {}", e.level, e.message)).unwrap_or_else(|| "-".into());
        let node = record.node.clone().unwrap_or_else(|| "-".into());
        rows.push(vec![name, id, paused, elapsed, record.state.as_str().into(), node, error]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// Left-aligned columns separated by two spaces, like kubectl's tables.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> =
        (0..columns).map(|c| rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| if i + 1 == columns { cell.clone() } else { format!("{cell:<width$}", width = widths[i]) })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn columns_line_up() {
        let rows = vec![vec!["NAME".into(), "STATE".into()], vec!["cc-1".into(), "PC1Done".into()]];
        assert_eq!(table(&rows), "NAME  STATE\ncc-1  PC1Done\n");
    }
}
