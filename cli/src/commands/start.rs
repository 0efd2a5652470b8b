//! `loopsy start`: run the daemon in the foreground, or spawn it detached and
//! return once its `/api/v1/health` answers with this data dir's node id.

use std::fs::File;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use loopsy_daemon::config::{Overrides, Settings};
use loopsy_daemon::paths::DataDir;
use loopsy_daemon::{durable, run};

use crate::args::{Cli, LogFormat, StartArgs};
use crate::daemon_link;

/// How long a background start waits for the daemon to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Interval between readiness probes: short, since a cold start takes milliseconds.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);

pub fn run(data_dir: &DataDir, args: &StartArgs, cli: &Cli) -> anyhow::Result<ExitCode> {
    if args.detached {
        // A session of its own: no controlling terminal, no SIGHUP when it closes.
        if let Err(e) = rustix::process::setsid() {
            tracing::warn!(error = %e, "could not detach from the terminal session");
        }
    }
    let overrides = Overrides {
        port: args.port,
        peer_port: args.peer_port,
        lan: args.lan,
    };
    let settings = Settings::load(data_dir.clone(), &overrides)?;
    if args.foreground {
        let detached = args.detached;
        run::run(settings, overrides, |started| {
            if !detached {
                eprintln!(
                    "loopsy daemon serving on {:?}; Ctrl-C stops it",
                    started.http
                );
            }
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(pid) = daemon_link::running_pid(data_dir) {
        bail!(
            "a loopsy daemon is already running for {} (pid {}); stop it with `loopsy stop`",
            data_dir.root().display(),
            pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
        );
    }
    for warning in &settings.warnings {
        eprintln!("warning: {warning}");
    }
    start_background(data_dir, args, cli, &settings)
}

fn start_background(
    data_dir: &DataDir,
    args: &StartArgs,
    cli: &Cli,
    settings: &Settings,
) -> anyhow::Result<ExitCode> {
    durable::ensure_private_dir(data_dir.root()).context("cannot prepare the data dir")?;
    durable::ensure_private_dir(&data_dir.logs()).context("cannot prepare the logs dir")?;
    let log_path = data_dir.daemon_log();
    let log = durable::open_private_append(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = std::env::current_exe().context("cannot find the loopsy executable to start")?;
    let mut command = Command::new(exe);
    command
        .arg("--data-dir")
        .arg(data_dir.root())
        .arg("--log-format")
        .arg(match cli.log_format {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        });
    for _ in 0..cli.verbose {
        command.arg("-v");
    }
    command.args(["start", "--foreground", "--detached"]);
    if args.lan {
        command.arg("--lan");
    }
    if let Some(port) = args.port {
        command.arg("--port").arg(port.to_string());
    }
    if let Some(port) = args.peer_port {
        command.arg("--peer-port").arg(port.to_string());
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cannot share the log file")?)
        .stderr(log);
    let mut child = command.spawn().context("cannot start the daemon process")?;

    let server = &settings.config.server;
    let api = daemon_link::api_base(&server.host, server.port);
    let url = format!("{api}/health");
    let agent = daemon_link::http_agent(Duration::from_millis(500));
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child
            .try_wait()
            .context("cannot watch the daemon process")?
        {
            bail!(
                "the daemon exited ({status}) before it was ready:\n{}",
                log_tail(&log_path, log_start)
            );
        }
        if let Some(node_id) = daemon_link::health_node_id(&agent, &url) {
            let ours = std::fs::read_to_string(data_dir.node_id()).unwrap_or_default();
            if ours.trim() == node_id {
                break;
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            bail!(
                "the daemon did not answer {url} within {} s; see {}",
                READY_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        daemon_link::pause(PROBE_INTERVAL);
    }
    println!("loopsy daemon started (pid {})", child.id());
    println!("  API:    {api}");
    println!("  socket: {}", data_dir.socket().display());
    println!("  logs:   {}", log_path.display());
    if server.host != "127.0.0.1" && server.host != "localhost" && server.host != "::1" {
        println!(
            "  note:   listening on {}: peers on your network can reach the API (with a key)",
            server.host
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What the daemon wrote to its log during this start.
fn log_tail(path: &std::path::Path, from: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.seek(SeekFrom::Start(from));
        let _ = file.take(64 * 1024).read_to_string(&mut text);
    }
    if text.trim().is_empty() {
        format!("(nothing in {})", path.display())
    } else {
        text
    }
}
