//! Every operation, declared once. One entry gives an operation's JSON-RPC
//! method and the parser of its params, its REST route, its rate family, who may ask it, the capability it
//! needs, its guards, what its audit line records, which transports may carry
//! its streaming form, and its handler. Admission, rate limiting, dispatch, the
//! audit label, JSON-RPC parsing and the list in `docs/architecture.md` all come
//! from here.
//!
//! Adding an operation: a `Request` variant (and its params type) in
//! `loopsy_transports::wire` (the wire vocabulary), its parser in `rpc_params`,
//! then one entry below and its handler. The tests check that every method the wire parses has an entry and
//! that the architecture doc lists them all.

use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{Evidence, RateFamily, Request, TransportKind, method};

use super::capabilities::{Capability, Need};
use super::message_ops::run as message;
use super::rpc_params::{self as rpc, Parse};
use super::{Principal, Router, Work};
use super::{
    context_ops, exec_ops, mcp_ops, ops, peer_ops, phone_ops, picker_ops, session_ops, transfer_ops,
};

/// Who may ask, before capabilities are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without credentials.
    Public,
    /// Any authenticated principal (then capabilities decide).
    Authenticated,
    /// The owner on the Unix socket only.
    Owner,
    /// The owner, or the owner's key over HTTP.
    OwnerOrOwnerKey,
    /// The owner and the owner's phones.
    OwnerOrPhones,
    /// The daemon's relay link, for a phone channel it cannot yet vouch for;
    /// no other principal may ask these, and it may ask nothing else.
    RelayChannel,
}

/// A check an operation passes beyond admission (documented here, applied by its handler).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// `execution.denylist`/`allowlist` on the command line.
    Command,
    /// `transfer.allowedPaths`/`deniedPaths`, hard links, regular files.
    Path,
    /// `session.maxSessions`, `session.maxSessionsPerPrincipal`.
    SessionCap,
    /// `execution.maxConcurrent` / `transfer.maxConcurrentPerPrincipal`.
    Concurrency,
}

/// What the operation's audit line records besides who, what, outcome and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audited {
    Outcome,
    /// Also the program and arguments it starts (never typed input).
    CommandLine,
}

/// The doors a request comes in by, as far as streaming goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Unix,
    LanRest,
    LanRpc,
    Relay,
}

impl Carrier {
    pub fn of(evidence: &Evidence) -> Self {
        match (evidence.transport(), evidence) {
            // A peer's framed WebSocket carries what the Unix socket carries.
            (_, Evidence::LanHttp(http)) if http.framed => Self::Unix,
            (_, Evidence::LanHttp(http)) if http.json_rpc => Self::LanRpc,
            (TransportKind::LanHttp, _) => Self::LanRest,
            (TransportKind::UnixSocket, _) => Self::Unix,
            (TransportKind::Relay, _) => Self::Relay,
        }
    }
}

type Handler = fn(&mut Router, Request, &Principal) -> Work;

#[derive(Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    /// Its JSON-RPC params into the request.
    pub(super) parse: Parse,
    pub rest: Option<&'static str>,
    pub family: RateFamily,
    pub access: Access,
    /// Offered to phones (within `access`).
    pub phones: bool,
    pub need: Need,
    /// Read by the handlers' own checks; listed in the architecture doc.
    #[cfg_attr(not(test), allow(dead_code))]
    pub guards: &'static [Guard],
    pub audit: Audited,
    /// For an operation that streams: the carriers that can take its stream.
    pub streams_over: Option<&'static [Carrier]>,
    pub(super) handler: Handler,
}

/// The defaults most entries share.
const fn op(method: &'static str, parse: Parse, handler: Handler) -> Operation {
    Operation {
        method,
        parse,
        rest: None,
        family: RateFamily::Default,
        access: Access::Authenticated,
        phones: false,
        need: Need::Nothing,
        guards: &[],
        audit: Audited::Outcome,
        streams_over: None,
        handler,
    }
}

