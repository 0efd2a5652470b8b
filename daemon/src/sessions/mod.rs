//! Long-lived terminal sessions: the `SessionManager` actor keeps the registry
//! (ids, unique names, exited sessions kept for a while) and starts one
//! [`pty::PtySession`] actor per session. The Router dispatches session requests
//! here after auth and policy.

mod coalesce;
mod emulator;
mod fanout;
mod fd;
mod input;
mod pace;
pub mod pty;
mod ring;
mod spawn;
pub mod text;

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use actix_rt::ArbiterHandle;
use futures_util::future::join_all;
use serde_json::Value;

use pty::{PtySession, Size, Spawned};
pub use spawn::{available_agents, which};

/// Default terminal size (spec §3.2).
pub const DEFAULT_SIZE: Size = Size {
    cols: 120,
    rows: 40,
};
/// Built-in agents besides the shell, found on PATH.
pub const AGENTS: &[&str] = &["claude", "codex", "gemini", "opencode"];
/// Limits of a custom command's fields, checked on add and on update.
pub const MAX_LABEL: usize = 80;
pub const MAX_COMMAND: usize = 200;
pub const MAX_ARGS: usize = 32;
pub const MAX_ARG: usize = 1000;
pub const MAX_CWD: usize = 4096;
pub const MAX_ICON: usize = 64;

/// Checks a custom command's fields (on every path: add and update).
pub fn validate_custom(command: &crate::config::CustomCommand) -> Result<(), SessionError> {
    let check = |field: &str, value: &str, max: usize, required: bool| {
        let len = value.chars().count();
        if (required && value.trim().is_empty()) || len > max || value.contains('\0') {
            return Err(SessionError::Invalid(format!(
                "{field} must be {} to {max} characters (got {len})",
                usize::from(required)
            )));
        }
        Ok(())
    };
    check("label", &command.label, MAX_LABEL, true)?;
    check("command", &command.command, MAX_COMMAND, true)?;
    if command.args.len() > MAX_ARGS {
        return Err(SessionError::Invalid(format!(
            "at most {MAX_ARGS} args (got {})",
            command.args.len()
        )));
    }
    for arg in &command.args {
        check("each arg", arg, MAX_ARG, false)?;
    }
    check("cwd", command.cwd.as_deref().unwrap_or(""), MAX_CWD, false)?;
    check(
        "icon",
        command.icon.as_deref().unwrap_or(""),
        MAX_ICON,
        false,
    )
}
/// Longest session name.
const MAX_NAME: usize = 64;

pub use loopsy_transports::clock::now_ms;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    #[error("No session matches '{0}'; `loopsy list` shows the sessions")]
    NotFound(String),
    #[error("'{0}' matches more than one session; use more of the id")]
    Ambiguous(String),
    #[error("Session {0} has exited")]
    Exited(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("Agent '{0}' is not installed (not found on PATH)")]
    AgentNotInstalled(String),
    #[error("Could not start the session: {0}")]
    Failed(String),
    #[error("{0}")]
    Limit(String),
}

/// Limits and timings of sessions, from the configuration.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub ring_bytes: usize,
    pub scrollback_lines: usize,
    pub idle_timeout: Duration,
    pub exited_retention: Duration,
}

/// What to start, as the Router admitted it (arguments final: any auto-approve
/// flag is already in them).
#[derive(Debug, Clone, Default)]
pub struct StartSpec {
    pub agent: Option<String>,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub env: Vec<(String, String)>,
    pub size: Option<Size>,
    pub name: Option<String>,
    pub initial_input: Option<String>,
    /// Who starts it (the principal's label): it sees and drives it.
    pub owner: String,
    /// Live sessions allowed in all, and for this owner (`None`: no own cap).
    pub max_total: usize,
    pub max_for_owner: Option<usize>,
}

/// Which sessions a principal sees and drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every session (the owner, or a peer holding `sessions:all`).
    All,
    /// The sessions of the machine's owner: started on this machine, with the
    /// owner's key, or from one of the owner's phones.
    OwnerSide,
    /// The sessions this principal started.
    Own(String),
}

