//! Session requests: resolved and run by the session manager and the sessions'
//! own actors; the Router only decides who may ask (and who may pass an agent's
//! auto-approve flags: the owner).

use actix::prelude::*;
use bytes::Bytes;
use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{Reply, ReplyStream, Request};
use rustix::process::Signal;
use serde_json::json;
use tokio::sync::mpsc;

use super::{Principal, Router, Work};
use crate::sessions::pty::{self, ATTACH_QUEUE, Size};
use crate::sessions::{
    ListSessions, RemoveSession, Resolve, SessionError, StartSession, StartSpec,
};

/// Session error codes (the original had none on the LAN; these are loopsy's).
const NOT_FOUND: u32 = 7001;
const AMBIGUOUS: u32 = 7002;
const EXITED: u32 = 7003;
const AGENT_MISSING: u32 = 7004;
const START_FAILED: u32 = 7005;
const FORBIDDEN: u32 = 7006;
const COMMAND_NOT_FOUND: u32 = 7007;

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        let message = error.to_string();
        match error {
            SessionError::NotFound(_) => ApiError::new(NOT_FOUND, 404, message),
            SessionError::Ambiguous(_) => ApiError::new(AMBIGUOUS, 400, message),
            SessionError::Exited(_) => ApiError::new(EXITED, 409, message),
            SessionError::Invalid(_) => ApiError::bad_request(message),
            SessionError::Forbidden(_) => ApiError::new(FORBIDDEN, 403, message),
            SessionError::AgentNotInstalled(_) => ApiError::new(AGENT_MISSING, 400, message),
            SessionError::Failed(_) => ApiError::new(START_FAILED, 500, message),
        }
    }
}

fn gone(_: MailboxError) -> ApiError {
    ApiError::unavailable("The session ended while handling the request")
}

fn parse_signal(name: &str) -> Result<Signal, ApiError> {
    let name = name.trim().to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    Ok(match name {
        "INT" => Signal::INT,
        "TERM" => Signal::TERM,
        "HUP" => Signal::HUP,
        "KILL" => Signal::KILL,
        "QUIT" => Signal::QUIT,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "TSTP" => Signal::TSTP,
        "CONT" => Signal::CONT,
        "WINCH" => Signal::WINCH,
        other => {
            return Err(ApiError::bad_request(format!(
                "Unknown signal '{other}'; use INT, TERM, HUP, KILL, QUIT, USR1, USR2, TSTP, CONT or WINCH"
            )));
        }
    })
}

fn size(cols: Option<u16>, rows: Option<u16>) -> Result<Option<Size>, ApiError> {
    match (cols, rows) {
        (None, None) => Ok(None),
        (cols, rows) => Ok(Some(Size::checked(
            cols.unwrap_or(120),
            rows.unwrap_or(40),
        )?)),
    }
}

fn later(work: impl std::future::Future<Output = Result<Reply, ApiError>> + 'static) -> Work {
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(work)))
}

/// Whether `principal` may start agents with auto-approve. A phone's grant is
/// read from `loopsy.db`, off the Router's thread and only for the requests
/// that need it.
fn auto_approve_check(
    router: &Router,
    principal: &Principal,
) -> impl std::future::Future<Output = bool> + 'static {
    let settled = match principal {
        Principal::Owner => Some(true),
        Principal::Peer { name } => Some(
            router
                .settings
                .config
                .session
                .auto_approve_for
                .iter()
                .any(|granted| granted == name || *granted == principal.label()),
        ),
        Principal::Phone { .. } => None,
        _ => Some(false),
    };
    let phone = match principal {
        Principal::Phone { phone_id } => Some(phone_id.clone()),
        _ => None,
    };
    let data_dir = router.settings.data_dir.clone();
    async move {
        if let Some(answer) = settled {
            return answer;
        }
        let Some(phone_id) = phone else { return false };
        let read = actix_rt::task::spawn_blocking(move || {
            crate::phone::store::PhoneBook::open(&data_dir)
                .and_then(|book| book.may_auto_approve(&phone_id))
        })
        .await;
        match read {
            Ok(Ok(granted)) => granted,
            other => {
                tracing::warn!(result = ?other.map(|r| r.map_err(|e| e.to_string())), "cannot read a phone's auto-approve grant; treating it as not granted");
                false
            }
        }
    }
}

