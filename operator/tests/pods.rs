//! Step pods as the Sector controller creates them.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod};
use kube::api::ObjectMeta;
use sealing_operator::core::record::{Randomness, RunningStep, SectorRecord};
use sealing_operator::core::work::Step;
use sealing_operator::crd::{SealingPool, Sector};
use sealing_operator::pods::{PodError, pod_name, step_pod};

fn fixture<K: serde::de::DeserializeOwned>(yaml: &str) -> K {
    serde_yaml::from_str(yaml).expect("fixture parses")
}

fn sector() -> Sector {
    let mut s: Sector = fixture(
        "apiVersion: sealing.filecoin.io/v1alpha1\nkind: Sector\nmetadata: {name: deal-1, namespace: miners, uid: 1234-abcd}\n\
         spec: {miner: t01000, sectorSize: 2KiB, pool: devnet, pieces: [{cid: baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy, size: 2048, source: {path: /data/p1.car}}]}",
    );
    s.metadata = ObjectMeta { name: Some("deal-1".into()), namespace: Some("miners".into()), uid: Some("1234-abcd".into()), ..Default::default() };
    s
}

fn pool() -> SealingPool {
    fixture(include_str!("../../manifests/samples/pool.yaml"))
}

fn record() -> SectorRecord {
    SectorRecord {
        sector_number: Some(7),
        ticket: Some(Randomness { epoch: 100, value: "aa".repeat(32) }),
        seed: Some(Randomness { epoch: 120, value: "bb".repeat(32) }),
        ..Default::default()
    }
}

fn running(step: Step) -> RunningStep {
    RunningStep { step, attempt: 2, node: "gpu-1".into(), since: Timestamp::UNIX_EPOCH }
}

fn build(step: Step) -> Pod {
    step_pod(&sector(), &pool(), &record(), &running(step)).expect("pod builds")
}

fn args(pod: &Pod) -> Vec<String> {
    pod.spec.as_ref().unwrap().containers[0].args.clone().unwrap()
}

#[test]
fn names_are_deterministic_per_sector_step_and_attempt() {
    assert_eq!(pod_name("deal-1", Step::PC2, 3), "deal-1-pc2-3");
    let long = "s".repeat(300);
    assert!(pod_name(&long, Step::AddPiece, 1).len() <= 253);
    assert_eq!(build(Step::PC1).metadata.name.as_deref(), Some("deal-1-pc1-2"));
}

#[test]
fn pc1_runs_in_the_scratch_directory_with_the_ticket() {
    let pod = build(Step::PC1);
    let args = args(&pod);
    assert_eq!(&args[..3], ["pc1", "--sector-dir", "/scratch/miners_deal-1"]);
    assert!(args.windows(2).any(|w| w == ["--ticket", &"aa".repeat(32)]));
    assert!(args.windows(2).any(|w| w == ["--seal-proof", "StackedDrg2KiBV1_1"]));
    let volumes = pod.spec.as_ref().unwrap().volumes.clone().unwrap();
    assert_eq!(volumes[0].host_path.as_ref().unwrap().path, "/var/lib/sealing/scratch");
}

#[test]
fn add_piece_mounts_each_piece_file_read_only_and_checks_its_cid() {
    let pod = build(Step::AddPiece);
    let args = args(&pod);
    assert!(args.windows(2).any(|w| w == ["--piece", "/data/p1.car"]));
    assert!(args.windows(2).any(|w| w[0] == "--piece-cid" && w[1].starts_with("baga6ea4sea")));
    let mounts = pod.spec.as_ref().unwrap().containers[0].volume_mounts.clone().unwrap();
    assert!(mounts.iter().any(|m| m.mount_path == "/data/p1.car" && m.read_only == Some(true)));
}

#[test]
fn c2_works_on_the_stored_copy_with_a_gpu_and_the_parameters() {
    let pod = build(Step::C2);
    assert_eq!(&args(&pod)[..3], ["c2", "--sector-dir", "/store/miners_deal-1"]);
    let container = &pod.spec.as_ref().unwrap().containers[0];
    let limits = container.resources.as_ref().unwrap().limits.clone().unwrap();
    assert_eq!(limits.get("nvidia.com/gpu").map(|q| q.0.as_str()), Some("1"));
    let mounts = container.volume_mounts.clone().unwrap();
    assert!(mounts.iter().any(|m| m.mount_path == "/var/tmp/filecoin-proof-parameters" && m.read_only == Some(true)));
    assert_eq!(pod.spec.as_ref().unwrap().priority_class_name, None, "sealing runs at the default priority, below window PoSt");
}

#[test]
fn pods_are_owned_pinned_unprivileged_and_without_a_token() {
    let pod = build(Step::PC2);
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("Sector", "deal-1", Some(true)));
    let spec = pod.spec.unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.automount_service_account_token, Some(false));
    let security = spec.security_context.unwrap();
    assert_eq!((security.run_as_non_root, security.run_as_user), (Some(true), Some(1000)));
    let terms = spec.affinity.unwrap().node_affinity.unwrap().required_during_scheduling_ignored_during_execution.unwrap().node_selector_terms;
    let pinned = terms[0].match_expressions.as_ref().unwrap();
    assert_eq!(pinned[0].values.as_deref(), Some(&["gpu-1".to_owned()][..]));
    assert_eq!(spec.tolerations.unwrap()[0].key.as_deref(), Some("nvidia.com/gpu"));
}

