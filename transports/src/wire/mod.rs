//! The vocabulary every transport translates into: one typed [`Request`], the
//! [`Evidence`] of who sent it, and the [`Inbound`] message that carries both to
//! the Router. Nothing here decides anything; the Router does.

use std::fmt;
use std::net::SocketAddr;

use actix::Message;
use serde_json::Value;

use crate::error::ApiError;

mod messages;
pub mod method;
mod params;
mod peers;
pub use messages::*;
pub use params::*;
pub use peers::*;

/// One operation a client asks of the daemon, whatever door it came in by.
#[derive(Debug)]
pub enum Request {
    /// Liveness; the only operation that needs no credentials.
    Health,
    /// Node identity (spec §1.6).
    Identity,
    /// Status summary (spec §1.6).
    Status,
    /// Graceful shutdown; owner only.
    DaemonStop,
    /// Reveal the daemon's own API key; owner over the Unix socket only.
    KeyShow,
    /// Replace the API key; the old one stops working at once. Owner over the Unix socket only.
    KeyRotate,
    /// Store a context entry (spec §1.9); `ttl_secs` 0 or absent = no expiry.
    ContextSet {
        key: String,
        value: String,
        ttl_secs: Option<f64>,
        /// `X-Loopsy-Node-Id` as sent: an unauthenticated label, kept for compatibility.
        from_node_id: Option<String>,
    },
    ContextGet {
        key: String,
    },
    ContextDelete {
        key: String,
    },
    ContextList {
        prefix: String,
    },
    /// Run a command (spec §1.7): buffered, or streamed as events.
    Execute {
        params: ExecParams,
        stream: bool,
        /// `X-Loopsy-Node-Id` as sent (an unauthenticated label).
        from_node_id: Option<String>,
    },
    /// Jobs still running.
    ExecJobs,
    /// Terminate a running job (SIGTERM, SIGKILL after 5 s).
    ExecCancel {
        job_id: String,
    },
    /// Receive a file (spec §1.8); the bytes arrive through `body` while the
    /// request is handled, so the Router can refuse before anything is written.
    TransferPush {
        dest_path: String,
        /// Hex SHA-256 the sender expects; a mismatch discards the upload (4004).
        expected_sha256: Option<String>,
        body: UploadBody,
    },
    /// Send a file.
    TransferPull {
        source_path: String,
    },
    /// List a directory.
    TransferList {
        path: String,
    },
    /// Start a PTY session.
    SessionStart(SessionStartParams),
    /// Live and recently exited sessions.
    SessionList,
    /// Attach to a session: output (and events) stream back; bytes from `input`
    /// are typed into it; closing `input` detaches.
    SessionAttach {
        target: String,
        from_offset: Option<u64>,
        cols: Option<u16>,
        rows: Option<u16>,
        input: InputBody,
    },
    /// Type text into a session without attaching.
    SessionInput {
        target: String,
        data: String,
    },
    SessionResize {
        target: String,
        cols: u16,
        rows: u16,
    },
    SessionSignal {
        target: String,
        signal: String,
    },
    /// SIGHUP, then SIGTERM, then SIGKILL.
    SessionStop {
        target: String,
    },
    /// Forget a session (killing it if it still runs).
    SessionRemove {
        target: String,
    },
    /// Give a session another name (or none).
    SessionRename {
        target: String,
        name: Option<String>,
    },
    /// Output since `from_offset` as text, for agents that read instead of attach.
    SessionRead {
        target: String,
        from_offset: Option<u64>,
        max_bytes: Option<u64>,
        strip_ansi: bool,
    },
    /// The screen as the session's terminal emulator shows it, as text.
    SessionScreen {
        target: String,
    },
    /// Wait until the output after `from_offset` matches `pattern` (a regex),
    /// the session exits, or `timeout_ms` passes.
    SessionWait {
        target: String,
        pattern: Option<String>,
        from_offset: Option<u64>,
        timeout_ms: u64,
    },
    /// The picker: agents found on this machine and the custom commands.
    SessionAgents,
    CommandAdd(CustomCommandParams),
    CommandUpdate(CustomCommandParams),
    CommandRemove {
        id: String,
    },
    /// Grant or withdraw auto-approve for a peer (owner only).
    GrantAutoApprove {
        peer: String,
        allow: bool,
    },
    /// Open a phone pairing window: a relay token, a QR URL and a code (owner only).
    MobilePair {
        ttl_seconds: Option<u64>,
        app_url: Option<String>,
    },
    /// How a pairing window stands (waiting, paired, expired, dead).
    MobilePairStatus {
        token_id: String,
    },
    /// The paired phones.
    PhonesList,
    /// Forget a phone and cut its live channels (here and at the relay).
    PhonesRevoke {
        phone_id: String,
    },
    /// Register this machine at a relay and connect to it.
    RelayConfigure {
        url: String,
        force: bool,
        ca_file: Option<String>,
    },
    /// The relay link's state.
    RelayStatus,
    /// The relay link asks, for a pairing channel just opened on `token_id`,
    /// whether a window is open for it; the answer holds the window's secret.
    PhonePairOpen {
        token_id: String,
    },
    /// The 4-digit code a phone sent on a pairing channel, to be checked.
    PhonePairCode {
        token_id: String,
        code: String,
    },
    /// The relay minted `phone_id` for a phone whose code was accepted: store it.
    PhonePaired {
        token_id: String,
        phone_id: String,
        phone_key: [u8; 32],
        label: Option<String>,
    },
    /// A paired phone's channel opened: its stored key, for the handshake that
    /// proves it holds the matching private key.
    PhoneConnect {
        phone_id: String,
    },
    /// The relay reports that a phone's pairing was revoked there.
    PhoneRevokedAtRelay {
        phone_id: String,
    },
    /// LAN peers: pairing, the list, calls through peer links.
    Peers(PeerRequest),
    /// Messages between agents on the machines (spec §7).
    Message(MessageRequest),
    /// A `loopsy mcp` process announces itself; its stream lasts as long as it.
    McpAttach {
        name: String,
        version: String,
    },
    /// A route or method this daemon does not have; answered 404 after auth.
    Unknown {
        method: String,
        path: String,
    },
    /// A JSON-RPC call as it arrived: the daemon's table of operations parses its
    /// params into the request it names (calls carrying binary frames excepted).
    Call {
        method: String,
        params: Option<Value>,
    },
    /// The transport could not turn the bytes into a request (garbled JSON, too large);
    /// carried to the Router so that it is authenticated, audited and answered like any other.
    Malformed {
        op: &'static str,
        error: ApiError,
    },
}

