//! A container's environment as kubelet builds it: image ENV, service variables, `envFrom`,
//! `env` with the downward API and ConfigMap/Secret references, and `$(VAR)` expansion.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ObjectFieldSelector, Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube_quantity::ParsedQuantity;

use super::sources::{ObjectData, PodSources};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvError {
    #[error(
        "env {var}: fieldRef {path:?} is not supported (supported: metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'], metadata.annotations['k'], spec.nodeName, spec.serviceAccountName, status.hostIP(s), status.podIP(s))"
    )]
    UnsupportedField { var: String, path: String },
    #[error(
        "env {var}: resourceFieldRef {resource:?} is not supported (supported: limits/requests.cpu, .memory, .ephemeral-storage)"
    )]
    UnsupportedResource { var: String, resource: String },
    #[error("env {var}: resourceFieldRef names container {container:?}, which is not in the pod")]
    UnknownContainer { var: String, container: String },
    #[error("env {var}: {what} {value:?} is not a valid quantity")]
    BadQuantity {
        var: String,
        what: &'static str,
        value: String,
    },
    #[error("env {var}: {kind} {name:?} has no key {key:?}")]
    MissingKey {
        var: String,
        kind: &'static str,
        name: String,
        key: String,
    },
    #[error("env {var}: {kind} {name:?} was not found")]
    MissingObject {
        var: String,
        kind: &'static str,
        name: String,
    },
    #[error("env {var}: valueFrom has no source")]
    EmptySource { var: String },
}

/// Where the pod runs: values kubelet takes from the node.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub host_ip: String,
    pub pod_ip: String,
    pub allocatable: BTreeMap<String, Quantity>,
}

/// Builds the environment of `container` in the order kubelet applies it (later wins):
/// image ENV, service variables, `envFrom`, `env`.
pub fn container_env(
    pod: &Pod,
    container: &Container,
    image_env: &BTreeMap<String, String>,
    service_env: &BTreeMap<String, String>,
    sources: &PodSources,
    node: &NodeFacts,
) -> Result<Vec<(String, String)>, EnvError> {
    let mut env = Env::default();
    for (k, v) in image_env.iter().chain(service_env) {
        env.set(k.clone(), v.clone());
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (kind, name, optional, data) = if let Some(cm) = &from.config_map_ref {
            (
                "ConfigMap",
                cm.name.clone(),
                cm.optional.unwrap_or(false),
                sources.config_maps.get(&cm.name),
            )
        } else if let Some(s) = &from.secret_ref {
            (
                "Secret",
                s.name.clone(),
                s.optional.unwrap_or(false),
                sources.secrets.get(&s.name),
            )
        } else {
            continue;
        };
        match data {
            Some(data) => {
                for (k, v) in data {
                    env.set(
                        format!("{prefix}{k}"),
                        String::from_utf8_lossy(v).into_owned(),
                    );
                }
            }
            None if optional => {}
            None => {
                return Err(EnvError::MissingObject {
                    var: format!("envFrom {prefix}*"),
                    kind,
                    name,
                });
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => expand(var.value.as_deref().unwrap_or(""), |name| env.get(name)),
            Some(from) => {
                if let Some(field) = &from.field_ref {
                    field_value(pod, field, node, &var.name)?
                } else if let Some(resource) = &from.resource_field_ref {
                    resource_value(pod, container, resource, node, &var.name)?
                } else if let Some(key) = &from.config_map_key_ref {
                    match keyed_value(
                        &sources.config_maps,
                        "ConfigMap",
                        &key.name,
                        &key.key,
                        &var.name,
                    ) {
                        Ok(v) => v,
                        Err(_) if key.optional == Some(true) => continue,
                        Err(e) => return Err(e),
                    }
                } else if let Some(key) = &from.secret_key_ref {
                    match keyed_value(&sources.secrets, "Secret", &key.name, &key.key, &var.name) {
                        Ok(v) => v,
                        Err(_) if key.optional == Some(true) => continue,
                        Err(e) => return Err(e),
                    }
                } else {
                    return Err(EnvError::EmptySource {
                        var: var.name.clone(),
                    });
                }
            }
        };
        env.set(var.name.clone(), value);
    }
    Ok(env.vars)
}

/// An ordered environment where setting an existing name replaces it in place.
#[derive(Default)]
struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    fn set(&mut self, name: String, value: String) {
        match self.vars.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Kubernetes' `$(VAR)` expansion: defined variables are replaced, `$$` is a literal `$`,
/// and undefined references are left as written.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if after.is_empty() {
            out.push('$');
            rest = after;
        } else if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn keyed_value(
    objects: &BTreeMap<String, ObjectData>,
    kind: &'static str,
    name: &str,
    key: &str,
    var: &str,
) -> Result<String, EnvError> {
    let data = objects.get(name).ok_or_else(|| EnvError::MissingObject {
        var: var.to_owned(),
        kind,
        name: name.to_owned(),
    })?;
    data.get(key)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .ok_or_else(|| EnvError::MissingKey {
            var: var.to_owned(),
            kind,
            name: name.to_owned(),
            key: key.to_owned(),
        })
}

pub(super) fn field_value(
    pod: &Pod,
    field: &ObjectFieldSelector,
    node: &NodeFacts,
    var: &str,
) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let path = field.field_path.as_str();
    let map_key = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .map(str::to_owned)
    };
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => node.host_ip.clone(),
        "status.podIP" | "status.podIPs" => node.pod_ip.clone(),
        _ => {
            if let Some(key) = map_key("metadata.labels['") {
                meta.labels
                    .as_ref()
                    .and_then(|l| l.get(&key).cloned())
                    .unwrap_or_default()
            } else if let Some(key) = map_key("metadata.annotations['") {
                meta.annotations
                    .as_ref()
                    .and_then(|a| a.get(&key).cloned())
                    .unwrap_or_default()
            } else {
                return Err(EnvError::UnsupportedField {
                    var: var.to_owned(),
                    path: path.to_owned(),
                });
            }
        }
    };
    Ok(value)
}

