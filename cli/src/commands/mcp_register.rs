//! `loopsy mcp add|remove|status`: registers `loopsy mcp` with the agents on
//! this machine, each through its own command where it has one (Claude Code,
//! Codex, Gemini CLI), and opencode by merging its documented config file
//! (`~/.config/opencode/opencode.json`, other keys untouched). Idempotent: a
//! registration to this binary is left alone, one to another path replaced.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use loopsy_daemon::paths::DataDir;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::args::{McpAgent, McpRegisterArgs};

/// The name every agent knows the server by.
const NAME: &str = "loopsy";

/// Where one agent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The agent is not installed (its program does not answer `--version`).
    Missing,
    NotRegistered,
    /// Registered, to this loopsy.
    Registered,
    /// Registered, to another program (an old install, another data dir).
    RegisteredElsewhere,
}

pub const AGENTS: [McpAgent; 4] = [
    McpAgent::Claude,
    McpAgent::Codex,
    McpAgent::Gemini,
    McpAgent::Opencode,
];

impl McpAgent {
    pub fn program(self) -> &'static str {
        match self {
            Self::Claude => "claude",
            Self::Codex => "codex",
            Self::Gemini => "gemini",
            Self::Opencode => "opencode",
            Self::All => "all",
        }
    }
}

/// The command an agent runs: this binary, its data dir, `mcp`.
pub fn server_command(data_dir: &DataDir) -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe().context("cannot tell where this loopsy binary is")?;
    let root = std::path::absolute(data_dir.root()).unwrap_or_else(|_| data_dir.root().to_owned());
    Ok(vec![
        exe.display().to_string(),
        "--data-dir".into(),
        root.display().to_string(),
        "mcp".into(),
    ])
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn opencode_config() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("opencode").join("opencode.json"))
}

fn read_opencode(path: &Path) -> anyhow::Result<Map<String, Value>> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        Ok(text) => match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => bail!(
                "{} is not a JSON object (comments are not supported); fix it or add the \"mcp\" entry by hand",
                path.display()
            ),
        },
    }
}

/// The major version of the installed opencode, if it answers `--version`.
fn opencode_major() -> Option<u64> {
    let out = Command::new("opencode").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split(|c: char| !c.is_ascii_digit() && c != '.')
        .find(|w| w.contains('.'))
        .and_then(|v| v.split('.').next()?.parse().ok())
}

/// Whether servers go under `mcp.servers` (opencode 2's layout) rather than
/// straight under `mcp` (1.x): the config's own layout decides, else the
/// installed opencode's version.
fn opencode_nested(config: &Map<String, Value>) -> bool {
    if let Some(Value::Object(mcp)) = config.get("mcp") {
        if mcp.get("servers").is_some_and(Value::is_object) {
            return true;
        }
        if mcp.values().any(|v| v.get("type").is_some()) {
            return false;
        }
    }
    opencode_major().is_some_and(|major| major >= 2)
}

/// The loopsy entry of an opencode config, in either layout.
fn opencode_entry(config: &Map<String, Value>) -> Option<&Value> {
    let mcp = config.get("mcp")?;
    mcp.get("servers")
        .and_then(|servers| servers.get(NAME))
        .or_else(|| mcp.get(NAME))
}

/// The argv-style commands one agent is registered with, removed with and
/// listed with.
fn agent_commands(agent: McpAgent, command: &[String]) -> [Vec<String>; 3] {
    let own = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let with = |mut head: Vec<String>, tail: &[String]| {
        head.extend(tail.iter().cloned());
        head
    };
    match agent {
        McpAgent::Claude => [
            with(
                own(&["claude", "mcp", "add", "--scope", "user", NAME, "--"]),
                command,
            ),
            own(&["claude", "mcp", "remove", "--scope", "user", NAME]),
            own(&["claude", "mcp", "list"]),
        ],
        McpAgent::Codex => [
            with(own(&["codex", "mcp", "add", NAME, "--"]), command),
            own(&["codex", "mcp", "remove", NAME]),
            own(&["codex", "mcp", "list"]),
        ],
        _ => [
            with(
                own(&["gemini", "mcp", "add", "--scope", "user", NAME]),
                command,
            ),
            own(&["gemini", "mcp", "remove", "--scope", "user", NAME]),
            own(&["gemini", "mcp", "list"]),
        ],
    }
}