impl Operation {
    const fn rest(self, route: &'static str) -> Self {
        Self {
            rest: Some(route),
            ..self
        }
    }
    const fn family(self, family: RateFamily) -> Self {
        Self { family, ..self }
    }
    const fn access(self, access: Access) -> Self {
        Self { access, ..self }
    }
    const fn phones(self) -> Self {
        Self {
            phones: true,
            ..self
        }
    }
    const fn needs(self, need: Need) -> Self {
        Self { need, ..self }
    }
    const fn guards(self, guards: &'static [Guard]) -> Self {
        Self { guards, ..self }
    }
    const fn audits_command_line(self) -> Self {
        Self {
            audit: Audited::CommandLine,
            ..self
        }
    }
    const fn streams_over(self, carriers: &'static [Carrier]) -> Self {
        Self {
            streams_over: Some(carriers),
            ..self
        }
    }
}

const CONTEXT: Need = Need::One(Capability::Context);
const EXEC: Need = Need::One(Capability::Exec);
const TRANSFER: Need = Need::One(Capability::Transfer);
const SESSIONS: Need = Need::Sessions;
const MESSAGES: Need = Need::One(Capability::Messages);

fn context(r: &mut Router, q: Request, _: &Principal) -> Work {
    context_ops::run(r, q)
}
fn exec(r: &mut Router, q: Request, p: &Principal) -> Work {
    exec_ops::run(r, q, p)
}
fn transfer(r: &mut Router, q: Request, p: &Principal) -> Work {
    transfer_ops::run(r, q, p)
}
fn session(r: &mut Router, q: Request, p: &Principal) -> Work {
    session_ops::run(r, q, p)
}
fn commands(r: &mut Router, q: Request, _: &Principal) -> Work {
    picker_ops::edit_commands(r, q)
}
fn grant(r: &mut Router, q: Request, _: &Principal) -> Work {
    match q {
        Request::GrantAutoApprove { peer, allow } => picker_ops::grant_auto_approve(r, peer, allow),
        other => not_mine(other),
    }
}
fn relay(r: &mut Router, q: Request, _: &Principal) -> Work {
    ops::to_relay_link(r, q)
}
fn health(r: &mut Router, _: Request, _: &Principal) -> Work {
    Work::Done(Ok(ops::health(r)))
}
fn identity(r: &mut Router, _: Request, _: &Principal) -> Work {
    Work::Done(Ok(ops::identity(r)))
}
fn status(r: &mut Router, _: Request, _: &Principal) -> Work {
    Work::Done(Ok(ops::status(r)))
}
fn key_show(r: &mut Router, _: Request, _: &Principal) -> Work {
    Work::Done(Ok(ops::key_show(r)))
}
fn key_rotate(r: &mut Router, _: Request, _: &Principal) -> Work {
    Work::Later(ops::key_rotate(r))
}
fn daemon_stop(r: &mut Router, _: Request, _: &Principal) -> Work {
    Work::Done(Ok(ops::stop(r)))
}
fn answered_by_admission(_: &mut Router, q: Request, _: &Principal) -> Work {
    match q {
        Request::Unknown { method, path } => {
            Work::Done(Err(ApiError::route_not_found(&method, &path)))
        }
        Request::Malformed { error, .. } => Work::Done(Err(error)),
        other => not_mine(other),
    }
}

fn not_mine(request: Request) -> Work {
    Work::Done(Err(ApiError::internal(format!(
        "'{}' reached the wrong handler",
        request.op()
    ))))
}

/// Carriers of a stream of events or terminal bytes.
const UNIX_REST_RELAY: &[Carrier] = &[Carrier::Unix, Carrier::LanRest, Carrier::Relay];
/// Files move over the socket's binary frames and the REST routes.
const UNIX_REST: &[Carrier] = &[Carrier::Unix, Carrier::LanRest];
const UNIX_RELAY: &[Carrier] = &[Carrier::Unix, Carrier::Relay];
/// Relayed files: the socket's binary frames only.
const UNIX: &[Carrier] = &[Carrier::Unix];

