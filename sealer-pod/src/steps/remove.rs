//! remove: deletes a sector's directories (scratch, and store when asked) after the sector was
//! aborted or deleted. Idempotent: a directory already gone is not an error.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{StepError, StepResult};
use crate::fsutil::{remove_dir_if_exists, tmp_path};

pub fn run(dirs: &[PathBuf]) -> StepResult<Value> {
    let mut removed = Vec::new();
    for dir in dirs {
        guard(dir)?;
        for path in [tmp_path(dir), dir.clone()] {
            if path.exists() {
                remove_dir_if_exists(&path)?;
                removed.push(path.display().to_string());
            }
        }
    }
    Ok(json!({ "removed": removed }))
}

/// A sector directory is an absolute path at least two levels deep (`<mount>/<ns>_<name>`) and
/// a directory: anything else is refused rather than deleted.
fn guard(dir: &Path) -> StepResult<()> {
    if !dir.is_absolute() || dir.components().count() < 3 {
        return Err(StepError::invalid("dir", format!("{} is not a sector directory (an absolute path below a mount)", dir.display())));
    }
    if dir.exists() && !dir.is_dir() {
        return Err(StepError::invalid("dir", format!("{} is not a directory", dir.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_the_directory_and_its_temporary_and_is_idempotent() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("ns_cc");
        std::fs::create_dir_all(dir.join("cache")).unwrap();
        std::fs::write(dir.join("sealed"), b"x").unwrap();
        std::fs::create_dir_all(root.path().join("ns_cc.tmp")).unwrap();
        let out = run(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(out["removed"].as_array().unwrap().len(), 2);
        assert!(!dir.exists() && !root.path().join("ns_cc.tmp").exists());
        assert_eq!(run(&[dir]).unwrap()["removed"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn refuses_what_is_not_a_sector_directory() {
        assert!(run(&[PathBuf::from("/")]).is_err());
        assert!(run(&[PathBuf::from("relative/dir")]).is_err());
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(run(std::slice::from_ref(&file)).is_err());
        assert!(file.exists());
    }
}
