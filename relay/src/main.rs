//! The `loopsy-relay` binary: flags, logging, then [`loopsy_relay::serve`].

use std::io::IsTerminal;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use loopsy_relay::serve;
use loopsy_relay::serve_args::ServeArgs;

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
    /// Directory for the relay's database (created if missing).
    #[arg(long, env = "LOOPSY_RELAY_DATA_DIR")]
    data_dir: std::path::PathBuf,
    #[command(flatten)]
    serve: ServeArgs,
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
    let config = args.serve.into_config(args.data_dir)?;
    actix_web::rt::System::new().block_on(async move {
        let (server, bound) = serve(config)?;
        tracing::info!(listen = %bound, "loopsy-relay ready");
        server.await.context("the relay stopped with an error")
    })
}
