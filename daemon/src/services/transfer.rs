//! File transfer (spec §1.8): reads and writes of paths the Router's path guard
//! has checked. Everything here opens without following symlinks, so a path
//! component swapped for a link after the check makes the operation fail rather
//! than escape. Pushes stream into a temp file beside the target (constant
//! memory), are size-capped while streaming, fsynced, checksummed and renamed
//! into place: an interrupted, oversized or mismatched push leaves nothing.
//! Each temp file is named in a journal (`transfers/` in the data dir) while it
//! exists, so the temp files of a daemon killed mid-push are swept at the next
//! start. Only regular files are read, opened without blocking (a FIFO or a
//! device would hold a thread in `open()` or `read()` forever), and a file with
//! more than one hard link is refused unless `transfer.allowHardlinks` is set:
//! its other name may lie outside the allowed paths.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use aws_lc_rs::digest;
use bytes::Bytes;
use rustix::fs::{AtFlags, Mode, OFlags};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::policy::path_guard::CheckedPath;
use crate::secrets;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0}")]
    Denied(String),
    #[error("File not found: {0}")]
    NotFound(String),
    #[error("The file is larger than transfer.maxFileSize ({0} bytes)")]
    TooLarge(u64),
    #[error("Checksum mismatch: expected {expected}, received {actual}; nothing was written")]
    Checksum { expected: String, actual: String },
    #[error("Transfer failed: {0}")]
    Failed(String),
}

fn failed(context: &str) -> impl Fn(io::Error) -> TransferError + '_ {
    move |e| match e.raw_os_error() {
        // ELOOP: a symlink where the check saw none.
        Some(40) => TransferError::Denied(format!("Path denied: {context} changed into a symlink")),
        _ => TransferError::Failed(format!("{context}: {e}")),
    }
}

/// Opens `path` (canonical, checked) refusing symlinks in every component.
fn open_no_symlinks(path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::ResolveFlags;
        match rustix::fs::openat2(
            rustix::fs::CWD,
            path,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS,
        ) {
            Err(rustix::io::Errno::NOSYS) => {}
            other => return other.map_err(io::Error::from),
        }
    }
    // Without openat2: refuse a final symlink, then confirm the opened file is
    // the one the canonical path names.
    let fd = rustix::fs::open(
        path,
        flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    let opened = rustix::fs::fstat(&fd)?;
    let named = std::fs::metadata(std::fs::canonicalize(path)?)?;
    if opened.st_ino as u64 != named.ino() || opened.st_dev as u64 != named.dev() {
        return Err(io::Error::from_raw_os_error(40));
    }
    Ok(fd)
}

/// A file opened for a pull.
#[derive(Debug)]
pub struct Download {
    pub file: File,
    pub size: u64,
    pub name: String,
}

