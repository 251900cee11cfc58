//! The real sealer-pod binary as the node agent runs it: sealing steps in pods, their results
//! in the termination message, their data on the disk of the node they ran on.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use sealing_e2e::e2e_tests;
use sealing_e2e::harness::{Cluster, E2eTest, wait};
use serde_json::{Value, json};

use crate::support::{create_pod, finished, terminated};

pub fn tests() -> Vec<E2eTest> {
    e2e_tests![sealer_pod_steps_run_on_one_node_and_report_their_results]
}

/// CommD of a 2 KiB committed-capacity sector (all zeros), as every implementation computes it.
const CC_2KIB_COMM_D: &str = "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy";
const SECTOR_DIR: &str = "/var/lib/sealing/scratch/s-1";

async fn sealer_pod_steps_run_on_one_node_and_report_their_results(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    if cluster.is_local() {
        // The agent maps the sealer-pod image to this binary.
        cluster.binaries.path("sealer-pod")?;
    }
    let ns = cluster.namespace("sealer").await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let host_dir = format!("/var/lib/sealing/e2e/{ns}/s-1");
    let step = |name: &str, step: &str, node: Option<&str>| {
        let mut pod = json!({
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "step",
                    "image": "sealer-pod:dev",
                    "args": [step, "--sector-dir", SECTOR_DIR, "--miner", "t01000",
                             "--sector-number", "1", "--sector-size", "2KiB"],
                    "volumeMounts": [{"name": "sector", "mountPath": SECTOR_DIR}],
                }],
                "volumes": [{"name": "sector", "hostPath": {"path": host_dir, "type": "DirectoryOrCreate"}}],
            }
        });
        if let Some(node) = node {
            pod["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": node});
        }
        pod
    };
    create_pod(&pods, step("add-piece", "add-piece", None)).await?;
    let added = finished(&pods, "add-piece", Duration::from_secs(120)).await?;
    let result = step_result(&added)?;
    ensure!(
        result["result"]["cc"] == json!(true),
        "add-piece result {result}"
    );
    ensure!(
        result["result"]["comm_d"] == json!(CC_2KIB_COMM_D),
        "add-piece result {result}"
    );
    let node = added
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .context("add-piece pod has no node")?;

    // The next step must run where the data is.
    create_pod(&pods, step("tree-d", "tree-d", Some(&node))).await?;
    let tree_d = finished(&pods, "tree-d", Duration::from_secs(120)).await?;
    let result = step_result(&tree_d)?;
    ensure!(
        result["result"]["comm_d"] == json!(CC_2KIB_COMM_D),
        "tree-d result {result}"
    );

    if let Some(dir) = cluster.node_path(&node, &host_dir) {
        for file in ["unsealed", "tree-d.json", "pieces.json"] {
            ensure!(
                dir.join(file).exists(),
                "{} missing on {node}'s disk",
                dir.join(file).display()
            );
        }
    }
    Ok(())
}

/// The step's result document, checked to report success.
fn step_result(pod: &Pod) -> anyhow::Result<Value> {
    let t = terminated(pod)?;
    let message = t.message.clone().unwrap_or_default();
    ensure!(
        wait::pod_phase(pod) == "Succeeded" && t.exit_code == 0,
        "step ended {t:?}"
    );
    let result: Value = serde_json::from_str(&message)
        .with_context(|| format!("result is not JSON: {message:?}"))?;
    ensure!(
        result["ok"] == json!(true),
        "step reported failure: {result}"
    );
    Ok(result)
}