fn run_argv(argv: &[String]) -> anyhow::Result<String> {
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .with_context(|| format!("cannot run {}", argv[0]))?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where `agent` stands with `command`.
pub fn state(agent: McpAgent, command: &[String]) -> State {
    if agent == McpAgent::Opencode {
        let Some(path) = opencode_config() else {
            return State::Missing;
        };
        let entry = read_opencode(&path)
            .ok()
            .and_then(|c| opencode_entry(&c).cloned());
        return match entry {
            None if !installed("opencode") && !path.exists() => State::Missing,
            None => State::NotRegistered,
            Some(entry) if entry["command"] == json!(command) => State::Registered,
            Some(_) => State::RegisteredElsewhere,
        };
    }
    if !installed(agent.program()) {
        return State::Missing;
    }
    let [_, _, list] = agent_commands(agent, command);
    let listed = run_argv(&list).unwrap_or_default();
    // Each agent lists a server on a line starting with (or holding) its name.
    match listed.lines().find(|l| {
        l.split(|c: char| c.is_whitespace() || c == ':')
            .any(|w| w == NAME)
    }) {
        None => State::NotRegistered,
        Some(line) if line.contains(&command[0]) && line.contains(&command[2]) => State::Registered,
        Some(_) => State::RegisteredElsewhere,
    }
}

/// Writes opencode's config with `loopsy` added (or, `remove`, taken out),
/// atomically, leaving every other key as it was.
fn edit_opencode(command: &[String], remove: bool, dry_run: bool) -> anyhow::Result<String> {
    let path = opencode_config().context("no HOME or XDG_CONFIG_HOME to find opencode's config")?;
    let mut config = read_opencode(&path)?;
    let nested = opencode_nested(&config);
    let mcp = config
        .entry("mcp")
        .or_insert_with(|| Value::Object(Map::new()));
    let servers = match mcp {
        Value::Object(mcp) if nested => mcp
            .entry("servers")
            .or_insert_with(|| Value::Object(Map::new())),
        other => other,
    };
    let Value::Object(servers) = servers else {
        bail!(
            "\"mcp\" in {} is not an object; fix it by hand",
            path.display()
        );
    };
    if remove {
        servers.remove(NAME);
    } else {
        servers.insert(
            NAME.into(),
            json!({"type": "local", "command": command, "enabled": true}),
        );
    }
    let text = serde_json::to_string_pretty(&Value::Object(config))? + "\n";
    if !dry_run {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        loopsy_daemon::durable::write_private_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(format!(
        "{} {}",
        if dry_run { "would write" } else { "wrote" },
        path.display()
    ))
}

/// Adds (or removes) the registration with one agent; what was done.
fn apply(
    agent: McpAgent,
    command: &[String],
    remove: bool,
    dry_run: bool,
) -> anyhow::Result<(State, String)> {
    let before = state(agent, command);
    let wanted = if remove {
        State::NotRegistered
    } else {
        State::Registered
    };
    if before == State::Missing {
        return Ok((
            before,
            format!("{} is not installed; nothing to do", agent.program()),
        ));
    }
    if before == wanted {
        return Ok((before, "nothing to change".into()));
    }
    if agent == McpAgent::Opencode {
        return Ok((wanted, edit_opencode(command, remove, dry_run)?));
    }
    let [add, rm, _] = agent_commands(agent, command);
    let mut steps = Vec::new();
    if before != State::NotRegistered {
        steps.push(rm);
    }
    if !remove {
        steps.push(add);
    }
    let mut done = Vec::new();
    for step in steps {
        if !dry_run {
            run_argv(&step)?;
        }
        done.push(format!(
            "{} `{}`",
            if dry_run { "would run" } else { "ran" },
            step.join(" ")
        ));
    }
    Ok((if dry_run { before } else { wanted }, done.join("; ")))
}

fn chosen(agent: McpAgent) -> Vec<McpAgent> {
    match agent {
        McpAgent::All => AGENTS.to_vec(),
        one => vec![one],
    }
}

pub enum Action {
    Add,
    Remove,
    Status,
}

pub fn run(data_dir: &DataDir, args: &McpRegisterArgs, action: Action) -> anyhow::Result<ExitCode> {
    let command = server_command(data_dir)?;
    let mut rows = Vec::new();
    let mut failed = false;
    for agent in chosen(args.agent) {
        let (state, note) = match action {
            Action::Status => (state(agent, &command), String::new()),
            Action::Add | Action::Remove => {
                match apply(
                    agent,
                    &command,
                    matches!(action, Action::Remove),
                    args.dry_run,
                ) {
                    Ok(done) => done,
                    Err(e) => {
                        failed = true;
                        (state(agent, &command), format!("{e:#}"))
                    }
                }
            }
        };
        rows.push(json!({"agent": agent.program(), "state": state, "note": note}));
    }
    if args.json {
        println!("{}", json!({"command": command, "agents": rows}));
    } else {
        for row in &rows {
            let note = row["note"].as_str().unwrap_or_default();
            println!(
                "{:<9} {:<21} {note}",
                row["agent"].as_str().unwrap_or_default(),
                row["state"].as_str().unwrap_or_default()
            );
        }
        if matches!(action, Action::Status) {
            println!("server command: {}", command.join(" "));
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
