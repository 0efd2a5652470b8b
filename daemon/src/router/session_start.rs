//! `session.start` admission: what this principal may start, with which
//! arguments, and whether the agent's auto-approve flag is added. The session
//! manager then only spawns what was admitted.
//!
//! - A custom command (by id) takes its command line from the daemon's list;
//!   extra caller arguments need `sessions:shell`.
//! - A picker agent needs `sessions:agents` (or `sessions:shell`); without an
//!   auto-approve grant its arguments must pass `policy::agent_args`.
//! - A shell or any other program needs `sessions:shell`: full shell access on
//!   this machine. Its command line still passes the command guard, and an agent
//!   started through a wrapper (`sh -c 'claude …'`, `env claude …`) is refused to
//!   ungranted principals. Both are guard rails, not boundaries.
//! - Environment variables need `sessions:shell` (`LD_PRELOAD` runs code).

use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{Reply, SessionStartParams};

use super::capabilities::Capability;
use super::session_ops::{COMMAND_NOT_FOUND, FORBIDDEN, gone, later, size};
use super::{Principal, Router, Work};
use crate::policy::agent_args;
use crate::policy::command_guard::{self, CommandGuard};
use crate::sessions::{AGENTS, StartSession, StartSpec};

fn forbidden(message: String) -> ApiError {
    ApiError::new(FORBIDDEN, 403, message)
}

pub(super) fn start(
    router: &Router,
    mut params: SessionStartParams,
    principal: &Principal,
) -> Work {
    let capabilities = principal.capabilities();
    let shell_right = capabilities.has(Capability::SessionsShell);
    // A shell can `cd` anywhere; whoever may only start agents starts them only
    // where the path policy admits (never the data dir or a denied path).
    let cwd_to_check = params
        .cwd
        .clone()
        .filter(|_| !shell_right)
        .map(|cwd| (router.path_guard.clone(), cwd));
    if let Some(id) = params.custom_command_id.take() {
        let Some(entry) = router
            .settings
            .config
            .custom_commands
            .iter()
            .find(|c| c.id == id)
        else {
            return Work::Done(Err(ApiError::new(
                COMMAND_NOT_FOUND,
                404,
                format!("No custom command with id {id}; `session.agents` lists them"),
            )));
        };
        if !params.args.is_empty() && !shell_right {
            return Work::Done(Err(forbidden(
                "Arguments added to a custom command need the sessions:shell capability; start it as the owner configured it".into(),
            )));
        }
        // The command comes from the daemon's list, never from the caller.
        params.agent = Some("custom".to_owned());
        params.command = Some(entry.command.clone());
        params.args = entry.args.iter().cloned().chain(params.args).collect();
        params.cwd = params.cwd.or_else(|| entry.cwd.clone());
    } else {
        let shell_or_program =
            params.command.is_some() || matches!(params.agent.as_deref(), None | Some("shell"));
        if shell_or_program && !shell_right {
            return Work::Done(Err(forbidden(format!(
                "Starting a shell or a program needs the sessions:shell capability, which {principal} was not given; agents need sessions:agents"
            ))));
        }
        if !params.env.as_ref().is_none_or(|env| env.is_empty()) && !shell_right {
            return Work::Done(Err(forbidden(
                "Environment variables need the sessions:shell capability (a variable such as LD_PRELOAD runs code)".into(),
            )));
        }
    }
    if let Some(command) = &params.command {
        let execution = &router.settings.config.execution;
        if let Err(refusal) = CommandGuard::new(&execution.denylist, execution.allowlist.as_deref())
            .check(command, &params.args)
        {
            return Work::Done(Err(forbidden(refusal.to_string())));
        }
    }
    let size = match size(params.cols, params.rows) {
        Ok(size) => size,
        Err(error) => return Work::Done(Err(error)),
    };
    let config = &router.settings.config.session;
    let owner = principal.label();
    let spec = StartSpec {
        agent: params.agent.clone(),
        command: params.command.clone(),
        args: Vec::new(),
        cwd: params.cwd.clone(),
        env: params.env.clone().unwrap_or_default().into_iter().collect(),
        size,
        name: params.name.clone(),
        initial_input: params.initial_input.clone(),
        max_total: config.max_sessions as usize,
        max_for_owner: (*principal != Principal::Owner)
            .then_some(config.max_sessions_per_principal as usize),
        owner,
    };
    let granted = super::session_ops::auto_approve_check(router, principal);
    let manager = router.services.sessions.clone();
    later(async move {
        let args = final_args(&params, granted.await)?;
        let cwd = match cwd_to_check {
            Some((guard, cwd)) => Some(admitted_cwd(guard, cwd).await?),
            None => spec.cwd.clone(),
        };
        let spec = StartSpec { args, cwd, ..spec };
        let info = manager.send(StartSession { spec }).await.map_err(gone)??;
        Ok(Reply::ok(info))
    })
}

