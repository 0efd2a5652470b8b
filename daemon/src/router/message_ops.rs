//! Messages between the agents on paired machines (spec §7), as daemon
//! operations over the context store. Sending puts the envelope in the
//! peer's inbox (a loopsy peer through `message.deliver`, which checks it; a
//! TypeScript Loopsy through its context route, exactly as its own clients
//! do) and keeps it in the outbox; acknowledging sets `ack:<me>` on the
//! sender. A paired peer may deliver only as itself and acknowledge only for
//! itself.

use std::time::Duration;

use actix::Addr;
use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{MessageRequest, Reply, Request, method};
use serde_json::{Value, json};

use super::{Principal, Router, Work};
use crate::peers::link::{PeerCall, PeerLink};
use crate::peers::store::Dialect;
use crate::services::context::{self, Answer, ContextStore};
use crate::services::messages::{self as protocol, ACK_TTL, INBOX_TTL, OUTBOX_TTL};

/// How long a peer may take to take a message or an acknowledgement.
const DELIVER_TIMEOUT: Duration = Duration::from_secs(15);

fn later(work: impl std::future::Future<Output = Result<Value, ApiError>> + 'static) -> Work {
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(async move {
        work.await.map(Reply::ok)
    })))
}

/// The peer named `name`: its hostname, how it is spoken to, its link.
fn peer(router: &Router, name: &str) -> Result<(String, Dialect, Addr<PeerLink>), ApiError> {
    let (node_id, link) = router.peers.named(name)?;
    let record = router
        .peers
        .records()
        .into_iter()
        .find(|r| r.node_id == node_id)
        .ok_or_else(|| ApiError::internal("the peer's record is gone; try again"))?;
    Ok((record.hostname, record.dialect, link))
}

/// The hostname a paired daemon stored under, when `principal` is one.
fn paired_hostname(router: &Router, principal: &Principal) -> Option<String> {
    match principal {
        Principal::PairedPeer(peer) => router
            .peers
            .records()
            .into_iter()
            .find(|r| r.node_id == peer.node_id)
            .map(|r| r.hostname),
        _ => None,
    }
}

async fn store(
    store: &ContextStore,
    key: String,
    value: String,
    ttl: f64,
    from: String,
) -> Result<(), ApiError> {
    let entry = context::validate_set(key, value, Some(ttl), from)?;
    store.set(entry).await?;
    Ok(())
}

/// Sets `key` on a peer: its own operation (`method`) for a loopsy daemon, the
/// context route for a TypeScript Loopsy.
async fn on_peer(
    link: Addr<PeerLink>,
    dialect: Dialect,
    loopsy: (&str, Value),
    typescript: (String, String, f64),
) -> Result<Value, ApiError> {
    let (method, params) = match dialect {
        Dialect::Loopsy => (loopsy.0.to_owned(), loopsy.1),
        _ => {
            let (key, value, ttl) = typescript;
            (
                method::CONTEXT_SET.to_owned(),
                json!({"key": key, "value": value, "ttl": ttl}),
            )
        }
    };
    link.send(PeerCall {
        method,
        params,
        within: DELIVER_TIMEOUT,
    })
    .await
    .map_err(|_| ApiError::unavailable("the peer link stopped; try again"))?
}

pub(super) fn run(router: &mut Router, request: Request, principal: &Principal) -> Work {
    let Request::Message(request) = request else {
        return Work::Done(Err(ApiError::internal("not a message request")));
    };
    match handle(router, request, principal) {
        Ok(work) => work,
        Err(error) => Work::Done(Err(error)),
    }
}

