//! Which files peers may read and write (spec §1.8, with its [WEAK] marks fixed).
//!
//! A requested path is resolved the way the kernel will see it: the longest
//! existing prefix is canonicalised (`realpath`: symlinks and `..` resolved), and
//! the rest, which does not exist yet, may only name plain components. The result
//! is compared component by component (so `/home/al` never admits `/home/alice`):
//! the data dir and `deniedPaths` always lose, matched case-insensitively (a
//! case-insensitive file system cannot sneak `~/.SSH` past `~/.ssh`; on a
//! case-sensitive one this only refuses a little more); then the path must lie
//! under one of `allowedPaths`. The roots themselves are resolved at every check,
//! so a denied directory that becomes a symlink later (`~/.ssh` → elsewhere) is
//! still denied where it now points. The services then open what was checked
//! without following any symlink, so a component swapped for a link after the
//! check fails.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Longest path accepted, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest single component, in bytes (`NAME_MAX`).
const MAX_COMPONENT_BYTES: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PathRefusal(pub String);

/// A checked path: `existing` is canonical and exists; `missing` are the plain
/// components below it still to be created (empty for an existing target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPath {
    pub existing: PathBuf,
    pub missing: Vec<OsString>,
}

impl CheckedPath {
    pub fn full(&self) -> PathBuf {
        let mut path = self.existing.clone();
        path.extend(&self.missing);
        path
    }
}

pub struct PathGuard {
    /// Configured roots, expanded but not resolved: see [`PathGuard::check`].
    allowed: Vec<PathBuf>,
    denied: Vec<PathBuf>,
    home: Option<PathBuf>,
}

fn expand(path: &str, home: Option<&Path>) -> Option<PathBuf> {
    match (path.strip_prefix('~'), home) {
        (Some(""), Some(home)) => Some(home.to_owned()),
        (Some(rest), Some(home)) if rest.starts_with('/') => {
            Some(home.join(rest.trim_start_matches('/')))
        }
        (Some(_), _) => None,
        (None, _) => Some(PathBuf::from(path)),
    }
}

/// Canonical form of a configured root: resolved where it exists, so a root that
/// is itself a symlink still matches what requests resolve to.
fn canonical_root(path: &Path) -> PathBuf {
    let mut existing = path.to_owned();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (
            existing.file_name().map(ToOwned::to_owned),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_owned();
            }
            _ => break,
        }
    }
    let mut root = std::fs::canonicalize(&existing).unwrap_or(existing);
    root.extend(rest.into_iter().rev());
    root
}

fn lower(path: &Path) -> Vec<String> {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().to_lowercase())
        .collect()
}

fn is_under(path: &Path, root: &Path, ignore_case: bool) -> bool {
    if ignore_case {
        let (path, root) = (lower(path), lower(root));
        path.len() >= root.len() && path[..root.len()] == root[..]
    } else {
        path.starts_with(root)
    }
}

impl PathGuard {
    /// `data_dir` is always denied, whatever the configuration says.
    pub fn new(allowed: &[String], denied: &[String], data_dir: &Path) -> Self {
        let home = std::env::home_dir();
        let roots = |list: &[String]| -> Vec<PathBuf> {
            list.iter()
                .filter_map(|p| expand(p, home.as_deref()))
                .filter(|p| p.is_absolute())
                .collect()
        };
        let mut denied = roots(denied);
        denied.push(data_dir.to_owned());
        Self {
            allowed: roots(allowed),
            denied,
            home,
        }
    }

    /// Resolves and checks `requested`.
    pub fn check(&self, requested: &str) -> Result<CheckedPath, PathRefusal> {
        let refuse = |why: &str| Err(PathRefusal(format!("Path denied: {why}")));
        if requested.is_empty() {
            return refuse("the path is empty");
        }
        if requested.contains('\0') {
            return refuse("the path contains a NUL byte");
        }
        if requested.len() > MAX_PATH_BYTES {
            return refuse("the path is longer than 4096 bytes");
        }
        let Some(path) = expand(requested, self.home.as_deref()) else {
            return refuse("only `~` and `~/…` are expanded");
        };
        if !path.is_absolute() {
            return refuse("use an absolute path or one starting with `~/`");
        }
        if path
            .components()
            .any(|c| c.as_os_str().len() > MAX_COMPONENT_BYTES)
        {
            return refuse("a path component is longer than 255 bytes");
        }
        let checked = resolve(&path)?;
        let full = checked.full();
        // Resolved now, not at start: the roots may have become links since.
        // A denied root is compared both as written and as it resolves.
        let mut denied = self
            .denied
            .iter()
            .flat_map(|root| [root.clone(), canonical_root(root)]);
        if denied.any(|root| is_under(&full, &root, true)) {
            return refuse(
                "it is inside a denied path (transfer.deniedPaths or the loopsy data dir)",
            );
        }
        if !self
            .allowed
            .iter()
            .any(|root| is_under(&full, &canonical_root(root), false))
        {
            return refuse("it is outside transfer.allowedPaths");
        }
        Ok(checked)
    }
}

