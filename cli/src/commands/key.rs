//! `loopsy key show|generate`. While the daemon runs it is the only writer of
//! `config.yaml`, so the CLI asks it; otherwise the CLI edits the file itself,
//! under the same write lock.

use std::process::ExitCode;

use anyhow::Context;
use loopsy_daemon::config;
use loopsy_daemon::paths::DataDir;
use loopsy_daemon::secrets;
use loopsy_transports::wire::method;
use serde_json::json;

use crate::daemon_link;

fn key_from_file(data_dir: &DataDir) -> anyhow::Result<String> {
    config::file_api_key(data_dir)?.with_context(|| {
        format!(
            "{} has no auth.apiKey; run `loopsy key generate`",
            data_dir.config().display()
        )
    })
}

fn print_key(key: &str, as_json: bool) {
    if as_json {
        println!("{}", json!({ "apiKey": key }));
    } else {
        println!("{key}");
    }
}

pub fn show(data_dir: &DataDir, as_json: bool) -> anyhow::Result<ExitCode> {
    let key = if daemon_link::running_pid(data_dir).is_some() {
        let answer = daemon_link::call(data_dir, method::KEY_SHOW, None)?;
        answer["apiKey"].as_str().unwrap_or_default().to_owned()
    } else {
        key_from_file(data_dir)?
    };
    print_key(&key, as_json);
    Ok(ExitCode::SUCCESS)
}

pub fn generate(data_dir: &DataDir, as_json: bool) -> anyhow::Result<ExitCode> {
    let key = if daemon_link::running_pid(data_dir).is_some() {
        let answer = daemon_link::call(data_dir, method::KEY_ROTATE, None)?;
        answer["apiKey"].as_str().unwrap_or_default().to_owned()
    } else {
        let key = secrets::generate_api_key()?;
        config::set_api_key(data_dir, &key)?;
        key
    };
    if as_json {
        print_key(&key, true);
    } else {
        println!("New API key: {key}");
        println!(
            "The old key no longer works; update the peers that used it (their auth.allowedKeys)."
        );
    }
    Ok(ExitCode::SUCCESS)
}
