//! The keys of `config.yaml` and their defaults, as the original Loopsy (spec §2.1).
//! Field names are the file's camelCase keys; every field has a default so that a
//! partial file is completed, never rejected for what it leaves out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const DEFAULT_PORT: u16 = 19532;
pub const DEFAULT_HOST: &str = "127.0.0.1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[derive(Default)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub tls: TlsConfig,
    pub execution: ExecutionConfig,
    pub transfer: TransferConfig,
    pub context: ContextConfig,
    pub session: SessionConfig,
    pub rate_limits: RateLimitsConfig,
    pub discovery: DiscoveryConfig,
    pub logging: LoggingConfig,
    pub relay: RelayConfig,
    pub custom_commands: Vec<CustomCommand>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerConfig {
    pub port: u16,
    /// Address to listen on; `127.0.0.1` keeps the API on this machine.
    pub host: String,
    /// Name announced to peers; the OS hostname when unset.
    pub hostname: Option<String>,
    /// Extra names this daemon may be reached by (`Host` header), beyond
    /// `localhost`, IP literals, the hostname and `<hostname>.local`.
    pub allowed_hosts: Vec<String>,
    /// TLS port other daemons call this one on (pairing and every peer call);
    /// unset means `port + 1`.
    pub peer_port: Option<u16>,
}

impl ServerConfig {
    /// The TLS port for peers.
    pub fn peer_port(&self) -> u16 {
        self.peer_port
            .unwrap_or_else(|| self.port.saturating_add(1))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            host: DEFAULT_HOST.to_owned(),
            hostname: None,
            allowed_hosts: Vec::new(),
            peer_port: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthConfig {
    /// This daemon's own bearer key (64 hex chars from `loopsy init`).
    pub api_key: String,
    /// Peers' keys by name: a request bearing one of them acts as that peer,
    /// with the capabilities its entry lists.
    pub allowed_keys: BTreeMap<String, PeerKey>,
}

/// One `auth.allowedKeys` entry: the key alone (the original's form; the peer
/// gets `exec`, `transfer`, `context` and `messages`), or the key with the
/// capabilities it grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PeerKey {
    Key(String),
    Entry(PeerEntry),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    pub key: String,
    /// Names from `exec`, `transfer`, `context`, `messages`, `sessions:agents`,
    /// `sessions:shell`, `sessions:all`.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
}

impl PeerKey {
    pub fn key(&self) -> &str {
        match self {
            Self::Key(key) => key,
            Self::Entry(entry) => &entry.key,
        }
    }