/// Operation families, each with its own rate limit (config `rateLimits.*`); the
/// daemon's table of operations gives each operation its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateFamily {
    Execute,
    Transfer,
    Context,
    Pair,
    /// Session starts (each one is a process and a PTY).
    Session,
    /// Everything else that needs credentials.
    Default,
    /// Liveness probes: cheaper to answer than to meter.
    Unmetered,
}

impl Request {
    /// Stable operation name for the audit log and rate-limit keys.
    pub fn op(&self) -> &'static str {
        match self {
            Self::Health => method::HEALTH,
            Self::Identity => method::IDENTITY,
            Self::Status => method::STATUS,
            Self::DaemonStop => method::DAEMON_STOP,
            Self::KeyShow => method::KEY_SHOW,
            Self::KeyRotate => method::KEY_ROTATE,
            Self::ContextSet { .. } => method::CONTEXT_SET,
            Self::ContextGet { .. } => method::CONTEXT_GET,
            Self::ContextDelete { .. } => method::CONTEXT_DELETE,
            Self::ContextList { .. } => method::CONTEXT_LIST,
            Self::Execute { stream: false, .. } => method::EXEC_RUN,
            Self::Execute { stream: true, .. } => method::EXEC_STREAM,
            Self::ExecJobs => method::EXEC_JOBS,
            Self::ExecCancel { .. } => method::EXEC_CANCEL,
            Self::TransferPush { .. } => method::TRANSFER_PUSH,
            Self::TransferPull { .. } => method::TRANSFER_PULL,
            Self::TransferList { .. } => method::TRANSFER_LIST,
            Self::SessionStart(_) => method::SESSION_START,
            Self::SessionList => method::SESSION_LIST,
            Self::SessionAttach { .. } => method::SESSION_ATTACH,
            Self::SessionInput { .. } => method::SESSION_INPUT,
            Self::SessionResize { .. } => method::SESSION_RESIZE,
            Self::SessionSignal { .. } => method::SESSION_SIGNAL,
            Self::SessionStop { .. } => method::SESSION_STOP,
            Self::SessionRemove { .. } => method::SESSION_REMOVE,
            Self::SessionRename { .. } => method::SESSION_RENAME,
            Self::SessionRead { .. } => method::SESSION_READ,
            Self::SessionScreen { .. } => method::SESSION_SCREEN,
            Self::SessionWait { .. } => method::SESSION_WAIT,
            Self::SessionAgents => method::SESSION_AGENTS,
            Self::CommandAdd(_) => method::COMMANDS_ADD,
            Self::CommandUpdate(_) => method::COMMANDS_UPDATE,
            Self::CommandRemove { .. } => method::COMMANDS_REMOVE,
            Self::GrantAutoApprove { .. } => method::GRANTS_AUTO_APPROVE,
            Self::MobilePair { .. } => method::MOBILE_PAIR,
            Self::MobilePairStatus { .. } => method::MOBILE_PAIR_STATUS,
            Self::PhonesList => method::PHONES_LIST,
            Self::PhonesRevoke { .. } => method::PHONES_REVOKE,
            Self::RelayConfigure { .. } => method::RELAY_CONFIGURE,
            Self::RelayStatus => method::RELAY_STATUS,
            Self::PhonePairOpen { .. } => method::PHONE_PAIR_OPEN,
            Self::PhonePairCode { .. } => method::PHONE_PAIR_CODE,
            Self::PhonePaired { .. } => method::PHONE_PAIRED,
            Self::PhoneConnect { .. } => method::PHONE_CONNECT,
            Self::PhoneRevokedAtRelay { .. } => method::PHONE_REVOKED_AT_RELAY,
            Self::Peers(request) => request.op(),
            Self::Message(request) => request.op(),
            Self::McpAttach { .. } => method::MCP_ATTACH,
            Self::Unknown { .. } => "unknown",
            Self::Call { .. } => "rpc",
            Self::Malformed { op, .. } => op,
        }
    }
}

