//! The `loopsy-relay` binary: flags, logging, then [`loopsy_relay::serve`].

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use loopsy_relay::{RelayConfig, serve};

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// Relays end-to-end encrypted traffic between loopsy daemons and phones.
///
/// Laptops (daemons) keep one outbound WebSocket here; phones connect to
/// their laptop through it. The relay stores device and phone secrets as
/// digests and never sees a plaintext byte of a session. Run it behind a TLS
/// proxy (see config-examples/Caddyfile) when it faces the internet.
#[derive(Parser)]
#[command(name = "loopsy-relay", version)]
struct Args {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8787", env = "LOOPSY_RELAY_LISTEN")]
    listen: SocketAddr,
    /// Directory for the relay's database (created if missing).
    #[arg(long, env = "LOOPSY_RELAY_DATA_DIR")]
    data_dir: PathBuf,
    /// The URL phones and laptops use to reach this relay (e.g. https://relay.example.com).
    #[arg(long, env = "LOOPSY_RELAY_PUBLIC_URL")]
    public_url: Option<String>,
    /// File holding a secret that device registration must present
    /// (X-Registration-Secret). Without it, anyone may register a device.
    #[arg(long, env = "LOOPSY_RELAY_REGISTRATION_SECRET_FILE")]
    registration_secret_file: Option<PathBuf>,
    /// A web origin besides the relay's own allowed to open WebSockets (repeatable).
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// Most open WebSockets per client IP address.
    #[arg(long, default_value_t = 256)]
    max_connections_per_ip: usize,
    /// Device registrations allowed per client IP address and minute.
    #[arg(long, default_value_t = 5)]
    registrations_per_minute: u32,
    /// Longest lifetime of a pairing token, in seconds.
    #[arg(long, default_value_t = 3600)]
    max_pair_ttl: u64,
    /// Log format: human (default) or json.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, env = "LOOPSY_LOG_FORMAT")]
    log_format: LogFormat,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOOPSY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let registration_secret = match &args.registration_secret_file {
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
    let mut config = RelayConfig::new(args.listen, args.data_dir);
    config.public_url = args.public_url;
    config.registration_secret = registration_secret;
    config.allowed_origins = args.allowed_origins;
    config.max_connections_per_ip = args.max_connections_per_ip;
    config.registrations_per_minute = args.registrations_per_minute;
    config.max_pair_ttl = Duration::from_secs(args.max_pair_ttl);
    actix_web::rt::System::new().block_on(async move {
        let (server, bound) = serve(config)?;
        tracing::info!(listen = %bound, "loopsy-relay ready");
        server.await.context("the relay stopped with an error")
    })
}
