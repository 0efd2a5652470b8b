//! The relay's flags, shared by `loopsy-relay` and `loopsy relay serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::RelayConfig;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8787", env = "LOOPSY_RELAY_LISTEN")]
    pub listen: SocketAddr,
    /// The URL phones and laptops use to reach this relay (e.g. https://relay.example.com).
    #[arg(long, env = "LOOPSY_RELAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// File holding a secret that device registration must present
    /// (X-Registration-Secret). Without it, anyone may register a device.
    #[arg(long, env = "LOOPSY_RELAY_REGISTRATION_SECRET_FILE")]
    pub registration_secret_file: Option<PathBuf>,
    /// PostgreSQL shared by several relay nodes (postgres://user@host:port/db;
    /// put the password in --database-password-file, not here). Without it the
    /// relay keeps its state in <data dir>/relay.db (SQLite), for one node.
    #[arg(
        long,
        env = "LOOPSY_RELAY_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// File holding the PostgreSQL password.
    #[arg(
        long,
        env = "LOOPSY_RELAY_DATABASE_PASSWORD_FILE",
        value_name = "FILE",
        requires = "database"
    )]
    pub database_password_file: Option<PathBuf>,
    /// A web origin besides the relay's own allowed to open WebSockets (repeatable).
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,
    /// The address of the phone app when this relay should not serve it
    /// (e.g. https://app.example.com/, a copy of web/dist on a host you
    /// trust): pairing links point there, that origin may open WebSockets,
    /// and /app here only says where the app is.
    #[arg(long, env = "LOOPSY_RELAY_APP_ORIGIN", value_name = "URL", value_parser = parse_app_url)]
    pub app_origin: Option<loopsy_webapp::AppUrl>,
    /// Most open WebSockets per client IP address.
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Device registrations allowed per client IP address and minute.
    #[arg(long, default_value_t = 5)]
    pub registrations_per_minute: u32,
    /// Device registrations allowed per minute for the whole relay, whoever asks.
    #[arg(long, default_value_t = 60)]
    pub registrations_per_minute_total: u32,
    /// Pairing tokens one device may hold at once (unused and unexpired).
    #[arg(long, default_value_t = 5)]
    pub max_pair_tokens_per_device: u32,
    /// Open phone sockets per device (paired phones and pairings together).
    #[arg(long, default_value_t = 32)]
    pub max_phone_sockets_per_device: usize,
    /// Open pairing sockets per device.
    #[arg(long, default_value_t = 8)]
    pub max_pairing_sockets_per_device: usize,
    /// A proxy (address or range, e.g. 127.0.0.1 or 10.0.0.0/8) whose
    /// X-Forwarded-For is believed for the client's address, so per-address
    /// limits hold behind Caddy or HAProxy (repeatable). Without it the header
    /// is ignored.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<crate::access::Cidr>,
    /// File holding the bearer secret that GET /metrics needs. Without it,
    /// /metrics is off.
    #[arg(long, env = "LOOPSY_RELAY_METRICS_SECRET_FILE", value_name = "FILE")]
    pub metrics_secret_file: Option<PathBuf>,
    /// Longest lifetime of a pairing token, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub max_pair_ttl: u64,
    /// Serve HTTPS and WSS with this PEM certificate chain (needs --tls-key);
    /// without it, put a TLS proxy in front (config-examples/Caddyfile).
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

impl ServeArgs {
    /// The relay's configuration, keeping its database in `data_dir`.
    pub fn into_config(self, data_dir: PathBuf) -> anyhow::Result<RelayConfig> {
        let registration_secret = secret_from(
            self.registration_secret_file.as_deref(),
            "registration secret",
        )?;
        let metrics_secret = secret_from(self.metrics_secret_file.as_deref(), "metrics secret")?;
        let mut config = RelayConfig::new(self.listen, data_dir);
        if let Some(url) = self.database {
            anyhow::ensure!(
                url.starts_with("postgres://") || url.starts_with("postgresql://"),
                "--database takes a PostgreSQL URL (postgres://user@host:port/database)"
            );
            config.postgres = Some(crate::PostgresUrl {
                url,
                password: secret_from(
                    self.database_password_file.as_deref(),
                    "PostgreSQL password",
                )?,
            });
        }
        config.public_url = self.public_url;
        config.registration_secret = registration_secret;
        config.allowed_origins = self.allowed_origins;
        config.app_url = self.app_origin;
        config.max_connections_per_ip = self.max_connections_per_ip;
        config.registrations_per_minute = self.registrations_per_minute;
        config.registrations_per_minute_total = self.registrations_per_minute_total;
        config.max_pair_tokens_per_device = self.max_pair_tokens_per_device;
        config.max_phone_sockets_per_device = self.max_phone_sockets_per_device;
        config.max_pairing_sockets_per_device = self.max_pairing_sockets_per_device;
        config.trusted_proxies = self.trusted_proxies;
        config.metrics_secret = metrics_secret;
        config.max_pair_ttl = Duration::from_secs(self.max_pair_ttl);
        config.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::TlsFiles { cert, key }),
            _ => None,
        };
        Ok(config)
    }
}

fn parse_app_url(text: &str) -> Result<loopsy_webapp::AppUrl, String> {
    loopsy_webapp::AppUrl::parse(text)
}

/// A secret kept in `path`, trimmed; an empty file is refused.
fn secret_from(path: Option<&std::path::Path>, what: &str) -> anyhow::Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    let secret = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} from {}", path.display()))?
        .trim()
        .to_owned();
    anyhow::ensure!(
        !secret.is_empty(),
        "{} is empty; put the {what} in it",
        path.display()
    );
    Ok(Some(secret))
}
