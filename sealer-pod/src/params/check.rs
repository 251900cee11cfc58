//! Is a parameter set present and intact?

use std::fs;
use std::io;
use std::path::Path;

use serde::Serialize;

use super::catalog::{ParamSet, path_in};
use super::manifest::{self, LocalManifest, OfficialManifest};
use crate::error::{StepError, StepResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    Ok,
    Missing,
    Empty,
    /// Size differs from what the local manifest recorded when the file was generated.
    SizeMismatch,
    DigestMismatch,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Ok => "ok",
            FileStatus::Missing => "missing",
            FileStatus::Empty => "empty",
            FileStatus::SizeMismatch => "size-mismatch",
            FileStatus::DigestMismatch => "digest-mismatch",
        }
    }
}

/// Where the expected digest came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Generated on this machine (random test parameters), checked against the local manifest.
    Generated,
    /// Checked against the official parameters.json.
    Official,
    /// Not in either manifest: only existence and size are checked.
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub kind: String,
    pub name: String,
    pub status: FileStatus,
    pub origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// How thoroughly to look: `Quick` (existence and size) before a step, `Digest` for
/// `params check`, which hashes every file (seconds per GB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    Quick,
    Digest,
}

pub fn check_file(
    cache: &Path,
    set: &ParamSet,
    name: &str,
    local: &LocalManifest,
    official: &OfficialManifest,
    depth: Depth,
) -> StepResult<FileReport> {
    let path = path_in(cache, name);
    let origin = if local.contains_key(name) {
        Origin::Generated
    } else if official.contains_key(name) {
        Origin::Official
    } else {
        Origin::Unknown
    };
    let report = |status, size| FileReport {
        kind: set.kind.to_string(),
        name: name.to_string(),
        status,
        origin,
        size,
    };
    let size = match fs::metadata(&path) {
        Ok(meta) if meta.is_file() => meta.len(),
        Ok(_) => return Ok(report(FileStatus::Missing, None)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report(FileStatus::Missing, None)),
        Err(e) => return Err(StepError::io(&path, e)),
    };
    if size == 0 {
        return Ok(report(FileStatus::Empty, Some(0)));
    }
    if let Some(entry) = local.get(name)
        && entry.size != size
    {
        return Ok(report(FileStatus::SizeMismatch, Some(size)));
    }
    if depth == Depth::Digest {
        let expected = match origin {
            Origin::Generated => local.get(name).map(|e| e.digest.as_str()),
            Origin::Official => official.get(name).map(|e| e.digest.as_str()),
            Origin::Unknown => None,
        };
        if let Some(expected) = expected {
            let (digest, _) = manifest::file_digest(&path).map_err(|e| StepError::io(&path, e))?;
            if digest != expected {
                return Ok(report(FileStatus::DigestMismatch, Some(size)));
            }
        }
    }
    Ok(report(FileStatus::Ok, Some(size)))
}

/// Checks the `.params` and `.vk` files of each set.
pub fn check_sets(cache: &Path, sets: &[ParamSet], depth: Depth) -> StepResult<Vec<FileReport>> {
    let local = manifest::read_local(cache)?;
    let official = manifest::official();
    let mut reports = Vec::new();
    for set in sets {
        for name in set.required_names() {
            reports.push(check_file(cache, set, &name, &local, &official, depth)?);
        }
    }
    Ok(reports)
}

/// Fails with a permanent error naming every missing or damaged file, so a step reports
/// missing parameters before it does any work.
pub fn require(cache: &Path, sets: &[ParamSet], purpose: &str) -> StepResult<()> {
    let bad: Vec<String> = check_sets(cache, sets, Depth::Quick)?
        .into_iter()
        .filter(|r| r.status != FileStatus::Ok)
        .map(|r| format!("{} ({})", r.name, r.status.as_str()))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(StepError::MissingParameters {
            purpose: purpose.to_string(),
            cache: cache.to_path_buf(),
            files: bad.join(", "),
        })
    }
}
