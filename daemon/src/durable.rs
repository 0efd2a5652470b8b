//! Files that must survive `kill -9` and never be readable by others: atomic
//! replace (temp file, fsync, rename, fsync dir) with mode `0600`, and private dirs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file that may hold a secret.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of the data dir and its subdirectories.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Replaces `path` with `contents` atomically: readers see the old or the new file,
/// never a torn one, and the new file is on disk before this returns.
pub fn write_private_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path has no file name"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&tmp)?;
        // The mode above only applies on creation; a leftover temp file keeps its own.
        file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Opens (creating `0600` if needed) a file for appending.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
}

/// What [`ensure_private_dir`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirFix {
    Created,
    AlreadyPrivate,
    /// The dir was group/world accessible; the old mode is given.
    Tightened {
        old_mode: u32,
    },
}

/// Creates `dir` with mode `0700`, or tightens an existing one that we own.
/// A dir owned by another user is refused: we would not be its only reader.
pub fn ensure_private_dir(dir: &Path) -> io::Result<DirFix> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(PRIVATE_DIR_MODE)
                .create(dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE))?;
            Ok(DirFix::Created)
        }
        Err(e) => Err(e),
        Ok(meta) if !meta.is_dir() => Err(io::Error::other(format!(
            "{} exists but is not a directory",
            dir.display()
        ))),
        Ok(meta) => {
            if meta.uid() != rustix::process::geteuid().as_raw() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} belongs to uid {}, not to you; use a data dir of your own (--data-dir)",
                        dir.display(),
                        meta.uid()
                    ),
                ));
            }
            let mode = meta.mode() & 0o777;
            if mode & 0o077 == 0 {
                return Ok(DirFix::AlreadyPrivate);
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o700 | 0o700))?;
            Ok(DirFix::Tightened { old_mode: mode })
        }
    }
}

/// Restricts an existing file to its owner; returns the old mode if it had to change.
pub fn tighten_file(path: &Path) -> io::Result<Option<u32>> {
    let mode = fs::metadata(path)?.mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o600))?;
    Ok(Some(mode))
}

/// Permission bits of `path` (`None` if it does not exist).
pub fn mode_of(path: &Path) -> io::Result<Option<u32>> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some(meta.mode() & 0o777)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_private_and_replaces() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        fs::write(&path, "old")?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        write_private_atomic(&path, b"new")?;
        assert_eq!(fs::read_to_string(&path)?, "new");
        assert_eq!(mode_of(&path)?, Some(0o600));
        assert_eq!(
            fs::read_dir(dir.path())?.count(),
            1,
            "no temp file left behind"
        );
        Ok(())
    }

    #[test]
    fn loose_dir_is_tightened() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        assert_eq!(ensure_private_dir(&data)?, DirFix::Created);
        assert_eq!(mode_of(&data)?, Some(0o700));
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755))?;
        assert_eq!(
            ensure_private_dir(&data)?,
            DirFix::Tightened { old_mode: 0o755 }
        );
        assert_eq!(mode_of(&data)?, Some(0o700));
        Ok(())
    }
}
