//! A step killed at any of its fault points and re-run produces exactly what an uninterrupted
//! run does (sealing is deterministic, so the CommR must match), and leaves no temporaries.
//! The slow test in slow_seal_and_post.rs shows the re-run's replica also proves.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn step(work: &Path, name: &str, dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec![name.to_string()];
    v.extend(sector_args(dir, 5));
    v.extend(extra.iter().map(|s| s.to_string()));
    let _ = work;
    v
}

fn run_ok(work: &Path, args: &[String]) -> serde_json::Value {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(work, &refs, &[]).ok().clone()
}

fn kill(work: &Path, args: &[String], fault: &str) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_killed(work, &refs, fault);
}

fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".tmp") {
            found.push(entry.display().to_string());
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn every_step_killed_at_each_fault_point_then_rerun_matches_an_uninterrupted_run() {
    let tmp = tempdir();
    let work = tmp.path();
    let piece = work.join("piece.bin");
    fs::write(&piece, b"some deal data that is not all zeros".repeat(20)).unwrap();
    let piece = piece.to_str().unwrap().to_string();
    let ticket = hex32(0x11);
    let seed = hex32(0x22);

    let clean = mkdir(work, "clean");
    let a = run_ok(work, &step(work, "add-piece", &clean, &["--piece", &piece]));
    run_ok(work, &step(work, "pc1", &clean, &["--ticket", &ticket]));
    let pc2 = run_ok(work, &step(work, "pc2", &clean, &[]));
    run_ok(work, &step(work, "c1", &clean, &["--ticket", &ticket, "--seed", &seed]));

    let killed = mkdir(work, "killed");
    let add = step(work, "add-piece", &killed, &["--piece", &piece]);
    kill(work, &add, "add-piece:after-piece");
    assert!(!killed.join("pieces.json").exists(), "a killed add-piece must not publish a piece list");
    assert_eq!(run_ok(work, &add)["comm_d"], a["comm_d"]);

    let pc1 = step(work, "pc1", &killed, &["--ticket", &ticket]);
    kill(work, &pc1, "pc1:after-labels");
    assert!(!killed.join("pc1.json").exists());
    run_ok(work, &pc1);

    let pc2_args = step(work, "pc2", &killed, &[]);
    kill(work, &pc2_args, "pc2:after-encode");
    assert!(!killed.join("sealed").exists(), "a half-done replica must not carry the final name");
    kill(work, &pc2_args, "pc2:after-rename");
    assert!(!killed.join("pc2.json").exists());
    let rerun = run_ok(work, &pc2_args);
    assert_eq!(rerun["comm_r"], pc2["comm_r"], "re-run after kills must seal identically");
    assert_eq!(fs::read(killed.join("sealed")).unwrap(), fs::read(clean.join("sealed")).unwrap());

    let c1 = step(work, "c1", &killed, &["--ticket", &ticket, "--seed", &seed]);
    kill(work, &c1, "c1:after-proof");
    assert!(!killed.join("c1.json").exists());
    run_ok(work, &c1);
    assert_eq!(fs::read(killed.join("c1.json")).unwrap(), fs::read(clean.join("c1.json")).unwrap());

    assert_eq!(leftovers(&killed), Vec::<String>::new());
}

#[test]
fn c1_with_a_different_ticket_than_pc1_is_refused() {
    let tmp = tempdir();
    let work = tmp.path();
    let dir = mkdir(work, "s");
    run_ok(work, &step(work, "add-piece", &dir, &[]));
    run_ok(work, &step(work, "pc1", &dir, &["--ticket", &hex32(1)]));
    run_ok(work, &step(work, "pc2", &dir, &[]));
    let args = step(work, "c1", &dir, &["--ticket", &hex32(2), "--seed", &hex32(3)]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (level, message) = run(work, &refs, &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("differs from the ticket PC1 used"), "{message}");
}

#[test]
fn synthetic_porep_sector_seals_through_c1_and_non_interactive_porep_is_refused() {
    let tmp = tempdir();
    let work = tmp.path();
    let dir = mkdir(work, "synthetic");
    let proof = ["--seal-proof", "StackedDrg2KiBV1_1_Feat_SyntheticPoRep"];
    run_ok(work, &step(work, "add-piece", &dir, &proof));
    run_ok(work, &step(work, "pc1", &dir, &[proof[0], proof[1], "--ticket", &hex32(1)]));
    run_ok(work, &step(work, "pc2", &dir, &proof));
    let synth = fs::read_dir(dir.join("cache"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("syn-porep-vanilla-proofs"));
    assert!(synth, "PC2 of a synthetic PoRep sector must leave its synthetic proofs");
    run_ok(work, &step(work, "c1", &dir, &[proof[0], proof[1], "--ticket", &hex32(1), "--seed", &hex32(2)]));

    let args = step(work, "pc1", &dir, &["--seal-proof", "15", "--ticket", &hex32(1)]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (level, message) = run(work, &refs, &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("non-interactive PoRep"), "{message}");
}