/// Unknown routes and methods: answered 404 after authentication.
pub const UNKNOWN: &str = "unknown";
/// Requests the transport could not parse (when no operation is named).
pub const MALFORMED: &str = "rpc";

pub static OPERATIONS: &[Operation] = &[
    op(method::HEALTH, rpc::health, health)
        .rest("GET /api/v1/health")
        .family(RateFamily::Unmetered)
        .access(Access::Public)
        .phones(),
    op(method::IDENTITY, rpc::identity, identity)
        .rest("GET /api/v1/identity")
        .phones(),
    op(method::STATUS, rpc::status, status)
        .rest("GET /api/v1/status")
        .phones(),
    op(method::DAEMON_STOP, rpc::daemon_stop, daemon_stop).access(Access::OwnerOrOwnerKey),
    op(method::KEY_SHOW, rpc::key_show, key_show).access(Access::Owner),
    op(method::KEY_ROTATE, rpc::key_rotate, key_rotate).access(Access::Owner),
    op(method::CONTEXT_SET, rpc::context_set, context)
        .rest("PUT /api/v1/context/:key")
        .family(RateFamily::Context)
        .needs(CONTEXT),
    op(method::CONTEXT_GET, rpc::context_get, context)
        .rest("GET /api/v1/context/:key")
        .family(RateFamily::Context)
        .needs(CONTEXT),
    op(method::CONTEXT_DELETE, rpc::context_delete, context)
        .rest("DELETE /api/v1/context/:key")
        .family(RateFamily::Context)
        .needs(CONTEXT),
    op(method::CONTEXT_LIST, rpc::context_list, context)
        .rest("GET /api/v1/context?prefix=")
        .family(RateFamily::Context)
        .needs(CONTEXT),
    op(method::EXEC_RUN, rpc::exec_run, exec)
        .rest("POST /api/v1/execute")
        .family(RateFamily::Execute)
        .needs(EXEC)
        .guards(&[Guard::Command, Guard::Concurrency])
        .audits_command_line(),
    op(method::EXEC_STREAM, rpc::exec_stream, exec)
        .rest("POST /api/v1/execute/stream")
        .family(RateFamily::Execute)
        .needs(EXEC)
        .guards(&[Guard::Command, Guard::Concurrency])
        .audits_command_line()
        .streams_over(UNIX_REST_RELAY),
    op(method::EXEC_JOBS, rpc::exec_jobs, exec)
        .rest("GET /api/v1/execute/jobs")
        .needs(EXEC),
    op(method::EXEC_CANCEL, rpc::exec_cancel, exec)
        .rest("DELETE /api/v1/execute/:jobId")
        .needs(EXEC),
    op(method::TRANSFER_PUSH, rpc::binary_only, transfer)
        .rest("POST /api/v1/transfer/push")
        .family(RateFamily::Transfer)
        .needs(TRANSFER)
        .guards(&[Guard::Path, Guard::Concurrency])
        .streams_over(UNIX_REST),
    op(method::TRANSFER_PULL, rpc::transfer_pull, transfer)
        .rest("POST /api/v1/transfer/pull")
        .family(RateFamily::Transfer)
        .needs(TRANSFER)
        .guards(&[Guard::Path, Guard::Concurrency])
        .streams_over(UNIX_REST),
    op(method::TRANSFER_LIST, rpc::transfer_list, transfer)
        .rest("POST /api/v1/transfer/list")
        .family(RateFamily::Transfer)
        .needs(TRANSFER)
        .guards(&[Guard::Path, Guard::Concurrency]),
    op(method::SESSION_START, rpc::session_start, session)
        .family(RateFamily::Session)
        .phones()
        .needs(SESSIONS)
        .guards(&[Guard::Command, Guard::SessionCap])
        .audits_command_line(),
    op(method::SESSION_LIST, rpc::session_list, session)
        .phones()
        .needs(SESSIONS),
    op(method::SESSION_ATTACH, rpc::binary_only, session)
        .phones()
        .needs(SESSIONS)
        .streams_over(UNIX_RELAY),
    op(method::SESSION_INPUT, rpc::session_input, session)
        .phones()
        .needs(SESSIONS),
    op(method::SESSION_RESIZE, rpc::session_resize, session)
        .phones()
        .needs(SESSIONS),
    op(method::SESSION_SIGNAL, rpc::session_signal, session)
        .phones()
        .needs(SESSIONS),
    op(method::SESSION_STOP, rpc::session_stop, session)
        .phones()
        .needs(SESSIONS),
    op(method::SESSION_REMOVE, rpc::session_remove, session)
        .phones()
        .needs(SESSIONS),
    op(method::SESSION_RENAME, rpc::session_rename, session)
        .phones()
        .needs(SESSIONS),
    op(method::SESSION_READ, rpc::session_read, session).needs(SESSIONS),
    op(method::SESSION_SCREEN, rpc::session_screen, session).needs(SESSIONS),
    op(method::SESSION_WAIT, rpc::session_wait, session).needs(SESSIONS),
    op(method::SESSION_AGENTS, rpc::session_agents, session)
        .phones()
        .needs(SESSIONS),
    op(method::COMMANDS_ADD, rpc::commands_add, commands)
        .access(Access::OwnerOrPhones)
        .phones(),
    op(method::COMMANDS_UPDATE, rpc::commands_update, commands)
        .access(Access::OwnerOrPhones)
        .phones(),
    op(method::COMMANDS_REMOVE, rpc::commands_remove, commands)
        .access(Access::OwnerOrPhones)
        .phones(),
    op(method::GRANTS_AUTO_APPROVE, rpc::grants_auto_approve, grant).access(Access::Owner),
    op(
        method::MOBILE_PAIR,
        rpc::mobile_pair,
        phone_ops::open_window,
    )
    .family(RateFamily::Pair)
    .access(Access::Owner),
    op(
        method::MOBILE_PAIR_STATUS,
        rpc::mobile_pair_status,
        phone_ops::window_status,
    )
    .access(Access::Owner),
    op(method::PHONES_LIST, rpc::phones_list, relay).access(Access::Owner),
    op(method::PHONES_REVOKE, rpc::phones_revoke, relay).access(Access::Owner),
    op(method::RELAY_CONFIGURE, rpc::relay_configure, relay).access(Access::Owner),
    op(method::RELAY_STATUS, rpc::relay_status, relay).access(Access::Owner),
    op(
        method::PHONE_PAIR_OPEN,
        rpc::relay_link_only,
        phone_ops::pairing_opened,
    )
    .family(RateFamily::Pair)
    .access(Access::RelayChannel),
    op(
        method::PHONE_PAIR_CODE,
        rpc::relay_link_only,
        phone_ops::code_offered,
    )
    .family(RateFamily::Unmetered)
    .access(Access::RelayChannel),
    op(
        method::PHONE_PAIRED,
        rpc::relay_link_only,
        phone_ops::paired,
    )
    .family(RateFamily::Unmetered)
    .access(Access::RelayChannel),
    // Default family: a stranger may knock as often as the relay lets it, and
    // each knock reads loopsy.db.
    op(
        method::PHONE_CONNECT,
        rpc::relay_link_only,
        phone_ops::connecting,
    )
    .access(Access::RelayChannel),
    op(
        method::PHONE_REVOKED_AT_RELAY,
        rpc::relay_link_only,
        phone_ops::revoked_at_relay,
    )
    .family(RateFamily::Unmetered)
    .access(Access::RelayChannel),
    // LAN peers: the owner's side, on the Unix socket only (a pairing window
    // cannot be opened over the network).
    op(method::PEERS_PAIR_OPEN, rpc::peers_pair_open, peer_ops::run)
        .family(RateFamily::Pair)
        .access(Access::Owner),
    op(
        method::PEERS_PAIR_STATUS,
        rpc::peers_pair_status,
        peer_ops::run,
    )
    .access(Access::Owner),
    op(
        method::PEERS_PAIR_CONFIRM,
        rpc::peers_pair_confirm,
        peer_ops::run,
    )
    .access(Access::Owner),
    op(method::PEERS_JOIN, rpc::peers_join, peer_ops::run)
        .family(RateFamily::Pair)
        .access(Access::Owner),
    op(
        method::PEERS_JOIN_STATUS,
        rpc::peers_join_status,
        peer_ops::run,
    )
    .access(Access::Owner),
    op(
        method::PEERS_JOIN_CONFIRM,
        rpc::peers_join_confirm,
        peer_ops::run,
    )
    .access(Access::Owner),
    op(method::PEERS_LIST, rpc::peers_list, peer_ops::run).access(Access::Owner),
    op(method::PEERS_REMOVE, rpc::peers_remove, peer_ops::run).access(Access::Owner),
    op(method::PEERS_CALL, rpc::peers_call, peer_ops::run).access(Access::Owner),
    op(
        method::PEERS_TYPESCRIPT_ADD,
        rpc::peers_typescript_add,
        peer_ops::run,
    )
    .access(Access::Owner),
    op(
        method::PEERS_TYPESCRIPT_INVITE,
        rpc::peers_typescript_invite,
        peer_ops::run,
    )
    .access(Access::Owner),
    op(method::PEERS_TRANSFER_PUSH, rpc::binary_only, peer_ops::run)
        .family(RateFamily::Transfer)
        .access(Access::Owner)
        .streams_over(UNIX),
    op(
        method::PEERS_TRANSFER_PULL,
        rpc::peers_transfer_pull,
        peer_ops::run,
    )
    .family(RateFamily::Transfer)
    .access(Access::Owner)
    .streams_over(UNIX),
    // What another daemon sends: the pairing steps (anyone may knock, over
    // TLS only, rate limited per address; the window decides) and unpairing.
    op(method::PEER_PAIR_HELLO, rpc::peer_pair_hello, peer_ops::run)
        .family(RateFamily::Pair)
        .access(Access::Public),
    op(
        method::PEER_PAIR_FINISH,
        rpc::peer_pair_finish,
        peer_ops::run,
    )
    .family(RateFamily::Pair)
    .access(Access::Public),
    op(method::PEER_PAIR_STEP, rpc::peer_pair_step, peer_ops::run).access(Access::Public),
    op(method::PEER_UNPAIR, rpc::peer_unpair, peer_ops::run),
    op(method::PEERS_TUNNEL, rpc::binary_only, peer_ops::run)
        .access(Access::Owner)
        .streams_over(UNIX),
    op(method::PEER_FRAMED, rpc::binary_only, peer_ops::run),
    op(method::MESSAGES_SEND, rpc::messages_send, message).access(Access::OwnerOrOwnerKey),
    op(method::MESSAGES_INBOX, rpc::messages_inbox, message).access(Access::OwnerOrOwnerKey),
    op(method::MESSAGES_ACK, rpc::messages_ack, message).access(Access::OwnerOrOwnerKey),
    op(
        method::MESSAGES_ACK_STATUS,
        rpc::messages_ack_status,
        message,
    )
    .access(Access::OwnerOrOwnerKey),
    op(method::MESSAGE_DELIVER, rpc::message_deliver, message).needs(MESSAGES),
    op(method::MESSAGE_ACKED, rpc::message_acked, message).needs(MESSAGES),
    op(method::MCP_ATTACH, rpc::mcp_attach, mcp_ops::run)
        .access(Access::Owner)
        .streams_over(UNIX),
    op(UNKNOWN, rpc::not_a_method, answered_by_admission).phones(),
    MALFORMED_ENTRY,
];