/// Which door a request came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    UnixSocket,
    LanHttp,
    Relay,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnixSocket => "unix",
            Self::LanHttp => "lan-http",
            Self::Relay => "relay",
        }
    }
}

/// A bearer secret as offered by a client. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// Parses an `Authorization` header the way the original does (spec §1.2): the
    /// `Bearer` prefix is stripped case-insensitively; without it the whole value is the key.
    pub fn from_authorization(header: &str) -> Self {
        let trimmed = header.trim();
        let secret = match trimmed.get(..6) {
            Some(prefix) if prefix.eq_ignore_ascii_case("bearer") => {
                let rest = &trimmed[6..];
                if rest.starts_with(char::is_whitespace) {
                    rest.trim_start()
                } else {
                    trimmed
                }
            }
            _ => trimmed,
        };
        Self(secret.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// What a transport knows about the sender. The Router alone turns it into a principal.
#[derive(Debug, Clone)]
pub enum Evidence {
    UnixSocket {
        /// Uid of the connecting process (SO_PEERCRED); `None` if the OS would not say.
        peer_uid: Option<u32>,
    },
    LanHttp(HttpEvidence),
    /// A paired phone, through the relay, after an end-to-end handshake with
    /// the key stored for `phone_id` (the handshake is the authentication).
    Phone {
        phone_id: String,
    },
    /// The daemon's relay link, speaking for a phone channel whose handshake is
    /// not done (or for the relay itself): nothing is proven but which channel
    /// it is. `subject` names it for the audit log (`pairing:<token id>`,
    /// `phone:<id>` as claimed, `relay`).
    RelayChannel {
        subject: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct HttpEvidence {
    pub remote: Option<SocketAddr>,
    pub bearer: Option<BearerToken>,
    /// `Host` header as sent (DNS-rebinding check).
    pub host: Option<String>,
    /// `Origin` header as sent (browser cross-origin check).
    pub origin: Option<String>,
    /// `Sec-Fetch-Site` header as sent by browsers.
    pub fetch_site: Option<String>,
    /// Came as JSON-RPC at `POST /rpc` (which cannot carry a stream), not a REST route.
    pub json_rpc: bool,
    /// Came over the TLS listener for peers.
    pub tls: bool,
    /// Came inside a framed connection over a WebSocket (`/api/v1/framed`),
    /// which carries what the Unix socket carries.
    pub framed: bool,
}

impl Evidence {
    pub fn transport(&self) -> TransportKind {
        match self {
            Self::UnixSocket { .. } => TransportKind::UnixSocket,
            Self::LanHttp(_) => TransportKind::LanHttp,
            Self::Phone { .. } | Self::RelayChannel { .. } => TransportKind::Relay,
        }
    }
}

/// A successful answer: an HTTP status and a JSON body in the original's shapes;
/// for a streaming operation, also the events that follow (the body is then the
/// stream's header, e.g. the job id).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub stream: Option<ReplyStream>,
    /// A file to send as the raw response body (`transfer/pull`).
    pub download: Option<FileDownload>,
    /// For a connection the answer opens (a peer's framed connection): it is
    /// closed, with everything running in it, when this turns true (the peer
    /// was removed).
    pub ends_when: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            stream: None,
            download: None,
            ends_when: None,
        }
    }

    /// An answer whose connection ends when `ends` turns true.
    pub fn ending_when(mut self, ends: tokio::sync::watch::Receiver<bool>) -> Self {
        self.ends_when = Some(ends);
        self
    }

    pub fn streaming(body: Value, stream: ReplyStream) -> Self {
        Self {
            stream: Some(stream),
            ..Self::ok(body)
        }
    }

    pub fn download(body: Value, download: FileDownload) -> Self {
        Self {
            download: Some(download),
            ..Self::ok(body)
        }
    }
}

/// An opened, checked file and what the response headers say about it.
#[derive(Debug)]
pub struct FileDownload {
    pub file: std::fs::File,
    pub size: u64,
    pub name: String,
    /// Kept until the download ends, whichever way (the Router's count of a
    /// principal's transfers in flight).
    pub held: Held,
    /// A client that takes nothing for this long has stalled: the download ends
    /// (short of its length) and frees the file and `held`.
    pub idle: std::time::Duration,
}

/// Something the daemon keeps alive for as long as a transport uses the thing it
/// came with; dropping it is the signal.
pub struct Held(pub Option<Box<dyn Send + Sync>>);

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Held")
    }
}

