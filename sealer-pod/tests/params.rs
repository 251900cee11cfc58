//! `params check | generate | fetch` against a private cache directory, with the window PoSt
//! set (the quickest to generate, about 15 s).

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::json;

const WINDOW_PARAMS: &str =
    "v28-proof-of-spacetime-fallback-merkletree-poseidon_hasher-8-0-0-0170db1f394b35d995252228ee359194b13199d259380541dc529fb0099096b0.params";
const WINDOW_VK: &str =
    "v28-proof-of-spacetime-fallback-merkletree-poseidon_hasher-8-0-0-0170db1f394b35d995252228ee359194b13199d259380541dc529fb0099096b0.vk";

fn params(work: &Path, cache: &Path, args: &[&str]) -> StepRun {
    let mut full = vec!["params"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--sector-size", SIZE, "--kind", "window-post"]);
    run(work, &full, &[("FIL_PROOFS_PARAMETER_CACHE", cache.to_str().unwrap())])
}

#[test]
fn slow_generate_only_what_is_missing_survives_a_kill_and_check_finds_damage() {
    let tmp = tempdir();
    let work = tmp.path();
    let cache = work.join("cache");

    let (level, message) = params(work, &cache, &["check"]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains(&format!("{WINDOW_PARAMS} (missing)")), "{message}");
    assert!(message.contains(&format!("{WINDOW_VK} (missing)")), "{message}");

    // Killed after generating, before installing: nothing half-made carries a final name.
    let status = Command::new(bin())
        .args(["--result-path", "/dev/null", "params", "generate", "--sector-size", SIZE, "--kind", "window-post"])
        .env("FIL_PROOFS_PARAMETER_CACHE", &cache)
        .env("SEALER_POD_FAULT", "params-generate:before-install")
        .status()
        .unwrap();
    assert!(!status.success());
    assert!(!cache.join(WINDOW_PARAMS).exists());
    params(work, &cache, &["check"]).failed();

    let generated = params(work, &cache, &["generate"]);
    assert_eq!(generated.ok()["sets"][0]["action"], "generated");
    let leftovers: Vec<_> = fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("staging"))
        .collect();
    assert!(leftovers.is_empty(), "staging directories left behind: {leftovers:?}");

    let checked = params(work, &cache, &["check"]);
    let files = &checked.ok()["files"];
    assert_eq!(files[0]["status"], "ok");
    assert_eq!(files[0]["origin"], "generated");
    assert_eq!(files[1]["name"], WINDOW_VK);

    let again = params(work, &cache, &["generate"]);
    assert_eq!(again.ok()["sets"][0]["action"], "present");

    // Same size, one byte changed: only the digest can tell.
    let path = cache.join(WINDOW_PARAMS);
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let (_, message) = params(work, &cache, &["check"]).failed();
    assert!(message.contains(&format!("{WINDOW_PARAMS} (digest-mismatch)")), "{message}");
    assert_eq!(params(work, &cache, &["generate"]).ok()["sets"][0]["action"], "generated");
    params(work, &cache, &["check"]).ok();
}

#[test]
fn slow_fetch_installs_files_only_when_their_digest_matches() {
    let tmp = tempdir();
    let work = tmp.path();
    let source = work.join("source");
    params(work, &source, &["generate"]).ok();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(source.join("sealer-pod-generated.json")).unwrap()).unwrap();

    let body_params = fs::read(source.join(WINDOW_PARAMS)).unwrap();
    let body_vk = fs::read(source.join(WINDOW_VK)).unwrap();
    let base = serve(
        HashMap::from([
        ("/ipfs/QmParams".to_string(), body_params.clone()),
        ("/ipfs/QmVk".to_string(), body_vk.clone()),
            ("/ipfs/QmVkTampered".to_string(), body_vk[..body_vk.len() - 1].to_vec()),
        ]),
        &[],
    ) + "/ipfs/";
    let published = |vk_cid: &str| {
        json!({
            WINDOW_PARAMS: {"cid": "QmParams", "digest": manifest[WINDOW_PARAMS]["digest"], "sector_size": 2048},
            WINDOW_VK: {"cid": vk_cid, "digest": manifest[WINDOW_VK]["digest"], "sector_size": 2048},
        })
    };

    // A server that sends the wrong bytes: nothing is installed under the final name.
    let bad_json = work.join("bad.json");
    fs::write(&bad_json, published("QmVkTampered").to_string()).unwrap();
    let cache = work.join("cache");
    let fetch = |json: &Path| {
        params(work, &cache, &["fetch", "--base-url", &base, "--parameters-json", json.to_str().unwrap()])
    };
    let (level, message) = fetch(&bad_json).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("does not match parameters.json"), "{message}");
    assert!(!cache.join(WINDOW_VK).exists());

    let good_json = work.join("good.json");
    fs::write(&good_json, published("QmVk").to_string()).unwrap();
    let fetched = fetch(&good_json);
    let files = &fetched.ok()["files"];
    assert_eq!(files[0]["action"], "present", "the params file came through the first time: {files}");
    assert_eq!(files[1]["action"], "downloaded");
    assert_eq!(fs::read(cache.join(WINDOW_PARAMS)).unwrap(), body_params);
    assert_eq!(fs::read(cache.join(WINDOW_VK)).unwrap(), body_vk);
    assert_eq!(fetch(&good_json).ok()["files"][1]["action"], "present");
}

/// The aggregation SRS: one file for every sector size, generated in seconds, checked like the
/// Groth parameters.
#[test]
fn aggregation_srs_is_generated_checked_and_regenerated_when_damaged() {
    const SRS: &str = "v28-fil-inner-product-v1.srs";
    let tmp = tempdir();
    let work = tmp.path();
    let cache = work.join("cache");
    let srs = |args: &[&str]| {
        let mut full = vec!["params"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--sector-size", SIZE, "--kind", "aggregate"]);
        run(work, &full, &[("FIL_PROOFS_PARAMETER_CACHE", cache.to_str().unwrap())])
    };
    let (_, message) = srs(&["check"]).failed();
    assert!(message.contains(&format!("{SRS} (missing)")), "{message}");
    let generated = srs(&["generate"]);
    assert_eq!(generated.ok()["sets"][0]["files"], json!([SRS]));
    let checked = srs(&["check"]);
    assert_eq!(checked.ok()["files"][0]["status"], "ok");
    assert_eq!(checked.ok()["files"][0]["origin"], "generated");

    let path = cache.join(SRS);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let (_, message) = srs(&["check"]).failed();
    assert!(message.contains(&format!("{SRS} (digest-mismatch)")), "{message}");
    assert_eq!(srs(&["generate"]).ok()["sets"][0]["action"], "generated");
    srs(&["check"]).ok();
}
