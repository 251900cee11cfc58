//! Bad inputs get a clear error with the right level and exit code, before any work starts.

mod common;

use std::fs;

use common::*;

#[test]
fn missing_sector_directory_is_permanent_and_names_the_path() {
    let tmp = tempdir();
    let missing = tmp.path().join("no-such-sector");
    let base = sector_args(&missing, 1);
    let mut args = vec!["pc2"];
    args.extend(with(&base, &[]));
    let (level, message) = run(tmp.path(), &args, &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("no-such-sector") && message.contains("does not exist"), "{message}");
}

#[test]
fn malformed_ticket_is_permanent() {
    let tmp = tempdir();
    let dir = mkdir(tmp.path(), "s");
    let base = sector_args(&dir, 1);
    let mut args = vec!["pc1"];
    args.extend(with(&base, &["--ticket", "not-hex"]));
    let (level, message) = run(tmp.path(), &args, &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.starts_with("invalid ticket"), "{message}");

    let short = hex::encode([1u8; 16]);
    let mut args = vec!["pc1"];
    args.extend(with(&base, &["--ticket", &short]));
    let (_, message) = run(tmp.path(), &args, &[]).failed();
    assert!(message.contains("expected 32 bytes"), "{message}");
}

#[test]
fn wrong_sector_size_is_permanent() {
    let tmp = tempdir();
    let dir = mkdir(tmp.path(), "s");
    let base = sector_args(&dir, 1);
    let mut add = vec!["add-piece"];
    add.extend(with(&base, &[]));
    run(tmp.path(), &add, &[]).ok();

    // The sector's data was written for 2 KiB; PC1 for 8 MiB must refuse it.
    let args = [
        "pc1", "--sector-dir", dir.to_str().unwrap(), "--miner", MINER, "--sector-number", "1",
        "--sector-size", "8MiB", "--ticket", &hex32(1),
    ];
    let (level, message) = run(tmp.path(), &args, &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("has 2048 bytes, expected 8388608"), "{message}");

    let args = [
        "pc2", "--sector-dir", dir.to_str().unwrap(), "--miner", MINER, "--sector-number", "1",
        "--sector-size", "3KiB",
    ];
    let (level, message) = run(tmp.path(), &args, &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("unsupported sector size"), "{message}");

    let mut args = vec!["pc2"];
    args.extend(with(&base, &["--seal-proof", "8"]));
    let (_, message) = run(tmp.path(), &args, &[]).failed();
    assert!(message.contains("--sector-size is 2KiB"), "{message}");
}

#[test]
fn missing_parameters_are_reported_before_any_work() {
    let tmp = tempdir();
    let dir = mkdir(tmp.path(), "s");
    let empty_cache = mkdir(tmp.path(), "params");
    let base = sector_args(&dir, 1);
    let mut args = vec!["c2"];
    args.extend(with(&base, &[]));
    let (level, message) = run(tmp.path(), &args, &[("FIL_PROOFS_PARAMETER_CACHE", empty_cache.to_str().unwrap())]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("missing proof parameters for C2 of a 2KiB sector"), "{message}");
    assert!(message.contains("v28-stacked-proof-of-replication"), "{message}");
    assert!(message.contains("params generate"), "{message}");
    assert!(!message.contains("No cached parameters"), "{message}");

    let sectors = format!("1,bagboea4b5abcamxnpmwxuqgzrbptwcgiqsrnykhnpgqu7nqmmelfx7ziaqkfnbgy,{0}/sealed,{0}/cache", dir.display());
    let args = ["window-post", "--miner", MINER, "--sector-size", SIZE, "--sector", &sectors, "--randomness", &hex32(3)];
    let (level, message) = run(tmp.path(), &args, &[("FIL_PROOFS_PARAMETER_CACHE", empty_cache.to_str().unwrap())]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("window PoSt of 2KiB sectors"), "{message}");
}

#[test]
fn data_larger_than_the_sector_aborts() {
    let tmp = tempdir();
    let dir = mkdir(tmp.path(), "s");
    let piece = tmp.path().join("big.bin");
    fs::write(&piece, vec![7u8; 3000]).unwrap();
    let base = sector_args(&dir, 1);
    let mut args = vec!["add-piece"];
    args.extend(with(&base, &["--piece", piece.to_str().unwrap()]));
    let (level, message) = run(tmp.path(), &args, &[]).failed();
    assert_eq!(level, "abort");
    assert!(message.contains("do not fit"), "{message}");
    assert!(!dir.join("pieces.json").exists());
    assert!(!dir.join("unsealed").exists());
}

#[test]
fn missing_and_mismatched_pieces_are_permanent() {
    let tmp = tempdir();
    let dir = mkdir(tmp.path(), "s");
    let base = sector_args(&dir, 1);
    let mut args = vec!["add-piece"];
    args.extend(with(&base, &["--piece", "/nonexistent/piece.car"]));
    let (level, message) = run(tmp.path(), &args, &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("/nonexistent/piece.car"), "{message}");

    let piece = tmp.path().join("p.bin");
    fs::write(&piece, b"hello piece").unwrap();
    let wrong = "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy";
    let mut args = vec!["add-piece"];
    args.extend(with(&base, &["--piece", piece.to_str().unwrap(), "--piece-cid", wrong]));
    let (level, message) = run(tmp.path(), &args, &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("but baga6ea4seaqpy7us"), "{message}");
}

#[test]
fn steps_out_of_order_say_which_step_to_run() {
    let tmp = tempdir();
    let dir = mkdir(tmp.path(), "s");
    let base = sector_args(&dir, 1);
    let mut args = vec!["pc2"];
    args.extend(with(&base, &[]));
    let (level, message) = run(tmp.path(), &args, &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("run the pc1 step first"), "{message}");

    let mut args = vec!["tree-d"];
    args.extend(with(&base, &[]));
    let (_, message) = run(tmp.path(), &args, &[]).failed();
    assert!(message.contains("run the add-piece step first"), "{message}");
}

#[test]
fn bad_command_line_is_a_permanent_json_failure() {
    let tmp = tempdir();
    let (level, message) = run(tmp.path(), &["pc1", "--sector-dir", "/tmp", "--bogus"], &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("--bogus"), "{message}");

    let args = ["window-post", "--miner", "t01000", "--sector-size", SIZE, "--sector", "1,notacid,/a,/b", "--randomness", &hex32(1)];
    let (level, message) = run(tmp.path(), &args, &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("invalid CommR"), "{message}");

    let args = ["proving-check", "--miner", "t3abc", "--sector-size", SIZE, "--sector", "1,x,/a,/b"];
    let (_, message) = run(tmp.path(), &args, &[]).failed();
    assert!(message.contains("invalid miner"), "{message}");
}
