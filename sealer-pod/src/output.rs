//! The step result: one JSON object on the termination message path and on stdout.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Level, StepError};

/// Kubernetes keeps at most 4096 bytes of a termination message.
pub const MAX_RESULT_BYTES: usize = 4096;

pub const DEFAULT_RESULT_PATH: &str = "/dev/termination-log";

#[derive(Debug, Serialize)]
struct Failure<'a> {
    level: Level,
    message: &'a str,
}

pub fn success(step: &str, result: Value) -> String {
    json!({ "step": step, "ok": true, "result": result }).to_string()
}

/// The failure document, with the message shortened so the whole object stays under the limit.
pub fn failure(step: &str, err: &StepError) -> String {
    let full = err.to_string();
    let mut message = full.as_str();
    loop {
        let doc = json!({
            "step": step,
            "ok": false,
            "error": Failure { level: err.level(), message },
        })
        .to_string();
        if doc.len() < MAX_RESULT_BYTES || message.is_empty() {
            return doc;
        }
        let excess = doc.len() - MAX_RESULT_BYTES + 1;
        let mut cut = message.len().saturating_sub(excess.max(16));
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message = &message[..cut];
    }
}

/// Writes the result in one `write` so a reader never sees half of it. The termination log is a
/// file the kubelet bind-mounts, so it cannot be replaced by a rename.
pub fn write_result(path: &Path, doc: &str) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(doc.as_bytes())?;
    // Character devices (the termination log in some runtimes, /dev/null) cannot be synced.
    if file.metadata()?.is_file() {
        file.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_failure_message_is_cut_to_fit_the_termination_log() {
        let err = StepError::invalid("ticket", "x".repeat(10_000));
        let doc = failure("pc1", &err);
        assert!(doc.len() < MAX_RESULT_BYTES, "{} bytes", doc.len());
        let parsed: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(parsed["error"]["level"], "permanent");
        assert!(parsed["error"]["message"].as_str().unwrap().starts_with("invalid ticket: xxx"));
    }

    #[test]
    fn short_failure_keeps_the_whole_message() {
        let err = StepError::DataTooLarge("3000 bytes > 2032".into());
        let doc = failure("add-piece", &err);
        let parsed: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(parsed["ok"], false);
        assert_eq!(parsed["error"]["level"], "abort");
        assert_eq!(
            parsed["error"]["message"],
            "pieces do not fit in the sector: 3000 bytes > 2032"
        );
    }
}