fn handle(
    router: &mut Router,
    request: MessageRequest,
    principal: &Principal,
) -> Result<Work, ApiError> {
    let me = router.settings.hostname.clone();
    let contexts = router.services.context.clone();
    Ok(match request {
        MessageRequest::Send {
            peer: name,
            kind,
            body,
        } => {
            let kind = if kind.is_empty() {
                "chat".to_owned()
            } else {
                kind
            };
            let (to, dialect, link) = peer(router, &name)?;
            let ts = u64::try_from(time_ms()).unwrap_or(0);
            let random = u16::from_be_bytes(
                crate::secrets::random_bytes::<2>()
                    .map_err(|e| ApiError::internal(e.to_string()))?,
            );
            let id = protocol::message_id(ts, &me, random);
            let envelope = protocol::envelope(&me, &to, ts, &id, &kind, &body);
            protocol::check(&envelope).map_err(ApiError::bad_request)?;
            let text = envelope.to_string();
            let inbox = protocol::inbox_key(&to, &id);
            later(async move {
                on_peer(
                    link,
                    dialect,
                    (method::MESSAGE_DELIVER, json!({ "envelope": envelope })),
                    (inbox.clone(), text.clone(), INBOX_TTL),
                )
                .await?;
                store(
                    &contexts,
                    protocol::outbox_key(&id),
                    text,
                    OUTBOX_TTL,
                    "local".into(),
                )
                .await?;
                Ok(json!({"id": id, "to": to, "inboxKey": inbox, "envelope": envelope}))
            })
        }
        MessageRequest::Inbox => later(async move {
            let Answer::Entries(entries) = contexts.list(protocol::inbox_prefix(&me)).await? else {
                return Err(ApiError::internal(
                    "the context store answered a list oddly",
                ));
            };
            let mut invalid = 0;
            let mut messages: Vec<Value> = entries
                .into_iter()
                .filter_map(|entry| match protocol::parse_stored(&entry.value) {
                    Some(mut envelope) => {
                        envelope["key"] = json!(entry.key);
                        Some(envelope)
                    }
                    None => {
                        invalid += 1;
                        None
                    }
                })
                .collect();
            messages.sort_by_key(|m| m["ts"].as_u64().unwrap_or(0));
            Ok(json!({"messages": messages, "invalid": invalid, "me": me}))
        }),
        MessageRequest::Ack {
            key,
            id,
            peer: sender,
        } => {
            if !key.starts_with(&protocol::inbox_prefix(&me)) || !protocol::valid_id(&id) {
                return Err(ApiError::bad_request(format!(
                    "acknowledge a key of this inbox ({}…) and a message id",
                    protocol::inbox_prefix(&me)
                )));
            }
            let Some(sender) = sender else {
                return Err(ApiError::bad_request(
                    "name the sender (`peer`): its hostname or node id",
                ));
            };
            let (_, dialect, link) = peer(router, &sender)?;
            later(async move {
                on_peer(
                    link,
                    dialect,
                    (method::MESSAGE_ACKED, json!({"receiver": me, "id": id})),
                    (protocol::ack_key(&me), id.clone(), ACK_TTL),
                )
                .await?;
                // Gone already (expired, handled twice) is no failure.
                let _ = contexts.delete(key.clone()).await;
                Ok(json!({"acked": id, "key": key, "deleted": true}))
            })
        }
        MessageRequest::AckStatus { peer: name } => {
            let host = peer(router, &name).map(|(h, _, _)| h).unwrap_or(name);
            later(async move {
                let acked = match contexts.get(protocol::ack_key(&host)).await {
                    Ok(Answer::Entry(entry)) => Some(entry.value),
                    _ => None,
                };
                Ok(json!({"peer": host, "acked": acked}))
            })
        }
        MessageRequest::Deliver { envelope } => {
            protocol::check(&envelope).map_err(ApiError::bad_request)?;
            let (from, to) = (envelope["from"].as_str(), envelope["to"].as_str());
            if to != Some(me.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "this is {me}; the message is for {}",
                    to.unwrap_or_default()
                )));
            }
            if let Some(host) = paired_hostname(router, principal)
                && from != Some(host.as_str())
            {
                return Err(ApiError::forbidden(format!(
                    "{host} may send messages only as itself, not as {}",
                    from.unwrap_or_default()
                )));
            }
            let id = envelope["id"].as_str().unwrap_or_default().to_owned();
            let key = protocol::inbox_key(&me, &id);
            let label = principal.label();
            later(async move {
                store(
                    &contexts,
                    key.clone(),
                    envelope.to_string(),
                    INBOX_TTL,
                    label,
                )
                .await?;
                Ok(json!({"stored": key}))
            })
        }
        MessageRequest::Acked { receiver, id } => {
            if !protocol::valid_id(&id) || receiver.is_empty() || receiver.len() > 253 {
                return Err(ApiError::bad_request(
                    "an acknowledgement names its receiver and a message id",
                ));
            }
            if let Some(host) = paired_hostname(router, principal)
                && host != receiver
            {
                return Err(ApiError::forbidden(format!(
                    "{host} may acknowledge only for itself, not for {receiver}"
                )));
            }
            let label = principal.label();
            later(async move {
                store(&contexts, protocol::ack_key(&receiver), id, ACK_TTL, label).await?;
                Ok(json!({"acked": true}))
            })
        }
    })
}

fn time_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
