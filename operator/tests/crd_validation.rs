//! The CRD rules, checked client-side: every manifest of the invalid table is rejected with a
//! message naming the field, every manifest of the valid table is accepted. The e2e suite runs
//! the same tables against a real API server.

use kube::CustomResourceExt;
use sealing_operator::crd::{ProvingDeadline, SealingPool, Sector};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize)]
struct Entry {
    name: String,
    #[serde(default)]
    expect: Vec<String>,
    manifest: Value,
    #[serde(default)]
    before: Option<Value>,
}

/// `operator/` of the checkout the tests run in (Cargo says at run time; a cached build may come
/// from another checkout).
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}

fn table(file: &str) -> Vec<Entry> {
    let path = format!("{}/tests/fixtures/{file}", manifest_dir());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Deserializes like the API server's structural schema check would reject: wrong types, unknown
/// enum values and missing required fields, reported with the field's path.
fn typed<K: DeserializeOwned>(value: &Value) -> Result<K, String> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        match inner.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
            Some(field) => format!("{path}.{field}: Required value"),
            None => format!("{path}: {inner}"),
        }
    })
}

fn check<K>(manifest: &Value, before: Option<&Value>) -> Result<(), String>
where
    K: CustomResourceExt + DeserializeOwned + Serialize,
{
    let object: K = typed(manifest)?;
    let cel = match before {
        None => kube::core::cel::validate_cel(&object),
        Some(before) => kube::core::cel::validate_cel_update(&object, &typed::<K>(before)?),
    };
    cel.map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
}

fn validate(manifest: &Value, before: Option<&Value>) -> Result<(), String> {
    match manifest["kind"].as_str() {
        Some("Sector") => check::<Sector>(manifest, before),
        Some("SealingPool") => check::<SealingPool>(manifest, before),
        Some("ProvingDeadline") => check::<ProvingDeadline>(manifest, before),
        other => panic!("unexpected kind {other:?}"),
    }
}

#[test]
fn every_invalid_manifest_is_rejected_with_a_message_naming_the_field() {
    let entries = table("invalid-manifests.yaml");
    assert!(entries.len() >= 40, "the table lost entries: {}", entries.len());
    let mut failures = Vec::new();
    for entry in &entries {
        match validate(&entry.manifest, entry.before.as_ref()) {
            Ok(()) => failures.push(format!("{}: accepted", entry.name)),
            Err(message) => {
                for expected in &entry.expect {
                    if !message.contains(expected.as_str()) {
                        failures.push(format!("{}: {message:?} lacks {expected:?}", entry.name));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_valid_manifest_is_accepted() {
    for entry in table("valid-manifests.yaml") {
        if let Err(message) = validate(&entry.manifest, None) {
            panic!("{}: {message}", entry.manifest["metadata"]["name"]);
        }
    }
}

#[test]
fn crds_directory_matches_the_types() {
    let dir = format!("{}/../crds", manifest_dir());
    for (file, yaml) in sealing_operator::crd::rendered().expect("CRDs render") {
        let path = format!("{dir}/{file}");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == yaml,
            "{path} is stale or missing: run `cargo run -p sealing-operator --bin crdgen` and commit crds/"
        );
    }
}

/// The API server refuses structural schemas with `patternProperties` (a map keyed by numbers,
/// say); finding that here is quicker than in the e2e run.
#[test]
fn crds_use_only_what_structural_schemas_allow() {
    for (file, yaml) in sealing_operator::crd::rendered().expect("CRDs render") {
        for forbidden in ["patternProperties", "oneOf:", "anyOf:", "$ref"] {
            assert!(!yaml.contains(forbidden), "{file} contains {forbidden}, which kube-apiserver refuses here");
        }
    }
}

#[test]
fn the_samples_in_manifests_are_accepted() {
    let dir = format!("{}/../manifests/samples", manifest_dir());
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("manifests/samples exists") {
        let path = entry.expect("readable directory").path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for document in serde_yaml::Deserializer::from_str(&text) {
            let manifest = Value::deserialize(document).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Err(message) = validate(&manifest, None) {
                panic!("{}: {message}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} samples found in {dir}");
}
