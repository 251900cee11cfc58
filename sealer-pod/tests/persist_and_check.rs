//! persist copies a sector to long-term storage whole or not at all, and later steps run on
//! the copy; check-sealed accepts a good replica and rejects a wrong CommR or damaged data.

mod common;

use std::fs;

use common::*;

#[test]
fn persisted_copy_is_whole_after_a_kill_and_later_steps_run_on_it() {
    let tmp = tempdir();
    let work = tmp.path();
    let piece = work.join("piece.bin");
    fs::write(&piece, vec![5u8; 700]).unwrap();
    let dir = mkdir(work, "scratch");
    let base = sector_args(&dir, 6);
    let step = |name: &'static str, base: &[String], extra: &[&str]| -> StepRun {
        let mut args = vec![name];
        args.extend(with(base, extra));
        run(work, &args, &[])
    };
    step("add-piece", &base, &["--piece", piece.to_str().unwrap()]).ok();
    step("pc1", &base, &["--ticket", &hex32(1)]).ok();
    let comm_r = step("pc2", &base, &[]).ok()["comm_r"].as_str().unwrap().to_string();

    let store = work.join("store").join("sector-6");
    let store_arg = store.to_str().unwrap();
    let mut persist = vec!["persist"];
    persist.extend(with(&base, &["--store-dir", store_arg]));
    run_killed(work, &persist, "persist:after-copy");
    assert!(!store.exists(), "a killed persist must not leave a partial store directory");
    let done = run(work, &persist, &[]);
    assert_eq!(done.ok()["location"], store_arg);
    for name in ["sealed", "cache/p_aux", "cache/t_aux", "pc2.json", "pc1.json", "pieces.json", "unsealed"] {
        assert!(store.join(name).exists(), "{name} missing from the store");
    }
    assert_eq!(fs::read(store.join("sealed")).unwrap(), fs::read(dir.join("sealed")).unwrap());

    let stored = sector_args(&store, 6);
    assert_eq!(step("check-sealed", &stored, &["--comm-r", &comm_r]).ok()["comm_r"], comm_r.as_str());
    step("c1", &stored, &["--ticket", &hex32(1), "--seed", &hex32(2)]).ok();
    assert!(store.join("c1.json").exists());
}

#[test]
fn check_sealed_rejects_a_wrong_comm_r_and_damaged_data() {
    let tmp = tempdir();
    let work = tmp.path();
    let dir = mkdir(work, "s");
    let base = sector_args(&dir, 8);
    let step = |name: &'static str, extra: &[&str]| -> StepRun {
        let mut args = vec![name];
        args.extend(with(&base, extra));
        run(work, &args, &[])
    };
    step("add-piece", &[]).ok();
    step("pc1", &["--ticket", &hex32(4)]).ok();
    step("pc2", &[]).ok();
    step("check-sealed", &[]).ok();

    let other = mkdir(work, "other");
    let other_base = sector_args(&other, 8);
    let mut args = vec!["add-piece"];
    args.extend(with(&other_base, &[]));
    run(work, &args, &[]).ok();
    let mut args = vec!["pc1"];
    let t = hex32(5);
    args.extend(with(&other_base, &["--ticket", &t]));
    run(work, &args, &[]).ok();
    let mut args = vec!["pc2"];
    args.extend(with(&other_base, &[]));
    let other_comm_r = run(work, &args, &[]).ok()["comm_r"].as_str().unwrap().to_string();

    let (level, message) = step("check-sealed", &["--comm-r", &other_comm_r]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("was expected"), "{message}");

    let sealed = dir.join("sealed");
    let mut bytes = fs::read(&sealed).unwrap();
    bytes[1000] ^= 0xff;
    fs::write(&sealed, &bytes).unwrap();
    let (level, message) = step("check-sealed", &[]).failed();
    assert_eq!(level, "permanent");
    assert!(message.contains("corrupt sealed replica"), "{message}");
}
