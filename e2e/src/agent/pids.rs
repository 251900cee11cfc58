//! Records of running container processes on the node's disk, so that a restarted agent can
//! find and kill what its predecessor left behind.

use std::path::Path;

use super::process;

/// `<pod dir>/pids/<container>` holds "<pid> <start time>" while the process runs, so a
/// restarted agent can find and kill what its predecessor left behind.
pub(super) fn record_pid(pod_dir: &Path, container: &str, pid: u32) -> std::io::Result<()> {
    let dir = pod_dir.join("pids");
    std::fs::create_dir_all(&dir)?;
    let started = process::start_time(pid).unwrap_or(0);
    std::fs::write(dir.join(container), format!("{pid} {started}"))
}

pub(super) fn remove_pid(pod_dir: &Path, container: &str) {
    let _ = std::fs::remove_file(pod_dir.join("pids").join(container));
}

pub(super) fn pid_files(pod_dir: &Path) -> impl Iterator<Item = (u32, u64)> {
    std::fs::read_dir(pod_dir.join("pids"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter_map(|text| {
            let (pid, started) = text.trim().split_once(' ')?;
            Some((pid.parse().ok()?, started.parse().ok()?))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_records_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        record_pid(tmp.path(), "main", std::process::id()).unwrap();
        let found: Vec<_> = pid_files(tmp.path()).collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, std::process::id());
        assert_eq!(Some(found[0].1), process::start_time(std::process::id()));
        remove_pid(tmp.path(), "main");
        assert_eq!(pid_files(tmp.path()).count(), 0);
    }
}
