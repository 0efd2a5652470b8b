//! Starting a session's process: the agent or program resolved on PATH
//! in-process (never through a shell), the working directory, a PTY of the
//! asked size, and the child spawned on its slave with a clean environment.

use std::path::{Path, PathBuf};

use actix::Recipient;
use portable_pty::{CommandBuilder, PtySize};

use super::pty::Spawned;
use super::{AGENTS, DEFAULT_SIZE, SessionError, SessionExited, SessionSettings, StartSpec};
use crate::paths::expand_home;
use crate::services::exec::child_env;

/// A program on PATH (or a path), resolved in-process, never through a shell.
pub fn which(program: &str) -> Option<PathBuf> {
    let executable = |path: &Path| {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|path| executable(path))
}

/// Agents available on this machine: the shell plus those found on PATH.
pub fn available_agents() -> Vec<String> {
    let mut agents = vec!["shell".to_owned()];
    agents.extend(
        AGENTS
            .iter()
            .filter(|a| which(a).is_some())
            .map(|a| (*a).to_owned()),
    );
    agents
}

/// Forks the process `spec` names on a new PTY; `manager` hears of its exit.
pub fn fork(
    spec: &StartSpec,
    settings: &SessionSettings,
    id: String,
    name: Option<String>,
    manager: Recipient<SessionExited>,
) -> Result<Spawned, SessionError> {
    let agent = spec.agent.clone().unwrap_or_else(|| {
        if spec.command.is_some() {
            "custom".into()
        } else {
            "shell".into()
        }
    });
    let (program, mut args) = match (agent.as_str(), &spec.command) {
        (_, Some(command)) => {
            let path = which(command).ok_or_else(|| {
                SessionError::Failed(format!("'{command}' was not found on PATH"))
            })?;
            (path, Vec::new())
        }
        ("shell", None) => {
            let shell = std::env::var("SHELL")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "/bin/sh".into());
            let path = which(&shell).unwrap_or_else(|| PathBuf::from("/bin/sh"));
            (path, vec!["-l".to_owned()])
        }
        (name, None) if AGENTS.contains(&name) => {
            let path =
                which(name).ok_or_else(|| SessionError::AgentNotInstalled(name.to_owned()))?;
            (path, Vec::new())
        }
        (other, None) => {
            return Err(SessionError::Invalid(format!(
                "Unknown agent '{other}'; use shell, {}, or a command",
                AGENTS.join(", ")
            )));
        }
    };
    args.extend(spec.args.iter().cloned());
    let cwd = match &spec.cwd {
        Some(cwd) => expand_home(cwd),
        None => std::env::home_dir().unwrap_or_else(|| PathBuf::from("/")),
    };
    if !cwd.is_dir() {
        return Err(SessionError::Invalid(format!(
            "{} is not a directory",
            cwd.display()
        )));
    }
    let size = spec.size.unwrap_or(DEFAULT_SIZE);
    let pair = portable_pty::native_pty_system()
        .openpty(PtySize {
            rows: size.rows,
            cols: size.cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| SessionError::Failed(e.to_string()))?;
    let mut command = CommandBuilder::new(&program);
    command.args(&args);
    command.cwd(&cwd);
    command.env_clear();
    for (key, value) in child_env(&spec.env) {
        command.env(key, value);
    }
    if !spec.env.iter().any(|(k, _)| k == "TERM") {
        command.env("TERM", "xterm-256color");
    }
    let child = pair
        .slave
        .spawn_command(command)
        .map_err(|e| SessionError::Failed(e.to_string()))?;
    // The slave must close in this process, or the PTY never reports the child's end.
    drop(pair.slave);
    Ok(Spawned {
        id,
        name,
        agent,
        command: program.display().to_string(),
        cwd: cwd.display().to_string(),
        size,
        master: pair.master,
        child,
        ring_bytes: settings.ring_bytes,
        scrollback_lines: settings.scrollback_lines,
        idle_timeout: settings.idle_timeout,
        manager,
        initial_input: spec.initial_input.clone(),
    })
}
