//! The operator end to end: pools and sectors applied with kubectl are sealed by step pods that
//! the node agent runs with the real sealer-pod, and committed through the chain bridge to the
//! chain simulator, which verifies every proof. One operator, running with the service account
//! and RBAC of `manifests/`, and one simulator serve every test here (the operator watches all
//! namespaces); each test has its own namespace and pool.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chain_sim::SimControl;
use filecoin_chain::ApiToken;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use sealing_e2e::e2e_tests;
use sealing_e2e::harness::node_agent::{CPU_NODE, GPU_NODE, SHARED_STORE};
use sealing_e2e::harness::{Cluster, E2eTest};
use sealing_operator::core::State;
use fvm_shared::econ::TokenAmount;
use sealing_operator::crd::{ProvingDeadline, Sector};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::proving;

pub fn tests() -> Vec<E2eTest> {
    e2e_tests![
        local_only: slow_sectors_applied_with_kubectl_are_sealed_proven_on_chain_and_kept_proven,
        slow_four_sectors_committed_together_are_proven_by_one_aggregate,
        pc1_concurrency_one_runs_one_pc1_per_node_and_abort_stops_sectors,
        pledge_loop_keeps_the_configured_sectors_in_flight,
        failed_precommit_batch_is_resent_member_by_member_and_the_sectors_go_on,
        slow_messages_left_below_a_rising_base_fee_are_replaced_and_land,
    ]
}

const PRECOMMIT: u64 = 28;
const PROVE_COMMIT: u64 = 34;
const SUBMIT_POST: u64 = 5;

/// The operator process and the chain simulator, shared by the tests of this module. Both die
/// with the test process (PR_SET_PDEATHSIG), since statics are never dropped.
struct Sealing {
    sim: SimControl,
    endpoint: String,
    token: String,
    /// The operator's health and metrics port.
    health: u16,
    operator: Mutex<Child>,
    operator_command: Vec<String>,
    operator_env: Vec<(String, String)>,
    dir: PathBuf,
}

static SEALING: OnceCell<Arc<Sealing>> = OnceCell::const_new();

/// Held by the tests that run C2s: two of them at once would starve the other's window PoSts on
/// two cores, and the proving test stops and restarts the operator.
static C2_HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type SpawnRequest = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);

/// Starts processes from one thread that lives as long as the test process: PR_SET_PDEATHSIG
/// fires when the thread that forked the child ends, and test threads end after each test.
fn spawner() -> &'static Mutex<std::sync::mpsc::Sender<SpawnRequest>> {
    static SPAWNER: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<SpawnRequest>>> = std::sync::OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::spawn(move || {
            for (mut command, reply) in rx {
                let _ = reply.send(command.spawn());
            }
        });
        Mutex::new(tx)
    })
}

fn spawn(program: &Path, args: &[String], env: &[(String, String)], log: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = Command::new(program);
    command.args(args).envs(env.iter().cloned()).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    let (reply, answer) = std::sync::mpsc::channel();
    spawner().lock().unwrap_or_else(|e| e.into_inner()).send((command, reply)).context("the spawner thread is gone")?;
    answer.recv().context("the spawner thread is gone")?.with_context(|| format!("starting {}", program.display()))
}

