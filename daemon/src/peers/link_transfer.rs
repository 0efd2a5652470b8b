//! Files and tunnels through a `PeerLink`, in constant memory: a pull's answer
//! is streamed back piece by piece, and a tunnel carries a socket connection
//! on to the peer's framed connection (pushes are `link_push`). Bounded queues
//! carry the back-pressure both ways; a side that stops moving bytes for the
//! idle timeout ends the transfer.

use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use awc::error::WsProtocolError;
use awc::ws::Message;
use aws_lc_rs::digest;
use bytes::Bytes;
use futures_util::{Sink, Stream, StreamExt};
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::framing::{Frame, MAX_FRAME_PAYLOAD, from_message, to_message};
use loopsy_transports::secrets::hex;
use loopsy_transports::wire::{ReplyStream, StreamItem};
use serde_json::json;

use super::client::{PeerClient, rest_refusal, unreachable};
use super::link::PeerLink;

/// The peer's framed connection (`loopsy_transports::lan_http`).
const FRAMED_PATH: &str = "/api/v1/framed";
/// Largest JSON answer to a pull's refusal.
pub(super) const ANSWER_LIMIT: usize = 1024 * 1024;
/// Pieces of a pull queued toward the local client.
const PULL_QUEUE: usize = 8;
/// How long the answer's head may take once asked.
pub(super) const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the peer may take to accept the framed connection's WebSocket.
const FRAMED_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The peer's framed connection, opened with the credential over the pinned
/// client: socket frames, one per WebSocket message, both ways. `purpose`
/// names it in errors ("the tunnel").
pub(super) async fn open_framed(
    client: &PeerClient,
    purpose: &str,
) -> Result<
    (
        impl Sink<Message, Error = WsProtocolError> + Unpin + 'static,
        impl Stream<Item = Result<awc::ws::Frame, WsProtocolError>> + Unpin + 'static,
    ),
    ApiError,
> {
    let name = client.name();
    let connecting = client
        .ws(FRAMED_PATH)
        .max_frame_size(MAX_FRAME_PAYLOAD + 1)
        .connect();
    let (_, socket) = tokio::time::timeout(FRAMED_OPEN_TIMEOUT, connecting)
        .await
        .map_err(|_| unreachable(name, format!("it did not open {purpose}")))?
        .map_err(|e| unreachable(name, format!("it refused {purpose} ({e})")))?;
    Ok(socket.split())
}

/// Fetch `source_path` from the peer: its size, and its bytes as a stream.
#[derive(Message)]
#[rtype(result = "Result<(u64, ReplyStream), ApiError>")]
pub struct PeerPull {
    pub source_path: String,
    pub idle: Duration,
}

async fn pull(client: Rc<PeerClient>, pull: PeerPull) -> Result<(u64, ReplyStream), ApiError> {
    let name = client.name().to_owned();
    let asked = client
        .rest("/api/v1/transfer/pull")
        .send_json(&json!({"sourcePath": pull.source_path}));
    let mut response = tokio::time::timeout(HEAD_TIMEOUT, asked)
        .await
        .map_err(|_| unreachable(&name, "it did not answer the pull"))?
        .map_err(|e| unreachable(&name, format!("cannot reach it ({e})")))?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let body = response
            .body()
            .limit(ANSWER_LIMIT)
            .await
            .unwrap_or_default();
        return Err(rest_refusal(&name, status, &body));
    }
    let size: u64 = response
        .headers()
        .get("x-loopsy-file-size")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| unreachable(&name, "its answer to the pull has no file size"))?;
    let (pieces, receiver) = tokio::sync::mpsc::channel(PULL_QUEUE);
    let idle = pull.idle;
    actix_rt::spawn(async move {
        let mut hash = digest::Context::new(&digest::SHA256);
        let mut received = 0u64;
        let failed = |message: String| {
            StreamItem::End(Err(ApiError::new(code::TRANSFER_FAILED, 502, message)))
        };
        loop {
            match tokio::time::timeout(idle, response.next()).await {
                Ok(Some(Ok(piece))) => {
                    received += piece.len() as u64;
                    if received > size {
                        let _ = pieces
                            .send(failed(format!(
                                "peer {name} sent more than the {size} bytes it announced"
                            )))
                            .await;
                        return;
                    }
                    hash.update(&piece);
                    // Waiting here is the back-pressure: a slow client slows the peer.
                    if pieces.send(StreamItem::Binary(piece)).await.is_err() {
                        return;
                    }
                }
                Ok(Some(Err(e))) => {
                    let _ = pieces
                        .send(failed(format!("peer {name}: the pull broke off ({e})")))
                        .await;
                    return;
                }
                Ok(None) => break,
                Err(_) => {
                    let _ = pieces
                        .send(failed(format!(
                            "peer {name} sent nothing for {} s",
                            idle.as_secs()
                        )))
                        .await;
                    return;
                }
            }
        }
        let end = if received == size {
            StreamItem::End(Ok(
                json!({"size": size, "sha256": hex(hash.finish().as_ref())}),
            ))
        } else {
            failed(format!(
                "peer {name} ended the pull after {received} of {size} bytes"
            ))
        };
        let _ = pieces.send(end).await;
    });
    Ok((size, ReplyStream(receiver)))
}