pub fn open_for_pull(
    checked: &CheckedPath,
    max_size: u64,
    allow_hardlinks: bool,
) -> Result<Download, TransferError> {
    let path = checked.full();
    if !checked.missing.is_empty() {
        return Err(TransferError::NotFound(path.display().to_string()));
    }
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    let fd =
        open_no_symlinks(&path, OFlags::RDONLY | OFlags::NONBLOCK).map_err(failed("the source"))?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(failed("the source"))?;
    if meta.is_dir() {
        return Err(TransferError::NotFound(format!(
            "{} is a directory, not a file",
            path.display()
        )));
    }
    if !meta.is_file() {
        return Err(TransferError::Denied(format!(
            "Path denied: {} is not a regular file (FIFOs, sockets and devices are never served)",
            path.display()
        )));
    }
    if meta.nlink() > 1 && !allow_hardlinks {
        return Err(TransferError::Denied(format!(
            "Path denied: {} has {} hard links, and another of its names may lie outside the allowed paths; set transfer.allowHardlinks to serve such files",
            path.display(),
            meta.nlink()
        )));
    }
    if meta.len() > max_size {
        return Err(TransferError::TooLarge(max_size));
    }
    Ok(Download {
        file,
        size: meta.len(),
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}

/// `{files:[{name, path, type, size, modified}]}` as the original. A symlink's size
/// and time are its target's only when the path guard admits the target (`admits`);
/// otherwise the link's own, so nothing outside the roots is described.
pub fn list(checked: &CheckedPath, admits: impl Fn(&Path) -> bool) -> Result<Value, TransferError> {
    let path = checked.full();
    if !checked.missing.is_empty() {
        return Err(TransferError::NotFound(path.display().to_string()));
    }
    let fd = open_no_symlinks(&path, OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(failed("the directory"))?;
    let mut files = Vec::new();
    let dir = rustix::fs::Dir::read_from(&fd).map_err(|e| failed("the directory")(e.into()))?;
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        // Size and mtime follow links (as the original's stat did) only into the
        // allowed paths; unreadable entries are skipped.
        let entry_path = path.join(&name);
        let Ok(own) = std::fs::symlink_metadata(&entry_path) else {
            continue;
        };
        let (kind, special) = entry_kind(&own.file_type());
        let meta = match kind {
            "symlink" if admits(&entry_path) => std::fs::metadata(&entry_path).unwrap_or(own),
            _ => own,
        };
        let modified = meta.mtime() * 1000 + meta.mtime_nsec() / 1_000_000;
        let mut file = json!({
            "name": name,
            "path": path.join(&name).display().to_string(),
            "type": kind,
            "size": meta.len(),
            "modified": modified,
        });
        if let Some(special) = special {
            file["special"] = json!(special);
        }
        files.push(file);
    }
    Ok(json!({ "files": files }))
}

/// A listing's `type` (the original's three values) and, for anything a pull
/// refuses that is not a directory or link, what it is.
fn entry_kind(file_type: &std::fs::FileType) -> (&'static str, Option<&'static str>) {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        ("directory", None)
    } else if file_type.is_symlink() {
        ("symlink", None)
    } else if file_type.is_file() {
        ("file", None)
    } else if file_type.is_fifo() {
        ("file", Some("fifo"))
    } else if file_type.is_socket() {
        ("file", Some("socket"))
    } else {
        ("file", Some("device"))
    }
}

/// One piece of an upload, or why the upload stopped early.
pub type UploadChunk = Result<Bytes, String>;

/// Opens (creating as needed, without following links) the directory that will
/// hold the target, and returns it with the target's name.
fn target_dir(checked: &CheckedPath) -> Result<(OwnedFd, std::ffi::OsString), TransferError> {
    let (mut dir, names): (OwnedFd, &[std::ffi::OsString]) = if checked.missing.is_empty() {
        let parent = checked.existing.parent().ok_or_else(|| {
            TransferError::Denied("Path denied: cannot write the root directory".into())
        })?;
        if checked.existing.is_dir() {
            return Err(TransferError::Failed(format!(
                "{} is a directory",
                checked.existing.display()
            )));
        }
        let fd = open_no_symlinks(parent, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(failed("the destination directory"))?;
        let name = checked
            .existing
            .file_name()
            .map(ToOwned::to_owned)
            .unwrap_or_default();
        return Ok((fd, name));
    } else {
        let fd = open_no_symlinks(&checked.existing, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(failed("the destination directory"))?;
        (fd, &checked.missing[..])
    };
    let Some((name, parents)) = names.split_last() else {
        return Err(TransferError::Failed("no file name".into()));
    };
    for component in parents {
        match rustix::fs::mkdirat(&dir, component.as_os_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(failed("creating a directory")(e.into())),
        }
        dir = rustix::fs::openat(
            &dir,
            component.as_os_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| failed("the destination directory")(e.into()))?;
    }
    Ok((dir, name.clone()))
}

/// What a completed push reports.
pub struct Received {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub duration_ms: u64,
}

/// Bytes a temp name adds to the target's name: `.` + `.loopsy-` + 12 hex + `.part`.
const TEMP_OVERHEAD: usize = 1 + 8 + 12 + 5;
/// `NAME_MAX`.
const MAX_NAME: usize = 255;

/// The temp file's name beside `name`: the target's name cut (at a character
/// boundary) so that the whole fits `NAME_MAX`.
fn temp_name(name: &OsStr, suffix: &str) -> String {
    let name = name.to_string_lossy();
    let mut keep = name.len().min(MAX_NAME - TEMP_OVERHEAD);
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    format!(".{}.loopsy-{suffix}.part", &name[..keep])
}

/// The journal of temp files that exist: one file per upload, named by its
/// suffix, holding the temp file's path. Written (and synced) before the temp
/// file is created, removed once the temp file is gone.
struct JournalEntry(std::path::PathBuf);

impl JournalEntry {
    fn open(journal: &Path, suffix: &str, temp_path: &Path) -> Result<Self, TransferError> {
        let entry = journal.join(suffix);
        use std::os::unix::ffi::OsStrExt;
        crate::durable::write_private_atomic(&entry, temp_path.as_os_str().as_bytes())
            .map_err(failed("the transfer journal"))?;
        Ok(Self(entry))
    }
}

impl Drop for JournalEntry {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Removes the temp files of uploads a killed daemon left, as its journal names
/// them; returns how many were removed. Run at start, before any upload.
pub fn sweep_left_uploads(journal: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(journal) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        if let Ok(named) = std::fs::read(entry.path()) {
            use std::os::unix::ffi::OsStringExt;
            let temp = std::path::PathBuf::from(std::ffi::OsString::from_vec(named));
            let ours = temp.file_name().is_some_and(is_temp_name);
            let is_file = std::fs::symlink_metadata(&temp).is_ok_and(|m| m.is_file());
            if ours && is_file && std::fs::remove_file(&temp).is_ok() {
                removed += 1;
            }
        }
        let _ = std::fs::remove_file(entry.path());
    }
    removed
}

/// Receives an upload into `checked`; `journal` is the data dir's `transfers/`.
/// Blocking: run it off the async threads.
pub fn receive(
    checked: &CheckedPath,
    mut body: mpsc::Receiver<UploadChunk>,
    max_size: u64,
    expected_sha256: Option<&str>,
    journal: &Path,
) -> Result<Received, TransferError> {
    let started = Instant::now();
    let (dir, name) = target_dir(checked)?;
    let suffix = secrets::random_bytes::<6>().map_err(|e| TransferError::Failed(e.to_string()))?;
    let suffix = secrets::hex(&suffix);
    let temp_name = temp_name(&name, &suffix);
    let temp_path = checked
        .full()
        .parent()
        .map(|parent| parent.join(&temp_name))
        .unwrap_or_default();
    let _journal = JournalEntry::open(journal, &suffix, &temp_path)?;
    let temp_fd = rustix::fs::openat(
        &dir,
        temp_name.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| failed("creating the temporary file")(e.into()))?;
    let remove_temp = || {
        let _ = rustix::fs::unlinkat(&dir, temp_name.as_str(), AtFlags::empty());
    };
    let mut file = File::from(temp_fd);
    let mut hash = digest::Context::new(&digest::SHA256);
    let mut size: u64 = 0;
    let outcome = (|| {
        while let Some(chunk) = body.blocking_recv() {
            let chunk = chunk.map_err(|why| {
                TransferError::Failed(format!("the upload was interrupted ({why})"))
            })?;
            size += chunk.len() as u64;
            if size > max_size {
                return Err(TransferError::TooLarge(max_size));
            }
            hash.update(&chunk);
            file.write_all(&chunk).map_err(failed("writing"))?;
        }
        file.sync_all().map_err(failed("syncing"))?;
        Ok(())
    })();
    if let Err(error) = outcome {
        remove_temp();
        return Err(error);
    }
    let sha256 = secrets::hex(hash.finish().as_ref());
    if let Some(expected) = expected_sha256
        && !expected.eq_ignore_ascii_case(&sha256)
    {
        remove_temp();
        return Err(TransferError::Checksum {
            expected: expected.to_owned(),
            actual: sha256,
        });
    }
    if let Err(e) = rustix::fs::renameat(&dir, temp_name.as_str(), &dir, name.as_os_str()) {
        remove_temp();
        return Err(failed("moving the file into place")(e.into()));
    }
    rustix::fs::fsync(&dir).map_err(|e| failed("syncing the directory")(e.into()))?;
    Ok(Received {
        path: checked.full().display().to_string(),
        size,
        sha256,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Whether `name` is one of our temp files (for tests and cleanup).
pub fn is_temp_name(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') && name.ends_with(".part") && name.contains(".loopsy-")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::policy::path_guard::PathGuard;

    fn guard(root: &Path) -> PathGuard {
        PathGuard::new(
            &[root.join("home").display().to_string()],
            &[],
            &root.join("data"),
        )
    }

    /// The check passes, then a directory on the path becomes a symlink to
    /// somewhere else before the open: the open must refuse, not follow.
    #[test]
    fn a_component_swapped_for_a_symlink_after_the_check_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let root = std::fs::canonicalize(dir.path()).expect("root");
        std::fs::create_dir_all(root.join("home/docs")).expect("docs");
        std::fs::create_dir_all(root.join("secret")).expect("secret");
        std::fs::write(root.join("home/docs/report"), "fine").expect("report");
        std::fs::write(root.join("secret/report"), "secret").expect("secret report");
        let checked = guard(&root)
            .check(&root.join("home/docs/report").display().to_string())
            .expect("allowed");

        std::fs::rename(root.join("home/docs"), root.join("home/docs-old")).expect("move");
        symlink(root.join("secret"), root.join("home/docs")).expect("swap in a link");
        match open_for_pull(&checked, u64::MAX, false) {
            Err(TransferError::Denied(_)) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }

        // The same for a push into that directory: nothing lands in `secret`.
        let (sender, receiver) = mpsc::channel(1);
        drop(sender);
        let target = guard(&root)
            .check(&root.join("home/docs-old/new").display().to_string())
            .expect("allowed");
        std::fs::rename(root.join("home/docs-old"), root.join("home/docs-older")).expect("move");
        symlink(root.join("secret"), root.join("home/docs-old")).expect("swap in a link");
        assert!(receive(&target, receiver, u64::MAX, None, &root.join("data")).is_err());
        assert!(!root.join("secret/new").exists());
    }

    #[test]
    fn an_interrupted_or_oversized_upload_leaves_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let root = std::fs::canonicalize(dir.path()).expect("root");
        std::fs::create_dir_all(root.join("home")).expect("home");
        let journal = root.join("data/transfers");
        std::fs::create_dir_all(&journal).expect("journal");
        let target = guard(&root)
            .check(&root.join("home/f").display().to_string())
            .expect("allowed");

        let (sender, receiver) = mpsc::channel(4);
        sender
            .try_send(Ok(Bytes::from_static(b"partial")))
            .expect("queue");
        sender
            .try_send(Err("connection reset".into()))
            .expect("queue");
        drop(sender);
        assert!(matches!(
            receive(&target, receiver, u64::MAX, None, &journal),
            Err(TransferError::Failed(_))
        ));

        let (sender, receiver) = mpsc::channel(4);
        sender
            .try_send(Ok(Bytes::from(vec![0u8; 100])))
            .expect("queue");
        drop(sender);
        assert!(matches!(
            receive(&target, receiver, 10, None, &journal),
            Err(TransferError::TooLarge(10))
        ));
        assert_eq!(
            std::fs::read_dir(root.join("home")).expect("list").count(),
            0,
            "no file, no temp file"
        );
        assert_eq!(std::fs::read_dir(&journal).expect("journal").count(), 0);
    }

    #[test]
    fn temp_names_fit_name_max_and_the_sweep_removes_only_journalled_temp_files() {
        let long = "é".repeat(127) + "x";
        let name = temp_name(OsStr::new(&long), "0123456789ab");
        assert!(name.len() <= MAX_NAME, "{}", name.len());
        assert!(is_temp_name(OsStr::new(&name)));
        let dir = tempfile::tempdir().expect("dir");
        let journal = dir.path().join("transfers");
        std::fs::create_dir_all(&journal).expect("journal");
        let left = dir.path().join(".f.loopsy-0123456789ab.part");
        let kept = dir.path().join("f");
        std::fs::write(&left, "partial").expect("temp");
        std::fs::write(&kept, "a user's file").expect("file");
        let entry = JournalEntry::open(&journal, "0123456789ab", &left).expect("entry");
        std::mem::forget(entry);
        // A journal entry naming a user's file (not a temp name) never removes it.
        JournalEntry::open(&journal, "ffffffffffff", &kept)
            .map(std::mem::forget)
            .expect("entry");
        assert_eq!(sweep_left_uploads(&journal), 1);
        assert!(!left.exists() && kept.exists());
        assert_eq!(std::fs::read_dir(&journal).expect("journal").count(), 0);
    }
}
