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
    /// A web origin besides the relay's own allowed to open WebSockets (repeatable).
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,
    /// Most open WebSockets per client IP address.
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Device registrations allowed per client IP address and minute.
    #[arg(long, default_value_t = 5)]
    pub registrations_per_minute: u32,
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
        let registration_secret = match &self.registration_secret_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| {
                        format!(
                            "cannot read the registration secret from {}",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        let mut config = RelayConfig::new(self.listen, data_dir);
        config.public_url = self.public_url;
        config.registration_secret = registration_secret;
        config.allowed_origins = self.allowed_origins;
        config.max_connections_per_ip = self.max_connections_per_ip;
        config.registrations_per_minute = self.registrations_per_minute;
        config.max_pair_ttl = Duration::from_secs(self.max_pair_ttl);
        config.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::TlsFiles { cert, key }),
            _ => None,
        };
        Ok(config)
    }
}
