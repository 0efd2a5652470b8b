//! Where everything lives inside the data dir (`~/.loopsy` by default).

use std::path::{Path, PathBuf};

/// `~` and `~/…` against the home directory; anything else as given.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix('~'), std::env::home_dir()) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}

/// The data-dir layout (DESIGN §6). Every file the daemon or CLI touches is named here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `~/.loopsy`, or `None` when no home directory is known.
    pub fn default_root() -> Option<PathBuf> {
        std::env::home_dir().map(|home| home.join(".loopsy"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.yaml")
    }
    /// Serialises writers of `config.yaml` (the daemon, or the CLI while no daemon runs).
    pub fn config_lock(&self) -> PathBuf {
        self.root.join("config.lock")
    }
    pub fn socket(&self) -> PathBuf {
        self.root.join("loopsyd.sock")
    }
    pub fn pid(&self) -> PathBuf {
        self.root.join("daemon.pid")
    }
    /// Held (flock) by the running daemon for its whole life; the kernel frees it on any exit.
    pub fn daemon_lock(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }
    /// SQLite state (context entries, later inbox, peers, phones).
    pub fn database(&self) -> PathBuf {
        self.root.join("loopsy.db")
    }
    /// The daemon's long-term X25519 key for phones (32 bytes, `0600`).
    pub fn e2e_key(&self) -> PathBuf {
        self.root.join("e2e.key")
    }
    /// The relay this machine is registered at, with its device secret (`0600`).
    pub fn relay_credentials(&self) -> PathBuf {
        self.root.join("relay.json")
    }
    /// The journal of uploads in progress: one file per temp file that exists, so
    /// a daemon killed mid-push has them swept at its next start.
    pub fn transfers(&self) -> PathBuf {
        self.root.join("transfers")
    }
    /// The daemon's TLS certificate and its key for peers, in one PEM file (`0600`),
    /// so that a crash never leaves one without the other.
    pub fn peer_tls(&self) -> PathBuf {
        self.root.join("peer-tls.pem")
    }
    pub fn node_id(&self) -> PathBuf {
        self.root.join("node-id")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn audit_log(&self) -> PathBuf {
        self.logs().join("audit.jsonl")
    }
    /// stdout/stderr of a daemon started in the background.
    pub fn daemon_log(&self) -> PathBuf {
        self.logs().join("daemon.log")
    }
}
