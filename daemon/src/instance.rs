//! One daemon per data dir: an exclusive `flock` on `daemon.lock`, held for the
//! daemon's whole life and released by the kernel on any exit (also `kill -9`),
//! plus `daemon.pid` for humans and `loopsy stop`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::durable;
use crate::paths::DataDir;

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("a loopsy daemon is already running for {dir} (pid {pid}); stop it with `loopsy stop`")]
    AlreadyRunning { dir: String, pid: String },
    #[error("cannot lock {path}: {source}")]
    Lock { path: String, source: io::Error },
}

/// Proof that this process is the data dir's only daemon.
pub struct InstanceLock {
    _file: File,
    pid_path: std::path::PathBuf,
}

/// Reads `daemon.pid` (`None` if absent or unreadable).
pub fn read_pid(data_dir: &DataDir) -> Option<u32> {
    let mut text = String::new();
    File::open(data_dir.pid())
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

/// Whether some process holds the instance lock right now.
pub fn is_locked(data_dir: &DataDir) -> bool {
    match File::open(data_dir.daemon_lock()) {
        Ok(file) => match file.try_lock_shared() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(std::fs::TryLockError::Error(_)) => false,
        },
        Err(_) => false,
    }
}

impl InstanceLock {
    /// Takes the lock, or says which daemon holds it. On success any stale pid
    /// file or socket left by a killed daemon is recovered: the lock proves no
    /// daemon owns them.
    pub fn acquire(data_dir: &DataDir) -> Result<Self, InstanceError> {
        let path = data_dir.daemon_lock();
        let lock_error = |source| InstanceError::Lock {
            path: path.display().to_string(),
            source,
        };
        let file = durable::open_private_append(&path).map_err(lock_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(InstanceError::AlreadyRunning {
                    dir: data_dir.root().display().to_string(),
                    pid: read_pid(data_dir).map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(lock_error(e)),
        }
        remove_if_present(&data_dir.socket()).map_err(lock_error)?;
        durable::write_private_atomic(
            &data_dir.pid(),
            format!("{}\n", std::process::id()).as_bytes(),
        )
        .map_err(lock_error)?;
        Ok(Self {
            _file: file,
            pid_path: data_dir.pid(),
        })
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = remove_if_present(&self.pid_path);
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_the_pid() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let data = DataDir::new(dir.path());
        std::fs::write(data.socket(), "stale")?;
        let lock = InstanceLock::acquire(&data)?;
        assert!(!data.socket().exists(), "stale socket removed");
        assert!(is_locked(&data));
        match InstanceLock::acquire(&data) {
            Err(InstanceError::AlreadyRunning { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("expected AlreadyRunning, got {:?}", other.err()),
        }
        drop(lock);
        assert!(!data.pid().exists());
        assert!(!is_locked(&data));
        Ok(())
    }
}
