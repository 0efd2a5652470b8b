//! `loopsy list` and `loopsy kill`: terminal sessions, one-shot over the socket.

use std::process::ExitCode;

use loopsy_daemon::paths::DataDir;
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use crate::commands::status::human_duration;
use crate::daemon_link;

pub fn list(data_dir: &DataDir, as_json: bool) -> anyhow::Result<ExitCode> {
    let answer = daemon_link::call(data_dir, method::SESSION_LIST, None)?;
    if as_json {
        println!("{answer}");
        return Ok(ExitCode::SUCCESS);
    }
    let sessions = answer["sessions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if sessions.is_empty() {
        println!("no sessions (start one with `loopsy shell`)");
        return Ok(ExitCode::SUCCESS);
    }
    let now = loopsy_daemon::sessions::now_ms();
    println!(
        "{:<8}  {:<16}  {:<8}  {:>8}  {:>6}  STATE",
        "ID", "NAME", "AGENT", "ATTACHED", "IDLE"
    );
    for session in sessions {
        let id = session["id"].as_str().unwrap_or_default();
        let idle = now.saturating_sub(session["lastActivityAt"].as_u64().unwrap_or(now));
        let state = if session["alive"] == true {
            "running".to_owned()
        } else {
            match (session["exitCode"].as_u64(), session["exitSignal"].as_str()) {
                (Some(code), _) => format!("exited {code}"),
                (None, Some(signal)) => format!("killed ({signal})"),
                _ => "exited".to_owned(),
            }
        };
        println!(
            "{:<8}  {:<16}  {:<8}  {:>8}  {:>6}  {state}",
            id.get(..8).unwrap_or(id),
            session["name"].as_str().unwrap_or("-"),
            session["agent"].as_str().unwrap_or("-"),
            session["attachedClientCount"].as_u64().unwrap_or(0),
            human_duration(idle),
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn kill(data_dir: &DataDir, target: &str) -> anyhow::Result<ExitCode> {
    let params: Value = json!({ "id": target });
    let answer = daemon_link::call(data_dir, method::SESSION_STOP, Some(&params))?;
    println!(
        "stopping session {}",
        answer["id"].as_str().unwrap_or(target)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn auto_approve(
    data_dir: &DataDir,
    command: &crate::args::AutoApproveCommand,
) -> anyhow::Result<ExitCode> {
    use crate::args::AutoApproveCommand;
    let peers = match command {
        AutoApproveCommand::List => {
            let settings =
                loopsy_daemon::config::Settings::load(data_dir.clone(), &Default::default())?;
            json!({ "autoApproveFor": settings.config.session.auto_approve_for })
        }
        AutoApproveCommand::Allow { peer } | AutoApproveCommand::Deny { peer } => {
            let allow = matches!(command, AutoApproveCommand::Allow { .. });
            let params = json!({ "peer": peer, "allow": allow });
            let answer = daemon_link::call(data_dir, method::GRANTS_AUTO_APPROVE, Some(&params))?;
            if let Some(phone) = answer["phoneId"].as_str() {
                let now = if allow { "may now" } else { "may no longer" };
                println!("phone {phone} {now} start agents with auto-approve");
                return Ok(ExitCode::SUCCESS);
            }
            answer
        }
    };
    let mut list: Vec<String> = peers["autoApproveFor"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    if matches!(command, AutoApproveCommand::List) {
        // Phones' grants live with their pairing in the daemon.
        if let Ok(phones) = daemon_link::call(data_dir, method::PHONES_LIST, None) {
            list.extend(
                phones["phones"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["autoApprove"] == true)
                    .filter_map(|p| p["phoneId"].as_str())
                    .map(|id| format!("phone:{id}")),
            );
        }
    }
    if list.is_empty() {
        println!("auto-approve: only you (no peer or phone is allowed)");
    } else {
        println!("auto-approve: you and {}", list.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