impl Handler<PeerPull> for PeerLink {
    type Result = ResponseFuture<Result<(u64, ReplyStream), ApiError>>;

    fn handle(&mut self, message: PeerPull, _: &mut Self::Context) -> Self::Result {
        match self.client() {
            Some(client) => Box::pin(pull(client, message)),
            None => Box::pin(async {
                Err(ApiError::internal(
                    "this peer has no client; see the daemon log",
                ))
            }),
        }
    }
}

/// Carry a socket connection on to the peer's framed connection.
#[derive(Message)]
#[rtype(result = "Result<(), ApiError>")]
pub struct OpenTunnel {
    pub to_peer: tokio::sync::mpsc::Receiver<Frame>,
    pub back: tokio::sync::mpsc::Sender<Frame>,
}

async fn tunnel(client: Rc<PeerClient>, open: OpenTunnel) -> Result<(), ApiError> {
    use futures_util::SinkExt;
    let name = client.name().to_owned();
    if client.is_typescript() {
        return Err(super::typescript_rest::cannot(
            &name,
            "attach to sessions or stream runs through a tunnel",
        ));
    }
    let (mut sink, mut stream) = open_framed(&client, "the tunnel").await?;
    let OpenTunnel { mut to_peer, back } = open;
    actix_rt::spawn(async move {
        loop {
            tokio::select! {
                frame = to_peer.recv() => match frame {
                    Some(frame) => {
                        if sink.send(Message::Binary(to_message(frame))).await.is_err() {
                            break;
                        }
                    }
                    // The client went away: close the peer's side too.
                    None => break,
                },
                message = stream.next() => match message {
                    Some(Ok(awc::ws::Frame::Binary(bytes))) => match from_message(bytes) {
                        Ok(frame) => {
                            if back.send(frame).await.is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    },
                    Some(Ok(awc::ws::Frame::Ping(bytes))) => {
                        let _ = sink.send(Message::Pong(bytes)).await;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        let failure = ApiError::new(code::PEER_UNREACHABLE, 502, format!("peer {name} closed the tunnel"));
                        let note = loopsy_transports::jsonrpc::failure_unattributed(&failure);
                        let _ = back.send(Frame::Json(Bytes::from(note))).await;
                        break;
                    }
                },
            }
        }
        let _ = sink.close().await;
    });
    Ok(())
}

impl Handler<OpenTunnel> for PeerLink {
    type Result = ResponseFuture<Result<(), ApiError>>;

    fn handle(&mut self, message: OpenTunnel, _: &mut Self::Context) -> Self::Result {
        match self.client() {
            Some(client) => Box::pin(tunnel(client, message)),
            None => Box::pin(async {
                Err(ApiError::internal(
                    "this peer has no client; see the daemon log",
                ))
            }),
        }
    }
}
