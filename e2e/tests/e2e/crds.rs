//! The CRDs under the real API server: every manifest of the invalid table is rejected with
//! messages naming the fields, every manifest of the valid table is accepted.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use kube::api::{DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use kube::{Api, ResourceExt};
use sealing_e2e::e2e_tests;
use sealing_e2e::harness::{Cluster, E2eTest};
use serde::Deserialize;
use serde_json::Value;

pub fn tests() -> Vec<E2eTest> {
    e2e_tests![
        invalid_manifests_are_rejected_naming_the_fields,
        valid_manifests_are_accepted
    ]
}

const GROUP: &str = "sealing.filecoin.io";

/// An entry of operator/tests/fixtures/{invalid,valid}-manifests.yaml.
#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    #[serde(default)]
    expect: Vec<String>,
    manifest: Value,
    #[serde(default)]
    before: Option<Value>,
}

fn table(file: &str) -> anyhow::Result<Vec<Entry>> {
    let path = Cluster::repo_root()
        .join("operator/tests/fixtures")
        .join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Resolves each manifest's kind to its API, placing namespaced objects in `ns`.
struct Resolver {
    discovery: Discovery,
    client: kube::Client,
    ns: String,
}

impl Resolver {
    async fn new(cluster: &Cluster, ns: String) -> anyhow::Result<Self> {
        let discovery = Discovery::new(cluster.client.clone())
            .filter(&[GROUP])
            .run()
            .await?;
        Ok(Resolver {
            discovery,
            client: cluster.client.clone(),
            ns,
        })
    }

    fn api(&self, manifest: &Value) -> anyhow::Result<(Api<DynamicObject>, DynamicObject)> {
        let obj: DynamicObject =
            serde_json::from_value(manifest.clone()).context("manifest is not an object")?;
        let types = obj
            .types
            .clone()
            .context("manifest has no apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(&types).context("manifest apiVersion")?;
        let (ar, caps) = self
            .discovery
            .resolve_gvk(&gvk)
            .with_context(|| format!("the API server does not serve {gvk:?}"))?;
        let api = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(self.client.clone(), &self.ns, &ar),
            Scope::Cluster => Api::all_with(self.client.clone(), &ar),
        };
        Ok((api, obj))
    }
}

async fn invalid_manifests_are_rejected_naming_the_fields(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let entries = table("invalid-manifests.yaml")?;
    cluster.install_crds().await?;
    let ns = cluster.namespace("invalid").await?;
    let resolver = Resolver::new(&cluster, ns).await?;
    let mut problems = Vec::new();
    for entry in &entries {
        if let Err(e) = check_rejected(&resolver, entry).await {
            problems.push(format!("{}: {e:#}", entry.name));
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} of {} invalid manifests were not rejected as expected:\n{}",
            problems.len(),
            entries.len(),
            problems.join("\n")
        );
    }
    eprintln!(
        "e2e: the API server rejected all {} invalid manifests",
        entries.len()
    );
    Ok(())
}

async fn check_rejected(resolver: &Resolver, entry: &Entry) -> anyhow::Result<()> {
    if entry.expect.is_empty() {
        bail!("the entry lists no expected message");
    }
    let (api, obj) = resolver.api(&entry.manifest)?;
    let result = match &entry.before {
        None => api.create(&PostParams::default(), &obj).await,
        Some(before) => {
            let (before_api, before_obj) = resolver.api(before)?;
            let created = before_api
                .create(&PostParams::default(), &before_obj)
                .await
                .context("creating `before` failed; the fixture's starting object must be valid")?;
            let mut update = obj.clone();
            update.metadata.resource_version = created.resource_version();
            api.replace(&created.name_any(), &PostParams::default(), &update)
                .await
        }
    };
    match result {
        Ok(_) => bail!("accepted"),
        Err(kube::Error::Api(status)) => {
            let message = status.message.clone();
            let missing: Vec<&String> = entry
                .expect
                .iter()
                .filter(|e| !message.contains(e.as_str()))
                .collect();
            if status.code != 422 {
                bail!(
                    "rejected with HTTP {} instead of 422 Invalid: {message}",
                    status.code
                );
            }
            if !missing.is_empty() {
                bail!("the message lacks {missing:?}: {message}");
            }
            Ok(())
        }
        Err(e) => Err(e).context("the request failed"),
    }
}

async fn valid_manifests_are_accepted(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let mut entries = table("valid-manifests.yaml")?;
    for sample in ["pool.yaml", "sector-cc.yaml", "sector-deal.yaml"] {
        let path = Cluster::repo_root().join("manifests/samples").join(sample);
        if Path::new(&path).exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let manifest: Value = serde_yaml::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            entries.push(Entry {
                name: format!("manifests/samples/{sample}"),
                expect: vec![],
                manifest,
                before: None,
            });
        }
    }
    cluster.install_crds().await?;
    let ns = cluster.namespace("valid").await?;
    let resolver = Resolver::new(&cluster, ns).await?;
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let mut problems = Vec::new();
    for entry in &entries {
        let outcome = async {
            let (api, obj) = resolver.api(&entry.manifest)?;
            api.create(&dry_run, &obj)
                .await
                .map(drop)
                .map_err(anyhow::Error::from)
        }
        .await;
        if let Err(e) = outcome {
            problems.push(format!("{}: {e:#}", entry.name));
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} of {} valid manifests were rejected:\n{}",
            problems.len(),
            entries.len(),
            problems.join("\n")
        );
    }
    Ok(())
}
