//! Seals the same 2 KiB sector twice in one run: once as the operator does it (one
//! `sealer-pod` process per step) and once as one in-process call sequence through the same
//! step functions, and prints per-step times and the process/in-process ratio.
//!
//! `cargo bench -p sealer-pod --bench step_processes` (needs the 2 KiB PoRep parameters;
//! C2 dominates at about two minutes per sector). `SEALER_POD_BENCH_SKIP_C2=1` stops after C1.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use sealer_pod::layout::SectorDir;
use sealer_pod::sector::{SectorIdentity, SectorSize};
use sealer_pod::steps;

const MINER: &str = "t01000";
const TICKET: [u8; 32] = [7; 32];
const SEED: [u8; 32] = [9; 32];

fn step_names(with_c2: bool) -> Vec<&'static str> {
    let mut names = vec!["add-piece", "tree-d", "pc1", "pc2", "c1"];
    if with_c2 {
        names.push("c2");
    }
    names
}

fn by_process(dir: &Path, step: &str) -> Result<Duration, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealer-pod"));
    cmd.args(["--result-path", "/dev/null", step, "--sector-dir"])
        .arg(dir)
        .args(["--miner", MINER, "--sector-number", "1", "--sector-size", "2KiB"])
        .env("RUST_LOG", "warn");
    match step {
        "pc1" => {
            cmd.args(["--ticket", &hex::encode(TICKET)]);
        }
        "c1" => {
            cmd.args(["--ticket", &hex::encode(TICKET), "--seed", &hex::encode(SEED)]);
        }
        _ => {}
    }
    let start = Instant::now();
    let out = cmd.output().map_err(|e| format!("spawning sealer-pod: {e}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!("{step} failed: {}", String::from_utf8_lossy(&out.stdout)));
    }
    Ok(took)
}

fn in_process(id: &SectorIdentity, dir: &SectorDir, step: &str) -> Result<Duration, String> {
    let start = Instant::now();
    let result = match step {
        "add-piece" => steps::add_piece::run(
            id,
            dir,
            &steps::add_piece::AddPieceArgs {
                sources: Vec::new(),
                expected_cids: Vec::new(),
                for_update: false,
            },
        ),
        "tree-d" => steps::tree_d::run(id, dir),
        "pc1" => steps::pc1::run(id, dir, TICKET),
        "pc2" => steps::pc2::run(id, dir),
        "c1" => steps::c1::run(id, dir, TICKET, SEED),
        "c2" => steps::c2::run(id, dir),
        other => return Err(format!("unknown step {other}")),
    };
    let took = start.elapsed();
    result.map_err(|e| format!("{step} failed: {e}"))?;
    Ok(took)
}

fn main() -> ExitCode {
    let with_c2 = std::env::var_os("SEALER_POD_BENCH_SKIP_C2").is_none();
    let tmp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tempdir: {e}");
            return ExitCode::FAILURE;
        }
    };
    let process_dir = tmp.path().join("process");
    let inproc_dir = tmp.path().join("in-process");
    for d in [&process_dir, &inproc_dir] {
        if let Err(e) = std::fs::create_dir_all(d) {
            eprintln!("{}: {e}", d.display());
            return ExitCode::FAILURE;
        }
    }
    let size = SectorSize(2048);
    let setup = SectorIdentity::new(MINER, 1, size, None).and_then(|id| Ok((id, SectorDir::open(&inproc_dir)?)));
    let (id, dir) = match setup {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };

    println!("{:<10} {:>14} {:>14} {:>8}", "step", "process", "in-process", "ratio");
    let (mut total_p, mut total_i) = (Duration::ZERO, Duration::ZERO);
    for step in step_names(with_c2) {
        let timed = by_process(&process_dir, step).and_then(|p| Ok((p, in_process(&id, &dir, step)?)));
        let (p, i) = match timed {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        total_p += p;
        total_i += i;
        println!("{step:<10} {:>12.1}ms {:>12.1}ms {:>7.2}x", ms(p), ms(i), ratio(p, i));
    }
    println!("{:<10} {:>12.1}ms {:>12.1}ms {:>7.2}x", "total", ms(total_p), ms(total_i), ratio(total_p, total_i));
    ExitCode::SUCCESS
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
