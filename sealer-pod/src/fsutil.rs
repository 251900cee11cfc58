//! File writes that a kill cannot leave half done: write a temporary beside the target, sync
//! it, then rename it into place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{StepError, StepResult};

/// The temporary name used for `path` while it is being produced.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

pub fn write_atomic(path: &Path, contents: &[u8]) -> StepResult<()> {
    let tmp = tmp_path(path);
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().map_err(|e| StepError::io(&tmp, e))?;
    rename(&tmp, path)
}

/// Renames and syncs the directory so the new name survives a crash of the node.
pub fn rename(from: &Path, to: &Path) -> StepResult<()> {
    fs::rename(from, to).map_err(|e| StepError::io(to, e))?;
    if let Some(dir) = to.parent() {
        sync_dir(dir).map_err(|e| StepError::io(dir, e))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir)?.sync_all()
}

pub fn remove_file_if_exists(path: &Path) -> StepResult<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StepError::io(path, e)),
    }
}

pub fn remove_dir_if_exists(path: &Path) -> StepResult<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StepError::io(path, e)),
    }
}

/// Creates (or empties) a file of `len` zero bytes; sparse where the filesystem allows.
pub fn create_zeroed(path: &Path, len: u64) -> StepResult<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| StepError::io(path, e))?;
    file.set_len(len).map_err(|e| StepError::io(path, e))?;
    Ok(file)
}

/// Copies `from` to a fresh `to` and syncs it.
pub fn copy_synced(from: &Path, to: &Path) -> StepResult<()> {
    fs::copy(from, to).map_err(|e| StepError::io(to, e))?;
    File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| StepError::io(to, e))
}