impl Scope {
    fn admits(&self, owner: &str) -> bool {
        match self {
            Self::All => true,
            Self::OwnerSide => {
                owner == "owner" || owner == "owner-key" || owner.starts_with("phone:")
            }
            Self::Own(label) => owner == label,
        }
    }
}

struct Entry {
    addr: Addr<PtySession>,
    name: Option<String>,
    alive: bool,
    owner: String,
}

pub struct SessionManager {
    settings: SessionSettings,
    sessions: HashMap<String, Entry>,
    /// Sessions forked whose actor is starting on a pool arbiter.
    starting: HashMap<String, Reserved>,
    /// The arbiters sessions run on, in turn; empty: the manager's own.
    pool: Vec<ArbiterHandle>,
    next_arbiter: usize,
}

impl SessionManager {
    pub fn new(settings: SessionSettings) -> Self {
        Self {
            settings,
            sessions: HashMap::new(),
            starting: HashMap::new(),
            pool: Vec::new(),
            next_arbiter: 0,
        }
    }

    /// Runs sessions on these arbiters, in turn, rather than on the manager's
    /// own: a session flooding output then shares no thread with the daemon's
    /// connections, and sessions spread over the cores.
    pub fn with_pool(mut self, pool: Vec<ArbiterHandle>) -> Self {
        self.pool = pool;
        self
    }

    /// A session by id, unique name or unique id prefix, among those `scope` sees:
    /// to anyone else a session outside it does not exist.
    fn resolve(
        &self,
        target: &str,
        scope: &Scope,
    ) -> Result<(String, Addr<PtySession>), SessionError> {
        let visible = |entry: &&Entry| scope.admits(&entry.owner);
        if let Some(entry) = self.sessions.get(target).filter(visible) {
            return Ok((target.to_owned(), entry.addr.clone()));
        }
        let pick = |matches: Vec<(&String, &Entry)>| match matches.as_slice() {
            [(id, entry)] => Some(Ok(((*id).clone(), entry.addr.clone()))),
            [] => None,
            _ => Some(Err(SessionError::Ambiguous(target.to_owned()))),
        };
        let by_name: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, e)| visible(e) && e.alive && e.name.as_deref() == Some(target))
            .collect();
        if let Some(found) = pick(by_name) {
            return found;
        }
        if target.len() >= 4 {
            let by_prefix: Vec<_> = self
                .sessions
                .iter()
                .filter(|(id, e)| visible(e) && id.starts_with(target))
                .collect();
            if let Some(found) = pick(by_prefix) {
                return found;
            }
        }
        Err(SessionError::NotFound(target.to_owned()))
    }

    /// `name` trimmed, empty as none, checked: printable, at most
    /// [`MAX_NAME`], and not the name of another running session (`except`
    /// itself, when renaming).
    fn checked_name(
        &self,
        name: Option<&str>,
        owner: &str,
        except: Option<&str>,
    ) -> Result<Option<String>, SessionError> {
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        if name.len() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(SessionError::Invalid(format!(
                "A session name is 1 to {MAX_NAME} printable characters"
            )));
        }
        let running = self
            .sessions
            .iter()
            .filter(|(_, e)| e.alive)
            .map(|(id, e)| (id, &e.name, &e.owner))
            .chain(self.starting.iter().map(|(id, r)| (id, &r.name, &r.owner)));
        if let Some((id, _, other)) = running
            .into_iter()
            .find(|(id, n, _)| n.as_deref() == Some(name) && Some(id.as_str()) != except)
        {
            // Names are unique across principals, but another's session
            // is not described, not even by its id.
            let which = if other == owner {
                format!(" (id {id})")
            } else {
                String::new()
            };
            return Err(SessionError::Invalid(format!(
                "A session named '{name}' is already running{which}; choose another name"
            )));
        }
        Ok(Some(name.to_owned()))
    }

    /// Checks the name and the caps (counting sessions still starting), then forks.
    fn prepare(
        &mut self,
        spec: StartSpec,
        ctx: &mut Context<Self>,
    ) -> Result<Prepared, SessionError> {
        let name = self.checked_name(spec.name.as_deref(), &spec.owner, None)?;
        let live = |owner: Option<&str>| {
            let running = self
                .sessions
                .values()
                .filter(|e| e.alive && owner.is_none_or(|o| e.owner == o))
                .count();
            let starting = self
                .starting
                .values()
                .filter(|r| owner.is_none_or(|o| r.owner == o))
                .count();
            running + starting
        };
        if live(None) >= spec.max_total {
            return Err(SessionError::Limit(format!(
                "{} sessions are running, the most this machine allows (session.maxSessions); stop one first",
                spec.max_total
            )));
        }
        if let Some(max) = spec.max_for_owner
            && live(Some(&spec.owner)) >= max
        {
            return Err(SessionError::Limit(format!(
                "{} already runs {max} sessions, the most one principal may (session.maxSessionsPerPrincipal); stop one first",
                spec.owner
            )));
        }
        let id = new_id()?;
        let spawned = spawn::fork(
            &spec,
            &self.settings,
            id.clone(),
            name.clone(),
            ctx.address().recipient(),
        )?;
        Ok(Prepared {
            id,
            name,
            owner: spec.owner,
            spawned,
        })
    }

    /// Registers a started session.
    fn register(&mut self, prepared: Reserved, addr: Addr<PtySession>) {
        self.sessions.insert(
            prepared.id,
            Entry {
                addr,
                name: prepared.name,
                alive: true,
                owner: prepared.owner,
            },
        );
    }
}