pub(super) fn run(router: &Router, request: Request, principal: &Principal) -> Work {
    let manager = router.services.sessions.clone();
    let resolver = manager.clone();
    let resolve = move |target: String| {
        let manager = resolver.clone();
        async move {
            manager
                .send(Resolve(target))
                .await
                .map_err(gone)?
                .map_err(ApiError::from)
        }
    };
    match request {
        Request::SessionAgents => {
            let may_auto_approve = auto_approve_check(router, principal);
            let custom_commands = router.settings.config.custom_commands.clone();
            later(async move {
                Ok(Reply::ok(json!({
                    "agents": crate::sessions::available_agents(),
                    "customCommands": custom_commands,
                    "autoApprove": may_auto_approve.await,
                })))
            })
        }
        Request::SessionStart(mut params) => {
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
                // The command comes from the daemon's list, never from the caller.
                params.agent = Some("custom".to_owned());
                params.command = Some(entry.command.clone());
                params.args = entry.args.iter().cloned().chain(params.args).collect();
                params.cwd = params.cwd.or_else(|| entry.cwd.clone());
            }
            let may_auto_approve = auto_approve_check(router, principal);
            let spec = match size(params.cols, params.rows) {
                Ok(size) => StartSpec {
                    agent: params.agent,
                    command: params.command,
                    args: params.args,
                    cwd: params.cwd,
                    env: params.env.unwrap_or_default().into_iter().collect(),
                    size,
                    name: params.name,
                    initial_input: params.initial_input,
                    auto_approve: params.auto_approve.unwrap_or(false),
                    may_auto_approve: false,
                },
                Err(error) => return Work::Done(Err(error)),
            };
            later(async move {
                let spec = StartSpec {
                    may_auto_approve: may_auto_approve.await,
                    ..spec
                };
                let info = manager.send(StartSession(spec)).await.map_err(gone)??;
                Ok(Reply::ok(info))
            })
        }
        Request::SessionList => later(async move {
            let sessions = manager.send(ListSessions).await.map_err(gone)?;
            Ok(Reply::ok(json!({ "sessions": sessions })))
        }),
        Request::SessionAttach {
            target,
            from_offset,
            cols,
            rows,
            input,
        } => {
            let size = match size(cols, rows) {
                Ok(size) => size,
                Err(error) => return Work::Done(Err(error)),
            };
            later(async move {
                let (_, session) = resolve(target).await?;
                let (sink, output) = mpsc::channel(ATTACH_QUEUE);
                let attach = pty::AttachClient {
                    from_offset,
                    size,
                    sink,
                    input: input.0,
                };
                let info = session.send(attach).await.map_err(gone)??;
                Ok(Reply::streaming(info, ReplyStream(output)))
            })
        }
        Request::SessionInput { target, data } => later(async move {
            let (id, session) = resolve(target).await?;
            session
                .send(pty::Input {
                    bytes: Bytes::from(data),
                })
                .await
                .map_err(gone)??;
            Ok(Reply::ok(json!({ "success": true, "id": id })))
        }),
        Request::SessionResize { target, cols, rows } => {
            let size = match Size::checked(cols, rows) {
                Ok(size) => size,
                Err(error) => return Work::Done(Err(error.into())),
            };
            later(async move {
                let (id, session) = resolve(target).await?;
                session.send(pty::Resize { size }).await.map_err(gone)??;
                Ok(Reply::ok(json!({ "success": true, "id": id })))
            })
        }
        Request::SessionSignal { target, signal } => {
            let signal = match parse_signal(&signal) {
                Ok(signal) => signal,
                Err(error) => return Work::Done(Err(error)),
            };
            later(async move {
                let (id, session) = resolve(target).await?;
                session
                    .send(pty::SendSignal { signal })
                    .await
                    .map_err(gone)??;
                Ok(Reply::ok(json!({ "success": true, "id": id })))
            })
        }
        Request::SessionStop { target } => later(async move {
            let (id, session) = resolve(target).await?;
            session.send(pty::Stop).await.map_err(gone)?;
            Ok(Reply::ok(json!({ "success": true, "id": id })))
        }),
        Request::SessionRemove { target } => later(async move {
            let id = manager.send(RemoveSession(target)).await.map_err(gone)??;
            Ok(Reply::ok(json!({ "success": true, "id": id })))
        }),
        other => Work::Done(Err(ApiError::internal(format!(
            "'{}' is not a session request",
            other.op()
        )))),
    }
}

