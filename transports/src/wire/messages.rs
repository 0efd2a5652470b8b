//! The messaging vocabulary (spec §7): what the owner asks of its daemon
//! (send, the inbox, acknowledge, was it acknowledged) and what one daemon
//! asks another (take this message, here is my acknowledgement).

use serde::Deserialize;
use serde_json::Value;

use super::method;

#[derive(Debug, Clone, PartialEq)]
pub enum MessageRequest {
    /// Envelope a message, put it in `peer`'s inbox, keep it in the outbox.
    Send {
        peer: String,
        kind: String,
        body: String,
    },
    /// This machine's inbox, valid envelopes only, oldest first.
    Inbox,
    /// Tell the sender `id` was handled (`ack:<me>` on it), then drop `key`.
    Ack {
        key: String,
        id: String,
        peer: Option<String>,
    },
    /// The last message id `peer` acknowledged (`ack:<peer>` here).
    AckStatus { peer: String },
    /// From a peer: an envelope for this machine's inbox.
    Deliver { envelope: Value },
    /// From a peer: it handled messages up to `id`.
    Acked { receiver: String, id: String },
}

impl MessageRequest {
    pub fn op(&self) -> &'static str {
        match self {
            Self::Send { .. } => method::MESSAGES_SEND,
            Self::Inbox => method::MESSAGES_INBOX,
            Self::Ack { .. } => method::MESSAGES_ACK,
            Self::AckStatus { .. } => method::MESSAGES_ACK_STATUS,
            Self::Deliver { .. } => method::MESSAGE_DELIVER,
            Self::Acked { .. } => method::MESSAGE_ACKED,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageSendParams {
    pub peer: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub body: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageAckParams {
    pub key: String,
    pub id: String,
    #[serde(default)]
    pub peer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessagePeerParams {
    pub peer: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageDeliverParams {
    pub envelope: Value,
}

/// `mcp.attach`: the agent's client, as it named itself.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpAttachParams {
    pub name: String,
    #[serde(default)]
    pub version: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageAckedParams {
    pub receiver: String,
    pub id: String,
}