fn kubectl(cluster: &Cluster, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut cmd = cluster.kubectl();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().with_context(|| format!("kubectl {args:?}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    ensure!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The kubectl plugin, `kubectl sealing ...`, as a user runs it.
fn kubectl_sealing(cluster: &Cluster, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cluster.binaries.path("kubectl-sealing")?).env("KUBECONFIG", &cluster.kubeconfig).args(args).output()?;
    ensure!(out.status.success(), "kubectl sealing {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn sealing(cluster: &Arc<Cluster>) -> anyhow::Result<Arc<Sealing>> {
    SEALING
        .get_or_try_init(|| async {
            let dir = cluster.run_dir.join("sealing");
            std::fs::create_dir_all(&dir)?;
            cluster.install_crds().await?;
            let manifests = Cluster::repo_root().join("manifests");
            kubectl(cluster, &["apply", "-k", &manifests.to_string_lossy()], None)?;
            // The operator runs as a local process below, with the same service account and RBAC.
            kubectl(cluster, &["-n", "sealing-system", "scale", "deployment/sealing-operator", "--replicas=0"], None)?;
            let token = kubectl(cluster, &["-n", "sealing-system", "create", "token", "sealing-operator", "--duration=6h"], None)?;
            let server = kubectl(cluster, &["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"], None)?;
            let kubeconfig = dir.join("operator.kubeconfig");
            std::fs::write(
                &kubeconfig,
                serde_yaml::to_string(&json!({
                    "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
                    "clusters": [{"name": "e2e", "cluster": {"server": server.trim(), "insecure-skip-tls-verify": true}}],
                    "users": [{"name": "operator", "user": {"token": token.trim()}}],
                    "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "operator", "namespace": "sealing-system"}}],
                }))?,
            )?;

            // The chain node wants a bearer token, which the operator reads from the Secret that
            // manifests/config.yaml names.
            let token = format!("e2e-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos());
            let token_file = dir.join("chain-token");
            std::fs::write(&token_file, &token)?;
            let secret = format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: chain-api-token, namespace: sealing-system}}\nstringData: {{token: {token}}}\n");
            kubectl(cluster, &["apply", "-f", "-"], Some(&secret))?;

            let port = free_port()?;
            let sim_bin = cluster.binaries.path("chain-sim")?;
            let sim_config = dir.join("chain-sim.json");
            let mut config = chain_sim::SimConfig { epoch_duration_ms: 500, ..Default::default() };
            config.policy.window_post = crate::proving::POLICY;
            std::fs::write(&sim_config, serde_json::to_vec(&config)?)?;
            let sim_args = vec![
                "--listen".to_owned(),
                format!("127.0.0.1:{port}"),
                "--config".into(),
                sim_config.to_string_lossy().into_owned(),
                "--token-file".into(),
                token_file.to_string_lossy().into_owned(),
            ];
            spawn(&sim_bin, &sim_args, &[], &dir.join("chain-sim.log"))?;
            let endpoint = format!("http://127.0.0.1:{port}/rpc/v1");
            let sim = SimControl::new(endpoint.clone(), Some(ApiToken::new(&token)));
            wait_until(Duration::from_secs(30), "the chain simulator to answer", || async { Ok(sim.config().await.is_ok()) }).await?;

            let config = dir.join("operator.yaml");
            std::fs::write(
                &config,
                format!(
                    // Window PoSt without a maximized fee cap, so that a rising base fee can leave
                    // it out and the replacement shows; replacements after 3 epochs (1.5 s).
                    "chain:\n  endpoint: {endpoint}\n  tokenSecret: chain-api-token\n  preCommitChallengeDelay: 10\n  seedConfidence: 2\n  pollIntervalSeconds: 1\nbatching:\n  maxSectors: 8\n  maxWaitEpochs: 10\n  aggregate:\n    minSectors: 4\nfees:\n  windowPoSt: {{maxFee: \"5 FIL\", maximizeFeeCap: false}}\n  replaceAfterEpochs: 3\n"
                ),
            )?;
            let health = free_port()?;
            let operator_command = vec![
                cluster.binaries.path("sealing-operator")?.to_string_lossy().into_owned(),
                "run".into(),
                "--config".into(),
                config.to_string_lossy().into_owned(),
                "--listen".into(),
                format!("127.0.0.1:{health}"),
            ];
            let operator_env = vec![
                ("KUBECONFIG".to_owned(), kubeconfig.to_string_lossy().into_owned()),
                ("POD_NAMESPACE".to_owned(), "sealing-system".to_owned()),
                ("RUST_LOG".to_owned(), "info".to_owned()),
            ];
            let operator = start_operator(&operator_command, &operator_env, &dir)?;
            wait_until(Duration::from_secs(60), "the operator's /readyz", || async move { Ok(http_status(health, "/readyz").is_ok_and(|c| c == 200)) }).await?;
            ensure!(http_status(health, "/healthz")? == 200, "the operator's /healthz answers 200");
            Ok(Arc::new(Sealing { sim, endpoint, token, health, operator: Mutex::new(operator), operator_command, operator_env, dir }))
        })
        .await
        .cloned()
}

fn start_operator(command: &[String], env: &[(String, String)], dir: &Path) -> anyhow::Result<Child> {
    let log = dir.join(format!("operator-{}.log", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis()));
    spawn(Path::new(&command[0]), &command[1..], env, &log)
}

impl Sealing {
    /// Stops the operator with SIGTERM, as Kubernetes does, checks that it exits cleanly and
    /// soon, and starts a new one.
    async fn stop_operator_gracefully(&self) -> anyhow::Result<()> {
        let pid = self.operator.lock().unwrap_or_else(|e| e.into_inner()).id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.operator.lock().unwrap_or_else(|e| e.into_inner()).try_wait()? {
                break status;
            }
            ensure!(tokio::time::Instant::now() < deadline, "the operator did not stop within 30s of SIGTERM");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        ensure!(status.success(), "the operator exits cleanly on SIGTERM: {status}");
        *self.operator.lock().unwrap_or_else(|e| e.into_inner()) = start_operator(&self.operator_command, &self.operator_env, &self.dir)?;
        Ok(())
    }

    /// Kills the operator with SIGKILL, as a crash would, and starts a new one.
    fn restart_operator(&self) -> anyhow::Result<()> {
        let mut operator = self.operator.lock().unwrap_or_else(|e| e.into_inner());
        operator.kill()?;
        operator.wait()?;
        *operator = start_operator(&self.operator_command, &self.operator_env, &self.dir)?;
        Ok(())
    }
}

/// A plain HTTP GET on loopback: the status code and the body.
fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let code = response.split_whitespace().nth(1).context("an HTTP status line")?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((code.parse()?, body))
}

fn http_status(port: u16, path: &str) -> anyhow::Result<u16> {
    Ok(http_get(port, path)?.0)
}

/// The value of one sample line of the operator's `/metrics`, 0 when absent.
fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_default()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {}s waiting for {what}", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A pool on both test nodes: scratch on each node's own disk, the store shared.
fn pool_yaml(ns: &str, name: &str, extra: Value) -> String {
    let mut spec = json!({
        "miner": "t01000",
        "sectorSize": "2KiB",
        "image": "sealer-pod:e2e",
        "nodeSelector": {"sealing.filecoin.io/e2e": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "storage": {"scratchPath": format!("/var/lib/sealing/scratch-{ns}"), "storePath": format!("{SHARED_STORE}/{ns}")},
        // Window PoSt on CPU: the one test GPU may be busy with a two-minute C2 at a challenge.
        "phases": {"pc2": {"gpus": 0}, "c2": {"gpus": 1}, "windowPost": {"gpus": 0}},
        "params": {"source": "preloaded"},
        "retry": {"maxAttempts": 3, "initialBackoffSeconds": 2, "maxBackoffSeconds": 10},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    serde_yaml::to_string(&json!({
        "apiVersion": "sealing.filecoin.io/v1alpha1", "kind": "SealingPool",
        "metadata": {"name": name, "namespace": ns}, "spec": spec,
    }))
    .unwrap_or_default()
}

/// A namespace for one test with its storage prepared and the pool `pool` applied with kubectl
/// (`extra` overrides the spec's fields); its Sectors.
async fn pool_namespace(cluster: &Cluster, prefix: &str, extra: Value) -> anyhow::Result<(String, Api<Sector>)> {
    let ns = cluster.namespace(prefix).await?;
    prepare_storage(cluster, &ns)?;
    kubectl(cluster, &["apply", "-f", "-"], Some(&pool_yaml(&ns, "pool", extra)))?;
    Ok((ns.clone(), Api::namespaced(cluster.client.clone(), &ns)))
}

/// Makes the pool's directories writable by the unprivileged step user, as an admin would.
fn prepare_storage(cluster: &Cluster, ns: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut dirs = vec![PathBuf::from(format!("{SHARED_STORE}/{ns}"))];
    for node in [GPU_NODE, CPU_NODE] {
        dirs.extend(cluster.node_path(node, &format!("/var/lib/sealing/scratch-{ns}")));
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
    }
    Ok(())
}

fn sector_yaml(ns: &str, name: &str, pieces: Value) -> String {
    serde_yaml::to_string(&json!({
        "apiVersion": "sealing.filecoin.io/v1alpha1", "kind": "Sector",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"miner": "t01000", "sectorSize": "2KiB", "pool": "pool", "pieces": pieces},
    }))
    .unwrap_or_default()
}

async fn state_of(sectors: &Api<Sector>, name: &str) -> anyhow::Result<(State, Option<Sector>)> {
    let sector = sectors.get_opt(name).await?;
    let state = sector.as_ref().and_then(|s| s.status.as_ref()).map_or(State::Empty, |s| s.record.state);
    Ok((state, sector))
}

async fn wait_for_state(sectors: &Api<Sector>, name: &str, wanted: &[State], timeout: Duration) -> anyhow::Result<Sector> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (state, sector) = state_of(sectors, name).await?;
        if let Some(sector) = sector.filter(|_| wanted.contains(&state)) {
            return Ok(sector);
        }
        if state == State::Aborted && !wanted.contains(&State::Aborted) {
            bail!("sector {name} aborted: {:?}", sector_error(sectors, name).await);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("sector {name} is {state} after {}s, not {wanted:?}: {:?}", timeout.as_secs(), sector_error(sectors, name).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn sector_error(sectors: &Api<Sector>, name: &str) -> Option<String> {
    let sector = sectors.get_opt(name).await.ok()??;
    sector.status?.record.last_error.map(|e| format!("{} {}: {}", e.level, e.step, e.message))
}

async fn patch_spec(sectors: &Api<Sector>, name: &str, spec: Value) -> anyhow::Result<()> {
    sectors.patch(name, &PatchParams::default(), &Patch::Merge(&json!({"spec": spec}))).await?;
    Ok(())
}

/// A 2 KiB piece of random bytes, its file on both nodes, and its CID as sealer-pod computes it.
fn random_piece(cluster: &Cluster, dir: &Path) -> anyhow::Result<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let data: Vec<u8> = (0..2032u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let work = dir.join("piece-cid");
    std::fs::create_dir_all(&work)?;
    let local = work.join("piece.bin");
    std::fs::write(&local, &data)?;
    let out = Command::new(cluster.binaries.path("sealer-pod")?)
        .args(["--result-path", "/dev/null", "add-piece", "--miner", "t01000", "--sector-number", "1", "--sector-size", "2KiB"])
        .arg("--sector-dir")
        .arg(work.join("sector"))
        .arg("--piece")
        .arg(&local)
        .output()?;
    ensure!(out.status.success(), "computing the piece CID: {}", String::from_utf8_lossy(&out.stdout));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())?;
    let cid = result["result"]["pieces"][0]["cid"].as_str().context("add-piece reports no piece CID")?.to_owned();
    let path = "/var/lib/sealing/deals/piece-1.bin".to_owned();
    for node in [GPU_NODE, CPU_NODE] {
        let file = cluster.node_path(node, &path).context("no node disk")?;
        std::fs::create_dir_all(file.parent().context("piece path has a parent")?)?;
        std::fs::write(&file, &data)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok((cid, path))
}

async fn step_pods(pods: &Api<Pod>, sector: &str) -> anyhow::Result<Vec<Pod>> {
    Ok(pods.list(&ListParams::default().labels(&format!("sealing.filecoin.io/sector={sector}"))).await?.items)
}

/// A pool and two sectors applied with kubectl, one committed capacity and one holding a real
/// piece, both end Finished with their proofs accepted by the simulator. Along the way: the CC
/// sector is paused and resumed at TreeDBuilt, the piece sector's C2 pod is deleted mid-run, and
/// the operator is killed and restarted while both are in flight; still no step has a second
/// pod for one attempt and no sector a second message. Then the sealed sectors are kept proven
/// by window PoSt (see `proving`).
async fn slow_sectors_applied_with_kubectl_are_sealed_proven_on_chain_and_kept_proven(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let _heavy = C2_HEAVY.lock().await;
    let sealing = sealing(&cluster).await?;
    let (ns, sectors) = pool_namespace(&cluster, "seal", json!({})).await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let (piece_cid, piece_path) = random_piece(&cluster, &sealing.dir)?;
    let pieces = json!([{"cid": piece_cid, "size": 2048, "source": {"path": piece_path}}]);
    let manifests = format!("{}---\n{}", sector_yaml(&ns, "cc", json!([])), sector_yaml(&ns, "deal", pieces));
    kubectl(&cluster, &["apply", "-f", "-"], Some(&manifests))?;

    // Pause the CC sector once it has its ticket, then send it back to TreeDBuilt.
    wait_for_state(&sectors, "cc", &[State::TicketAssigned, State::PC1Done, State::PC2Done, State::PCSubmitted], Duration::from_secs(120)).await?;
    kubectl_sealing(&cluster, &["-n", &ns, "pause", "cc"])?;
    let paused = wait_until(Duration::from_secs(60), "cc to pause", || async {
        Ok(sectors.get("cc").await?.status.is_some_and(|s| s.record.paused.is_some() && s.record.running.is_none()))
    });
    paused.await?;
    let first_ticket = sectors.get("cc").await?.status.and_then(|s| s.record.ticket).context("cc has a ticket")?;
    let answer = kubectl_sealing(&cluster, &["-n", &ns, "resume", "--state", "TreeDBuilt", "cc"])?;
    ensure!(answer.contains("resumed at TreeDBuilt"), "the plugin prints the operator's answer: {answer}");

    // Kill the operator while the sectors are in flight.
    wait_for_state(&sectors, "deal", &[State::PC2Done, State::PCSubmitted, State::PCLanded, State::Persisted, State::PersistanceSubmitted, State::SeedAssigned, State::C1Done], Duration::from_secs(180)).await?;
    sealing.restart_operator()?;

    // Delete the deal sector's C2 pod while it runs: it is retried.
    let c2_deleted = wait_until(Duration::from_secs(300), "the deal sector's C2 pod to run", || async {
        for pod in step_pods(&pods, "deal").await? {
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if running && pod.labels().get("sealing.filecoin.io/step").map(String::as_str) == Some("c2") {
                pods.delete(&pod.name_any(), &DeleteParams::default()).await?;
                return Ok(true);
            }
        }
        Ok(false)
    });
    c2_deleted.await?;

    let cc = wait_for_state(&sectors, "cc", &[State::Finished], Duration::from_secs(900)).await?;
    let deal = wait_for_state(&sectors, "deal", &[State::Finished], Duration::from_secs(900)).await?;

    let cc_status = cc.status.context("cc has a status")?;
    ensure!(cc_status.last_resume.as_ref().is_some_and(|r| r.accepted), "the resume at TreeDBuilt was accepted: {:?}", cc_status.last_resume);
    ensure!(cc_status.record.ticket.as_ref() != Some(&first_ticket), "resuming at TreeDBuilt drew a new ticket");
    let deal_status = deal.status.context("deal has a status")?;
    ensure!(deal_status.record.attempts_of("c2") >= 2, "the deleted C2 pod was retried: {:?}", deal_status.record.attempts);
    ensure!(deal_status.record.comm_d.as_deref() != cc_status.record.comm_d.as_deref(), "the piece sector's CommD is the piece's, not the zero CommD");

    // Exactly one precommit and one commit per sector reached the chain, and both are active.
    let counts = sealing.sim.message_counts().await?;
    for status in [&cc_status, &deal_status] {
        let number = status.record.sector_number.context("sector number")?;
        let per_method = counts.by_sector.get(&number).cloned().unwrap_or_default();
        ensure!(per_method.get(&PRECOMMIT) == Some(&1), "sector {number}: precommit messages {per_method:?}");
        ensure!(per_method.get(&PROVE_COMMIT) == Some(&1), "sector {number}: commit messages {per_method:?}");
        ensure!(status.record.commit.as_ref().is_some_and(|m| m.exit_code == Some(0)), "sector {number} commit landed");
    }
    // One pod per (step, attempt), whatever the restarts.
    let mut seen = BTreeMap::new();
    for sector in ["cc", "deal"] {
        for pod in step_pods(&pods, sector).await? {
            let labels = pod.labels();
            let key = (sector, labels.get("sealing.filecoin.io/step").cloned(), labels.get("sealing.filecoin.io/attempt").cloned());
            ensure!(seen.insert(key.clone(), pod.name_any()).is_none(), "two pods for {key:?}");
        }
    }

    // What kubectl shows of them: the Sealing condition, and the pool's counts.
    for status in [&cc_status, &deal_status] {
        let sealing = status.conditions.iter().find(|c| c.type_ == "Sealing").context("a Sealing condition")?;
        ensure!(sealing.status == "False" && sealing.reason == "Finished", "Sealing condition of a finished sector: {sealing:?}");
    }
    let pools: Api<sealing_operator::crd::SealingPool> = Api::namespaced(cluster.client.clone(), &ns);
    wait_until(Duration::from_secs(30), "the pool to count two finished sectors", || async {
        Ok(pools.get("pool").await?.status.is_some_and(|s| s.finished == 2 && s.sealing == 0))
    })
    .await?;
    sealing.stop_operator_gracefully().await?;

    // Sealed, the sectors are proven every proving period from now on.
    let mut sealed = Vec::new();
    for (name, status) in [("cc", &cc_status), ("deal", &deal_status)] {
        let number = status.record.sector_number.context("sector number")?;
        sealed.push(proving::SealedSector { number, store_dir: PathBuf::from(format!("{SHARED_STORE}/{ns}/{ns}_{name}")) });
    }
    let faulty = cc_status.record.sector_number.context("sector number")?;
    proving::sealed_sectors_stay_proven(cluster.client.clone(), &sealing.endpoint, &sealing.token, &sealing.sim, || sealing.restart_operator(), &sealed, faulty).await?;

    // Deleting a committed sector removes its scratch data and keeps the copy that is proven.
    let node = deal_status.record.node.clone().context("deal had a node")?;
    kubectl(&cluster, &["-n", &ns, "delete", "sector", "deal", "--wait=true", "--timeout=120s"], None)?;
    let scratch = cluster.node_path(&node, &format!("/var/lib/sealing/scratch-{ns}/{ns}_deal")).context("node disk")?;
    ensure!(!scratch.exists(), "{} was removed", scratch.display());
    let stored = PathBuf::from(format!("{SHARED_STORE}/{ns}/{ns}_deal/sealed"));
    ensure!(stored.is_file(), "{} is kept: the sector is committed on chain", stored.display());
    Ok(())
}

/// Four sectors that reach the commit together are proven by one ProveCommitSectors3 carrying a
/// SnarkPackV2 aggregate of their proofs, made by the chain bridge and checked by the simulator
/// with verify_aggregate_seal_commit_proofs. Each sector is paused while its C2 runs, so all
/// wait in C2Done, and then resumed at once. A fifth sector waits with them, but its precommit
/// expires on chain meanwhile: it would fail the whole message (the actor loads every precommit
/// first, builtin-actors actors/miner/src/state.rs:1165-1185), so it is left out and aborted
/// with the reason, and the batch lands for the others. Then one of them is rebuilt (rebuild
/// plan).
async fn slow_four_sectors_committed_together_are_proven_by_one_aggregate(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let _heavy = C2_HEAVY.lock().await;
    let sealing = sealing(&cluster).await?;
    let (ns, sectors) = pool_namespace(&cluster, "aggregate", json!({})).await?;
    let names = ["a1", "a2", "a3", "a4", "a5"];
    let manifests: Vec<String> = names.iter().map(|n| sector_yaml(&ns, n, json!([]))).collect();
    kubectl(&cluster, &["apply", "-f", "-"], Some(&manifests.join("---\n")))?;

    let paused = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let (paused, sectors_ref) = (&paused, &sectors);
    wait_until(Duration::from_secs(1200), "each sector's C2 to run, to pause it there", move || async move {
        for name in names {
            if paused.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.contains(name) {
                continue;
            }
            let record = sectors_ref.get(name).await?.status.map(|s| s.record).unwrap_or_default();
            ensure!(!matches!(record.state, State::ProofSubmitted | State::Finished), "{name} was committed before its C2 could be paused");
            if record.running.as_ref().is_some_and(|r| r.step.as_str() == "c2") {
                patch_spec(sectors_ref, name, json!({"paused": true})).await?;
                paused.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.insert(name);
            }
        }
        Ok(paused.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.len() == names.len())
    })
    .await?;
    for name in names {
        wait_until(Duration::from_secs(600), "the sector to wait in C2Done, paused", || async {
            let record = sectors.get(name).await?.status.map(|s| s.record).unwrap_or_default();
            Ok(record.state == State::C2Done && record.paused.is_some() && record.running.is_none())
        })
        .await?;
    }
    let expired = sectors.get("a5").await?.status.and_then(|s| s.record.sector_number).context("a5 has a number")?;
    sealing.sim.expire_precommits(&[expired]).await?;
    for name in names {
        patch_spec(&sectors, name, json!({"paused": false})).await?;
    }
    wait_for_state(&sectors, "a5", &[State::Aborted], Duration::from_secs(300)).await?;
    let reason = sector_error(&sectors, "a5").await.unwrap_or_default();
    ensure!(reason.contains("left out of the commit batch") && reason.contains(&format!("no precommit of sector {expired}")), "a5 says why it was left out: {reason}");

    let names = ["a1", "a2", "a3", "a4"];
    let mut commits = Vec::new();
    for name in names {
        let sector = wait_for_state(&sectors, name, &[State::Finished], Duration::from_secs(300)).await?;
        let record = sector.status.context("a finished sector has a status")?.record;
        let commit = record.commit.context("a finished sector has its commit message")?;
        ensure!(commit.exit_code == Some(0), "{name}: the commit landed: {commit:?}");
        commits.push((record.sector_number.context("sector number")?, commit.cid));
    }
    ensure!(commits.iter().all(|(_, cid)| *cid == commits[0].1), "one message committed all four: {commits:?}");
    let counts = sealing.sim.message_counts().await?;
    for (number, _) in &commits {
        ensure!(counts.by_sector.get(number).and_then(|m| m.get(&PROVE_COMMIT)) == Some(&1), "sector {number}: one commit message: {:?}", counts.by_sector.get(number));
        ensure!(counts.aggregated.get(number) == Some(&1), "sector {number} was proven by an aggregate: {:?}", counts.aggregated);
    }
    ensure!(counts.by_sector.get(&expired).and_then(|m| m.get(&PROVE_COMMIT)).is_none(), "no commit message carried a5: {:?}", counts.by_sector.get(&expired));
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(cluster.client.clone(), &ns);
    let described = events.list(&ListParams::default()).await?.items.iter().any(|e| {
        e.reason.as_deref() == Some("MessageSent") && e.note.as_deref().is_some_and(|n| n.contains("ProveCommitSectors3") && n.contains("proofs aggregated"))
    });
    ensure!(described, "kubectl describe shows the commit was aggregated");

    // What Prometheus scrapes of it.
    let (code, text) = http_get(sealing.health, "/metrics")?;
    ensure!(code == 200, "/metrics answers {code}");
    ensure!(metric(&text, &format!(r#"sealing_sectors{{namespace="{ns}",pool="pool",state="Finished"}}"#)) == 4.0, "four Finished sectors in /metrics:\n{text}");
    ensure!(metric(&text, r#"sealing_chain_messages_pushed_total{method="ProveCommitSectors3"}"#) >= 1.0, "the commit counted in /metrics:\n{text}");
    ensure!(metric(&text, r#"sealing_chain_requests_total{method="MpoolPushMessage",outcome="ok"}"#) >= 1.0, "chain calls counted in /metrics:\n{text}");

    // A rebuild of a1, from the chain's CommR and the ticket in a1's status, makes the same
    // replica again; a rebuild of a sector the chain does not have is refused with the reason.
    let a1 = sectors.get("a1").await?.status.context("a1 has a status")?.record;
    let number = a1.sector_number.context("a1 has a number")?;
    let rebuild = |name: &str, number: u64| {
        serde_yaml::to_string(&json!({
            "apiVersion": "sealing.filecoin.io/v1alpha1", "kind": "Sector",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"miner": "t01000", "sectorSize": "2KiB", "pool": "pool", "plan": "rebuild", "sectorNumber": number},
        }))
        .unwrap_or_default()
    };
    let manifests = format!("{}---\n{}", rebuild("a1-rebuilt", number), rebuild("not-on-chain", 999_999));
    kubectl(&cluster, &["apply", "-f", "-"], Some(&manifests))?;
    let rebuilt = wait_for_state(&sectors, "a1-rebuilt", &[State::Finished], Duration::from_secs(300)).await?;
    let record = rebuilt.status.context("the rebuilt sector has a status")?.record;
    ensure!(record.comm_r == a1.comm_r && record.ticket == a1.ticket, "rebuilt with a1's ticket to a1's CommR: {record:?}");
    let original = std::fs::read(format!("{SHARED_STORE}/{ns}/{ns}_a1/sealed"))?;
    let copy = std::fs::read(format!("{SHARED_STORE}/{ns}/{ns}_a1-rebuilt/sealed"))?;
    ensure!(original == copy, "the rebuilt replica is a1's, byte for byte");
    wait_until(Duration::from_secs(60), "the rebuild of a sector not on chain to be refused", || async {
        Ok(sector_error(&sectors, "not-on-chain").await.is_some_and(|e| e.starts_with("permanent") && e.contains("is not on chain")))
    })
    .await?;
    Ok(())
}

/// Three sectors with PC1 concurrency 1: no two PC1 pods ever ran at once on one node. Then the
/// sectors are aborted wherever they are, and their running pods go away.
async fn pc1_concurrency_one_runs_one_pc1_per_node_and_abort_stops_sectors(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    sealing(&cluster).await?;
    let phases = json!({"phases": {"pc1": {"concurrencyPerNode": 1}, "pc2": {"gpus": 0}, "c2": {"gpus": 1}}});
    let (ns, sectors) = pool_namespace(&cluster, "pc1", phases).await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &ns);
    let names = ["a", "b", "c"];
    let manifests: Vec<String> = names.iter().map(|n| sector_yaml(&ns, n, json!([]))).collect();
    kubectl(&cluster, &["apply", "-f", "-"], Some(&manifests.join("---\n")))?;
    for name in names {
        wait_for_state(&sectors, name, &[State::PC1Done, State::PC2Done, State::PCSubmitted, State::PCLanded, State::Persisted, State::PersistanceSubmitted, State::SeedAssigned, State::C1Done, State::C2Done, State::ProofSubmitted, State::Finished], Duration::from_secs(300)).await?;
    }
    let mut intervals: BTreeMap<String, Vec<(jiff::Timestamp, jiff::Timestamp)>> = BTreeMap::new();
    for pod in pods.list(&ListParams::default().labels("sealing.filecoin.io/step=pc1")).await? {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).context("pc1 pod was scheduled")?;
        let terminated = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.terminated.clone())
            .context("pc1 pod finished")?;
        let (Some(start), Some(end)) = (terminated.started_at, terminated.finished_at) else { bail!("pc1 pod without times") };
        intervals.entry(node).or_default().push((start.0, end.0));
    }
    ensure!(intervals.values().map(Vec::len).sum::<usize>() >= 3, "three PC1 pods ran: {intervals:?}");
    for (node, mut runs) in intervals {
        runs.sort();
        for pair in runs.windows(2) {
            ensure!(pair[0].1 <= pair[1].0, "two PC1 pods overlapped on {node}: {pair:?}");
        }
    }
    for name in names {
        kubectl_sealing(&cluster, &["-n", &ns, "abort", name])?;
    }
    for name in names {
        wait_for_state(&sectors, name, &[State::Aborted], Duration::from_secs(60)).await?;
    }
    let listed = kubectl_sealing(&cluster, &["-n", &ns, "list"])?;
    ensure!(
        listed.lines().filter(|l| l.contains("Aborted")).count() == 3 && listed.starts_with("NAME"),
        "kubectl sealing list shows the three aborted sectors:\n{listed}"
    );
    wait_until(Duration::from_secs(60), "aborted sectors' pods to stop", || async {
        Ok(pods.list(&ListParams::default()).await?.items.iter().all(|p| {
            !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Running" | "Pending"))
        }))
    })
    .await?;

    // Their scratch data is removed; deleting one then needs no more cleaning.
    for name in names {
        let removed = wait_until(Duration::from_secs(120), "the aborted sector's data to be removed", || async {
            Ok(sectors.get(name).await?.status.and_then(|s| s.data_removal).is_some_and(|r| r.removed && r.store))
        });
        removed.await?;
        let sector = sectors.get(name).await?;
        let node = sector.status.and_then(|s| s.record.node).context("the aborted sector had a node")?;
        let dir = cluster.node_path(&node, &format!("/var/lib/sealing/scratch-{ns}/{ns}_{name}")).context("node disk")?;
        ensure!(!dir.exists(), "{} was removed", dir.display());
    }
    kubectl(&cluster, &["-n", &ns, "delete", "sector", "a", "--wait=true", "--timeout=60s"], None)?;
    ensure!(sectors.get_opt("a").await?.is_none(), "the aborted sector is gone");
    Ok(())
}

/// The pledge loop creates committed-capacity sectors until the configured number is in flight,
/// and replaces one that is aborted.
async fn pledge_loop_keeps_the_configured_sectors_in_flight(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    sealing(&cluster).await?;
    // A node selector nothing matches keeps the pledged sectors waiting, so none finishes.
    let extra = json!({"pledge": {"enabled": true, "sectorsInFlight": 2}, "nodeSelector": {"sealing.filecoin.io/none": "true"}});
    let (_, sectors) = pool_namespace(&cluster, "pledge", extra).await?;
    let live = || async {
        let list = sectors.list(&ListParams::default().labels("sealing.filecoin.io/pledged=true")).await?;
        Ok::<_, anyhow::Error>(
            list.items.into_iter().filter(|s| !s.status.as_ref().is_some_and(|st| st.record.state.is_terminal())).collect::<Vec<_>>(),
        )
    };
    wait_until(Duration::from_secs(60), "two pledged sectors", || async { Ok(live().await?.len() == 2) }).await?;
    let first = live().await?.into_iter().next().context("a pledged sector")?;
    patch_spec(&sectors, &first.name_any(), json!({"abort": true})).await?;
    wait_for_state(&sectors, &first.name_any(), &[State::Aborted], Duration::from_secs(60)).await?;
    wait_until(Duration::from_secs(60), "the pledge loop to replace the aborted sector", || async { Ok(live().await?.len() == 2) }).await?;
    let all = sectors.list(&ListParams::default().labels("sealing.filecoin.io/pledged=true")).await?.items.len();
    ensure!(all == 3, "two pledged, one replaced: {all} pledged sectors in all");
    Ok(())
}

/// A precommit batch whose message fails (exit code 7, out of gas: temporary) is sent again, each
/// member alone, and the sectors go on; the failure is visible as a Warning Event. The sectors
/// have fixed numbers so that the simulator fails only messages about them (and names that
/// YAML 1.1, which kubectl reads, cannot take for booleans such as `y`).
async fn failed_precommit_batch_is_resent_member_by_member_and_the_sectors_go_on(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    const OUT_OF_GAS: u32 = 7;
    let sealing = sealing(&cluster).await?;
    let (ns, sectors) = pool_namespace(&cluster, "resend", json!({})).await?;
    // The higher number first: the chain bridge numbers other sectors above the highest it sees,
    // so none can take the lower one meanwhile.
    let (x, y) = (7002u64, 7001u64);
    sealing.sim.fail_next_for_sector(PRECOMMIT, OUT_OF_GAS, x).await?;
    let manifests: Vec<String> = [("first", x), ("second", y)]
        .iter()
        .map(|(name, number)| {
            serde_yaml::to_string(&json!({
                "apiVersion": "sealing.filecoin.io/v1alpha1", "kind": "Sector",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"miner": "t01000", "sectorSize": "2KiB", "pool": "pool", "sectorNumber": number},
            }))
            .unwrap_or_default()
        })
        .collect();
    kubectl(&cluster, &["apply", "-f", "-"], Some(&manifests.join("---\n")))?;
    let landed = [State::PCLanded, State::Persisted, State::PersistanceSubmitted, State::SeedAssigned, State::C1Done, State::C2Done, State::ProofSubmitted, State::Finished];
    let sector_x = wait_for_state(&sectors, "first", &landed, Duration::from_secs(400)).await?;
    wait_for_state(&sectors, "second", &landed, Duration::from_secs(400)).await?;
    for name in ["first", "second"] {
        patch_spec(&sectors, name, json!({"abort": true})).await?;
    }

    let counts = sealing.sim.message_counts().await?;
    let sent = |n: u64| counts.by_sector.get(&n).and_then(|m| m.get(&PRECOMMIT)).copied().unwrap_or_default();
    ensure!(sent(x) == 2, "sector {x}: the failed precommit and the one sent alone, got {}", sent(x));
    ensure!((1..=2).contains(&sent(y)), "sector {y}: its own precommit, or the failed batch and its own: {}", sent(y));
    let record = sector_x.status.context("first has a status")?.record;
    ensure!(record.precommit.as_ref().is_some_and(|m| m.landed_ok()), "the resent precommit landed: {:?}", record.precommit);
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(cluster.client.clone(), &ns);
    let warned = events.list(&ListParams::default()).await?.items.iter().any(|e| {
        e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("first")
            && e.type_.as_deref() == Some("Warning")
            && e.note.as_deref().is_some_and(|n| n.contains("failed with exit code 7"))
    });
    ensure!(warned, "a Warning Event on the first sector says the precommit failed with exit code 7");
    for name in ["first", "second"] {
        wait_for_state(&sectors, name, &[State::Aborted], Duration::from_secs(60)).await?;
    }
    Ok(())
}

/// The chain's base fee rises above the fee cap of each message just after it is pushed (the
/// simulator raises it as soon as the message is in its pool): the precommit, the commit and the
/// window PoSt of a sector are each left out until the operator replaces them with a fee cap at
/// the new base fee, and then land. The chain counts one precommit and one commit for the sector
/// (a replacement takes its message's nonce), each message was replaced exactly once, and each
/// replacement is an Event on the object that sent it.
async fn slow_messages_left_below_a_rising_base_fee_are_replaced_and_land(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let _heavy = C2_HEAVY.lock().await;
    let sealing = sealing(&cluster).await?;
    let (ns, sectors) = pool_namespace(&cluster, "fees", json!({})).await?;
    let number = 7201u64;
    let normal = chain_sim::SimConfig::default().base_fee;
    // A thousand times the base fee the first messages are priced at: far above their fee cap.
    let high = TokenAmount::from_atto(normal * 1000);
    sealing.sim.raise_base_fee_after_next(PRECOMMIT, Some(number), None, &high).await?;
    let manifest = serde_yaml::to_string(&json!({
        "apiVersion": "sealing.filecoin.io/v1alpha1", "kind": "Sector",
        "metadata": {"name": "rising", "namespace": ns},
        "spec": {"miner": "t01000", "sectorSize": "2KiB", "pool": "pool", "sectorNumber": number},
    }))?;
    kubectl(&cluster, &["apply", "-f", "-"], Some(&manifest))?;

    let landed = wait_for_state(&sectors, "rising", &[State::PCLanded, State::Persisted, State::PersistanceSubmitted, State::SeedAssigned, State::C1Done, State::C2Done], Duration::from_secs(400)).await?;
    let precommit = landed.status.context("a status")?.record.precommit.context("the precommit message")?;
    ensure!(precommit.replacements == 1 && precommit.landed_ok(), "the precommit landed after one replacement: {precommit:?}");
    sealing.sim.raise_base_fee_after_next(PROVE_COMMIT, Some(number), None, &high).await?;
    sealing.sim.set_base_fee(&TokenAmount::from_atto(normal)).await?;

    let finished = wait_for_state(&sectors, "rising", &[State::Finished], Duration::from_secs(600)).await?;
    let commit = finished.status.context("a status")?.record.commit.context("the commit message")?;
    ensure!(commit.replacements == 1 && commit.landed_ok(), "the commit landed after one replacement: {commit:?}");
    sealing.sim.set_base_fee(&TokenAmount::from_atto(normal)).await?;
    let counts = sealing.sim.message_counts().await?;
    let sent = |method: u64| counts.by_sector.get(&number).and_then(|m| m.get(&method)).copied().unwrap_or_default();
    ensure!(sent(PRECOMMIT) == 1 && sent(PROVE_COMMIT) == 1, "one precommit and one commit for sector {number}, whatever the replacements: {:?}", counts.by_sector.get(&number));

    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(cluster.client.clone(), &ns);
    let replaced: Vec<String> = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("MessageReplaced") && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("rising"))
        .filter_map(|e| e.note)
        .collect();
    for method in ["PreCommitSectorBatch2", "ProveCommitSectors3"] {
        ensure!(replaced.iter().filter(|n| n.starts_with(method)).count() == 1, "one MessageReplaced Event for the {method}: {replaced:?}");
    }

    // The sector's window PoSt: its deadline's next submission is left out the same way.
    let lotus = filecoin_chain::LotusClient::new(filecoin_chain::client::ClientConfig::new(sealing.endpoint.clone(), Some(ApiToken::new(&sealing.token))))?;
    let located = proving::locate(&lotus, &[number]).await?;
    let (deadline, _) = *located.get(&number).context("the sector is in a partition")?;
    sealing.sim.raise_base_fee_after_next(SUBMIT_POST, None, Some(deadline), &high).await?;
    let deadlines: Api<ProvingDeadline> = Api::namespaced(cluster.client.clone(), "sealing-system");
    let name = sealing_operator::controllers::proving::deadline_name("t01000", deadline);
    let deadlines_ref = &deadlines;
    let name_ref = &name;
    wait_until(Duration::from_secs(600), "the sector's window PoSt to land after one replacement", move || async move {
        let Some(record) = deadlines_ref.get(name_ref).await?.status.and_then(|s| s.current) else { return Ok(false) };
        Ok(record.posts.iter().any(|p| p.sectors.contains(&number) && p.accepted() && p.message.as_ref().is_some_and(|m| m.replacements == 1)))
    })
    .await?;
    sealing.sim.set_base_fee(&TokenAmount::from_atto(normal)).await?;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(cluster.client.clone(), "sealing-system");
    let post_replaced = events.list(&ListParams::default()).await?.items.iter().any(|e| {
        e.reason.as_deref() == Some("MessageReplaced") && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str())
    });
    ensure!(post_replaced, "a MessageReplaced Event on ProvingDeadline {name}");
    Ok(())
}