/// `commands.add|update|remove`: validated, written to `config.yaml` by the daemon
/// (the single writer), then in effect at once.
pub(super) fn edit_commands(router: &Router, request: Request) -> Work {
    use crate::config::CustomCommand;
    use crate::sessions::validate_custom;
    let mut commands = router.settings.config.custom_commands.clone();
    let outcome: Result<(), ApiError> = (|| match request {
        Request::CommandAdd(params) => {
            let bytes = crate::secrets::random_bytes::<16>()
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let command = CustomCommand {
                id: uuid::Builder::from_random_bytes(bytes)
                    .into_uuid()
                    .to_string(),
                label: params.label.unwrap_or_default(),
                command: params.command.unwrap_or_default(),
                args: params.args.unwrap_or_default(),
                cwd: params.cwd,
                icon: params.icon,
                created_at: Some(crate::audit::now_rfc3339()),
            };
            validate_custom(&command)?;
            commands.push(command);
            Ok(())
        }
        Request::CommandUpdate(params) => {
            let id = params
                .id
                .clone()
                .ok_or_else(|| ApiError::bad_request("commands.update needs the id"))?;
            let entry = commands.iter_mut().find(|c| c.id == id).ok_or_else(|| {
                ApiError::new(
                    COMMAND_NOT_FOUND,
                    404,
                    format!("No custom command with id {id}"),
                )
            })?;
            let mut updated = entry.clone();
            if let Some(label) = params.label {
                updated.label = label;
            }
            if let Some(command) = params.command {
                updated.command = command;
            }
            if let Some(args) = params.args {
                updated.args = args;
            }
            if params.cwd.is_some() {
                updated.cwd = params.cwd;
            }
            if params.icon.is_some() {
                updated.icon = params.icon;
            }
            validate_custom(&updated)?;
            *entry = updated;
            Ok(())
        }
        Request::CommandRemove { id } => {
            let before = commands.len();
            commands.retain(|c| c.id != id);
            if commands.len() == before {
                return Err(ApiError::new(
                    COMMAND_NOT_FOUND,
                    404,
                    format!("No custom command with id {id}"),
                ));
            }
            Ok(())
        }
        other => Err(ApiError::internal(format!(
            "'{}' is not a command edit",
            other.op()
        ))),
    })();
    if let Err(error) = outcome {
        return Work::Done(Err(error));
    }
    let data_dir = router.settings.data_dir.clone();
    let to_write = commands.clone();
    let write = actix_rt::task::spawn_blocking(move || {
        crate::config::set_custom_commands(&data_dir, &to_write)
    });
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(write).map(
        move |written, router, _ctx| match written {
            Ok(Ok(())) => {
                let mut settings = router.settings.clone();
                settings.config.custom_commands = commands;
                let list = json!({ "customCommands": settings.config.custom_commands });
                router.apply(settings);
                Ok(Reply::ok(list))
            }
            Ok(Err(error)) => Err(ApiError::internal(format!(
                "Could not save the custom commands: {error}"
            ))),
            Err(_) => Err(ApiError::internal("The custom-command task failed")),
        },
    )))
}

/// How a grant names a paired phone: `phone:<id>` (ids from `loopsy phone list`).
const PHONE_PREFIX: &str = "phone:";

/// A phone's grant, stored with its pairing in `loopsy.db`.
fn grant_phone(router: &Router, phone_id: String, allow: bool) -> Work {
    let data_dir = router.settings.data_dir.clone();
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(async move {
        let id = phone_id.clone();
        let stored = actix_rt::task::spawn_blocking(move || {
            crate::phone::store::PhoneBook::open(&data_dir)
                .and_then(|book| book.set_auto_approve(&id, allow))
        })
        .await;
        match stored {
            Ok(Ok(true)) => Ok(Reply::ok(
                json!({ "phoneId": phone_id, "autoApprove": allow }),
            )),
            Ok(Ok(false)) => Err(ApiError::new(
                7001,
                404,
                format!("No paired phone '{phone_id}'; `loopsy phone list` shows them"),
            )),
            Ok(Err(e)) => Err(ApiError::internal(format!("Could not save the grant: {e}"))),
            Err(_) => Err(ApiError::internal("The grant task failed")),
        }
    })))
}

/// `grants.autoApprove`: the owner lets a peer (or no longer lets it) start agents
/// with auto-approve. Written to `session.autoApproveFor`; the request itself is
/// the audit record of the grant.
pub(super) fn grant_auto_approve(router: &Router, peer: String, allow: bool) -> Work {
    if let Some(phone_id) = peer.strip_prefix(PHONE_PREFIX) {
        return grant_phone(router, phone_id.to_owned(), allow);
    }
    let config = &router.settings.config;
    if allow && !config.auth.allowed_keys.contains_key(&peer) {
        let known: Vec<&str> = config
            .auth
            .allowed_keys
            .keys()
            .map(String::as_str)
            .collect();
        return Work::Done(Err(ApiError::bad_request(format!(
            "No peer named '{peer}' in auth.allowedKeys (known: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))));
    }
    let mut peers = config.session.auto_approve_for.clone();
    peers.retain(|p| p != &peer);
    if allow {
        peers.push(peer);
    }
    let data_dir = router.settings.data_dir.clone();
    let to_write = peers.clone();
    let write = actix_rt::task::spawn_blocking(move || {
        crate::config::set_auto_approve_for(&data_dir, &to_write)
    });
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(write).map(
        move |written, router, _ctx| match written {
            Ok(Ok(())) => {
                let mut settings = router.settings.clone();
                settings.config.session.auto_approve_for = peers;
                let list = json!({ "autoApproveFor": settings.config.session.auto_approve_for });
                router.apply(settings);
                Ok(Reply::ok(list))
            }
            Ok(Err(error)) => Err(ApiError::internal(format!(
                "Could not save the grant: {error}"
            ))),
            Err(_) => Err(ApiError::internal("The grant task failed")),
        },
    )))
}
