//! `loopsy doctor`: checks the installation and says how to fix each problem.
//! Exit code 1 when any check fails.

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use loopsy_daemon::config::{self, ConfigError, Overrides, Settings};
use loopsy_daemon::paths::DataDir;
use loopsy_daemon::{durable, secrets};
use loopsy_transports::wire::method;
use serde::Serialize;
use serde_json::json;

use crate::daemon_link;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    level: Level,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn add(
        &mut self,
        name: &'static str,
        level: Level,
        detail: impl Into<String>,
        fix: Option<String>,
    ) {
        self.checks.push(Check {
            name,
            level,
            detail: detail.into(),
            fix,
        });
    }
    fn ok(&mut self, name: &'static str, detail: impl Into<String>) {
        self.add(name, Level::Ok, detail, None);
    }
    fn warn(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.add(name, Level::Warn, detail, Some(fix.into()));
    }
    fn fail(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.add(name, Level::Fail, detail, Some(fix.into()));
    }
}

fn check_mode(
    report: &mut Report,
    name: &'static str,
    path: &std::path::Path,
    wanted: u32,
    fix: String,
) -> bool {
    match durable::mode_of(path) {
        Ok(Some(mode)) if mode & 0o077 == 0 => {
            report.ok(name, format!("{} is private ({mode:o})", path.display()));
            true
        }
        Ok(Some(mode)) => {
            report.fail(
                name,
                format!(
                    "{} is readable by others (mode {mode:o}, expected {wanted:o})",
                    path.display()
                ),
                fix,
            );
            true
        }
        Ok(None) => false,
        Err(e) => {
            report.fail(
                name,
                format!("cannot inspect {}: {e}", path.display()),
                "check the path's ownership",
            );
            true
        }
    }
}

