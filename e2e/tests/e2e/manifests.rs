//! `manifests/` deploys cleanly: a server-side dry run of the kustomization is accepted by the
//! real API server (schema, RBAC escalation checks, admission).

use std::sync::Arc;

use anyhow::{Context, ensure};
use sealing_e2e::e2e_tests;
use sealing_e2e::harness::{Cluster, E2eTest};

pub fn tests() -> Vec<E2eTest> {
    e2e_tests![manifests_apply_with_server_side_dry_run]
}

async fn manifests_apply_with_server_side_dry_run(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let manifests = Cluster::repo_root().join("manifests");
    // A dry run cannot put objects into a namespace that does not exist yet, so the namespace
    // is applied for real first.
    let namespace = manifests.join("namespace.yaml");
    run(cluster
        .kubectl()
        .args([
            "apply",
            "--server-side",
            "--field-manager=sealing-e2e",
            "-f",
        ])
        .arg(&namespace))?;
    let out = run(cluster
        .kubectl()
        .args([
            "apply",
            "--server-side",
            "--field-manager=sealing-e2e",
            "--dry-run=server",
            "-k",
        ])
        .arg(&manifests))?;
    for kind in [
        "serviceaccount/",
        "deployment.apps/",
        "role.rbac.authorization.k8s.io/",
        "configmap/",
    ] {
        ensure!(out.contains(kind), "dry run output lists no {kind}: {out}");
    }
    ensure!(
        out.lines()
            .all(|l| l.trim().is_empty() || l.contains("(server dry run)")),
        "unexpected output: {out}"
    );
    Ok(())
}

fn run(cmd: &mut std::process::Command) -> anyhow::Result<String> {
    let output = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(
        output.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}
