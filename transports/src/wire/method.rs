//! JSON-RPC method names, one per [`super::Request`] variant that a client may name
//! (and the phone-channel ones only the daemon's relay link asks).

pub const HEALTH: &str = "health";
pub const IDENTITY: &str = "identity";
pub const STATUS: &str = "status";
pub const DAEMON_STOP: &str = "daemon.stop";
pub const KEY_SHOW: &str = "key.show";
pub const KEY_ROTATE: &str = "key.rotate";
pub const CONTEXT_SET: &str = "context.set";
pub const CONTEXT_GET: &str = "context.get";
pub const CONTEXT_DELETE: &str = "context.delete";
pub const CONTEXT_LIST: &str = "context.list";
pub const EXEC_RUN: &str = "exec.run";
pub const EXEC_STREAM: &str = "exec.stream";
pub const EXEC_JOBS: &str = "exec.jobs";
pub const EXEC_CANCEL: &str = "exec.cancel";
pub const TRANSFER_LIST: &str = "transfer.list";
pub const TRANSFER_PULL: &str = "transfer.pull";
pub const TRANSFER_PUSH: &str = "transfer.push";
pub const SESSION_START: &str = "session.start";
pub const SESSION_LIST: &str = "session.list";
pub const SESSION_ATTACH: &str = "session.attach";
pub const SESSION_DETACH: &str = "session.detach";
pub const SESSION_INPUT: &str = "session.input";
pub const SESSION_RESIZE: &str = "session.resize";
pub const SESSION_SIGNAL: &str = "session.signal";
pub const SESSION_STOP: &str = "session.stop";
pub const SESSION_REMOVE: &str = "session.remove";
pub const SESSION_RENAME: &str = "session.rename";
pub const SESSION_READ: &str = "session.read";
pub const SESSION_SCREEN: &str = "session.screen";
pub const SESSION_WAIT: &str = "session.wait";
pub const SESSION_AGENTS: &str = "session.agents";
pub const COMMANDS_ADD: &str = "commands.add";
pub const COMMANDS_UPDATE: &str = "commands.update";
pub const COMMANDS_REMOVE: &str = "commands.remove";
pub const GRANTS_AUTO_APPROVE: &str = "grants.autoApprove";
pub const MOBILE_PAIR: &str = "mobile.pair";
pub const MOBILE_PAIR_STATUS: &str = "mobile.pairStatus";
pub const PHONES_LIST: &str = "phones.list";
pub const PHONES_REVOKE: &str = "phones.revoke";
pub const RELAY_CONFIGURE: &str = "relay.configure";
pub const RELAY_STATUS: &str = "relay.status";
pub const PEERS_PAIR_OPEN: &str = "peers.pair.open";
pub const PEERS_PAIR_STATUS: &str = "peers.pair.status";
pub const PEERS_PAIR_CONFIRM: &str = "peers.pair.confirm";
pub const PEERS_JOIN: &str = "peers.join";
pub const PEERS_JOIN_STATUS: &str = "peers.join.status";
pub const PEERS_JOIN_CONFIRM: &str = "peers.join.confirm";
pub const PEERS_LIST: &str = "peers.list";
pub const PEERS_REMOVE: &str = "peers.remove";
pub const PEERS_CALL: &str = "peers.call";
pub const PEERS_TRANSFER_PUSH: &str = "peers.transfer.push";
pub const PEERS_TRANSFER_PULL: &str = "peers.transfer.pull";
pub const PEERS_TUNNEL: &str = "peers.tunnel";
pub const MESSAGES_SEND: &str = "messages.send";
pub const MESSAGES_INBOX: &str = "messages.inbox";
pub const MESSAGES_ACK: &str = "messages.ack";
pub const MESSAGES_ACK_STATUS: &str = "messages.ackStatus";
pub const MESSAGE_DELIVER: &str = "message.deliver";
pub const MESSAGE_ACKED: &str = "message.acked";
pub const MCP_ATTACH: &str = "mcp.attach";
pub const PEERS_TYPESCRIPT_ADD: &str = "peers.typescript.add";
pub const PEERS_TYPESCRIPT_INVITE: &str = "peers.typescript.invite";
// Asked by one daemon of another.
pub const PEER_PAIR_HELLO: &str = "peer.pair.hello";
pub const PEER_PAIR_FINISH: &str = "peer.pair.finish";
pub const PEER_PAIR_STEP: &str = "peer.pair.step";
pub const PEER_UNPAIR: &str = "peer.unpair";
pub const PEER_FRAMED: &str = "peer.framed";
// Asked by the daemon's relay link for phone channels, never by a client.
pub const PHONE_PAIR_OPEN: &str = "phone.pair.open";
pub const PHONE_PAIR_CODE: &str = "phone.pair.code";
pub const PHONE_PAIRED: &str = "phone.paired";
pub const PHONE_CONNECT: &str = "phone.connect";
pub const PHONE_REVOKED_AT_RELAY: &str = "phone.revoked-at-relay";

/// Every method above (the daemon's table of operations is checked against it).
pub const ALL: &[&str] = &[
    HEALTH,
    IDENTITY,
    STATUS,
    DAEMON_STOP,
    KEY_SHOW,
    KEY_ROTATE,
    CONTEXT_SET,
    CONTEXT_GET,
    CONTEXT_DELETE,
    CONTEXT_LIST,
    EXEC_RUN,
    EXEC_STREAM,
    EXEC_JOBS,
    EXEC_CANCEL,
    TRANSFER_LIST,
    TRANSFER_PULL,
    TRANSFER_PUSH,
    SESSION_START,
    SESSION_LIST,
    SESSION_ATTACH,
    SESSION_DETACH,
    SESSION_INPUT,
    SESSION_RESIZE,
    SESSION_SIGNAL,
    SESSION_STOP,
    SESSION_REMOVE,
    SESSION_RENAME,
    SESSION_READ,
    SESSION_SCREEN,
    SESSION_WAIT,
    SESSION_AGENTS,
    COMMANDS_ADD,
    COMMANDS_UPDATE,
    COMMANDS_REMOVE,
    GRANTS_AUTO_APPROVE,
    MOBILE_PAIR,
    MOBILE_PAIR_STATUS,
    PHONES_LIST,
    PHONES_REVOKE,
    RELAY_CONFIGURE,
    RELAY_STATUS,
    PHONE_PAIR_OPEN,
    PHONE_PAIR_CODE,
    PHONE_PAIRED,
    PHONE_CONNECT,
    PHONE_REVOKED_AT_RELAY,
    PEERS_PAIR_OPEN,
    PEERS_PAIR_STATUS,
    PEERS_PAIR_CONFIRM,
    PEERS_JOIN,
    PEERS_JOIN_STATUS,
    PEERS_JOIN_CONFIRM,
    PEERS_LIST,
    PEERS_REMOVE,
    PEERS_CALL,
    PEERS_TRANSFER_PUSH,
    PEERS_TRANSFER_PULL,
    PEERS_TUNNEL,
    PEERS_TYPESCRIPT_ADD,
    PEERS_TYPESCRIPT_INVITE,
    PEER_PAIR_HELLO,
    PEER_PAIR_FINISH,
    PEER_PAIR_STEP,
    PEER_UNPAIR,
    PEER_FRAMED,
    MESSAGES_SEND,
    MESSAGES_INBOX,
    MESSAGES_ACK,
    MESSAGES_ACK_STATUS,
    MESSAGE_DELIVER,
    MESSAGE_ACKED,
    MCP_ATTACH,
];
