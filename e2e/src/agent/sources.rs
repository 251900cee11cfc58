//! The API data a pod refers to, fetched before it starts: ConfigMaps and Secrets named by its
//! environment and volumes, and the service account tokens of its projected volumes.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::status::PodFailure;

/// The data of one ConfigMap (`data` and `binaryData`) or Secret, by key.
pub type ObjectData = BTreeMap<String, Vec<u8>>;

/// What the pod refers to; a missing ConfigMap or Secret is absent from its map.
#[derive(Debug, Default, Clone)]
pub struct PodSources {
    pub config_maps: BTreeMap<String, ObjectData>,
    pub secrets: BTreeMap<String, ObjectData>,
    /// Tokens for projected `serviceAccountToken` sources, by (volume, path).
    pub tokens: BTreeMap<(String, String), String>,
}

/// Kubelet's default lifetime of a projected token.
const DEFAULT_TOKEN_SECONDS: i64 = 3600;

pub async fn fetch(client: &Client, pod: &Pod) -> Result<PodSources, PodFailure> {
    let ns = pod.namespace().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let mut cm_names = Vec::new();
    let mut secret_names = Vec::new();
    for c in &spec.containers {
        for e in c.env_from.iter().flatten() {
            cm_names.extend(e.config_map_ref.as_ref().map(|r| r.name.clone()));
            secret_names.extend(e.secret_ref.as_ref().map(|r| r.name.clone()));
        }
        for e in c.env.iter().flatten().filter_map(|e| e.value_from.as_ref()) {
            cm_names.extend(e.config_map_key_ref.as_ref().map(|r| r.name.clone()));
            secret_names.extend(e.secret_key_ref.as_ref().map(|r| r.name.clone()));
        }
    }
    let mut token_requests = Vec::new();
    for v in spec.volumes.iter().flatten() {
        cm_names.extend(v.config_map.as_ref().map(|c| c.name.clone()));
        secret_names.extend(v.secret.as_ref().and_then(|s| s.secret_name.clone()));
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            cm_names.extend(source.config_map.as_ref().map(|c| c.name.clone()));
            secret_names.extend(source.secret.as_ref().map(|s| s.name.clone()));
            if let Some(t) = &source.service_account_token {
                token_requests.push((v.name.clone(), t.clone()));
            }
        }
    }
    let failure = |message: String| PodFailure {
        reason: "CreateContainerConfigError".into(),
        message,
    };
    let mut sources = PodSources::default();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for name in cm_names {
        let found = cms
            .get_opt(&name)
            .await
            .map_err(|e| failure(format!("reading ConfigMap {ns}/{name}: {e}")))?;
        if let Some(cm) = found {
            let mut data: ObjectData = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            data.extend(
                cm.binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0)),
            );
            sources.config_maps.insert(name, data);
        }
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for name in secret_names {
        let found = secrets
            .get_opt(&name)
            .await
            .map_err(|e| failure(format!("reading Secret {ns}/{name}: {e}")))?;
        if let Some(s) = found {
            let data: ObjectData = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            sources.secrets.insert(name, data);
        }
    }
    let account = spec
        .service_account_name
        .clone()
        .unwrap_or_else(|| "default".into());
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    for (volume, projection) in token_requests {
        // Bound to the pod, as kubelet's tokens are: deleting the pod invalidates them.
        let request: TokenRequest = serde_json::from_value(json!({
            "spec": {
                "audiences": projection.audience.iter().collect::<Vec<_>>(),
                "expirationSeconds": projection.expiration_seconds.unwrap_or(DEFAULT_TOKEN_SECONDS),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod.name_any(), "uid": pod.uid()},
            }
        }))
        .map_err(|e| failure(format!("volume {volume}: building the token request: {e}")))?;
        let issued: TokenRequest = accounts
            .create_subresource("token", &account, &PostParams::default(), &request)
            .await
            .map_err(|e| {
                failure(format!(
                    "volume {volume}: requesting a token for ServiceAccount {ns}/{account}: {e}"
                ))
            })?;
        let token = issued.status.and_then(|s| s.token).ok_or_else(|| {
            failure(format!(
                "volume {volume}: the API server issued no token for ServiceAccount {ns}/{account}"
            ))
        })?;
        sources.tokens.insert((volume, projection.path), token);
    }
    Ok(sources)
}