#[test]
fn the_node_pin_is_added_to_every_term_of_the_pool_affinity() {
    let term = |zone: &str| NodeSelectorTerm {
        match_expressions: Some(vec![NodeSelectorRequirement { key: "zone".into(), operator: "In".into(), values: Some(vec![zone.into()]) }]),
        ..Default::default()
    };
    let pool_affinity = Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector { node_selector_terms: vec![term("a"), term("b")] }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pinned = sealing_operator::pods::pin_to_node(Some(pool_affinity), "gpu-1");
    let terms = pinned.node_affinity.unwrap().required_during_scheduling_ignored_during_execution.unwrap().node_selector_terms;
    assert_eq!(terms.len(), 2);
    for term in terms {
        let keys: Vec<String> = term.match_expressions.unwrap().into_iter().map(|r| r.key).collect();
        assert_eq!(keys, ["zone", "kubernetes.io/hostname"]);
    }
}

#[test]
fn a_step_missing_its_input_says_which() {
    let bare = SectorRecord { sector_number: Some(7), ..Default::default() };
    let err = step_pod(&sector(), &pool(), &bare, &running(Step::C1)).unwrap_err();
    assert_eq!(err, PodError::Missing("ticket", "c1"));
}

fn deadline() -> sealing_operator::crd::ProvingDeadline {
    let mut d = sealing_operator::crd::ProvingDeadline::new(
        "t01000-3",
        sealing_operator::crd::ProvingDeadlineSpec { miner: "t01000".into(), deadline_index: 3 },
    );
    d.metadata.namespace = Some("sealing-system".into());
    d.metadata.uid = Some("dl-uid".into());
    d
}

fn miners_pool() -> SealingPool {
    let mut pool = pool();
    pool.metadata.namespace = Some("miners".into());
    pool.metadata.uid = Some("pool-uid".into());
    pool
}

fn replicas() -> Vec<sealing_operator::pods::StoredReplica> {
    use sealing_operator::pods::StoredReplica;
    vec![
        StoredReplica { sector_number: 7, comm_r: "bagboea4b5abc".into(), store_path: "/mnt/store-a".into(), subdir: "miners_cc".into() },
        StoredReplica { sector_number: 8, comm_r: "bagboea4b5abd".into(), store_path: "/mnt/store-b".into(), subdir: "other_deal".into() },
    ]
}

#[test]
fn window_post_pods_read_every_store_read_only_use_the_pool_gpus_and_are_not_pinned() {
    use sealing_operator::pods::{ProvingTask, proving_pod};
    let task = ProvingTask::WindowPost { randomness: "cc".repeat(32) };
    let pod = proving_pod(&deadline(), &miners_pool(), "t01000-3-post-96-0-1", 96, &task, &replicas()).expect("pod builds");
    let spec = pod.spec.clone().unwrap();
    let container = &spec.containers[0];
    let args = args(&pod);
    assert_eq!(&args[..5], ["window-post", "--miner", "t01000", "--sector-size", "2KiB"]);
    assert!(args.windows(2).any(|w| w[0] == "--randomness" && w[1] == "cc".repeat(32)));
    assert!(args.contains(&"7,bagboea4b5abc,/store/0/miners_cc/sealed,/store/0/miners_cc/cache".to_owned()), "{args:?}");
    assert!(args.contains(&"8,bagboea4b5abd,/store/1/other_deal/sealed,/store/1/other_deal/cache".to_owned()), "{args:?}");
    let mounts = container.volume_mounts.clone().unwrap();
    assert!(mounts.iter().filter(|m| m.mount_path.starts_with("/store/")).all(|m| m.read_only == Some(true)));
    let limits = container.resources.as_ref().and_then(|r| r.limits.clone()).unwrap_or_default();
    assert_eq!(limits.get("nvidia.com/gpu").map(|q| q.0.as_str()), Some("1"), "window PoSt uses the pool's GPU setting");
    assert_eq!(spec.affinity, pool().spec.affinity, "any node of the pool, not one node");
    assert_eq!(spec.priority_class_name.as_deref(), Some("sealing-window-post"), "the sample pool's window PoSt PriorityClass");
    assert_eq!(spec.automount_service_account_token, Some(false));
    let owner = &pod.metadata.owner_references.clone().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("SealingPool", "pool-uid"), "owned by the pool, whose namespace it runs in");
    assert_eq!(pod.metadata.namespace.as_deref(), Some("miners"));
    assert_eq!(pod.metadata.labels.clone().unwrap().get("sealing.filecoin.io/period-start").map(String::as_str), Some("96"));
}

#[test]
fn proving_check_pods_use_no_gpu_and_draw_their_own_challenges() {
    use sealing_operator::pods::{ProvingTask, proving_pod};
    let pod = proving_pod(&deadline(), &miners_pool(), "t01000-3-check-96", 96, &ProvingTask::Check, &replicas()).expect("pod builds");
    let args = args(&pod);
    assert_eq!(args[0], "proving-check");
    assert!(!args.contains(&"--randomness".to_owned()));
    let container = &pod.spec.as_ref().unwrap().containers[0];
    let limits = container.resources.as_ref().and_then(|r| r.limits.clone()).unwrap_or_default();
    assert!(!limits.contains_key("nvidia.com/gpu"), "{limits:?}");
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.priority_class_name.as_deref(), Some("sealing-window-post"), "the check is as urgent as the PoSt");
}
