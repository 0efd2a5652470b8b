//! The messaging tools (protocol v1, spec §7): daemon operations, so the
//! envelope, ids, keys and TTLs are the daemon's and a TypeScript peer reads
//! them as its own.

use loopsy_transports::wire::method;
use serde_json::json;

use super::args::Args;
use super::{Answer, LoopsyMcp, ToolError};

impl LoopsyMcp {
    pub(super) async fn send_message(&self, args: &Args) -> Result<Answer, ToolError> {
        let peer = args.str("peer")?;
        let mut params = json!({"peer": peer, "body": args.str("body")?});
        if let Some(kind) = args.opt_str("type")? {
            params["type"] = json!(kind);
        }
        let sent = self.daemon.call(method::MESSAGES_SEND, params).await?;
        let line = format!(
            "sent {} to {}; see whether it was handled with loopsy_check_ack",
            sent["id"].as_str().unwrap_or_default(),
            sent["to"].as_str().unwrap_or(peer)
        );
        Ok(Answer::new(line, sent))
    }

    pub(super) async fn check_inbox(&self, _: &Args) -> Result<Answer, ToolError> {
        let inbox = self.daemon.call(method::MESSAGES_INBOX, json!({})).await?;
        let count = inbox["messages"].as_array().map_or(0, Vec::len);
        let line = format!(
            "{count} messages for {}, oldest first; acknowledge each with loopsy_ack_message once handled",
            inbox["me"].as_str().unwrap_or("this machine")
        );
        Ok(Answer::new(line, inbox))
    }

    /// The sender is the envelope's `from` unless named.
    pub(super) async fn ack_message(&self, args: &Args) -> Result<Answer, ToolError> {
        let key = args.str("message_key")?;
        let id = args.str("message_id")?;
        let sender = match args.peer()? {
            Some(peer) => peer.to_owned(),
            None => {
                let inbox = self.daemon.call(method::MESSAGES_INBOX, json!({})).await?;
                let message = inbox["messages"]
                    .as_array()
                    .and_then(|m| m.iter().find(|m| m["key"] == key))
                    .ok_or_else(|| {
                        ToolError(format!(
                            "{key} is not in the inbox (loopsy_check_inbox lists it); name the sender as `peer` to acknowledge anyway"
                        ))
                    })?;
                message["from"].as_str().unwrap_or_default().to_owned()
            }
        };
        let acked = self
            .daemon
            .call(
                method::MESSAGES_ACK,
                json!({"key": key, "id": id, "peer": sender}),
            )
            .await?;
        Ok(Answer::new(format!("acknowledged {id} to {sender}"), acked))
    }

    pub(super) async fn check_ack(&self, args: &Args) -> Result<Answer, ToolError> {
        let peer = args.str("peer")?;
        let status = self
            .daemon
            .call(method::MESSAGES_ACK_STATUS, json!({"peer": peer}))
            .await?;
        let line = match status["acked"].as_str() {
            Some(id) => format!("{peer} has handled messages up to {id}"),
            None => format!("No ACK from {peer} yet"),
        };
        Ok(Answer::new(line, status))
    }
}