/// A session forked and ready to be started as an actor.
struct Prepared {
    id: String,
    name: Option<String>,
    owner: String,
    spawned: Spawned,
}

/// What stays with the manager while a session's actor starts on its arbiter.
struct Reserved {
    id: String,
    name: Option<String>,
    owner: String,
}

fn new_id() -> Result<String, SessionError> {
    let bytes =
        crate::secrets::random_bytes::<16>().map_err(|e| SessionError::Failed(e.to_string()))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

impl Actor for SessionManager {
    type Context = Context<Self>;
}

/// Start a session.
#[derive(Message)]
#[rtype(result = "Result<Value, SessionError>")]
pub struct StartSession {
    pub spec: StartSpec,
}

impl Handler<StartSession> for SessionManager {
    type Result = ResponseActFuture<Self, Result<Value, SessionError>>;
    fn handle(&mut self, msg: StartSession, ctx: &mut Self::Context) -> Self::Result {
        let prepared = match self.prepare(msg.spec, ctx) {
            Ok(prepared) => prepared,
            Err(error) => return Box::pin(actix::fut::ready(Err(error))),
        };
        let Prepared {
            id,
            name,
            owner,
            spawned,
        } = prepared;
        let reserved = Reserved {
            id: id.clone(),
            name,
            owner,
        };
        let Some(arbiter) = self
            .pool
            .get(self.next_arbiter % self.pool.len().max(1))
            .cloned()
        else {
            // No pool (tests): the session runs on the manager's arbiter.
            let started = PtySession::new(spawned).map(|session| {
                let info = session.info();
                (info, session.start())
            });
            return Box::pin(actix::fut::ready(started.map(|(info, addr)| {
                self.register(reserved, addr);
                info
            })));
        };
        self.next_arbiter = self.next_arbiter.wrapping_add(1);
        self.starting.insert(id.clone(), reserved);
        // The actor is made on its arbiter's thread: its PTY descriptor registers
        // with that thread's reactor.
        let (sender, started) = tokio::sync::oneshot::channel();
        arbiter.spawn(async move {
            let started_here = PtySession::new(spawned).map(|session| {
                let info = session.info();
                (info, session.start())
            });
            let _ = sender.send(started_here);
        });
        Box::pin(
            actix::fut::wrap_future::<_, Self>(started).map(move |started, manager, _ctx| {
                let reserved = manager.starting.remove(&id);
                let (info, addr) = started
                    .map_err(|_| SessionError::Failed("the session's arbiter stopped".into()))??;
                if let Some(reserved) = reserved {
                    manager.register(reserved, addr);
                }
                Ok(info)
            }),
        )
    }
}

/// The sessions a scope sees, live and recently exited.
#[derive(Message)]
#[rtype(result = "Vec<Value>")]
pub struct ListSessions {
    pub scope: Scope,
}

impl Handler<ListSessions> for SessionManager {
    type Result = ResponseFuture<Vec<Value>>;
    fn handle(&mut self, msg: ListSessions, _ctx: &mut Self::Context) -> Self::Result {
        let asks: Vec<_> = self
            .sessions
            .values()
            .filter(|e| msg.scope.admits(&e.owner))
            .map(|e| e.addr.send(pty::GetInfo))
            .collect();
        Box::pin(async move {
            let mut infos: Vec<Value> = join_all(asks)
                .await
                .into_iter()
                .filter_map(Result::ok)
                .collect();
            infos.sort_by_key(|info| info["createdAt"].as_u64().unwrap_or(0));
            infos
        })
    }
}

/// Id and actor of a session named by id, unique name, or unique id prefix (≥ 4),
/// among those `scope` sees.
#[derive(Message)]
#[rtype(result = "Result<(String, Addr<PtySession>), SessionError>")]
pub struct Resolve {
    pub target: String,
    pub scope: Scope,
}

impl Handler<Resolve> for SessionManager {
    type Result = Result<(String, Addr<PtySession>), SessionError>;
    fn handle(&mut self, msg: Resolve, _ctx: &mut Self::Context) -> Self::Result {
        self.resolve(&msg.target, &msg.scope)
    }
}

/// Forget a session (killing it if it still runs).
#[derive(Message)]
#[rtype(result = "Result<String, SessionError>")]
pub struct RemoveSession {
    pub target: String,
    pub scope: Scope,
}

impl Handler<RemoveSession> for SessionManager {
    type Result = Result<String, SessionError>;
    fn handle(&mut self, msg: RemoveSession, _ctx: &mut Self::Context) -> Self::Result {
        let (id, addr) = self.resolve(&msg.target, &msg.scope)?;
        addr.do_send(pty::Shutdown);
        self.sessions.remove(&id);
        Ok(id)
    }
}

/// Gives a session another name (or none), among those `scope` sees.
#[derive(Message)]
#[rtype(result = "Result<String, SessionError>")]
pub struct RenameSession {
    pub target: String,
    pub scope: Scope,
    pub name: Option<String>,
}

impl Handler<RenameSession> for SessionManager {
    type Result = Result<String, SessionError>;
    fn handle(&mut self, msg: RenameSession, _ctx: &mut Self::Context) -> Self::Result {
        let (id, addr) = self.resolve(&msg.target, &msg.scope)?;
        let owner = self
            .sessions
            .get(&id)
            .map(|e| e.owner.clone())
            .unwrap_or_default();
        let name = self.checked_name(msg.name.as_deref(), &owner, Some(&id))?;
        if let Some(entry) = self.sessions.get_mut(&id) {
            entry.name.clone_from(&name);
        }
        addr.do_send(pty::Rename { name });
        Ok(id)
    }
}

/// Sent by a session when its process has exited.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionExited {
    pub id: String,
}

impl Handler<SessionExited> for SessionManager {
    type Result = ();
    fn handle(&mut self, msg: SessionExited, ctx: &mut Self::Context) {
        if let Some(entry) = self.sessions.get_mut(&msg.id) {
            entry.alive = false;
        }
        // Kept so clients can still see the last screen and the exit status.
        ctx.run_later(self.settings.exited_retention, move |act, _| {
            if let Some(entry) = act.sessions.remove(&msg.id) {
                entry.addr.do_send(pty::Shutdown);
            }
        });
    }
}

/// Daemon shutdown: end every session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutdownAll;

impl Handler<ShutdownAll> for SessionManager {
    type Result = ();
    fn handle(&mut self, _msg: ShutdownAll, _ctx: &mut Self::Context) {
        for (_, entry) in self.sessions.drain() {
            entry.addr.do_send(pty::Shutdown);
        }
    }
}
