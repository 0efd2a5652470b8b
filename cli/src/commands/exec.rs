//! `loopsy exec -- CMD ARGS…`: runs a command through the local daemon, printing
//! its output as it arrives and exiting with its exit code.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use loopsy_daemon::paths::DataDir;
use loopsy_transports::client::{ClientError, UnixRpcClient};
use loopsy_transports::error::code::PEER_CANNOT;
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use crate::args::ExecArgs;
use crate::daemon_link;

/// Shell convention for "killed by signal N".
const SIGNAL_EXIT_BASE: i64 = 128;

fn exit_code_of(result: &Value) -> ExitCode {
    let code = match (result["exitCode"].as_i64(), result["signal"].as_i64()) {
        (Some(code), _) => code,
        (None, Some(signal)) => SIGNAL_EXIT_BASE + signal,
        (None, None) => 1,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Runs the command on a peer that cannot stream (the original TypeScript
/// Loopsy): its output is printed once the command has ended.
fn buffered_on_peer(
    client: &mut UnixRpcClient,
    peer: &str,
    params: &Value,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let result = client.call(
        method::PEERS_CALL,
        Some(&json!({"peer": peer, "method": method::EXEC_RUN, "params": params})),
    )?;
    if as_json {
        println!("{result}");
    } else {
        let _ =
            std::io::stdout().write_all(result["stdout"].as_str().unwrap_or_default().as_bytes());
        let _ =
            std::io::stderr().write_all(result["stderr"].as_str().unwrap_or_default().as_bytes());
        if result["killed"].as_bool() == Some(true) {
            eprintln!("loopsy: the command was stopped (timed out or killed) on {peer}");
        }
    }
    Ok(exit_code_of(&result))
}

pub fn run(data_dir: &DataDir, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let Some((program, rest)) = args.command.split_first() else {
        bail!("name the command to run after `--`, e.g. `loopsy exec -- ls -la`");
    };
    let mut env = serde_json::Map::new();
    for pair in &args.env {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--env takes NAME=VALUE, got '{pair}'");
        };
        env.insert(name.to_owned(), json!(value));
    }
    let mut params = json!({ "command": program, "args": rest });
    if let Some(secs) = args.timeout {
        if !secs.is_finite() || secs <= 0.0 {
            bail!("--timeout must be a positive number of seconds");
        }
        params["timeout"] = json!(secs * 1000.0);
    }
    if let Some(cwd) = &args.cwd {
        params["cwd"] = json!(cwd);
    }
    if !env.is_empty() {
        params["env"] = Value::Object(env);
    }
    let mut client = UnixRpcClient::connect(&data_dir.socket(), daemon_link::CALL_TIMEOUT)?
        .without_read_timeout()?;
    if let Some(peer) = &args.peer {
        // Everything after this goes to the peer, through this daemon: the
        // command streams from there as it would here.
        match client.call(method::PEERS_TUNNEL, Some(&json!({ "peer": peer }))) {
            Ok(_) => {}
            // A TypeScript Loopsy has no tunnel: its buffered run instead.
            Err(ClientError::Rpc(failure))
                if failure.loopsy_code() == Some(u64::from(PEER_CANNOT)) =>
            {
                // On a connection of its own: this one was handed to the tunnel.
                let mut fresh =
                    UnixRpcClient::connect(&data_dir.socket(), daemon_link::CALL_TIMEOUT)?
                        .without_read_timeout()?;
                return buffered_on_peer(&mut fresh, peer, &params, args.json);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if args.json {
        let result = client.call(method::EXEC_RUN, Some(&params))?;
        println!("{result}");
        return Ok(exit_code_of(&result));
    }
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr());
    let result = client.call_streaming(method::EXEC_STREAM, Some(&params), |event| {
        let data = event["data"].as_str().unwrap_or_default();
        // A closed stdout (`| head`) is not our error; the command goes on until it ends.
        let _ = match event["type"].as_str() {
            Some("stdout") => stdout
                .write_all(data.as_bytes())
                .and_then(|()| stdout.flush()),
            Some("stderr") => stderr.write_all(data.as_bytes()),
            _ => Ok(()),
        };
    })?;
    if result["timedOut"].as_bool() == Some(true) {
        eprintln!("loopsy: the command timed out and was stopped");
    }
    Ok(exit_code_of(&result))
}
