//! [`Settings`]: the validated, resolved configuration that actors receive.
//! Parse first (load.rs), then resolve and check here.

use super::load::{self, ConfigError, Loaded, Overrides};
use super::schema::Config;
use crate::paths::DataDir;
use crate::secrets;

/// What a running daemon needs, checked once at startup.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: DataDir,
    pub config: Config,
    /// The name announced to peers: `server.hostname` or the OS hostname.
    pub hostname: String,
    /// Non-fatal findings (unknown keys, weak peer keys) to show the user.
    pub warnings: Vec<String>,
}

pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// The OS hostname.
pub fn os_hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

impl Settings {
    /// Loads `config.yaml` from `data_dir` with every layer, then validates it.
    pub fn load(data_dir: DataDir, overrides: &Overrides) -> Result<Self, ConfigError> {
        let Loaded {
            config,
            mut warnings,
        } = load::load(&data_dir.config(), overrides)?;
        let path = data_dir.config();
        let bad = |key: &str, problem: String| ConfigError::Value {
            path: path.clone(),
            key: key.to_owned(),
            problem,
        };
        if config.auth.api_key.is_empty() {
            return Err(bad(
                "auth.apiKey",
                "is empty; run `loopsy key generate`".into(),
            ));
        }
        let bits = secrets::estimated_bits(&config.auth.api_key);
        if bits < secrets::MIN_KEY_BITS {
            return Err(bad(
                "auth.apiKey",
                format!(
                    "is too weak (about {bits:.0} bits, at least {:.0} needed); run `loopsy key generate`",
                    secrets::MIN_KEY_BITS
                ),
            ));
        }
        for (name, entry) in &config.auth.allowed_keys {
            let key = entry.key();
            if let Some(names) = entry.capabilities()
                && let Err(problem) = crate::router::Capabilities::parse(names)
            {
                return Err(bad(
                    &format!("auth.allowedKeys.{name}.capabilities"),
                    problem,
                ));
            }
            if key.is_empty() {
                return Err(bad(
                    &format!("auth.allowedKeys.{name}"),
                    "is empty; remove it or set the peer's key".into(),
                ));
            }
            if secrets::estimated_bits(key) < secrets::MIN_KEY_BITS {
                warnings.push(format!(
                    "auth.allowedKeys.{name} looks weak; ask that peer to run `loopsy key generate`"
                ));
            }
        }
        if config.server.port == 0 {
            return Err(bad("server.port", "must be between 1 and 65535".into()));
        }
        if config.server.host.trim().is_empty() {
            return Err(bad(
                "server.host",
                "is empty; use 127.0.0.1 (this machine) or 0.0.0.0 (LAN)".into(),
            ));
        }
        let limits = &config.rate_limits;
        for (key, value) in [
            ("rateLimits.execute", limits.execute),
            ("rateLimits.transfer", limits.transfer),
            ("rateLimits.context", limits.context),
            ("rateLimits.pair", limits.pair),
            ("rateLimits.session", limits.session),
            ("rateLimits.default", limits.default),
        ] {
            if value == 0 {
                return Err(bad(key, "must be at least 1 request per minute".into()));
            }
        }
        let exec_max_ms = crate::limits::MAX_EXEC_TIMEOUT.as_millis() as u64;
        if config.execution.default_timeout == 0 || config.execution.default_timeout > exec_max_ms {
            return Err(bad(
                "execution.defaultTimeout",
                format!("must be between 1 and {exec_max_ms} milliseconds (one day)"),
            ));
        }
        let max_secs = crate::limits::MAX_CONFIG_DURATION.as_secs();
        for (key, value) in [
            ("session.exitedRetention", config.session.exited_retention),
            (
                "relay.sessionIdleTimeoutSec",
                config.relay.session_idle_timeout_sec,
            ),
        ] {
            if value > max_secs {
                return Err(bad(
                    key,
                    format!("must be at most {max_secs} seconds (30 days)"),
                ));
            }
        }
        if let Some(app) = &config.relay.app_origin {
            loopsy_webapp::AppUrl::parse(app).map_err(|problem| bad("relay.appOrigin", problem))?;
        }
        if !(1..=300).contains(&config.relay.ping_interval_sec) {
            return Err(bad(
                "relay.pingIntervalSec",
                "must be between 1 and 300 seconds".into(),
            ));
        }
        if !(1..=3600).contains(&config.transfer.idle_timeout_sec) {
            return Err(bad(
                "transfer.idleTimeoutSec",
                "must be between 1 and 3600 seconds".into(),
            ));
        }
        if config.transfer.max_concurrent_per_principal == 0 {
            return Err(bad(
                "transfer.maxConcurrentPerPrincipal",
                "must be at least 1".into(),
            ));
        }
        if config.session.max_sessions == 0 || config.session.max_sessions_per_principal == 0 {
            return Err(bad(
                "session.maxSessions",
                "and session.maxSessionsPerPrincipal must be at least 1".into(),
            ));
        }
        if config.context.max_entries == 0 {
            return Err(bad("context.maxEntries", "must be at least 1".into()));
        }
        if !LOG_LEVELS.contains(&config.logging.level.as_str()) {
            return Err(bad(
                "logging.level",
                format!("must be one of {}", LOG_LEVELS.join(", ")),
            ));
        }
        if config.tls.enabled {
            return Err(bad(
                "tls.enabled",
                "is not supported by this version; set it to false (daemons always talk TLS to each other on server.peerPort; the HTTP port stays plain)".into(),
            ));
        }
        let hostname = config.server.hostname.clone().unwrap_or_else(os_hostname);
        Ok(Self {
            data_dir,
            config,
            hostname,
            warnings,
        })
    }
}
