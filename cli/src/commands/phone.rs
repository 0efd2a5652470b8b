//! `loopsy mobile pair`, `loopsy phone list|revoke`, `loopsy relay configure|status`:
//! the phone path's commands. The daemon does the work; these print.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use loopsy_daemon::paths::DataDir;
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use crate::args::{MobileCommand, PhoneCommand, RelayCommand};
use crate::daemon_link;

/// How often `mobile pair` asks whether the phone finished.
const PAIR_POLL: Duration = Duration::from_millis(500);

pub fn mobile(data_dir: &DataDir, command: &MobileCommand) -> anyhow::Result<ExitCode> {
    let MobileCommand::Pair(args) = command;
    let window = daemon_link::call(
        data_dir,
        method::MOBILE_PAIR,
        Some(&json!({ "ttlSeconds": args.ttl, "appUrl": args.app_url })),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&window)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_pairing(&window)?;
    wait_for_phone(data_dir, &window)
}

/// Prints the QR code, the URL and the code of a pairing window.
pub fn print_pairing(window: &Value) -> anyhow::Result<()> {
    let url = window["url"]
        .as_str()
        .context("the daemon sent no pairing URL")?;
    if only_this_machine(url) {
        println!(
            "This relay is on this machine only: the code below opens in a browser\n\
             here, not on a phone. For a phone on the same Wi-Fi, run `loopsy up --lan`;\n\
             from anywhere, use a relay you run (`loopsy relay configure https://…`).\n"
        );
    }
    println!(
        "{}",
        super::qr::for_terminal(url, super::qr::colour_wanted())?
    );
    if only_this_machine(url) {
        println!("Open on this machine:\n  {url}\n");
    } else {
        println!("Scan the code with your phone's camera, or open:\n  {url}\n");
    }
    println!(
        "Then type this code on the phone:   {}\n",
        window["code"].as_str().unwrap_or("????")
    );
    println!(
        "This laptop's key fingerprint: {}",
        window["fingerprint"].as_str().unwrap_or("")
    );
    Ok(())
}

/// Whether `url` names this machine (a loopback relay), which no phone reaches.
fn only_this_machine(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '#'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Asks once how a pairing window stands and says so when it is settled:
/// `Some(true)` paired, `Some(false)` closed (wrong codes or expired), `None` still open.
pub fn report_pairing(data_dir: &DataDir, token_id: &str) -> anyhow::Result<Option<bool>> {
    let status = daemon_link::call(
        data_dir,
        method::MOBILE_PAIR_STATUS,
        Some(&json!({ "tokenId": token_id })),
    )?;
    Ok(match status["state"].as_str() {
        Some("paired") => {
            println!(
                "Paired: {} (phone {}, key {})",
                status["label"].as_str().unwrap_or("a phone"),
                status["phoneId"].as_str().unwrap_or(""),
                status["fingerprint"].as_str().unwrap_or("")
            );
            Some(true)
        }
        Some("dead") => {
            eprintln!(
                "Five wrong codes were typed: this pairing is closed. Run `loopsy mobile pair` again."
            );
            Some(false)
        }
        Some("expired") => {
            eprintln!("The pairing code expired. Run `loopsy mobile pair` again.");
            Some(false)
        }
        _ => None,
    })
}

fn wait_for_phone(data_dir: &DataDir, window: &Value) -> anyhow::Result<ExitCode> {
    let token_id = window["tokenId"].as_str().unwrap_or_default();
    println!("Waiting for the phone… (Ctrl-C to stop; the code stays valid until it expires)");
    loop {
        daemon_link::pause(PAIR_POLL);
        match report_pairing(data_dir, token_id)? {
            Some(true) => return Ok(ExitCode::SUCCESS),
            Some(false) => return Ok(ExitCode::FAILURE),
            None => {}
        }
    }
}

pub fn phone(data_dir: &DataDir, command: &PhoneCommand) -> anyhow::Result<ExitCode> {
    match command {
        PhoneCommand::List(args) => {
            let answer = daemon_link::call(data_dir, method::PHONES_LIST, None)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&answer["phones"])?);
                return Ok(ExitCode::SUCCESS);
            }
            let phones = answer["phones"].as_array().cloned().unwrap_or_default();
            if phones.is_empty() {
                println!("No paired phones. Pair one with `loopsy mobile pair`.");
            }
            let when = |ms: &Value| ms.as_i64().map(loopsy_daemon::audit::utc_minutes);
            for phone in phones {
                println!(
                    "{}{}",
                    phone["label"].as_str().unwrap_or("(no name)"),
                    if phone["autoApprove"] == true {
                        "  (may auto-approve)"
                    } else {
                        ""
                    }
                );
                println!("  id         {}", phone["phoneId"].as_str().unwrap_or(""));
                println!(
                    "  paired     {}",
                    when(&phone["pairedAt"]).unwrap_or_default()
                );
                println!(
                    "  last seen  {}",
                    when(&phone["lastSeen"]).unwrap_or_else(|| "not since pairing".to_owned())
                );
                println!(
                    "  key        {}",
                    phone["fingerprint"].as_str().unwrap_or("")
                );
            }
        }
        PhoneCommand::Revoke { phone_id } => {
            daemon_link::call(
                data_dir,
                method::PHONES_REVOKE,
                Some(&json!({ "phoneId": phone_id })),
            )?;
            println!("Revoked {phone_id}: its connections are cut and it can no longer connect.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn relay(data_dir: &DataDir, command: &RelayCommand) -> anyhow::Result<ExitCode> {
    match command {
        RelayCommand::Configure {
            url,
            force,
            ca_file,
        } => {
            let ca_file = ca_file
                .as_ref()
                .map(std::path::absolute)
                .transpose()
                .context("cannot resolve the CA file's path")?;
            let params = json!({ "url": url, "force": force, "caFile": ca_file });
            let answer = daemon_link::call(data_dir, method::RELAY_CONFIGURE, Some(&params))?;
            let verb = if answer["reconnected"] == true {
                "Already registered at"
            } else {
                "Registered at"
            };
            println!(
                "{verb} {} as device {}. Pair a phone with `loopsy mobile pair`.",
                answer["url"].as_str().unwrap_or(url),
                answer["deviceId"].as_str().unwrap_or("")
            );
        }
        RelayCommand::Status(args) => {
            let status = daemon_link::call(data_dir, method::RELAY_STATUS, None)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
                return Ok(ExitCode::SUCCESS);
            }
            if status["configured"] != true {
                println!(
                    "No relay configured. Run `loopsy relay configure <url>` (or `loopsy up`)."
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "relay {} — {} (device {})",
                status["url"].as_str().unwrap_or(""),
                if status["connected"] == true {
                    "connected"
                } else {
                    "not connected"
                },
                status["deviceId"].as_str().unwrap_or("")
            );
            if let Some(error) = status["lastError"].as_str() {
                println!("last error: {error}");
            }
        }
        RelayCommand::Serve(args) => {
            let config = (**args)
                .clone()
                .into_config(data_dir.root().join("relay"))?;
            actix_rt::System::new().block_on(async move {
                let (server, bound) = loopsy_relay::serve(config)?;
                tracing::info!(listen = %bound, "loopsy relay ready");
                server.await.context("the relay stopped with an error")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
