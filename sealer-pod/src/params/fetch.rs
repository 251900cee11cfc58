//! Downloads official parameters and installs each file only after its digest matches
//! `parameters.json`.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::catalog::{ParamSet, path_in};
use super::check::{self, Depth, FileStatus};
use super::manifest::{DigestWriter, OfficialManifest, read_local};
use crate::error::{StepError, StepResult};
use crate::fsutil;

/// Lotus' default gateway; files are addressed by their IPFS CID under it.
pub const DEFAULT_BASE_URL: &str = "https://proofs.filecoin.io/ipfs/";

#[derive(Debug, Serialize)]
pub struct Fetched {
    pub name: String,
    /// `present` (already there with the right digest) or `downloaded`.
    pub action: &'static str,
    pub size: u64,
}

pub fn fetch(
    cache: &Path,
    sets: &[ParamSet],
    base_url: &str,
    manifest: &OfficialManifest,
) -> StepResult<Vec<Fetched>> {
    fs::create_dir_all(cache).map_err(|e| StepError::io(cache, e))?;
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(None)
        .build()
        .map_err(|e| StepError::Download {
            url: base_url.to_string(),
            reason: e.to_string(),
        })?;
    let local = read_local(cache)?;
    let mut done = Vec::new();
    for set in sets {
        for name in set.required_names() {
            let entry = manifest.get(&name).ok_or_else(|| {
                StepError::invalid(
                    "parameter set",
                    format!("{name} is not in parameters.json: {} {} has no published parameters", set.size, set.kind),
                )
            })?;
            let report = check::check_file(cache, set, &name, &local, manifest, Depth::Digest)?;
            if report.status == FileStatus::Ok && report.origin == check::Origin::Official {
                done.push(Fetched {
                    name,
                    action: "present",
                    size: report.size.unwrap_or_default(),
                });
                continue;
            }
            let url = format!("{}/{}", base_url.trim_end_matches('/'), entry.cid);
            let size = download_verified(&client, &url, &path_in(cache, &name), &entry.digest)?;
            done.push(Fetched {
                name,
                action: "downloaded",
                size,
            });
        }
    }
    Ok(done)
}

fn download_verified(
    client: &reqwest::blocking::Client,
    url: &str,
    dest: &Path,
    expected_digest: &str,
) -> StepResult<u64> {
    let download_err = |reason: String| StepError::Download {
        url: url.to_string(),
        reason,
    };
    tracing::info!(%url, dest = %dest.display(), "downloading parameter file");
    let mut response = client
        .get(url)
        .send()
        .and_then(|r| r.error_for_status())
        .map_err(|e| download_err(e.to_string()))?;
    let partial = fsutil::tmp_path(dest);
    let file = File::create(&partial).map_err(|e| StepError::io(&partial, e))?;
    let mut writer = DigestWriter::new(BufWriter::new(file));
    let copied = io::copy(&mut response, &mut writer);
    let (inner, digest, size) = writer.finish();
    let synced = copied.and_then(|_| {
        let file = inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    });
    if let Err(e) = synced {
        fsutil::remove_file_if_exists(&partial)?;
        return Err(download_err(format!("transfer interrupted after {size} bytes: {e}")));
    }
    if digest != expected_digest {
        fsutil::remove_file_if_exists(&partial)?;
        return Err(StepError::CorruptInput {
            what: "downloaded parameter file",
            path: dest.to_path_buf(),
            reason: format!(
                "blake2b digest {digest} does not match parameters.json ({expected_digest}); the file from {url} was discarded"
            ),
        });
    }
    fsutil::rename(&partial, dest)?;
    Ok(size)
}
