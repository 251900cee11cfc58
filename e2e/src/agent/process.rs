//! Runs one container as a local process in its own mount namespace, so that it sees its
//! volumes and termination-message file at the paths a real container would.

use std::ffi::{CStr, CString};
use std::os::fd::IntoRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, killpg};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Pid, Uid, chdir, setgid, setgroups, setuid};

use super::volumes::Mount;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{what} {path} contains a NUL byte")]
    Nul { what: &'static str, path: String },
    #[error("preparing mount point {path}: {source}")]
    MountPoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening mount source {path}: {source}")]
    MountSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening log file {path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "starting {program:?}: {source} (the mount namespace, bind mounts, user switch and working directory are set up before exec, so the error may come from any of them)"
    )]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// Everything needed to start a container's process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// `argv[0]` is the program: a host path, or a name looked up in the container's PATH.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    /// Bind mounts, outer before nested.
    pub mounts: Vec<Mount>,
    /// `(uid, gid)` from the securityContext; `None` keeps the agent's user.
    pub user: Option<(u32, u32)>,
    /// Receives stdout and stderr.
    pub log: PathBuf,
}

/// Byte strings prepared before fork: the child may only make async-signal-safe calls.
struct ChildSetup {
    mounts: Vec<(CString, CString, bool)>,
    /// Room for each source's `/proc/self/fd/N` link, filled in the child.
    fd_links: Vec<[u8; FD_LINK_LEN]>,
    user: Option<(u32, u32)>,
    working_dir: CString,
}

const FD_LINK_LEN: usize = 32;

pub fn spawn(spec: &ProcessSpec) -> Result<tokio::process::Child, ProcessError> {
    let program = spec.argv.first().cloned().unwrap_or_default();
    for (i, m) in spec.mounts.iter().enumerate() {
        create_mount_point(
            &host_location(&m.target, &spec.mounts[..i]),
            m.source.is_dir(),
        )?;
    }
    let cwd_host = host_location(&spec.working_dir, &spec.mounts);
    if !cwd_host.exists() {
        create_mount_point(&cwd_host, true)?;
    }
    for m in &spec.mounts {
        if !m.source.exists() {
            return Err(ProcessError::MountSource {
                path: m.source.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
    }
    let setup = ChildSetup {
        mounts: spec
            .mounts
            .iter()
            .map(|m| {
                Ok((
                    cstring(&m.source, "mount source")?,
                    cstring(&m.target, "mount target")?,
                    m.read_only,
                ))
            })
            .collect::<Result<_, ProcessError>>()?,
        fd_links: vec![[0; FD_LINK_LEN]; spec.mounts.len()],
        user: spec.user,
        working_dir: cstring(&spec.working_dir, "working directory")?,
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(|source| ProcessError::Log {
            path: spec.log.clone(),
            source,
        })?;
    let log_err = log.try_clone().map_err(|source| ProcessError::Log {
        path: spec.log.clone(),
        source,
    })?;

    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&spec.argv[1.min(spec.argv.len())..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // pid == process group id, so the whole container can be signalled at once.
        .process_group(0)
        .kill_on_drop(false);
    // SAFETY: the closure runs in the forked child and only calls async-signal-safe
    // syscalls (unshare, open, mount, setgroups, setgid, setuid, chdir) on data prepared
    // above, writing only into buffers allocated before the fork.
    let mut setup = setup;
    unsafe {
        cmd.pre_exec(move || setup.enter().map_err(std::io::Error::from));
    }
    cmd.spawn()
        .map_err(|source| ProcessError::Spawn { program, source })
}

impl ChildSetup {
    fn enter(&mut self) -> nix::Result<()> {
        unshare(CloneFlags::CLONE_NEWNS)?;
        // Keep our mounts from propagating back into the host's namespace.
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )?;
        // Every source is opened before anything is mounted, and mounted through its
        // /proc/self/fd link: a volume mounted over a directory (say /tmp) must not hide the
        // sources of the mounts after it. Opened here, in the new namespace, because a bind
        // mount's source must belong to the caller's namespace. Closed at exec.
        for ((source, _, _), link) in self.mounts.iter().zip(self.fd_links.iter_mut()) {
            let fd = open(
                source.as_c_str(),
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            write_fd_link(link, fd.into_raw_fd());
        }
        for ((_, target, read_only), link) in self.mounts.iter().zip(&self.fd_links) {
            let source = CStr::from_bytes_until_nul(link).map_err(|_| Errno::EINVAL)?;
            mount(
                Some(source),
                target.as_c_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            if *read_only {
                mount(
                    None::<&str>,
                    target.as_c_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None::<&str>,
                )?;
            }
        }
        if let Some((uid, gid)) = self.user {
            setgroups(&[])?;
            setgid(Gid::from_raw(gid))?;
            setuid(Uid::from_raw(uid))?;
        }
        chdir(self.working_dir.as_c_str())
    }
}

/// Writes `/proc/self/fd/<fd>` and a NUL into `buf` without allocating (we are between fork
/// and exec).
fn write_fd_link(buf: &mut [u8; FD_LINK_LEN], fd: i32) {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut n = fd.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..len].iter().rev().enumerate() {
        buf[PREFIX.len() + i] = *d;
    }
    buf[PREFIX.len() + len] = 0;
}

fn cstring(path: &Path, what: &'static str) -> Result<CString, ProcessError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| ProcessError::Nul {
        what,
        path: path.display().to_string(),
    })
}

/// Where `path` inside the container lives on the host, given the mounts made before it.
fn host_location(path: &Path, earlier: &[Mount]) -> PathBuf {
    earlier
        .iter()
        .filter(|m| path.starts_with(&m.target))
        .max_by_key(|m| m.target.components().count())
        .map_or_else(
            || path.to_owned(),
            |m| {
                m.source
                    .join(path.strip_prefix(&m.target).unwrap_or(Path::new("")))
            },
        )
}

fn create_mount_point(path: &Path, dir: bool) -> Result<(), ProcessError> {
    let err = |source| ProcessError::MountPoint {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        return Ok(());
    }
    if dir {
        std::fs::create_dir_all(path).map_err(err)
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        std::fs::File::create(path).map(drop).map_err(err)
    }
}

/// Sends `signal` to the container's whole process group; a group already gone is fine.
pub fn signal_group(pid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(raw), signal);
    }
}

/// Checks once that this machine lets the agent create mount namespaces, so pods fail with a
/// clear reason instead of running without their volumes.
pub async fn check_mount_namespaces() -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("/bin/true");
    // SAFETY: only async-signal-safe syscalls in the forked child.
    unsafe {
        cmd.pre_exec(|| {
            unshare(CloneFlags::CLONE_NEWNS)?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            Ok(())
        });
    }
    match cmd.status().await {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!(
            "/bin/true in a new mount namespace exited with {s}"
        )),
        Err(e) => Err(format!(
            "cannot create a mount namespace (unshare(CLONE_NEWNS) + private remount of /): {e}; the node agent must run as root (or with CAP_SYS_ADMIN)"
        )),
    }
}

