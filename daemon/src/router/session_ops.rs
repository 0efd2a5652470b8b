//! Session requests: resolved and run by the session manager and the sessions'
//! own actors. The Router decides who may ask and which sessions each principal
//! sees (`Scope`): the owner and peers holding `sessions:all` see every session,
//! phones the owner's, other peers only the ones they started. `session.start`
//! is admitted in `session_start`.

use actix::prelude::*;
use bytes::Bytes;
use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{Reply, ReplyStream, Request};
use rustix::process::Signal;
use serde_json::json;
use tokio::sync::mpsc;

use super::capabilities::Capability;
use super::{Principal, Router, Work};
use crate::sessions::pty::{self, ATTACH_QUEUE, Size};
use crate::sessions::{ListSessions, RemoveSession, RenameSession, Resolve, Scope, SessionError};

pub(super) use loopsy_transports::error::code::{
    AGENT_MISSING, COMMAND_NOT_FOUND, SESSION_AMBIGUOUS as AMBIGUOUS, SESSION_EXITED as EXITED,
    SESSION_FORBIDDEN as FORBIDDEN, SESSION_LIMIT, SESSION_NOT_FOUND as NOT_FOUND,
    SESSION_START_FAILED as START_FAILED,
};

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
            SessionError::Limit(_) => ApiError::new(SESSION_LIMIT, 429, message),
        }
    }
}

pub(super) fn gone(_: MailboxError) -> ApiError {
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

pub(super) fn size(cols: Option<u16>, rows: Option<u16>) -> Result<Option<Size>, ApiError> {
    match (cols, rows) {
        (None, None) => Ok(None),
        (cols, rows) => Ok(Some(Size::checked(
            cols.unwrap_or(120),
            rows.unwrap_or(40),
        )?)),
    }
}

pub(super) fn later(
    work: impl std::future::Future<Output = Result<Reply, ApiError>> + 'static,
) -> Work {
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(work)))
}

/// Whether `principal` may start agents with auto-approve. A phone's grant is
/// read from `loopsy.db`, off the Router's thread and only for the requests
/// that need it.
pub(super) fn auto_approve_check(
    router: &Router,
    principal: &Principal,
) -> impl std::future::Future<Output = bool> + 'static {
    let settled = match principal {
        Principal::Owner => Some(true),
        Principal::Peer { name, .. } => Some(
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
    let read = phone.map(|phone_id| {
        super::phone_ops::with_phone_book(router, move |book| book.may_auto_approve(&phone_id))
    });
    async move {
        if let Some(answer) = settled {
            return answer;
        }
        let Some(read) = read else { return false };
        // A grant that cannot be read is no grant (with_phone_book logs why).
        read.await.unwrap_or(false)
    }
}

/// Which sessions `principal` sees and drives.
pub(super) fn scope_of(principal: &Principal) -> Scope {
    match principal {
        Principal::Owner | Principal::OwnerKey { .. } => Scope::All,
        Principal::Phone { .. } => Scope::OwnerSide,
        other if other.capabilities().has(Capability::SessionsAll) => Scope::All,
        other => Scope::Own(other.label()),
    }
}

pub(super) fn run(router: &Router, request: Request, principal: &Principal) -> Work {
    let manager = router.services.sessions.clone();
    let resolver = manager.clone();
    let scope = scope_of(principal);
    let resolve_scope = scope.clone();
    let resolve = move |target: String| {
        let manager = resolver.clone();
        let scope = resolve_scope.clone();
        async move {
            manager
                .send(Resolve { target, scope })
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
        Request::SessionStart(params) => super::session_start::start(router, params, principal),
        Request::SessionList => later(async move {
            let sessions = manager.send(ListSessions { scope }).await.map_err(gone)?;
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
        Request::SessionRename { target, name } => later(async move {
            let id = manager
                .send(RenameSession {
                    target,
                    scope,
                    name,
                })
                .await
                .map_err(gone)??;
            Ok(Reply::ok(json!({ "success": true, "id": id })))
        }),
        Request::SessionRemove { target } => later(async move {
            let id = manager
                .send(RemoveSession { target, scope })
                .await
                .map_err(gone)??;
            Ok(Reply::ok(json!({ "success": true, "id": id })))
        }),
        Request::SessionRead {
            target,
            from_offset,
            max_bytes,
            strip_ansi,
        } => later(async move {
            let (_, session) = resolve(target).await?;
            super::session_view_ops::read(session, from_offset, max_bytes, strip_ansi).await
        }),
        Request::SessionScreen { target } => later(async move {
            let (_, session) = resolve(target).await?;
            super::session_view_ops::screen(session).await
        }),
        Request::SessionWait {
            target,
            pattern,
            from_offset,
            timeout_ms,
        } => later(async move {
            let (_, session) = resolve(target).await?;
            let timeout = std::time::Duration::from_millis(timeout_ms);
            super::session_view_ops::wait(session, pattern, from_offset, timeout).await
        }),
        other => Work::Done(Err(ApiError::internal(format!(
            "'{}' is not a session request",
            other.op()
        )))),
    }
}
