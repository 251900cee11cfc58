//! SnapDeals: a committed-capacity sector (sealed through PC2 by separate processes) receives a
//! real piece; snap-encode is killed once and re-run, snap-prove's proof must pass
//! verify_empty_sector_update_proof, and the updated replica must pass the proving check.
//!
//! Needs the 2 KiB snap (empty-sector-update) parameters: `scripts/params.sh`.

mod common;

use std::fs;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cid::Cid;
use common::*;
use filecoin_proofs_api::seal::generate_piece_commitment;
use filecoin_proofs_api::update::verify_empty_sector_update_proof;
use filecoin_proofs_api::{RegisteredSealProof, RegisteredUpdateProof, UnpaddedBytesAmount};
use fvm_shared::commcid;

#[test]
fn slow_cc_sector_snapped_with_a_piece_proves_the_update() {
    require_params(&["snap"]);
    let tmp = tempdir();
    let work = tmp.path();
    let dir = mkdir(work, "s");
    let base = sector_args(&dir, 4);
    let step = |name: &'static str, extra: &[&str]| -> StepRun {
        let mut args = vec![name];
        args.extend(with(&base, extra));
        run(work, &args, &[])
    };
    step("add-piece", &[]).ok();
    step("pc1", &["--ticket", &hex32(3)]).ok();
    let old = step("pc2", &[]).ok().clone();

    let data: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 256) as u8).collect();
    let piece = work.join("deal.bin");
    fs::write(&piece, &data).unwrap();
    let added = step("add-piece", &["--update", "--piece", piece.to_str().unwrap()]);
    assert_eq!(added.ok()["pieces"][0]["size"], 2048);
    assert!(dir.join("update/unsealed").exists());

    let mut args = vec!["snap-encode"];
    args.extend(with(&base, &[]));
    run_killed(work, &args, "snap-encode:after-encode");
    assert!(!dir.join("update/sealed").exists());
    let encoded = step("snap-encode", &[]).ok().clone();

    let mut padded = data.clone();
    padded.resize(2032, 0);
    let expected_comm_d = generate_piece_commitment(
        RegisteredSealProof::StackedDrg2KiBV1_1,
        padded.as_slice(),
        UnpaddedBytesAmount(2032),
    )
    .unwrap()
    .commitment;
    let comm_d_new = commcid::cid_to_data_commitment_v1(&Cid::from_str(encoded["comm_d_new"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(comm_d_new, expected_comm_d);

    let proved = step("snap-prove", &[]);
    let result = proved.ok();
    let proof = STANDARD.decode(result["proof"].as_str().unwrap()).unwrap();
    let comm_r = |v: &serde_json::Value| {
        commcid::cid_to_replica_commitment_v1(&Cid::from_str(v.as_str().unwrap()).unwrap()).unwrap()
    };
    let comm_r_old = comm_r(&old["comm_r"]);
    let comm_r_new = comm_r(&encoded["comm_r_new"]);
    assert_ne!(comm_r_old, comm_r_new);
    let ok = verify_empty_sector_update_proof(RegisteredUpdateProof::StackedDrg2KiBV1, &proof, comm_r_old, comm_r_new, comm_d_new).unwrap();
    assert!(ok, "snap proof does not verify");
    let wrong = verify_empty_sector_update_proof(RegisteredUpdateProof::StackedDrg2KiBV1, &proof, comm_r_new, comm_r_new, comm_d_new).unwrap();
    assert!(!wrong);

    let sector = format!(
        "4,{},{},{}",
        encoded["comm_r_new"].as_str().unwrap(),
        dir.join("update/sealed").display(),
        dir.join("update/cache").display()
    );
    let check = run(work, &["proving-check", "--miner", MINER, "--sector-size", SIZE, "--sector", &sector], &[]);
    assert_eq!(check.ok()["bad"], serde_json::json!([]), "{}", check.result);
}
