//! Step failures and how the operator should treat them.

use std::io;
use std::path::PathBuf;

use serde::Serialize;

/// What the operator should do with a failed step (damocles' taxonomy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth retrying as is: an I/O hiccup, a kill, a busy resource.
    Temporary,
    /// Needs a human or a different input: missing parameters, missing or corrupt files.
    Permanent,
    /// The sector can never be completed with these inputs.
    Abort,
}

impl Level {
    /// The process exit code that carries this level to the operator.
    pub fn exit_code(self) -> i32 {
        match self {
            Level::Temporary => 10,
            Level::Permanent => 11,
            Level::Abort => 12,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("invalid {name}: {reason}")]
    InvalidArgument { name: &'static str, reason: String },

    #[error("sector directory {0} does not exist or is not a directory")]
    MissingSectorDir(PathBuf),

    #[error("missing {what} at {path}: run the {producer} step first")]
    MissingInput {
        what: &'static str,
        path: PathBuf,
        producer: &'static str,
    },

    #[error("corrupt {what} at {path}: {reason}")]
    CorruptInput {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },

    #[error("{what} at {path} has {actual} bytes, expected {expected} for this sector size")]
    WrongSize {
        what: &'static str,
        path: PathBuf,
        actual: u64,
        expected: u64,
    },

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "missing proof parameters for {purpose} in {cache}: {files}; run `sealer-pod params generate` (test sizes) or `sealer-pod params fetch`"
    )]
    MissingParameters {
        purpose: String,
        cache: PathBuf,
        files: String,
    },

    #[error("pieces do not fit in the sector: {0}")]
    DataTooLarge(String),

    #[error("piece {index} from {source_name}: {reason}")]
    PieceMismatch {
        index: usize,
        source_name: String,
        reason: String,
    },

    #[error("downloading {url}: {reason}")]
    Download { url: String, reason: String },

    #[error("{0}")]
    ProofInvalid(String),

    #[error("{context}: {source:#}")]
    Proofs {
        context: &'static str,
        #[source]
        source: anyhow::Error,
    },
}

impl StepError {
    pub fn level(&self) -> Level {
        match self {
            StepError::InvalidArgument { .. }
            | StepError::MissingSectorDir(_)
            | StepError::MissingInput { .. }
            | StepError::CorruptInput { .. }
            | StepError::WrongSize { .. }
            | StepError::MissingParameters { .. }
            | StepError::PieceMismatch { .. }
            | StepError::ProofInvalid(_) => Level::Permanent,
            StepError::DataTooLarge(_) => Level::Abort,
            StepError::Download { .. } => Level::Temporary,
            StepError::Io { source, .. } => io_level(source),
            StepError::Proofs { source, .. } => proofs_level(source),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StepError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn proofs(context: &'static str, source: anyhow::Error) -> Self {
        StepError::Proofs { context, source }
    }

    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        StepError::InvalidArgument {
            name,
            reason: reason.into(),
        }
    }
}

/// A vanished file will not come back by retrying; other I/O errors (disk full, EIO on
/// network storage, interrupted writes) are worth a retry.
fn io_level(err: &io::Error) -> Level {
    match err.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidData => {
            Level::Permanent
        }
        _ => Level::Temporary,
    }
}

/// The proofs library reports everything as `anyhow`; an I/O error in its chain is treated like
/// ours, anything else means the inputs (files, commitments) are inconsistent.
fn proofs_level(err: &anyhow::Error) -> Level {
    if let Some(io) = err.chain().find_map(|e| e.downcast_ref::<io::Error>()) {
        return io_level(io);
    }
    Level::Permanent
}

pub type StepResult<T> = Result<T, StepError>;
