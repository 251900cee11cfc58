//! Two 2 KiB sectors sealed step by step, each step its own process as a pod runs it: one
//! committed-capacity sector and one holding a real piece. PC2 of each is killed halfway and
//! re-run first. The C2 proofs must pass verify_seal; window PoSt over both must pass
//! verify_window_post; after one sealed file is corrupted the proving check must find it and
//! window PoSt must report it faulty and still prove the other.
//!
//! Needs the 2 KiB PoRep and window PoSt parameters (`scripts/params.sh`); C2 takes about two
//! minutes per sector on two cores.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::str::FromStr;
use std::thread;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cid::Cid;
use common::*;
use filecoin_proofs_api::post::verify_window_post;
use filecoin_proofs_api::seal::{compute_comm_d, generate_piece_commitment, verify_seal};
use filecoin_proofs_api::{
    PublicReplicaInfo, RegisteredPoStProof, RegisteredSealProof, SectorId, UnpaddedBytesAmount,
};
use fvm_shared::commcid;

const TICKET: u8 = 7;
const SEED: u8 = 9;

struct Sealed {
    number: u64,
    dir: std::path::PathBuf,
    comm_r: String,
    comm_d: String,
}

fn comm_r_bytes(cid: &str) -> [u8; 32] {
    commcid::cid_to_replica_commitment_v1(&Cid::from_str(cid).unwrap()).unwrap()
}

fn comm_d_bytes(cid: &str) -> [u8; 32] {
    commcid::cid_to_data_commitment_v1(&Cid::from_str(cid).unwrap()).unwrap()
}

/// add-piece through C1, with PC2 killed at `pc2_fault` and re-run.
fn seal_to_c1(work: &Path, dir: &Path, number: u64, pieces: &[&str], pc2_fault: &str) -> Sealed {
    let base = sector_args(dir, number);
    let mut add = vec!["add-piece"];
    add.extend(with(&base, &[]));
    for p in pieces {
        add.extend_from_slice(&["--piece", p]);
    }
    let added = run(work, &add, &[]);
    let add_comm_d = added.ok()["comm_d"].as_str().unwrap().to_string();

    let ticket = hex32(TICKET);
    let seed = hex32(SEED);
    let mut td = vec!["tree-d"];
    td.extend(with(&base, &[]));
    assert_eq!(run(work, &td, &[]).ok()["comm_d"], add_comm_d.as_str());

    let mut pc1 = vec!["pc1"];
    pc1.extend(with(&base, &["--ticket", &ticket]));
    assert_eq!(run(work, &pc1, &[]).ok()["comm_d"], add_comm_d.as_str());

    let mut pc2 = vec!["pc2"];
    pc2.extend(with(&base, &[]));
    run_killed(work, &pc2, pc2_fault);
    let pc2_out = run(work, &pc2, &[]);
    let comm_r = pc2_out.ok()["comm_r"].as_str().unwrap().to_string();
    assert!(comm_r.starts_with("bagboea4b5abc"), "{comm_r}");
    assert_eq!(pc2_out.ok()["comm_d"], add_comm_d.as_str());

    let mut c1 = vec!["c1"];
    c1.extend(with(&base, &["--ticket", &ticket, "--seed", &seed]));
    run(work, &c1, &[]).ok();
    Sealed {
        number,
        dir: dir.to_path_buf(),
        comm_r,
        comm_d: add_comm_d,
    }
}

fn c2_and_verify(work: &Path, sector: &Sealed) {
    let base = sector_args(&sector.dir, sector.number);
    let mut c2 = vec!["c2"];
    c2.extend(with(&base, &[]));
    let out = run(work, &c2, &[]);
    let result = out.ok();
    let proof = STANDARD.decode(result["proof"].as_str().unwrap()).unwrap();
    assert_eq!(proof.len(), 192);
    assert_eq!(fs::read(sector.dir.join("proof.bin")).unwrap(), proof);
    let ok = verify_seal(
        RegisteredSealProof::StackedDrg2KiBV1_1,
        comm_r_bytes(&sector.comm_r),
        comm_d_bytes(&sector.comm_d),
        prover_id(),
        SectorId::from(sector.number),
        [TICKET; 32],
        [SEED; 32],
        &proof,
    )
    .unwrap();
    assert!(ok, "C2 proof of sector {} does not verify", sector.number);
    let wrong_seed = verify_seal(
        RegisteredSealProof::StackedDrg2KiBV1_1,
        comm_r_bytes(&sector.comm_r),
        comm_d_bytes(&sector.comm_d),
        prover_id(),
        SectorId::from(sector.number),
        [TICKET; 32],
        [SEED + 1; 32],
        &proof,
    )
    .unwrap();
    assert!(!wrong_seed, "the proof must not verify for another seed");
}

fn sectors_file(work: &Path, sectors: &[&Sealed]) -> std::path::PathBuf {
    let list: Vec<_> = sectors
        .iter()
        .map(|s| {
            serde_json::json!({
                "sector_number": s.number,
                "comm_r": s.comm_r,
                "sealed_path": s.dir.join("sealed"),
                "cache_path": s.dir.join("cache"),
            })
        })
        .collect();
    let path = work.join("sectors.json");
    fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
    path
}

fn verify_post(randomness: [u8; 32], proof_b64: &str, sectors: &[&Sealed]) -> bool {
    let mut masked = randomness;
    masked[31] &= 0x3f;
    let post = RegisteredPoStProof::StackedDrgWindow2KiBV1_2;
    let replicas: BTreeMap<SectorId, PublicReplicaInfo> = sectors
        .iter()
        .map(|s| (SectorId::from(s.number), PublicReplicaInfo::new(post, comm_r_bytes(&s.comm_r))))
        .collect();
    let proof = STANDARD.decode(proof_b64).unwrap();
    verify_window_post(&masked, &[(post, proof.as_slice())], &replicas, prover_id()).unwrap()
}

