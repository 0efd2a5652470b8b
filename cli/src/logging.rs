//! Log output: human-readable (coloured on a terminal) or JSON lines, on stderr.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command, LogFormat};

/// `LOOPSY_LOG` (an EnvFilter directive) wins; otherwise -v/-vv, otherwise `info`
/// for the daemon and `warn` for one-shot commands, which speak on stdout.
pub fn init(cli: &Cli) {
    let base = match (cli.verbose, &cli.command) {
        (0, Command::Start(_)) => "info",
        (0, _) => "warn",
        (1, _) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("LOOPSY_LOG").unwrap_or_else(|_| EnvFilter::new(base));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