    /// The capabilities listed, if any (none listed means the default set).
    pub fn capabilities(&self) -> Option<&[String]> {
        match self {
            Self::Key(_) => None,
            Self::Entry(entry) => entry.capabilities.as_deref(),
        }
    }
}

impl From<&str> for PeerKey {
    fn from(key: &str) -> Self {
        Self::Key(key.to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsConfig {
    pub enabled: bool,
    pub cert_path: Option<String>,
    pub key_path: Option<String>,
    pub pinned_certs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutionConfig {
    pub denylist: Vec<String>,
    pub allowlist: Option<Vec<String>>,
    pub max_concurrent: u32,
    /// Milliseconds.
    pub default_timeout: u64,
    /// Output captured per stream of a buffered run; beyond it the result says `…Truncated`.
    pub max_output_bytes: u64,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            denylist: ["rm", "rmdir", "format", "mkfs", "dd", "shutdown", "reboot"]
                .map(String::from)
                .to_vec(),
            allowlist: None,
            max_concurrent: 10,
            default_timeout: 300_000,
            max_output_bytes: 10 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TransferConfig {
    /// `~` stands for the home directory.
    pub allowed_paths: Vec<String>,
    pub denied_paths: Vec<String>,
    /// Bytes.
    pub max_file_size: u64,
    /// Serve files with more than one hard link (their other names may lie
    /// outside the allowed paths).
    pub allow_hardlinks: bool,
    /// Transfers one principal other than the owner may run at once.
    pub max_concurrent_per_principal: u32,
    /// Seconds an upload may send nothing, or a download take nothing, before it ends.
    pub idle_timeout_sec: u64,
}

/// Refused by default even inside `~`: credentials, and the files a shell, the
/// desktop or a coding agent reads and obeys when it starts (writing one runs code
/// as you). A guard rail: a peer that may write into `~` can still plant code
/// elsewhere (a repository's `.git/config`, a `Makefile`); narrow `allowedPaths`
/// for peers trusted with less than a shell.
pub const DEFAULT_DENIED_PATHS: &[&str] = &[
    "~/.ssh",
    "~/.gnupg",
    "~/.aws",
    "~/.kube",
    "~/.docker",
    "~/.netrc",
    "~/.git-credentials",
    "~/.gitconfig",
    "~/.config/git",
    "~/.config/gcloud",
    "~/.bashrc",
    "~/.bash_profile",
    "~/.bash_login",
    "~/.profile",
    "~/.zshrc",
    "~/.zshenv",
    "~/.zprofile",
    "~/.config/fish",
    "~/.config/autostart",
    "~/.config/systemd",
    "~/Library/LaunchAgents",
    "~/.claude",
    "~/.claude.json",
    "~/.codex",
    "~/.gemini",
    "~/.config/opencode",
];

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            allowed_paths: vec!["~".to_owned()],
            denied_paths: DEFAULT_DENIED_PATHS
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            max_file_size: 1024 * 1024 * 1024,
            allow_hardlinks: false,
            max_concurrent_per_principal: 4,
            idle_timeout_sec: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContextConfig {
    /// Most entries the shared context store holds (the original's fixed 1000).
    pub max_entries: u32,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self { max_entries: 1000 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionConfig {
    /// Output kept per PTY session for lossless re-attach (bytes).
    pub ring_bytes: u64,
    /// Scrollback lines of the headless terminal behind snapshots.
    pub scrollback_lines: u32,
    /// Seconds an exited session keeps its screen and exit status.
    pub exited_retention: u64,
    /// Peers (by their `auth.allowedKeys` name) that may start agents with
    /// auto-approve. The owner on this machine always may.
    pub auto_approve_for: Vec<String>,
    /// Live sessions on this machine, all principals together.
    pub max_sessions: u32,
    /// Live sessions one principal other than the owner (a peer, a phone) may hold.
    pub max_sessions_per_principal: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ring_bytes: 4 * 1024 * 1024,
            scrollback_lines: 1000,
            exited_retention: 600,
            auto_approve_for: Vec::new(),
            max_sessions: 64,
            max_sessions_per_principal: 16,
        }
    }
}

/// Requests per minute for each operation family (GCRA, burst = one minute's worth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RateLimitsConfig {
    pub execute: u32,
    pub transfer: u32,
    pub context: u32,
    pub pair: u32,
    /// Session starts.
    pub session: u32,
    /// Every other authenticated operation.
    pub default: u32,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            execute: 30,
            transfer: 10,
            context: 60,
            pair: 10,
            session: 30,
            default: 120,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DiscoveryConfig {
    pub enabled: bool,
    pub manual_peers: Vec<ManualPeer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManualPeer {
    pub address: String,
    pub port: u16,
    #[serde(default)]
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoggingConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// Kept for compatibility with the original's files; logs go to stderr or `logs/daemon.log`.
    pub file: Option<String>,
    /// `logs/audit.jsonl` is rotated when it reaches this size (bytes).
    pub audit_max_bytes: u64,
    /// Rotated audit files kept (`audit.jsonl.1` … `.N`).
    pub audit_keep: u32,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            file: None,
            audit_max_bytes: 10 * 1024 * 1024,
            audit_keep: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RelayConfig {
    pub url: Option<String>,
    /// Where phones open the app when not at the relay (a copy of `web/dist`
    /// on a host you trust): pairing links point there and name the relay.
    pub app_origin: Option<String>,
    pub device_id: Option<String>,
    pub device_secret: Option<String>,
    pub scrollback_bytes: Option<u64>,
    pub session_idle_timeout_sec: u64,
    /// Seconds between the relay link's pings; a relay silent for one and a half
    /// intervals is given up on and reconnected.
    pub ping_interval_sec: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            url: None,
            app_origin: None,
            device_id: None,
            device_secret: None,
            scrollback_bytes: None,
            session_idle_timeout_sec: 3600,
            ping_interval_sec: 25,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomCommand {
    pub id: String,
    pub label: String,
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// Paths under which any key is allowed (maps keyed by user-chosen names).
pub const OPEN_MAPS: &[&str] = &["auth.allowedKeys", "tls.pinnedCerts"];

/// Known keys of list items, for unknown-key warnings inside lists.
pub fn list_item_keys(path: &str) -> Option<&'static [&'static str]> {
    match path {
        "customCommands" => Some(&["id", "label", "command", "args", "cwd", "icon", "createdAt"]),
        "discovery.manualPeers" => Some(&["address", "port", "hostname"]),
        _ => None,
    }
}
