//! `loopsy pair [host]` (and `loopsy peers add HOST`): pairing two daemons.
//! The daemons do the protocol; this prints what the owner
//! must see (the invite code, the check code, the other machine and what it
//! will be allowed) and asks for the decision.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use loopsy_daemon::paths::DataDir;
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use crate::args::PairPeerArgs;
use crate::daemon_link;

/// How often the daemon is asked how the pairing stands.
const POLL: Duration = Duration::from_millis(250);
/// What a peer may do unless the owner says otherwise.
const DEFAULT_GRANTS: &str = "exec, transfer, context, messages";

pub fn run(data_dir: &DataDir, args: &PairPeerArgs) -> anyhow::Result<ExitCode> {
    match &args.address {
        None => host(data_dir, args),
        Some(address) => join(data_dir, args, address),
    }
}

fn grants_param(args: &PairPeerArgs) -> Value {
    match &args.grant {
        Some(names) => json!(names.iter().map(|n| n.trim()).collect::<Vec<_>>()),
        None => Value::Null,
    }
}

fn grants_text(args: &PairPeerArgs) -> String {
    match &args.grant {
        Some(names) if names.is_empty() => "nothing".to_owned(),
        Some(names) => names.join(", "),
        None => DEFAULT_GRANTS.to_owned(),
    }
}

fn spaced(code: &str) -> String {
    match (code.get(..3), code.get(3..)) {
        (Some(a), Some(b)) => format!("{a} {b}"),
        _ => code.to_owned(),
    }
}

fn flush() {
    let _ = std::io::stdout().flush();
}

/// One line from the terminal (or a script on stdin).
fn ask(question: &str) -> anyhow::Result<String> {
    print!("{question}");
    flush();
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    if read == 0 {
        bail!("no answer (stdin closed); nothing was paired");
    }
    Ok(line.trim().to_owned())
}

/// Shows the check code and the other machine, and returns the owner's decision.
fn decide(args: &PairPeerArgs, status: &Value) -> anyhow::Result<bool> {
    let sas = status["sas"]
        .as_str()
        .context("the daemon sent no check code")?;
    let peer = &status["peer"];
    println!();
    println!("  Check code:   {}", spaced(sas));
    println!();
    println!(
        "  Other machine: {} ({} {}), node {}",
        peer["hostname"].as_str().unwrap_or("?"),
        peer["platform"].as_str().unwrap_or("?"),
        peer["version"].as_str().unwrap_or("?"),
        peer["nodeId"].as_str().unwrap_or("?"),
    );
    println!(
        "  at {}, certificate {}",
        peer["address"].as_str().unwrap_or("?"),
        peer["certFingerprint"].as_str().unwrap_or("?")
    );
    println!("  It will be allowed here: {}", grants_text(args));
    println!();
    if let Some(expected) = &args.expect_check_code {
        let matches = expected.replace(' ', "") == sas;
        println!(
            "{}",
            if matches {
                "The check code matches --expect-check-code."
            } else {
                "The check code differs from --expect-check-code: declining."
            }
        );
        return Ok(matches);
    }
    let answer = ask("Does the other screen show the same check code? Type yes to pair: ")?;
    Ok(answer.eq_ignore_ascii_case("yes") || answer.eq_ignore_ascii_case("y"))
}

/// Polls `method` until its state is not one of `passing`.
fn wait(data_dir: &DataDir, method: &str, passing: &[&str]) -> anyhow::Result<Value> {
    loop {
        let status = daemon_link::call(data_dir, method, None)?;
        let state = status["state"].as_str().unwrap_or("ended");
        if status["active"] == false {
            bail!("the pairing is gone (the window closed or the daemon restarted)");
        }
        if !passing.contains(&state) {
            return Ok(status);
        }
        daemon_link::pause(POLL);
    }
}

fn outcome(status: &Value) -> anyhow::Result<ExitCode> {
    match status["state"].as_str() {
        Some("paired") => {
            let peer = &status["peer"];
            println!(
                "Paired with {}. `loopsy peers list` shows it.",
                peer["hostname"].as_str().unwrap_or("the other machine")
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!(
                "Not paired: {}",
                status["reason"].as_str().unwrap_or("the pairing ended")
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn host(data_dir: &DataDir, args: &PairPeerArgs) -> anyhow::Result<ExitCode> {
    let window = daemon_link::call(data_dir, method::PEERS_PAIR_OPEN, None)?;
    let code = window["code"]
        .as_str()
        .context("the daemon sent no invite code")?;
    let port = window["peerPort"].as_u64().unwrap_or(19533);
    let hostname = window["hostname"].as_str().unwrap_or("this-machine");
    println!(
        "Invite code:  {}   (valid {} s, three wrong tries close it)",
        spaced(code),
        window["expiresInSec"]
    );
    println!();
    println!("On the other machine run:");
    println!(
        "  loopsy pair {hostname}.local:{port}     (or this machine's IP address instead of the name)"
    );
    println!("and type the invite code there. Waiting…");
    flush();
    let status = wait(data_dir, method::PEERS_PAIR_STATUS, &["waiting"])?;
    compare_and_decide(
        data_dir,
        args,
        &status,
        method::PEERS_PAIR_STATUS,
        method::PEERS_PAIR_CONFIRM,
    )
}

/// From the check code on: the owner's decision, then the other side's.
fn compare_and_decide(
    data_dir: &DataDir,
    args: &PairPeerArgs,
    status: &Value,
    status_method: &str,
    confirm_method: &str,
) -> anyhow::Result<ExitCode> {
    if status["state"] != "comparing" {
        return outcome(status);
    }
    let accept = decide(args, status)?;
    let decision = json!({"accept": accept, "grants": grants_param(args)});
    daemon_link::call(data_dir, confirm_method, Some(&decision))?;
    if !accept {
        eprintln!("Declined; nothing was stored.");
        return Ok(ExitCode::FAILURE);
    }
    println!("Waiting for the other machine's owner…");
    flush();
    let status = wait(data_dir, status_method, &["waiting-for-peer", "comparing"])?;
    outcome(&status)
}

pub fn join(data_dir: &DataDir, args: &PairPeerArgs, address: &str) -> anyhow::Result<ExitCode> {
    let code = match &args.code {
        Some(code) => code.replace(' ', ""),
        None => ask("Invite code shown on the other machine: ")?.replace(' ', ""),
    };
    daemon_link::call(
        data_dir,
        method::PEERS_JOIN,
        Some(&json!({"address": address, "code": code})),
    )?;
    let status = wait(data_dir, method::PEERS_JOIN_STATUS, &["connecting"])?;
    compare_and_decide(
        data_dir,
        args,
        &status,
        method::PEERS_JOIN_STATUS,
        method::PEERS_JOIN_CONFIRM,
    )
}
