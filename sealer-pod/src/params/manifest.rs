//! Digests of parameter files: the official `parameters.json` embedded in storage-proofs-core,
//! and a local manifest for files generated here (random test parameters have the official
//! names but not the official digests).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use storage_proofs_core::parameter_cache::{PARAMETERS, SRS_PARAMETERS};

use crate::error::{StepError, StepResult};

pub const LOCAL_MANIFEST: &str = "sealer-pod-generated.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LocalEntry {
    pub digest: String,
    pub size: u64,
}

pub type LocalManifest = BTreeMap<String, LocalEntry>;

/// An official entry: where to download the file and what its digest is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfficialEntry {
    pub cid: String,
    pub digest: String,
    pub sector_size: u64,
}

pub type OfficialManifest = BTreeMap<String, OfficialEntry>;

/// `parameters.json` and `srs-inner-product.json`, as storage-proofs-core embeds them.
pub fn official() -> OfficialManifest {
    PARAMETERS
        .iter()
        .chain(SRS_PARAMETERS.iter())
        .map(|(name, data)| {
            (
                name.clone(),
                OfficialEntry {
                    cid: data.cid.clone(),
                    digest: data.digest.clone(),
                    sector_size: data.sector_size,
                },
            )
        })
        .collect()
}

/// Reads a `parameters.json` in the format rust-fil-proofs publishes.
pub fn read_official(path: &Path) -> StepResult<OfficialManifest> {
    let text = fs::read_to_string(path).map_err(|e| StepError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| StepError::CorruptInput {
        what: "parameters manifest",
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

pub fn local_path(cache: &Path) -> PathBuf {
    cache.join(LOCAL_MANIFEST)
}

pub fn read_local(cache: &Path) -> StepResult<LocalManifest> {
    let path = local_path(cache);
    match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| StepError::CorruptInput {
            what: "local parameter manifest",
            path,
            reason: format!("{e}; delete it and regenerate the parameters"),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(LocalManifest::new()),
        Err(e) => Err(StepError::io(path, e)),
    }
}

pub fn write_local(cache: &Path, manifest: &LocalManifest) -> StepResult<()> {
    let path = local_path(cache);
    let text = serde_json::to_string_pretty(manifest).map_err(|e| StepError::invalid("manifest", e.to_string()))?;
    crate::fsutil::write_atomic(&path, text.as_bytes())
}

/// The digest rust-fil-proofs records: blake2b-512, hex, truncated to 128 bits.
pub struct DigestWriter<W> {
    inner: W,
    state: blake2b_simd::State,
    written: u64,
}

impl<W: Write> DigestWriter<W> {
    pub fn new(inner: W) -> Self {
        DigestWriter {
            inner,
            state: blake2b_simd::Params::new().to_state(),
            written: 0,
        }
    }

    pub fn finish(self) -> (W, String, u64) {
        let hex = self.state.finalize().to_hex();
        (self.inner, hex[..32].to_string(), self.written)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.state.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub fn file_digest(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut writer = DigestWriter::new(io::sink());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        writer.write_all(&buf[..n])?;
    }
    let (_, digest, size) = writer.finish();
    Ok((digest, size))
}