#[test]
fn slow_two_sectors_sealed_by_separate_processes_prove_and_window_post_finds_corruption() {
    require_params(&["porep", "window-post"]);
    let tmp = tempdir();
    let work = tmp.path();

    // A real piece: 1000 bytes of data, padded to a 1016-byte (1 KiB padded) piece.
    let piece_path = work.join("piece.bin");
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
    fs::write(&piece_path, &data).unwrap();
    let mut padded = data.clone();
    padded.resize(1016, 0);
    let piece = generate_piece_commitment(
        RegisteredSealProof::StackedDrg2KiBV1_1,
        padded.as_slice(),
        UnpaddedBytesAmount(1016),
    )
    .unwrap();
    // The sector's CommD, computed independently: the piece of the whole sector's unpadded data.
    let mut sector_data = padded.clone();
    sector_data.resize(2032, 0);
    let expected_comm_d = generate_piece_commitment(
        RegisteredSealProof::StackedDrg2KiBV1_1,
        sector_data.as_slice(),
        UnpaddedBytesAmount(2032),
    )
    .unwrap()
    .commitment;
    assert_ne!(expected_comm_d, compute_comm_d(RegisteredSealProof::StackedDrg2KiBV1_1, &[]).unwrap());
    let piece_cid = commcid::data_commitment_v1_to_cid(&piece.commitment).unwrap().to_string();

    let cc = seal_to_c1(work, &mkdir(work, "s1"), 1, &[], "pc2:after-encode");
    assert_eq!(cc.comm_d, "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy");
    let deal = seal_to_c1(work, &mkdir(work, "s2"), 2, &[piece_path.to_str().unwrap()], "pc2:after-rename");
    assert_eq!(comm_d_bytes(&deal.comm_d), expected_comm_d, "CommD of the sector with a piece");
    let pieces: serde_json::Value = serde_json::from_slice(&fs::read(deal.dir.join("pieces.json")).unwrap()).unwrap();
    assert_eq!(pieces["pieces"][0]["cid"], piece_cid.as_str());
    assert_eq!(pieces["pieces"][0]["size"], 1024);

    // The two C2s run side by side, as two pods would.
    thread::scope(|s| {
        s.spawn(|| c2_and_verify(work, &cc));
        s.spawn(|| c2_and_verify(work, &deal));
    });

    // The piece comes back out of the replica.
    let unsealed_out = work.join("unsealed-piece.bin");
    let base = sector_args(&deal.dir, deal.number);
    let mut unseal = vec!["unseal"];
    let ticket = hex32(TICKET);
    unseal.extend(with(&base, &["--ticket", &ticket, "--length", "1016", "--output", unsealed_out.to_str().unwrap()]));
    assert_eq!(run(work, &unseal, &[]).ok()["bytes"], 1016);
    assert_eq!(fs::read(&unsealed_out).unwrap(), padded);

    let sectors = sectors_file(work, &[&cc, &deal]);
    let randomness = [0xffu8; 32];
    let rand_hex = hex::encode(randomness);
    let post_args = ["--miner", MINER, "--sector-size", SIZE, "--sectors-file", sectors.to_str().unwrap()];

    let mut check = vec!["proving-check"];
    check.extend_from_slice(&post_args);
    let healthy = run(work, &check, &[]);
    assert_eq!(healthy.ok()["bad"], serde_json::json!([]), "{}", healthy.result);

    let mut wpost = vec!["window-post"];
    wpost.extend_from_slice(&post_args);
    wpost.extend_from_slice(&["--randomness", &rand_hex]);
    let both = run(work, &wpost, &[]);
    let result = both.ok();
    assert_eq!(result["faulty"], serde_json::json!([]));
    assert_eq!(result["post_proof"], 10);
    assert!(verify_post(randomness, result["proof"].as_str().unwrap(), &[&cc, &deal]));

    // Corrupt the second sector's replica.
    let sealed = deal.dir.join("sealed");
    let mut bytes = fs::read(&sealed).unwrap();
    for b in &mut bytes[64..96] {
        *b ^= 0x5a;
    }
    fs::write(&sealed, &bytes).unwrap();

    let after = run(work, &check, &[]);
    let report = after.ok();
    assert_eq!(report["bad"], serde_json::json!([2]), "{report}");
    assert_eq!(report["sectors"][0]["ok"], true);
    assert_eq!(report["sectors"][1]["ok"], false);
    assert!(report["sectors"][1]["reason"].as_str().unwrap().contains("invalid"), "{report}");

    let faulty = run(work, &wpost, &[]);
    let result = faulty.ok();
    assert_eq!(result["faulty"], serde_json::json!([2]), "{result}");
    assert!(verify_post(randomness, result["proof"].as_str().unwrap(), &[&cc]), "PoSt over the good sector");
    assert!(!verify_post(randomness, result["proof"].as_str().unwrap(), &[&cc, &deal]));

    // A missing file is reported with its path, not as a crash.
    fs::remove_file(cc.dir.join("cache").join("p_aux")).unwrap();
    let missing = run(work, &check, &[]);
    let report = missing.ok();
    assert_eq!(report["bad"], serde_json::json!([1, 2]));
    assert!(report["sectors"][0]["reason"].as_str().unwrap().contains("p_aux"), "{report}");
    let none = run(work, &wpost, &[]);
    assert_eq!(none.ok()["proof"], serde_json::Value::Null);
    assert_eq!(none.ok()["faulty"], serde_json::json!([1, 2]));
}