pub fn run(data_dir: &DataDir, as_json: bool) -> anyhow::Result<ExitCode> {
    let mut report = Report::default();
    let root = data_dir.root();
    if !check_mode(
        &mut report,
        "data dir",
        root,
        0o700,
        format!(
            "chmod 700 {} (loopsy start also tightens it)",
            root.display()
        ),
    ) {
        report.fail(
            "data dir",
            format!("{} does not exist", root.display()),
            "run `loopsy init`",
        );
    }
    let config_path = data_dir.config();
    let has_config = check_mode(
        &mut report,
        "config file",
        &config_path,
        0o600,
        format!("chmod 600 {}", config_path.display()),
    );
    if !has_config {
        report.fail(
            "config file",
            format!("{} does not exist", config_path.display()),
            "run `loopsy init`",
        );
    }

    let settings = if has_config {
        check_config(&mut report, data_dir)
    } else {
        None
    };
    if has_config {
        check_key(&mut report, data_dir);
    }
    check_daemon(&mut report, data_dir, settings.as_ref());
    check_mcp(&mut report, data_dir);

    let failed = report.checks.iter().any(|c| c.level == Level::Fail);
    if as_json {
        println!("{}", json!({ "ok": !failed, "checks": report.checks }));
    } else {
        for check in &report.checks {
            let tag = match check.level {
                Level::Ok => "[OK]  ",
                Level::Warn => "[WARN]",
                Level::Fail => "[FAIL]",
            };
            println!("{tag} {}: {}", check.name, check.detail);
            if let Some(fix) = &check.fix {
                println!("       fix: {fix}");
            }
        }
        println!(
            "{}",
            if failed {
                "Some checks failed."
            } else {
                "All checks passed."
            }
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether each installed agent has `loopsy mcp` (missing agents are not listed).
fn check_mcp(report: &mut Report, data_dir: &DataDir) {
    use super::mcp_register::{AGENTS, State, server_command, state};
    let Ok(command) = server_command(data_dir) else {
        return;
    };
    for agent in AGENTS {
        let name = match agent.program() {
            "claude" => "mcp: claude",
            "codex" => "mcp: codex",
            "gemini" => "mcp: gemini",
            _ => "mcp: opencode",
        };
        let fix = format!("loopsy mcp add --agent {}", agent.program());
        match state(agent, &command) {
            State::Missing => {}
            State::Registered => report.ok(name, "loopsy mcp is registered"),
            State::NotRegistered => report.warn(name, "installed, without loopsy mcp", fix),
            State::RegisteredElsewhere => report.warn(
                name,
                "loopsy is registered to another binary or data dir",
                fix,
            ),
        }
    }
}

fn check_config(report: &mut Report, data_dir: &DataDir) -> Option<Settings> {
    match Settings::load(data_dir.clone(), &Overrides::default()) {
        Ok(settings) => {
            report.ok("config", format!("{} parses", data_dir.config().display()));
            for warning in &settings.warnings {
                report.warn(
                    "config",
                    warning.clone(),
                    "remove or correct the key (see config-examples/config.yaml)",
                );
            }
            Some(settings)
        }
        Err(error @ ConfigError::Value { .. }) if error.to_string().contains("auth.apiKey") => None,
        Err(error) => {
            report.fail(
                "config",
                error.to_string(),
                "edit the file, or recreate it with `loopsy init --force`",
            );
            None
        }
    }
}

fn check_key(report: &mut Report, data_dir: &DataDir) {
    match config::file_api_key(data_dir) {
        Ok(Some(key)) => {
            let bits = secrets::estimated_bits(&key);
            if bits >= secrets::MIN_KEY_BITS {
                report.ok("api key", format!("strong (about {bits:.0} bits)"));
            } else {
                report.fail(
                    "api key",
                    format!(
                        "weak (about {bits:.0} bits; at least {:.0} needed)",
                        secrets::MIN_KEY_BITS
                    ),
                    "run `loopsy key generate`",
                );
            }
        }
        Ok(None) => report.fail(
            "api key",
            "auth.apiKey is missing or empty",
            "run `loopsy key generate`",
        ),
        Err(_) => {}
    }
}

fn check_daemon(report: &mut Report, data_dir: &DataDir, settings: Option<&Settings>) {
    let server = settings.map(|s| s.config.server.clone());
    match daemon_link::running_pid(data_dir) {
        None => {
            report.warn("daemon", "not running", "start it with `loopsy start`");
            if let Some(server) = &server {
                match TcpListener::bind((server.host.as_str(), server.port)) {
                    Ok(_) => report.ok("port", format!("{}:{} is free", server.host, server.port)),
                    Err(e) => report.fail(
                        "port",
                        format!("cannot listen on {}:{}: {e}", server.host, server.port),
                        "another program uses it: set server.port in config.yaml or pass --port",
                    ),
                }
            }
        }
        Some(pid) => {
            let pid = pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
            let status = match daemon_link::call(data_dir, method::STATUS, None) {
                Ok(status) => {
                    report.ok(
                        "daemon",
                        format!(
                            "running (pid {pid}), answering on {}",
                            data_dir.socket().display()
                        ),
                    );
                    status
                }
                Err(e) => {
                    report.fail(
                        "daemon",
                        format!("running (pid {pid}) but not answering on its socket: {e}"),
                        "restart it: `loopsy stop && loopsy start`",
                    );
                    return;
                }
            };
            check_mode(
                report,
                "socket",
                &data_dir.socket(),
                0o600,
                "restart the daemon; it recreates the socket with mode 600".to_owned(),
            );
            // The running daemon may have been started with --port or --lan: ask it.
            let listen = status
                .pointer("/daemon/listen")
                .and_then(|v| v.as_str())
                .and_then(|listen| listen.rsplit_once(':'))
                .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)));
            if let Some((host, port)) = listen {
                let url = format!("{}/health", daemon_link::api_base(&host, port));
                let agent = daemon_link::http_agent(Duration::from_secs(3));
                match daemon_link::health_node_id(&agent, &url) {
                    Some(node) if Some(node.as_str()) == status["nodeId"].as_str() => {
                        report.ok("port", format!("{url} answers"));
                    }
                    Some(_) => report.fail(
                        "port",
                        format!("{url} is answered by another loopsy daemon"),
                        "give each data dir its own server.port",
                    ),
                    None => report.fail(
                        "port",
                        format!("{url} does not answer"),
                        "check server.host/server.port and your firewall, then restart the daemon",
                    ),
                }
            }
        }
    }
    if let Some(server) = &server
        && (server.host == "0.0.0.0" || server.host == "::")
    {
        report.warn(
                "exposure",
                format!("the API listens on all interfaces ({})", server.host),
                "use 127.0.0.1 unless LAN peers need it; `loopsy start --lan` opens it for one run only",
            );
    }
}
