//! The local control plane of `e2e/control-plane/`, started and stopped through its scripts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::HarnessError;

/// A control plane this process started; stopped by [`LocalControlPlane::stop`].
#[derive(Debug)]
pub struct LocalControlPlane {
    pub state_dir: PathBuf,
    pub kubeconfig: PathBuf,
    /// kube-apiserver, kubectl, etcd, kwok, ... of the versions in `versions.env`.
    pub bin_dir: PathBuf,
    scripts: PathBuf,
}

/// `e2e/control-plane/` in this checkout.
pub fn scripts_dir() -> PathBuf {
    super::manifest_dir().join("control-plane")
}

impl LocalControlPlane {
    /// Builds (or reuses from the cache) the binaries and starts the control plane in
    /// `state_dir`.
    pub fn start(state_dir: &Path) -> Result<Self, HarnessError> {
        let scripts = scripts_dir();
        let started = Instant::now();
        let output = Command::new(scripts.join("up.sh"))
            .env("SEALING_STATE_DIR", state_dir)
            // kwok fakes large numbers of Nodes (annotated kwok.x-k8s.io/node=fake) for scale tests.
            .env("SEALING_START_KWOK", "1")
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| HarnessError::Script {
                script: "up.sh".into(),
                message: e.to_string(),
            })?;
        if !output.status.success() {
            return Err(HarnessError::Script {
                script: "up.sh".into(),
                message: format!("exited with {} (its log is above)", output.status),
            });
        }
        let kubeconfig = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        eprintln!(
            "e2e: local control plane up in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        let env_file = state_dir.join("env");
        let env = std::fs::read_to_string(&env_file).map_err(|e| HarnessError::io(&env_file, e))?;
        let bin_dir = env
            .lines()
            .find_map(|l| l.strip_prefix("SEALING_K8S_BIN="))
            .map(PathBuf::from)
            .ok_or_else(|| HarnessError::Script {
                script: "up.sh".into(),
                message: format!("{} names no SEALING_K8S_BIN", env_file.display()),
            })?;
        Ok(LocalControlPlane {
            state_dir: state_dir.to_owned(),
            kubeconfig,
            bin_dir,
            scripts,
        })
    }

    /// Stops every process of the control plane and checks that none is left.
    pub fn stop(&self) -> Result<(), HarnessError> {
        let status = Command::new(self.scripts.join("down.sh"))
            .env("SEALING_STATE_DIR", &self.state_dir)
            .status()
            .map_err(|e| HarnessError::Script {
                script: "down.sh".into(),
                message: e.to_string(),
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::Script {
                script: "down.sh".into(),
                message: format!("exited with {status}"),
            })
        }
    }
}
