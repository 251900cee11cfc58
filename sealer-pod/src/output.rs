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

/// The success document. When per-sector detail (window PoSt faults, proving-check reasons)
/// would push it over the limit, the detail is shed in stages and `truncated` is set; the full
/// detail is always in the pod log.
pub fn success(step: &str, mut result: Value) -> String {
    let render = |r: &Value| json!({ "step": step, "ok": true, "result": r }).to_string();
    let doc = render(&result);
    if doc.len() < MAX_RESULT_BYTES {
        return doc;
    }
    let Some(obj) = result.as_object_mut() else {
        return doc;
    };
    obj.insert("truncated".into(), Value::Bool(true));
    for key in ["faults", "sectors"] {
        if let Some(items) = obj.get_mut(key).and_then(Value::as_array_mut) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                item.remove("reason");
            }
        }
    }
    if render(&result).len() < MAX_RESULT_BYTES {
        return render(&result);
    }
    if let Some(obj) = result.as_object_mut() {
        obj.remove("faults");
        obj.remove("sectors");
        for key in ["faulty", "bad"] {
            if let Some(numbers) = obj.get(key).and_then(Value::as_array) {
                let numbers: Vec<u64> = numbers.iter().filter_map(Value::as_u64).collect();
                obj.insert(key.into(), Value::String(ranges(&numbers)));
            }
        }
    }
    render(&result)
}

/// Sorted sector numbers as `1-5,9,12-13`.
fn ranges(numbers: &[u64]) -> String {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
        i += 1;
    }
    parts.join(",")
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
    fn many_faulty_sectors_still_fit_the_termination_log() {
        let faulty: Vec<u64> = (0..7000).collect();
        let faults: Vec<Value> = faulty
            .iter()
            .map(|n| json!({ "sector_number": n, "reason": "sealed file missing: No such file or directory" }))
            .collect();
        let doc = success("window-post", json!({ "proof": "AAAA", "faulty": faulty, "faults": faults }));
        assert!(doc.len() < MAX_RESULT_BYTES, "{} bytes", doc.len());
        let parsed: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(parsed["result"]["faulty"], "0-6999");
        assert_eq!(parsed["result"]["truncated"], true);
        assert_eq!(parsed["result"]["proof"], "AAAA");

        let few = success("window-post", json!({ "faulty": [3], "faults": [{ "sector_number": 3, "reason": "x" }] }));
        assert!(!few.contains("truncated"));
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
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