/// What an unparseable request is admitted as: authenticated, no capability.
const MALFORMED_ENTRY: Operation = op(MALFORMED, rpc::not_a_method, answered_by_admission).phones();

/// The entry of `name` (a request's `op()`); a name without one is admitted as
/// malformed, never as anything more.
pub fn named(name: &str) -> &'static Operation {
    OPERATIONS
        .iter()
        .find(|o| o.method == name)
        .unwrap_or(&MALFORMED_ENTRY)
}

/// A JSON-RPC call parsed by the entry of the method it names; a method with no
/// entry is answered as unknown (`rpc`, method not found).
pub fn parse_call(method: &str, params: Option<&serde_json::Value>) -> Request {
    let parsed = match OPERATIONS
        .iter()
        .find(|o| o.method == method && ![UNKNOWN, MALFORMED].contains(&method))
    {
        Some(operation) => (operation.parse)(method, params),
        // `session.detach` ends an attach inside a framed connection.
        None if method == method::SESSION_DETACH => rpc::binary_only(method, params),
        None => Err(ApiError::method_not_found(method)),
    };
    parsed.unwrap_or_else(|error| Request::Malformed {
        op: OPERATIONS
            .iter()
            .find(|o| o.method == method)
            .map_or(MALFORMED, |o| o.method),
        error,
    })
}