/// Keystrokes of an attached client.
pub struct InputBody(pub tokio::sync::mpsc::Receiver<bytes::Bytes>);

impl fmt::Debug for InputBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InputBody")
    }
}

/// The bytes of an upload as they arrive; an `Err` means the sender stopped
/// early (the upload must then leave nothing behind).
pub struct UploadBody(pub tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>);

impl fmt::Debug for UploadBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UploadBody")
    }
}

/// One item of a streaming answer: events, then exactly one `End`.
#[derive(Debug)]
pub enum StreamItem {
    /// Rendered as an SSE `data:` line on HTTP, a `stream.event` notification on JSON-RPC.
    Event(Value),
    /// Raw bytes (terminal output): binary frames on the Unix socket.
    Binary(bytes::Bytes),
    /// The final result: the JSON-RPC answer to the call.
    End(Result<Value, ApiError>),
}

/// The receiving end of a streaming answer. Bounded: a slow reader slows the
/// producer (e.g. the process writing to its pipe) instead of growing memory.
pub struct ReplyStream(pub tokio::sync::mpsc::Receiver<StreamItem>);

impl fmt::Debug for ReplyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyStream")
    }
}

/// JSON-RPC notification method carrying a [`StreamItem::Event`].
pub const STREAM_EVENT_METHOD: &str = "stream.event";

/// The daemon's own id for one request (never the client's `x-request-id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(pub String);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Router's answer to an [`Inbound`].
#[derive(Debug)]
pub struct Handled {
    pub request_id: RequestId,
    pub outcome: Result<Reply, ApiError>,
}

/// What every transport sends to the Router.
#[derive(Debug, Message)]
#[rtype(result = "Handled")]
pub struct Inbound {
    pub request: Request,
    pub evidence: Evidence,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix_is_stripped_case_insensitively() {
        assert_eq!(
            BearerToken::from_authorization("Bearer abc").expose(),
            "abc"
        );
        assert_eq!(
            BearerToken::from_authorization("bEaReR   abc").expose(),
            "abc"
        );
        assert_eq!(BearerToken::from_authorization("abc").expose(), "abc");
        assert_eq!(
            BearerToken::from_authorization("Bearerabc").expose(),
            "Bearerabc"
        );
    }

    #[test]
    fn bearer_debug_is_redacted() {
        let token = BearerToken::new("s3cret");
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
