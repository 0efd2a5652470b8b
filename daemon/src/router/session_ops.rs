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

pub(super) fn run(router: &Router, request: Request, principal: &Principal) -> Work {
    let manager = router.services.sessions.clone();
    let resolve = move |target: String| {
        let manager = manager.clone();
        async move {
            manager
                .send(Resolve(target))
                .await
                .map_err(gone)?
                .map_err(ApiError::from)
        }
    };
    let manager = router.services.sessions.clone();
    match request {
        Request::SessionStart(params) => {
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
                    may_auto_approve: matches!(principal, Principal::Owner),
                },
                Err(error) => return Work::Done(Err(error)),
            };
            later(async move {
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
