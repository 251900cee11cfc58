//! The e2e harness: one cluster per test run, shared by every test.
//!
//! With `SEALING_E2E_KUBECONFIG` set, the tests run against that cluster (kind, or a control
//! plane started by hand) and start nothing. Otherwise the harness starts the local control
//! plane of `e2e/control-plane/` and a node agent with two nodes (`gpu-1`, `cpu-1`), and tears
//! both down when the run ends, also on failure or Ctrl-C. `KUBECONFIG` is deliberately not
//! used: a shell's everyday cluster must never receive test objects by accident.
//!
//! Adding a test: write `async fn my_test(cluster: Arc<Cluster>) -> anyhow::Result<()>` in a
//! module under `e2e/tests/e2e/` and list it in that module's `tests()` with [`e2e_tests!`].

pub mod control_plane;
pub mod node_agent;
mod suite;
pub mod wait;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::conditions;
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::json;

pub use control_plane::LocalControlPlane;
pub use node_agent::NodeAgentProcess;
pub use suite::{E2eTest, run_suite};

/// The `e2e/` directory of the checkout the tests run in. Cargo names it at run time; the path
/// baked in at build time is only the fallback, since a cached build may come from another
/// checkout of the same sources.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{script} failed: {message}")]
    Script { script: String, message: String },
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(
        "binary {name} not found at {path}; build it first (cargo build --release -p {package} --bins)"
    )]
    MissingBinary {
        name: String,
        path: PathBuf,
        package: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("timed out after {seconds}s waiting for {what}; last seen: {last}")]
    Timeout {
        what: String,
        seconds: u64,
        last: String,
    },
    #[error("left behind: {0}")]
    Leftover(String),
    #[error("the node agent exited ({status}); see {log}")]
    AgentExited { status: String, log: PathBuf },
}

impl HarnessError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        HarnessError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Where the workspace's built binaries are: the test executable's profile directory (e.g.
/// `target/release`), then the directories in `SEALING_E2E_BIN_DIRS` (colon-separated), for
/// binaries built elsewhere.
#[derive(Debug, Clone)]
pub struct Binaries {
    dirs: Vec<PathBuf>,
}

/// The binaries tests run in pods or as other users.
const WORKSPACE_BINARIES: [&str; 5] = [
    "node-agent",
    "sealer-pod",
    "sealing-operator",
    "chain-sim",
    "kubectl-sealing",
];

impl Binaries {
    pub fn from_current_exe() -> Result<Self, HarnessError> {
        let exe =
            std::env::current_exe().map_err(|e| HarnessError::io(Path::new("current_exe"), e))?;
        let mut dir = exe.parent().map(Path::to_owned).unwrap_or_default();
        if dir.file_name().is_some_and(|n| n == "deps") {
            dir.pop();
        }
        let mut dirs = vec![dir];
        if let Some(extra) = std::env::var_os("SEALING_E2E_BIN_DIRS") {
            dirs.extend(std::env::split_paths(&extra));
        }
        Ok(Binaries { dirs })
    }

    /// The path of a workspace binary, checked to exist.
    pub fn path(&self, name: &str) -> Result<PathBuf, HarnessError> {
        if let Some(found) = self.dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
            return Ok(found);
        }
        let package = match name {
            "node-agent" => "sealing-e2e",
            "sealing-operator" | "crdgen" => "sealing-operator",
            other => other,
        };
        Err(HarnessError::MissingBinary {
            name: name.into(),
            path: self.dirs[0].join(name),
            package: package.into(),
        })
    }

    /// Copies the workspace's binaries into `stage` (mode 0755) and looks there first.
    ///
    /// Pods run as `runAsUser` and one test runs a node agent as `nobody`: neither may be able
    /// to reach the build directory (CI builds under `/root`, which is mode 0700), just as a
    /// container cannot see the host's files. An image's files are readable by every user.
    pub fn staged(self, stage: &Path) -> Result<Self, HarnessError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(stage).map_err(|e| HarnessError::io(stage, e))?;
        for dir in stage.ancestors().take_while(|d| !d.as_os_str().is_empty()) {
            let mode = std::fs::metadata(dir).map(|m| m.permissions().mode()).unwrap_or(0);
            if mode & 0o011 != 0o011 {
                return Err(HarnessError::io(
                    dir,
                    std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        "other users cannot traverse this directory, so unprivileged pods could not run the staged binaries; choose another SEALING_E2E_RUN_DIR",
                    ),
                ));
            }
        }
        for name in WORKSPACE_BINARIES {
            let Ok(source) = self.path(name) else { continue };
            let target = stage.join(name);
            let partial = stage.join(format!(".{name}.partial"));
            std::fs::copy(&source, &partial).map_err(|e| HarnessError::io(&source, e))?;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| HarnessError::io(&partial, e))?;
            std::fs::rename(&partial, &target).map_err(|e| HarnessError::io(&target, e))?;
        }
        let mut dirs = vec![stage.to_owned()];
        dirs.extend(self.dirs);
        Ok(Binaries { dirs })
    }

    /// Where binary `name` is, or would be once built.
    pub fn expected(&self, name: &str) -> PathBuf {
        self.path(name).unwrap_or_else(|_| self.dirs[0].join(name))
    }
}

