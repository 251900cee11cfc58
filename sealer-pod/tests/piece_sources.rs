//! add-piece reads pieces from files and over HTTP; a transfer cut short is a temporary error,
//! a missing URL a permanent one, and several pieces are laid out as Lotus lays them out.

mod common;

use std::collections::HashMap;
use std::fs;

use common::*;

fn add(work: &std::path::Path, dir: &std::path::Path, pieces: &[&str]) -> StepRun {
    let base = sector_args(dir, 3);
    let mut args = vec!["add-piece"];
    args.extend(with(&base, &[]));
    for p in pieces {
        args.extend_from_slice(&["--piece", p]);
    }
    run(work, &args, &[])
}

#[test]
fn piece_over_http_matches_the_same_piece_from_a_file() {
    let tmp = tempdir();
    let work = tmp.path();
    let data: Vec<u8> = (0..900u32).map(|i| (i % 253) as u8).collect();
    let file = work.join("piece.car");
    fs::write(&file, &data).unwrap();
    let server = serve(
        HashMap::from([("/piece.car".to_string(), data.clone()), ("/cut.car".to_string(), data.clone())]),
        &["/cut.car"],
    );

    let from_file = add(work, &mkdir(work, "file"), &[file.to_str().unwrap()]);
    let url = format!("{server}/piece.car");
    let over_http = add(work, &mkdir(work, "http"), &[&url]);
    assert_eq!(from_file.ok()["comm_d"], over_http.ok()["comm_d"]);
    assert_eq!(from_file.ok()["pieces"], over_http.ok()["pieces"]);
    assert_eq!(
        fs::read(work.join("file/unsealed")).unwrap(),
        fs::read(work.join("http/unsealed")).unwrap()
    );

    let cut = add(work, &mkdir(work, "cut"), &[&format!("{server}/cut.car")]);
    let (level, message) = cut.failed();
    assert_eq!(level, "temporary", "{message}");
    assert!(!work.join("cut/pieces.json").exists());

    let missing = add(work, &mkdir(work, "missing"), &[&format!("{server}/nope.car")]);
    let (level, message) = missing.failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("404"), "{message}");
}

#[test]
fn two_pieces_are_aligned_and_the_rest_is_filled_with_zero_pieces() {
    let tmp = tempdir();
    let work = tmp.path();
    let small = work.join("small.bin");
    let large = work.join("large.bin");
    fs::write(&small, vec![1u8; 100]).unwrap();
    fs::write(&large, vec![2u8; 500]).unwrap();
    let dir = mkdir(work, "s");
    let out = add(work, &dir, &[small.to_str().unwrap(), large.to_str().unwrap()]);
    let result = out.ok();
    // 100 bytes -> 128-byte piece at 0; 500 bytes -> 512-byte piece aligned at 512.
    assert_eq!(result["pieces"][0]["size"], 128);
    assert_eq!(result["pieces"][1]["size"], 512);
    let unsealed = fs::read(dir.join("unsealed")).unwrap();
    assert_eq!(unsealed.len(), 2048);
    assert!(unsealed[128..512].iter().all(|b| *b == 0), "alignment gap must be zeros");
    assert_eq!(&unsealed[512..516], &[2, 2, 2, 2]);
    assert!(unsealed[1024..].iter().all(|b| *b == 0));

    // tree-d over the written data agrees with the CommD derived from the piece list.
    let base = sector_args(&dir, 3);
    let mut args = vec!["tree-d"];
    args.extend(with(&base, &[]));
    assert_eq!(run(work, &args, &[]).ok()["comm_d"], result["comm_d"]);
}
