//! The sector list window PoSt and the proving check work on: a JSON file or repeated
//! `--sector NUMBER,COMMR,SEALED,CACHE` arguments.

use std::fs;
use std::path::{Path, PathBuf};

use filecoin_proofs_api::{Commitment, RegisteredPoStProof, SectorId};
use serde::Deserialize;

use crate::error::{StepError, StepResult};
use crate::sector::parse_comm_r;

#[derive(Debug, Clone, Deserialize)]
pub struct ReplicaSpec {
    pub sector_number: u64,
    pub comm_r: String,
    pub sealed_path: PathBuf,
    pub cache_path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Replica {
    pub sector_id: SectorId,
    pub comm_r: Commitment,
    pub sealed: PathBuf,
    pub cache: PathBuf,
}

pub fn parse_arg(s: &str) -> StepResult<ReplicaSpec> {
    let parts: Vec<&str> = s.splitn(4, ',').collect();
    let [number, comm_r, sealed, cache] = parts.as_slice() else {
        return Err(StepError::invalid("sector", format!("{s:?}: expected NUMBER,COMMR,SEALED_PATH,CACHE_PATH")));
    };
    let sector_number = number
        .trim()
        .parse()
        .map_err(|e| StepError::invalid("sector", format!("{s:?}: sector number {number:?}: {e}")))?;
    Ok(ReplicaSpec {
        sector_number,
        comm_r: comm_r.trim().to_string(),
        sealed_path: PathBuf::from(sealed.trim()),
        cache_path: PathBuf::from(cache.trim()),
    })
}

pub fn read_file(path: &Path) -> StepResult<Vec<ReplicaSpec>> {
    let text = fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            StepError::MissingInput {
                what: "sector list",
                path: path.to_path_buf(),
                producer: "operator",
            }
        } else {
            StepError::io(path, e)
        }
    })?;
    serde_json::from_slice(&text).map_err(|e| StepError::CorruptInput {
        what: "sector list",
        path: path.to_path_buf(),
        reason: format!("{e}; expected [{{\"sector_number\":1,\"comm_r\":\"bagboea4b5abc…\",\"sealed_path\":…,\"cache_path\":…}}]"),
    })
}

pub fn resolve(specs: Vec<ReplicaSpec>) -> StepResult<Vec<Replica>> {
    if specs.is_empty() {
        return Err(StepError::invalid("sector list", "no sectors given; pass --sectors-file or --sector"));
    }
    let mut replicas: Vec<Replica> = specs
        .into_iter()
        .map(|s| {
            Ok(Replica {
                sector_id: SectorId::from(s.sector_number),
                comm_r: parse_comm_r(&s.comm_r)?,
                sealed: s.sealed_path,
                cache: s.cache_path,
            })
        })
        .collect::<StepResult<_>>()?;
    replicas.sort_by_key(|r| u64::from(r.sector_id));
    if let Some(pair) = replicas.windows(2).find(|w| w[0].sector_id == w[1].sector_id) {
        return Err(StepError::invalid("sector list", format!("sector {} is listed twice", u64::from(pair[0].sector_id))));
    }
    Ok(replicas)
}

/// Why a replica cannot be proven without touching the proofs library: missing or
/// wrong-sized files, the usual result of a lost disk or an interrupted copy.
pub fn file_problem(replica: &Replica, post_proof: RegisteredPoStProof) -> Option<String> {
    let sector_bytes = u64::from(post_proof.sector_size());
    match fs::metadata(&replica.sealed) {
        Ok(m) if m.len() == sector_bytes => {}
        Ok(m) => return Some(format!("sealed file {} has {} bytes, expected {sector_bytes}", replica.sealed.display(), m.len())),
        Err(e) => return Some(format!("sealed file {}: {e}", replica.sealed.display())),
    }
    for aux in ["p_aux", "t_aux"] {
        let path = replica.cache.join(aux);
        if let Err(e) = fs::metadata(&path) {
            return Some(format!("cache file {}: {e}", path.display()));
        }
    }
    let has_tree_r_last = fs::read_dir(&replica.cache)
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().contains("tree-r-last")))
        .unwrap_or(false);
    if !has_tree_r_last {
        return Some(format!("cache {} has no tree-r-last", replica.cache.display()));
    }
    None
}