/// Whether `pid` is still the process that started at `started` and has not exited (a zombie
/// has exited; it only waits for its parent to reap it).
pub fn is_running(pid: u32, started: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(after_comm) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return false;
    };
    let mut fields = after_comm.split(' ');
    let state = fields.next().unwrap_or("");
    let start = fields.nth(18).and_then(|f| f.parse::<u64>().ok());
    start == Some(started) && !matches!(state, "Z" | "X")
}

/// Kills the process group led by `pid` (if it is still the process started at `started`) and
/// waits up to `timeout` for the leader to be dead.
pub async fn kill_and_wait(pid: u32, started: u64, timeout: std::time::Duration) -> bool {
    if !is_running(pid, started) {
        return true;
    }
    signal_group(pid, Signal::SIGKILL);
    let deadline = tokio::time::Instant::now() + timeout;
    while is_running(pid, started) {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    true
}

/// The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), which
/// with the pid identifies a process across pid reuse.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split(' ').nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_mount_points_are_created_inside_the_outer_volume() {
        let outer = Mount {
            source: "/nodes/n/scratch".into(),
            target: "/scratch".into(),
            read_only: false,
        };
        let deeper = Mount {
            source: "/nodes/n/scratch-cache".into(),
            target: "/scratch/cache".into(),
            read_only: false,
        };
        assert_eq!(
            host_location(Path::new("/scratch/tmp"), std::slice::from_ref(&outer)),
            Path::new("/nodes/n/scratch/tmp")
        );
        assert_eq!(
            host_location(Path::new("/scratch/cache/x"), &[outer.clone(), deeper]),
            Path::new("/nodes/n/scratch-cache/x")
        );
        assert_eq!(
            host_location(Path::new("/dev/termination-log"), &[outer]),
            Path::new("/dev/termination-log")
        );
        assert_eq!(
            host_location(Path::new("/scratchy"), &[]),
            Path::new("/scratchy")
        );
    }

    #[test]
    fn fd_links_are_written_without_allocating() {
        let mut buf = [0xff; FD_LINK_LEN];
        write_fd_link(&mut buf, 1234);
        assert_eq!(
            CStr::from_bytes_until_nul(&buf).unwrap().to_str().unwrap(),
            "/proc/self/fd/1234"
        );
        write_fd_link(&mut buf, 0);
        assert_eq!(
            CStr::from_bytes_until_nul(&buf).unwrap().to_str().unwrap(),
            "/proc/self/fd/0"
        );
    }

    #[test]
    fn start_time_reads_this_process() {
        let me = std::process::id();
        let started = start_time(me).unwrap();
        assert!(is_running(me, started));
        assert!(
            !is_running(me, started + 1),
            "a different start time is a different process"
        );
        assert_eq!(start_time(u32::MAX), None);
    }

    #[tokio::test]
    async fn kill_and_wait_kills_a_process_that_is_not_our_child() {
        // `sh` forks `sleep` into its own group and exits; the sleep is reparented away from us.
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", "setsid sleep 1000 >/dev/null 2>&1 & echo $!"])
            .output()
            .unwrap();
        let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let started = {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                // setsid may not have made the sleep its group leader yet
                if let Some(s) = start_time(pid)
                    && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                        .unwrap_or_default()
                        .starts_with("sleep")
                {
                    break s;
                }
                assert!(std::time::Instant::now() < deadline, "sleep did not start");
                std::thread::yield_now();
            }
        };
        assert!(is_running(pid, started));
        assert!(kill_and_wait(pid, started, std::time::Duration::from_secs(10)).await);
        assert!(!is_running(pid, started));
    }
}
