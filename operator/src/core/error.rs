//! Error levels, damocles' taxonomy: how far a failure reaches.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorLevel {
    /// Worth retrying as is: retried with backoff up to the pool's limit, then permanent.
    Temporary,
    /// Needs a person or a different input: the sector pauses with the error visible.
    Permanent,
    /// The sector cannot be completed: it moves to Aborted.
    Abort,
}

impl ErrorLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorLevel::Temporary => "temporary",
            ErrorLevel::Permanent => "permanent",
            ErrorLevel::Abort => "abort",
        }
    }
}

impl fmt::Display for ErrorLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of one step or chain task, as reported by a sealer pod or the chain bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{level}: {step}: {message}")]
pub struct StepError {
    pub level: ErrorLevel,
    pub step: String,
    pub message: String,
}

impl StepError {
    pub fn new(level: ErrorLevel, step: impl Into<String>, message: impl Into<String>) -> Self {
        Self { level, step: step.into(), message: message.into() }
    }
}