/// Canonicalises the longest existing prefix; the rest must be plain names.
fn resolve(path: &Path) -> Result<CheckedPath, PathRefusal> {
    let components: Vec<Component<'_>> = path.components().collect();
    for split in (1..=components.len()).rev() {
        let prefix: PathBuf = components[..split].iter().collect();
        // symlink_metadata: a dangling link is "existing" (and canonicalize then fails).
        if std::fs::symlink_metadata(&prefix).is_err() {
            continue;
        }
        let existing = std::fs::canonicalize(&prefix).map_err(|e| {
            PathRefusal(format!(
                "Path denied: {} cannot be resolved ({e})",
                prefix.display()
            ))
        })?;
        let mut missing = Vec::new();
        for component in &components[split..] {
            match component {
                Component::Normal(name) => missing.push(name.to_os_string()),
                _ => {
                    return Err(PathRefusal(
                        "Path denied: `.` and `..` are only allowed in the part of a path that exists".into(),
                    ));
                }
            }
        }
        return Ok(CheckedPath { existing, missing });
    }
    Err(PathRefusal("Path denied: nothing of it exists".into()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        guard: PathGuard,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("dir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        for d in [
            "home/al",
            "home/alice",
            "home/al/.ssh",
            "home/al/work",
            "data",
            "etc",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(root.join("home/al/.ssh/id_rsa"), "key").expect("write");
        std::fs::write(root.join("home/al/work/notes"), "ok").expect("write");
        std::fs::write(root.join("etc/passwd"), "root").expect("write");
        symlink(root.join("etc"), root.join("home/al/etc-link")).expect("link");
        symlink(root.join("home/al/etc-link"), root.join("home/al/chain")).expect("link");
        symlink(root.join("home/al/.ssh"), root.join("home/al/work/keys")).expect("link");
        let s = |p: &str| root.join(p).display().to_string();
        let guard = PathGuard::new(
            &[s("home/al")],
            &[s("home/al/.ssh")],
            &root.join("home/al/data-dir"),
        );
        Fixture {
            _dir: dir,
            root,
            guard,
        }
    }

    #[test]
    fn escapes_are_refused() {
        let f = fixture();
        let p = |rel: &str| f.root.join(rel).display().to_string();
        let attempts = [
            p("home/al/../alice/x"),
            p("home/al/work/../../alice"),
            p("home/alice/file"),
            p("home/al/etc-link/passwd"),
            p("home/al/chain/passwd"),
            p("home/al/work/keys/id_rsa"),
            p("home/al/.ssh/id_rsa"),
            p("home/al/.SSH/id_rsa"),
            p("home/al/.Ssh/new"),
            p("etc/passwd"),
            "/etc/passwd".to_owned(),
            p("home/al/new/../../alice/x"),
            format!("{}\0x", p("home/al/work/notes")),
            format!("{}/{}", p("home/al"), "a/".repeat(3000)),
            format!("{}/{}", p("home/al"), "n".repeat(300)),
            "relative/path".to_owned(),
            String::new(),
            "~root/.bashrc".to_owned(),
            p("home/al/data-dir/config.yaml"),
        ];
        for attempt in attempts {
            assert!(f.guard.check(&attempt).is_err(), "{attempt:?} was allowed");
        }
    }

    #[test]
    fn allowed_paths_resolve() {
        let f = fixture();
        let p = |rel: &str| f.root.join(rel).display().to_string();
        let notes = f
            .guard
            .check(&p("home/al/work/notes"))
            .expect("existing file");
        assert_eq!(notes.existing, f.root.join("home/al/work/notes"));
        assert!(notes.missing.is_empty());
        let new = f
            .guard
            .check(&p("home/al/work/new/dir/file"))
            .expect("new file");
        assert_eq!(new.existing, f.root.join("home/al/work"));
        assert_eq!(
            new.missing,
            vec![OsString::from("new"), "dir".into(), "file".into()]
        );
        assert!(f.guard.check(&p("home/al/work/./notes")).is_ok());
        assert!(
            f.guard.check(&p("home/al/.sshx")).is_ok(),
            "a sibling named like a denied dir is fine"
        );
    }
}