fn resource_value(
    pod: &Pod,
    current: &Container,
    selector: &ResourceFieldSelector,
    node: &NodeFacts,
    var: &str,
) -> Result<String, EnvError> {
    let container = match selector.container_name.as_deref() {
        None | Some("") => current,
        Some(name) => pod
            .spec
            .iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .find(|c| c.name == name)
            .ok_or_else(|| EnvError::UnknownContainer {
                var: var.to_owned(),
                container: name.to_owned(),
            })?,
    };
    let unsupported = || EnvError::UnsupportedResource {
        var: var.to_owned(),
        resource: selector.resource.clone(),
    };
    let (kind, resource) = selector.resource.split_once('.').ok_or_else(unsupported)?;
    if !matches!(resource, "cpu" | "memory" | "ephemeral-storage") {
        return Err(unsupported());
    }
    let resources = container.resources.as_ref();
    let set = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return Err(unsupported()),
    }
    .and_then(|m| m.get(resource));
    // kubelet substitutes node allocatable for an unset limit, and zero for an unset request.
    let zero = Quantity("0".into());
    let quantity = match (set, kind) {
        (Some(q), _) => q,
        (None, "limits") => node.allocatable.get(resource).unwrap_or(&zero),
        (None, _) => &zero,
    };
    let parse = |q: &Quantity, what: &'static str| {
        ParsedQuantity::try_from(q)
            .ok()
            .and_then(|p| p.to_bytes_f64())
            .ok_or_else(|| EnvError::BadQuantity {
                var: var.to_owned(),
                what,
                value: q.0.clone(),
            })
    };
    let value = parse(quantity, "resource value")?;
    let divisor = match &selector.divisor {
        Some(d) => parse(d, "divisor")?,
        None => 1.0,
    };
    if divisor <= 0.0 {
        return Err(EnvError::BadQuantity {
            var: var.to_owned(),
            what: "divisor",
            value: selector
                .divisor
                .as_ref()
                .map(|d| d.0.clone())
                .unwrap_or_default(),
        });
    }
    Ok(format!("{}", (value / divisor).ceil() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion_follows_kubelet_rules() {
        assert_eq!(expand("x-$(A)-y", lookup), "x-alpha-y");
        assert_eq!(expand("$(A)$(A)", lookup), "alphaalpha");
        assert_eq!(expand("$(MISSING)", lookup), "$(MISSING)");
        assert_eq!(expand("$$(A)", lookup), "$(A)");
        assert_eq!(expand("$$$(A)", lookup), "$alpha");
        assert_eq!(expand("cost $5", lookup), "cost $5");
        assert_eq!(expand("open $(A", lookup), "open $(A");
        assert_eq!(expand("end $", lookup), "end $");
        assert_eq!(expand("[$(EMPTY)]", lookup), "[]");
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                         "labels": {"sealing.filecoin.io/sector": "42"},
                         "annotations": {"a": "b"}},
            "spec": {"nodeName": "gpu-1", "serviceAccountName": "sa",
                     "containers": [{"name": "main", "image": "i",
                        "resources": {"limits": {"memory": "2Gi"}, "requests": {"cpu": "1500m", "memory": "1Gi"}},
                        "env": [
                            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                            {"name": "SECTOR", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['sealing.filecoin.io/sector']"}}},
                            {"name": "ANN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['a']"}}},
                            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                            {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                            {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
                            {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
                            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": true}}},
                            {"name": "PATH_COPY", "value": "$(PATH):/extra"},
                            {"name": "DIR", "value": "/scratch/$(SECTOR)"},
                            {"name": "FROM_CM", "value": "$(CFG_level)"}
                        ],
                        "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cm"}}]}]}
        }))
        .unwrap()
    }

    fn node() -> NodeFacts {
        NodeFacts {
            host_ip: "127.0.0.1".into(),
            pod_ip: "127.0.0.1".into(),
            allocatable: [("cpu".to_string(), Quantity("4".into()))].into(),
        }
    }

    fn sources() -> PodSources {
        PodSources {
            config_maps: [(
                "cm".to_string(),
                [("level".to_string(), b"debug".to_vec())].into(),
            )]
            .into(),
            secrets: [(
                "s".to_string(),
                [("token".to_string(), b"t0k".to_vec())].into(),
            )]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn downward_api_and_references_resolve_like_kubelet() {
        let pod = pod();
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let image_env = [("PATH".to_string(), "/usr/bin".to_string())].into();
        let env =
            container_env(&pod, c, &image_env, &BTreeMap::new(), &sources(), &node()).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("POD"), Some("p"));
        assert_eq!(get("NS"), Some("ns"));
        assert_eq!(get("UID"), Some("u-1"));
        assert_eq!(get("SECTOR"), Some("42"));
        assert_eq!(get("ANN"), Some("b"));
        assert_eq!(get("NODE"), Some("gpu-1"));
        assert_eq!(get("SA"), Some("sa"));
        assert_eq!(get("IP"), Some("127.0.0.1"));
        assert_eq!(get("MEM_MI"), Some("2048"));
        assert_eq!(get("CPU_REQ"), Some("2"), "1500m rounds up to 2 cores");
        assert_eq!(
            get("CPU_LIMIT"),
            Some("4"),
            "unset limit falls back to node allocatable"
        );
        assert_eq!(get("TOKEN"), Some("t0k"));
        assert_eq!(get("OPT"), None, "optional missing reference is skipped");
        assert_eq!(get("PATH_COPY"), Some("/usr/bin:/extra"));
        assert_eq!(get("DIR"), Some("/scratch/42"));
        assert_eq!(get("CFG_level"), Some("debug"));
        assert_eq!(get("FROM_CM"), Some("debug"));
    }

    #[test]
    fn missing_references_and_unsupported_fields_are_named() {
        let mut pod = pod();
        let c = pod.spec.as_mut().unwrap().containers[0].clone();
        let no_secret = PodSources {
            secrets: BTreeMap::new(),
            ..sources()
        };
        let err = container_env(
            &pod,
            &c,
            &BTreeMap::new(),
            &BTreeMap::new(),
            &no_secret,
            &node(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            EnvError::MissingObject {
                var: "TOKEN".into(),
                kind: "Secret",
                name: "s".into()
            }
        );

        let mut c2 = c.clone();
        c2.env = Some(vec![
            serde_json::from_value(json!(
                {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}
            ))
            .unwrap(),
        ]);
        let err = container_env(
            &pod,
            &c2,
            &BTreeMap::new(),
            &BTreeMap::new(),
            &sources(),
            &node(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("spec.hostname"), "{err}");
        pod.spec.as_mut().unwrap().containers[0] = c;
    }
}
