//! `loopsy context set|get|list|delete`: the local daemon's shared context store.

use std::io::Read;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use loopsy_daemon::paths::DataDir;
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use crate::args::ContextCommand;
use crate::commands::status::human_duration;
use crate::daemon_link;

/// Longest value shown per line by `list`.
const LIST_VALUE_WIDTH: usize = 80;

pub fn run(
    data_dir: &DataDir,
    peer: Option<&str>,
    command: &ContextCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        ContextCommand::Set {
            key,
            value,
            ttl,
            json,
        } => {
            let value = if value == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the value from standard input")?;
                text
            } else {
                value.clone()
            };
            let mut params = json!({ "key": key, "value": value });
            if let Some(ttl) = ttl {
                params["ttl"] = json!(ttl);
            }
            let entry = daemon_link::call_on(data_dir, peer, method::CONTEXT_SET, Some(&params))?;
            if *json {
                println!("{entry}");
            } else {
                println!(
                    "stored {key}{}",
                    ttl.map(|t| format!(" (expires in {t}s)"))
                        .unwrap_or_default()
                );
            }
        }
        ContextCommand::Get { key, json } => {
            let entry = daemon_link::call_on(
                data_dir,
                peer,
                method::CONTEXT_GET,
                Some(&json!({ "key": key })),
            )?;
            if *json {
                println!("{entry}");
            } else {
                println!("{}", entry["value"].as_str().unwrap_or_default());
            }
        }
        ContextCommand::List { prefix, json } => {
            let params = json!({ "prefix": prefix.clone().unwrap_or_default() });
            let answer = daemon_link::call_on(data_dir, peer, method::CONTEXT_LIST, Some(&params))?;
            if *json {
                println!("{answer}");
            } else {
                print_list(
                    answer["entries"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default(),
                );
            }
        }
        ContextCommand::Delete { key, json } => {
            let answer = daemon_link::call_on(
                data_dir,
                peer,
                method::CONTEXT_DELETE,
                Some(&json!({ "key": key })),
            )?;
            if *json {
                println!("{answer}");
            } else {
                println!("deleted {key}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(entries: &[Value]) {
    if entries.is_empty() {
        println!("(no entries)");
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let width = entries
        .iter()
        .filter_map(|e| e["key"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(0);
    for entry in entries {
        let key = entry["key"].as_str().unwrap_or_default();
        let value: String = entry["value"]
            .as_str()
            .unwrap_or_default()
            .replace('\n', "⏎");
        let shown: String = if value.chars().count() > LIST_VALUE_WIDTH {
            value
                .chars()
                .take(LIST_VALUE_WIDTH - 1)
                .chain(['…'])
                .collect()
        } else {
            value
        };
        let expiry = entry["expiresAt"]
            .as_i64()
            .map(|at| {
                format!(
                    "  (expires in {})",
                    human_duration((at - now).max(0) as u64)
                )
            })
            .unwrap_or_default();
        println!("{key:<width$}  {shown}{expiry}");
    }
}
