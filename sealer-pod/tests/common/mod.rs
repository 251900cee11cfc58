//! Runs the real `sealer-pod` binary as a pod would: one process per step, result read back
//! from the termination-message file and checked against the last line of stdout.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use serde_json::Value;

pub const MINER: &str = "t01000";
pub const SIZE: &str = "2KiB";

pub struct StepRun {
    pub code: i32,
    pub result: Value,
    pub stderr: String,
}

impl StepRun {
    pub fn ok(&self) -> &Value {
        assert_eq!(self.code, 0, "step failed: {}\nstderr:\n{}", self.result, self.stderr);
        assert_eq!(self.result["ok"], true, "{}", self.result);
        &self.result["result"]
    }

    /// The error level and message of a failed step, after checking the exit code matches.
    pub fn failed(&self) -> (String, String) {
        assert_eq!(self.result["ok"], false, "expected a failure: {}", self.result);
        let level = self.result["error"]["level"].as_str().unwrap_or_default().to_string();
        let expected_code = match level.as_str() {
            "temporary" => 10,
            "permanent" => 11,
            "abort" => 12,
            other => panic!("unknown level {other:?}"),
        };
        assert_eq!(self.code, expected_code, "exit code for {level}: {}", self.result);
        let message = self.result["error"]["message"].as_str().unwrap_or_default().to_string();
        (level, message)
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sealer-pod")
}

/// Runs `sealer-pod <args>` with extra environment variables.
pub fn run(work: &Path, args: &[&str], envs: &[(&str, &str)]) -> StepRun {
    // One file per call: steps run side by side from several threads of one test process.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let result_path = work.join(format!("result-{}-{call}.json", std::process::id()));
    let mut cmd = Command::new(bin());
    cmd.arg("--result-path").arg(&result_path).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("spawning sealer-pod");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let code = out.status.code().unwrap_or(-1);
    let text = std::fs::read_to_string(&result_path)
        .unwrap_or_else(|e| panic!("no result file ({e}); exit {code}; stderr:\n{stderr}"));
    assert!(text.len() < 4096, "result over 4 KiB: {} bytes", text.len());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().last(), Some(text.as_str()), "stdout's last line must be the result");
    let result: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("result is not JSON ({e}): {text}"));
    StepRun { code, result, stderr }
}

/// Runs a step that is expected to die (fault injection), returning its exit status.
pub fn run_killed(work: &Path, args: &[&str], fault: &str) -> std::process::ExitStatus {
    let status = Command::new(bin())
        .arg("--result-path")
        .arg(work.join("killed-result.json"))
        .args(args)
        .env("SEALER_POD_FAULT", fault)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("spawning sealer-pod");
    assert!(!status.success(), "fault {fault} did not stop the step");
    status
}

/// The arguments every per-sector step takes.
pub fn sector_args(dir: &Path, number: u64) -> Vec<String> {
    vec![
        "--sector-dir".into(),
        dir.display().to_string(),
        "--miner".into(),
        MINER.into(),
        "--sector-number".into(),
        number.to_string(),
        "--sector-size".into(),
        SIZE.into(),
    ]
}

pub fn with<'a>(base: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = base.iter().map(String::as_str).collect();
    v.extend_from_slice(extra);
    v
}

pub fn prover_id() -> [u8; 32] {
    let mut id = [0u8; 32];
    id[..2].copy_from_slice(&[0xe8, 0x07]);
    id
}

pub fn hex32(byte: u8) -> String {
    hex::encode([byte; 32])
}

/// Fails (never skips) when the parameters a test needs are absent, saying how to make them.
pub fn require_params(kinds: &[&str]) {
    let mut args = vec!["--result-path", "/dev/null", "params", "check", "--sector-size", SIZE];
    for k in kinds {
        args.push("--kind");
        args.push(k);
    }
    let out = Command::new(bin()).args(&args).output().expect("spawning sealer-pod");
    assert!(
        out.status.success(),
        "proof parameters for {kinds:?} are missing or damaged; run `scripts/params.sh` first:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("sealer-pod-test").tempdir().expect("tempdir")
}

pub fn mkdir(parent: &Path, name: &str) -> PathBuf {
    let p = parent.join(name);
    std::fs::create_dir_all(&p).expect("mkdir");
    p
}

/// Serves `files` (URL path → body) over HTTP/1.1 on a loopback port until the test process
/// ends. Paths in `short` announce 100 bytes more than they send, like a dropped connection.
pub fn serve(files: HashMap<String, Vec<u8>>, short: &[&str]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let files = Arc::new(files);
    let short: Arc<Vec<String>> = Arc::new(short.iter().map(|s| s.to_string()).collect());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (files, short) = (files.clone(), short.clone());
            thread::spawn(move || {
                let Ok(read_half) = stream.try_clone() else { return };
                let mut reader = BufReader::new(read_half);
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut stream = stream;
                let _ = match files.get(&path) {
                    Some(body) => {
                        let extra = if short.contains(&path) { 100 } else { 0 };
                        write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len() + extra)
                            .and_then(|_| stream.write_all(body))
                    }
                    None => write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
                };
            });
        }
    });
    format!("http://{addr}")
}