/// The entry that admits and runs `request`.
pub fn of(request: &Request) -> &'static Operation {
    named(request.op())
}

/// The handler that answers `request`: the entry's, except that a request the
/// transport could not parse, or an unknown one, is answered with what is wrong
/// whichever operation it names.
pub(super) fn handler_of(operation: &Operation, request: &Request) -> Handler {
    match request {
        Request::Malformed { .. } | Request::Unknown { .. } => answered_by_admission,
        _ => operation.handler,
    }
}

/// The operation's name in its audit line: `session.start.auto-approve` marks a
/// start that asked for the agent's act-without-asking flag.
pub fn audit_label(operation: &Operation, request: &Request) -> &'static str {
    match request {
        Request::SessionStart(params) if params.auto_approve == Some(true) => {
            "session.start.auto-approve"
        }
        _ => operation.method,
    }
}

/// Whether `principal` passes `access`.
pub fn grants(access: Access, principal: &Principal) -> bool {
    match access {
        Access::Public | Access::Authenticated => true,
        Access::Owner => *principal == Principal::Owner,
        Access::OwnerOrOwnerKey => {
            matches!(principal, Principal::Owner | Principal::OwnerKey { .. })
        }
        Access::OwnerOrPhones => matches!(principal, Principal::Owner | Principal::Phone { .. }),
        Access::RelayChannel => matches!(principal, Principal::RelayChannel { .. }),
    }
}

/// A streaming operation asked over a carrier that cannot take its stream.
pub fn carrier_refusal(operation: &Operation, evidence: &Evidence) -> Option<ApiError> {
    let carriers = operation.streams_over?;
    let carrier = Carrier::of(evidence);
    if carriers.contains(&carrier) {
        return None;
    }
    Some(ApiError::invalid_request(format!(
        "'{}' streams, which {} cannot carry; use {}",
        operation.method,
        match carrier {
            Carrier::LanRpc => "JSON-RPC over HTTP",
            Carrier::LanRest => "the REST API",
            Carrier::Unix => "the Unix socket",
            Carrier::Relay => "the phone channel",
        },
        match operation.rest {
            Some(route) if carriers.contains(&Carrier::LanRest) => {
                format!("its REST route ({route}) or the Unix socket")
            }
            _ => "the Unix socket".to_owned(),
        }
    )))
}