/// `cwd` resolved and checked by the path policy (off the Router's thread: it
/// reads the disk), as the canonical path the session will start in.
async fn admitted_cwd(
    guard: std::sync::Arc<crate::policy::path_guard::PathGuard>,
    cwd: String,
) -> Result<String, ApiError> {
    let checked = actix_rt::task::spawn_blocking(move || guard.check(&cwd))
        .await
        .map_err(|_| ApiError::internal("The working-directory check failed; see the daemon log"))?
        .map_err(|refusal| {
            forbidden(format!(
                "{refusal}; without the sessions:shell capability a session starts only inside transfer.allowedPaths"
            ))
        })?;
    // A missing directory is reported by the spawn, as for everyone.
    let path = checked.full();
    Ok(path.display().to_string())
}

/// The argv after the program: the agent's auto-approve flag when asked for and
/// granted, then the caller's arguments, vetted unless auto-approve was granted.
fn final_args(params: &SessionStartParams, granted: bool) -> Result<Vec<String>, ApiError> {
    let wanted = params.auto_approve.unwrap_or(false);
    let agent = match (&params.command, params.agent.as_deref()) {
        (None, Some(agent)) if AGENTS.contains(&agent) => Some(agent.to_owned()),
        _ => None,
    };
    if wanted {
        if !granted {
            return Err(forbidden(
                "auto-approve was not granted to you; the owner can grant it with `loopsy auto-approve allow`".into(),
            ));
        }
        let flag = agent
            .as_deref()
            .and_then(agent_args::auto_approve_flag)
            .ok_or_else(|| {
                ApiError::bad_request("auto-approve applies to claude, codex and gemini only")
            })?;
        tracing::warn!(agent = ?agent, "starting an agent with auto-approve");
        return Ok(std::iter::once(flag.to_owned())
            .chain(params.args.iter().cloned())
            .collect());
    }
    if !granted {
        match (&agent, &params.command) {
            (Some(agent), _) => agent_args::vet(agent, &params.args).map_err(forbidden)?,
            (None, Some(command)) => vet_wrapped_agents(command, &params.args)?,
            (None, None) => {}
        }
    }
    Ok(params.args.clone())
}

/// A program that is an agent, or that would start one (a wrapper, a shell's `-c`):
/// the agent itself is vetted; one behind a wrapper is refused.
fn vet_wrapped_agents(command: &str, args: &[String]) -> Result<(), ApiError> {
    let (commands, words) = command_guard::expand(command, args);
    for (index, (base, args)) in commands.iter().enumerate() {
        if !agent_args::is_agent(base) {
            continue;
        }
        if index > 0 {
            return Err(forbidden(format!(
                "'{base}' started through '{}' is refused without auto-approve; start the agent itself (agent: {base})",
                command_guard::base_name(command)
            )));
        }
        agent_args::vet(base, args).map_err(forbidden)?;
    }
    if let Some(word) = words
        .iter()
        .find(|w| agent_args::is_agent(&command_guard::base_name(w)))
    {
        return Err(forbidden(format!(
            "inline code that names '{word}' is refused without auto-approve; start the agent itself"
        )));
    }
    Ok(())
}
