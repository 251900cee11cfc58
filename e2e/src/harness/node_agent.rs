//! The node agent as a child process of the test harness.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::{Binaries, HarnessError};

/// The GPU node of the default agent: one `nvidia.com/gpu`, GPU-Feature-Discovery labels, and
/// the usual GPU taint, so only pods that tolerate it land there.
pub const GPU_NODE: &str = "gpu-1";
/// A node without GPUs.
pub const CPU_NODE: &str = "cpu-1";
/// An image with `/bin/sh` (busybox on kind; `/bin/sh` itself on the agent's nodes). Not
/// `:latest`, which would make a kubelet try to pull it.
pub const SHELL_IMAGE: &str = "local/shell:e2e";
/// Shared as is by every node (the proof parameter cache).
pub const PARAMETER_CACHE: &str = "/var/tmp/filecoin-proof-parameters";
/// Shared as is by every node: the long-term sector store, as network storage would be.
pub const SHARED_STORE: &str = "/var/tmp/sealing-e2e-store";

/// The agent configuration the harness starts with: `gpu-1` and `cpu-1` (both in the `devnet`
/// pool of `manifests/samples/pool.yaml`), the shell image, and the project's own images
/// (`sealer-pod`, `sealing-operator`) mapped to the built binaries.
pub fn default_config(root: &Path, binaries: &Binaries) -> Value {
    let sealer = binaries.expected("sealer-pod");
    let operator = binaries.expected("sealing-operator");
    json!({
        "rootDir": root,
        "passThroughPaths": [PARAMETER_CACHE, SHARED_STORE],
        "heartbeatSeconds": 5,
        "nodes": [
            {
                "name": GPU_NODE,
                "labels": {
                    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
                    "nvidia.com/gpu.count": "1",
                    "nvidia.com/gpu.memory": "40960",
                    "sealing.filecoin.io/e2e": "true",
                    "sealing.filecoin.io/pool": "devnet",
                },
                "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
                "capacity": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "100Gi", "nvidia.com/gpu": "1"},
            },
            {
                "name": CPU_NODE,
                "labels": {"sealing.filecoin.io/e2e": "true", "sealing.filecoin.io/pool": "devnet"},
                "capacity": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "100Gi"},
            },
        ],
        "images": [
            {"image": "local/shell", "entrypoint": ["/bin/sh"]},
            {"image": "sealer-pod", "entrypoint": [sealer], "paths": {"/usr/local/bin/sealer-pod": sealer}},
            {"image": "sealing-operator", "entrypoint": [operator], "paths": {"/usr/local/bin/sealing-operator": operator}},
        ],
    })
}

/// A running `node-agent`; killed when dropped.
#[derive(Debug)]
pub struct NodeAgentProcess {
    child: Child,
    pub config: PathBuf,
    pub root_dir: PathBuf,
    pub log: PathBuf,
}

impl NodeAgentProcess {
    /// Starts the agent with `config` (written to `<dir>/node-agent.yaml`), logging to
    /// `<dir>/node-agent.log`.
    pub fn start(
        binaries: &Binaries,
        kubeconfig: &Path,
        config: &Value,
        dir: &Path,
    ) -> Result<Self, HarnessError> {
        Self::start_as(binaries, kubeconfig, config, dir, None)
    }

    /// Like [`start`](Self::start), running the agent as user (and group) `run_as` when given.
    pub fn start_as(
        binaries: &Binaries,
        kubeconfig: &Path,
        config: &Value,
        dir: &Path,
        run_as: Option<u32>,
    ) -> Result<Self, HarnessError> {
        let binary = binaries.path("node-agent")?;
        std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
        let config_path = dir.join("node-agent.yaml");
        let yaml =
            serde_yaml::to_string(config).map_err(|e| HarnessError::Config(e.to_string()))?;
        std::fs::write(&config_path, yaml).map_err(|e| HarnessError::io(&config_path, e))?;
        let log = dir.join("node-agent.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| HarnessError::io(&log, e))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| HarnessError::io(&log, e))?;
        let mut cmd = Command::new(&binary);
        if let Some(id) = run_as {
            cmd.uid(id).gid(id);
        }
        let child = cmd
            .arg("--config")
            .arg(&config_path)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("SEALING_E2E_AGENT_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| HarnessError::io(&binary, e))?;
        let root_dir = PathBuf::from(config["rootDir"].as_str().unwrap_or_default());
        Ok(NodeAgentProcess {
            child,
            config: config_path,
            root_dir,
            log,
        })
    }

    /// Whether the agent is still running; an agent that exited says why in its log.
    pub fn check_alive(&mut self) -> Result<(), HarnessError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(HarnessError::AgentExited {
                status: status.to_string(),
                log: self.log.clone(),
            }),
            Err(e) => Err(HarnessError::io(&self.log, e)),
        }
    }

    /// SIGTERM (the agent then kills its containers), SIGKILL if it takes longer than 10 s;
    /// then checks that none of its containers is left running: any such process is killed
    /// and returned as an error.
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while self.child.try_wait().ok().flatten().is_none()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            self.kill();
        }
        let left = crate::agent::running_containers(&self.root_dir);
        for (pid, _) in &left {
            crate::agent::process::signal_group(*pid, Signal::SIGKILL);
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(HarnessError::Leftover(format!(
                "container processes outlived their node agent (now killed): {left:?}"
            )))
        }
    }

    /// SIGKILL: the agent dies without cleaning up, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of the agent's log, for failure reports.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for NodeAgentProcess {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("e2e: {e}");
        }
    }
}
