//! `loopsy status`: the daemon's own account of itself, over the Unix socket.

use std::process::ExitCode;

use loopsy_daemon::paths::DataDir;
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use crate::args::StatusArgs;
use crate::{EXIT_NOT_RUNNING, daemon_link};

pub fn run(data_dir: &DataDir, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let as_json = args.json;
    if daemon_link::running_pid(data_dir).is_none() {
        if as_json {
            println!("{}", json!({ "running": false }));
        } else {
            println!("loopsy daemon: not running (start it with `loopsy start`)");
        }
        return Ok(ExitCode::from(EXIT_NOT_RUNNING));
    }
    let mut status = daemon_link::call_on(data_dir, args.peer.as_deref(), method::STATUS, None)?;
    if as_json {
        status["running"] = json!(true);
        println!("{status}");
        return Ok(ExitCode::SUCCESS);
    }
    print_human(&status);
    Ok(ExitCode::SUCCESS)
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("?")
}

fn number(value: &Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

pub fn human_duration(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m {}s", secs / 60, secs % 60),
        3600..=86_399 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

fn print_human(status: &Value) {
    println!(
        "loopsy daemon: running (pid {}, up {})",
        number(status, "/daemon/pid"),
        human_duration(number(status, "/uptime"))
    );
    println!("  node id:   {}", text(status, "/nodeId"));
    println!(
        "  hostname:  {} ({})",
        text(status, "/hostname"),
        text(status, "/platform")
    );
    println!(
        "  API:       http://{}/api/v1",
        text(status, "/daemon/listen")
    );
    println!("  socket:    {}", text(status, "/daemon/socket"));
    println!("  data dir:  {}", text(status, "/daemon/dataDir"));
    println!(
        "  version:   {} (protocol {})",
        text(status, "/daemon/version"),
        text(status, "/version")
    );
    println!(
        "  peers {} ({} online) · jobs {} active · context {} entries",
        number(status, "/peers/total"),
        number(status, "/peers/online"),
        number(status, "/jobs/active"),
        number(status, "/context/entries")
    );
}
