//! The LAN-peer vocabulary: what the owner asks of its own daemon about peers
//! (pairing windows, joining, the list, calls through a peer link) and the few
//! things one daemon asks another (the pairing handshake, unpairing).

use serde::Deserialize;
use serde_json::Value;

use super::method;

/// A pairing invite code as typed by the user. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct InviteCode(pub String);

/// A TypeScript Loopsy's API key the user copied. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct CopiedKey(pub String);

impl std::fmt::Debug for CopiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CopiedKey(<redacted>)")
    }
}

impl std::fmt::Debug for InviteCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InviteCode(<redacted>)")
    }
}

/// One side's answer to "do both screens show the same code?", and what it
/// lets the other side do.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PairDecision {
    pub accept: bool,
    /// Capability names granted to the other side; absent means the default
    /// (`exec`, `transfer`, `context`, `messages`).
    #[serde(default)]
    pub grants: Option<Vec<String>>,
}

#[derive(Debug)]
pub enum PeerRequest {
    /// Open the one pairing window (owner only): an invite code for 300 s.
    PairOpen { ttl_seconds: Option<u64> },
    /// How the window stands (code, SAS once compared, the other side).
    PairStatus,
    /// The owner's decision on the window's SAS.
    PairConfirm(PairDecision),
    /// Pair with the daemon at `address` (`host[:port]`) with its invite code.
    Join { address: String, code: InviteCode },
    /// How the join stands.
    JoinStatus,
    /// The owner's decision on the join's SAS.
    JoinConfirm(PairDecision),
    /// The paired peers.
    List,
    /// Forget a peer here and, when it answers, there.
    Remove { peer: String },
    /// Ask a peer for `method` through its peer link.
    Call {
        peer: String,
        method: String,
        params: Option<Value>,
    },
    /// Send a file to a peer: its bytes arrive through `body` (binary frames on
    /// the socket) and go on to the peer as they come.
    TransferPush {
        peer: String,
        dest_path: String,
        checksum: Option<String>,
        body: super::UploadBody,
    },
    /// Fetch a file from a peer, streamed back as it arrives.
    TransferPull { peer: String, source_path: String },
    /// Turn this socket connection into a tunnel to a peer's framed
    /// connection: every later frame goes to the peer (`to_peer`), and the
    /// peer's come back on `back`. The peer's Router decides each request.
    Tunnel {
        peer: String,
        to_peer: tokio::sync::mpsc::Receiver<crate::framing::Frame>,
        back: tokio::sync::mpsc::Sender<crate::framing::Frame>,
    },
    /// A peer asks to open a framed connection over a WebSocket; answered
    /// before the upgrade, so a stranger is refused before anything is buffered.
    FramedOpen,
    /// Pairing, from the joining daemon: Noise message 1 (hex).
    Hello { message: String },
    /// Pairing: Noise message 3, which proves the invite code.
    Finish { pairing: String, message: String },
    /// Pairing: one sealed step after the handshake.
    Step { pairing: String, message: String },
    /// A paired peer forgets us: we forget it too.
    Unpair,
    /// Add a TypeScript Loopsy at `address` (`host[:port]`), called with `key`
    /// over TLS (its certificate pinned now) or, when `plain_http`, over HTTP.
    AddTypeScript {
        address: String,
        key: CopiedKey,
        plain_http: bool,
    },
    /// Mint a key for a TypeScript Loopsy called `name` to call us with.
    InviteTypeScript {
        name: String,
        grants: Option<Vec<String>>,
    },
}

impl PeerRequest {
    pub fn op(&self) -> &'static str {
        match self {
            Self::PairOpen { .. } => method::PEERS_PAIR_OPEN,
            Self::PairStatus => method::PEERS_PAIR_STATUS,
            Self::PairConfirm(_) => method::PEERS_PAIR_CONFIRM,
            Self::Join { .. } => method::PEERS_JOIN,
            Self::JoinStatus => method::PEERS_JOIN_STATUS,
            Self::JoinConfirm(_) => method::PEERS_JOIN_CONFIRM,
            Self::List => method::PEERS_LIST,
            Self::Remove { .. } => method::PEERS_REMOVE,
            Self::Call { .. } => method::PEERS_CALL,
            Self::TransferPush { .. } => method::PEERS_TRANSFER_PUSH,
            Self::TransferPull { .. } => method::PEERS_TRANSFER_PULL,
            Self::Tunnel { .. } => method::PEERS_TUNNEL,
            Self::FramedOpen => method::PEER_FRAMED,
            Self::Hello { .. } => method::PEER_PAIR_HELLO,
            Self::Finish { .. } => method::PEER_PAIR_FINISH,
            Self::Step { .. } => method::PEER_PAIR_STEP,
            Self::Unpair => method::PEER_UNPAIR,
            Self::AddTypeScript { .. } => method::PEERS_TYPESCRIPT_ADD,
            Self::InviteTypeScript { .. } => method::PEERS_TYPESCRIPT_INVITE,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PairOpenParams {
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinParams {
    pub address: String,
    pub code: InviteCode,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddTypeScriptParams {
    pub address: String,
    pub key: CopiedKey,
    #[serde(default)]
    pub plain_http: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteTypeScriptParams {
    pub name: String,
    #[serde(default)]
    pub grants: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerNameParams {
    pub peer: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerCallParams {
    pub peer: String,
    pub method: String,
    #[serde(default)]
    pub params: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelloParams {
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PairingMessageParams {
    pub pairing: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerPushParams {
    pub peer: String,
    pub dest_path: String,
    #[serde(default)]
    pub checksum: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerPullParams {
    pub peer: String,
    pub source_path: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TunnelParams {
    pub peer: String,
}