/// The cluster the tests run against.
pub struct Cluster {
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub binaries: Binaries,
    /// Scratch space for this run.
    pub run_dir: PathBuf,
    local: bool,
    control_plane: Mutex<Option<LocalControlPlane>>,
    agent: Mutex<Option<NodeAgentProcess>>,
    namespaces: Mutex<Vec<String>>,
}

impl Cluster {
    /// Connects to `SEALING_E2E_KUBECONFIG`'s cluster, or starts the local one with a node agent.
    pub async fn start() -> Result<Self, HarnessError> {
        let binaries = Binaries::from_current_exe()?;
        let run_dir = std::env::var_os("SEALING_E2E_RUN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!("sealing-e2e-{}", std::process::id()))
            });
        std::fs::create_dir_all(&run_dir).map_err(|e| HarnessError::io(&run_dir, e))?;
        let binaries = binaries.staged(&run_dir.join("bin"))?;
        if let Some(path) = std::env::var_os("SEALING_E2E_KUBECONFIG") {
            let kubeconfig = PathBuf::from(path);
            let client = client_for(&kubeconfig).await?;
            eprintln!("e2e: using the cluster of {}", kubeconfig.display());
            return Ok(Cluster {
                client,
                kubeconfig,
                binaries,
                run_dir,
                local: false,
                control_plane: Mutex::new(None),
                agent: Mutex::new(None),
                namespaces: Mutex::new(Vec::new()),
            });
        }
        let control_plane = {
            let state = run_dir.join("control-plane");
            tokio::task::spawn_blocking(move || LocalControlPlane::start(&state))
                .await
                .map_err(|e| HarnessError::Script {
                    script: "up.sh".into(),
                    message: e.to_string(),
                })??
        };
        let kubeconfig = control_plane.kubeconfig.clone();
        let client = match client_for(&kubeconfig).await {
            Ok(c) => c,
            Err(e) => {
                let _ = control_plane.stop();
                return Err(e);
            }
        };
        let mut cluster = Cluster {
            client,
            kubeconfig,
            binaries,
            run_dir,
            local: true,
            control_plane: Mutex::new(Some(control_plane)),
            agent: Mutex::new(None),
            namespaces: Mutex::new(Vec::new()),
        };
        if let Err(e) = cluster.start_default_agent().await {
            if let Err(stop) = cluster.stop() {
                eprintln!("e2e: {stop}");
            }
            return Err(e);
        }
        Ok(cluster)
    }

    async fn start_default_agent(&mut self) -> Result<(), HarnessError> {
        let dir = self.run_dir.join("node-agent");
        let config = node_agent::default_config(&dir.join("nodes"), &self.binaries);
        let agent = NodeAgentProcess::start(&self.binaries, &self.kubeconfig, &config, &dir)?;
        *self.agent.lock().unwrap_or_else(|e| e.into_inner()) = Some(agent);
        let nodes: Api<Node> = Api::all(self.client.clone());
        for name in [node_agent::GPU_NODE, node_agent::CPU_NODE] {
            let waited = wait::wait_for(
                &nodes,
                name,
                Duration::from_secs(60),
                "node to be Ready",
                |n: Option<&Node>| n.is_some_and(wait::node_is_ready),
            )
            .await;
            if let Err(e) = waited {
                self.check_agent()?;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether this run started the control plane and node agent (and so can look at the
    /// simulated nodes' disks and processes).
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// Where the node agent keeps node `node`'s path `path` on this machine, when it is ours.
    pub fn node_path(&self, node: &str, path: &str) -> Option<PathBuf> {
        let agent = self.agent.lock().unwrap_or_else(|e| e.into_inner());
        let root = agent.as_ref()?.root_dir.join(node);
        Some(root.join(path.trim_start_matches('/')))
    }

    /// The local control plane's state directory, when this run started it: the
    /// `SEALING_STATE_DIR` of `e2e/nodes/up.sh` and `down.sh`.
    pub fn control_plane_state_dir(&self) -> Option<PathBuf> {
        self.control_plane
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|cp| cp.state_dir.clone())
    }

    /// The repository checkout the tests run in.
    pub fn repo_root() -> PathBuf {
        manifest_dir().parent().map(Path::to_owned).unwrap_or_default()
    }

    /// `kubectl` for this cluster: the control plane's own (same version) when local, else
    /// the one on PATH.
    pub fn kubectl(&self) -> std::process::Command {
        let local = self
            .control_plane
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|cp| cp.bin_dir.join("kubectl"))
            .filter(|p| p.is_file());
        let mut cmd = std::process::Command::new(local.unwrap_or_else(|| PathBuf::from("kubectl")));
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// Applies every CRD in the repository's `crds/` (server-side) and waits until each is
    /// Established; returns their names.
    pub async fn install_crds(&self) -> Result<Vec<String>, HarnessError> {
        let dir = Self::repo_root().join("crds");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| HarnessError::io(&dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut parsed = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| HarnessError::io(&file, e))?;
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value = serde_yaml::Value::deserialize(doc)
                    .map_err(|e| HarnessError::Config(format!("{}: {e}", file.display())))?;
                if value.is_null() {
                    continue;
                }
                let crd: CustomResourceDefinition = serde_yaml::from_value(value).map_err(|e| {
                    HarnessError::Config(format!("{}: not a CRD: {e}", file.display()))
                })?;
                parsed.push(crd);
            }
        }
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let pp = PatchParams::apply("sealing-e2e").force();
        let mut names = Vec::new();
        for crd in parsed {
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.patch(&name, &pp, &Patch::Apply(&crd)).await?;
            names.push(name);
        }
        for name in &names {
            wait::wait_for(
                &crds,
                name,
                Duration::from_secs(60),
                "CRD to be Established",
                conditions::is_crd_established(),
            )
            .await?;
        }
        Ok(names)
    }

    /// How many `nvidia.com/gpu` node `name` can allocate.
    pub async fn node_gpus(&self, name: &str) -> Result<u32, HarnessError> {
        let node = Api::<Node>::all(self.client.clone()).get(name).await?;
        let gpus = node
            .status
            .and_then(|s| s.allocatable)
            .and_then(|a| a.get("nvidia.com/gpu").map(|q| q.0.clone()))
            .and_then(|q| q.parse().ok())
            .unwrap_or(0);
        Ok(gpus)
    }

    /// Fails when the harness's node agent has died.
    pub fn check_agent(&self) -> Result<(), HarnessError> {
        match self
            .agent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            Some(agent) => agent.check_alive(),
            None => Ok(()),
        }
    }

    /// The node agent log's tail, when the harness runs an agent.
    pub fn agent_log_tail(&self, lines: usize) -> Option<String> {
        self.agent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|a| a.log_tail(lines))
    }

    /// Creates a fresh namespace `<prefix>-<n>` and waits until pods can be created in it
    /// (the controller-manager has made its default ServiceAccount).
    pub async fn namespace(&self, prefix: &str) -> Result<String, HarnessError> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"generateName": format!("{prefix}-"), "labels": {"sealing.filecoin.io/e2e": "true"}}
        }))
        .map_err(|e| HarnessError::Config(e.to_string()))?;
        let created = namespaces.create(&PostParams::default(), &ns).await?;
        let name = created.metadata.name.unwrap_or_default();
        self.namespaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.clone());
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &name);
        wait::wait_for(
            &sas,
            "default",
            Duration::from_secs(60),
            "the default ServiceAccount",
            |sa: Option<&ServiceAccount>| sa.is_some(),
        )
        .await?;
        Ok(name)
    }

    /// Deletes the namespaces the tests created, on a cluster this harness did not start
    /// (a local one is thrown away whole).
    pub async fn delete_test_namespaces(&self) {
        if self.is_local() {
            return;
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let names = std::mem::take(&mut *self.namespaces.lock().unwrap_or_else(|e| e.into_inner()));
        for name in names {
            if let Err(e) = namespaces.delete(&name, &DeleteParams::default()).await {
                eprintln!("e2e: deleting namespace {name}: {e}");
            }
        }
    }

    /// Stops the node agent and the control plane this harness started, if any.
    /// Fails when something was left running (and has been killed since).
    pub fn stop(&self) -> Result<(), HarnessError> {
        let agent = match self.agent.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(mut agent) => agent.stop(),
            None => Ok(()),
        };
        let control_plane = match self
            .control_plane
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(cp) => cp.stop(),
            None => Ok(()),
        };
        agent.and(control_plane)
    }
}

async fn client_for(path: &Path) -> Result<Client, HarnessError> {
    let err = |message: String| HarnessError::Kubeconfig {
        path: path.to_owned(),
        message,
    };
    let kc = Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| err(e.to_string()))?;
    Client::try_from(config).map_err(|e| err(e.to_string()))
}
