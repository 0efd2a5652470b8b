//! Pushes through a `PeerLink`, in constant memory: the bytes go on to the
//! peer as they arrive from the local client, and a push the peer refuses
//! stops at once with the peer's reason.
//!
//! A loopsy peer gets them on its framed connection (`transfer.push`, then
//! binary frames, then the empty end frame) while its answer is read at the
//! same time, so a refusal (no transfer capability, a denied path) arrives
//! after the first piece instead of after the whole file. A TypeScript Loopsy
//! gets the multipart `POST /api/v1/transfer/push` its own clients send; an
//! HTTP/1.1 client reads the answer only once the body is sent, so there a
//! refusal costs the upload.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use awc::ws::Message;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, stream};
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::framing::{Frame, MAX_FRAME_PAYLOAD, from_message, to_message};
use loopsy_transports::jsonrpc;
use loopsy_transports::secrets::hex;
use loopsy_transports::wire::{UploadBody, method};
use serde_json::{Value, json};

use super::client::{PeerClient, read_answer, rest_refusal, unreachable};
use super::link::PeerLink;
use super::link_transfer::{ANSWER_LIMIT, HEAD_TIMEOUT, open_framed};
use crate::secrets::random_bytes;

/// Send the bytes of `body` to the peer as `dest_path`.
#[derive(Message)]
#[rtype(result = "Result<Value, ApiError>")]
pub struct PeerPush {
    pub dest_path: String,
    pub checksum: Option<String>,
    pub body: UploadBody,
    pub idle: Duration,
}

/// How long closing the push's connection may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The JSON-RPC id of the push on its own framed connection.
const PUSH_ID: u64 = 1;

fn stalled_error(name: &str, idle: Duration) -> ApiError {
    ApiError::new(
        code::TRANSFER_FAILED,
        504,
        format!(
            "peer {name}: no bytes moved for {} s; the push was stopped",
            idle.as_secs()
        ),
    )
}

/// What the peer said on the push's framed connection, if it was the answer.
fn push_answer(name: &str, message: awc::ws::Frame) -> Option<Result<Value, ApiError>> {
    let awc::ws::Frame::Binary(bytes) = message else {
        return None;
    };
    let Ok(Frame::Json(json)) = from_message(bytes) else {
        return None;
    };
    let answer: Value = serde_json::from_slice(&json).ok()?;
    // Notifications and stray frames are not the answer; an error without an
    // id (a framing complaint) ends the push as much as its own answer does.
    let id = answer.get("id")?;
    (id.as_u64() == Some(PUSH_ID) || (id.is_null() && answer.get("error").is_some()))
        .then(|| read_answer(name, answer))
}

/// A loopsy peer: the framed connection, sending and reading at once.
async fn push_framed(client: Rc<PeerClient>, push: PeerPush) -> Result<Value, ApiError> {
    let name = client.name().to_owned();
    let (mut sink, mut stream) = open_framed(&client, "the push").await?;
    let lost = |e| unreachable(&name, format!("the push broke off ({e})"));
    let params = json!({"destPath": push.dest_path, "checksum": push.checksum});
    let call = jsonrpc::call(PUSH_ID, method::TRANSFER_PUSH, Some(&params));
    let send = |frame: Frame| Message::Binary(to_message(frame));
    tokio::time::timeout(
        HEAD_TIMEOUT,
        sink.send(send(Frame::Json(Bytes::from(call)))),
    )
    .await
    .map_err(|_| unreachable(&name, "it took no push"))?
    .map_err(lost)?;
    let UploadBody(mut body) = push.body;
    let mut sent_all = false;
    // Deadlines move only with progress: a peer that pings (or sends stray
    // frames) without answering cannot hold the push open.
    let mut stall_at = tokio::time::Instant::now() + push.idle;
    let mut answer_by = stall_at;
    let outcome = loop {
        tokio::select! {
            // Biased: an answer that is there is read before more is sent.
            biased;
            message = stream.next() => match message {
                Some(Ok(awc::ws::Frame::Ping(bytes))) => {
                    let _ = tokio::time::timeout(push.idle, sink.send(Message::Pong(bytes))).await;
                }
                Some(Ok(message)) => {
                    if let Some(answer) = push_answer(&name, message) {
                        break answer;
                    }
                }
                Some(Err(e)) => break Err(lost(e)),
                None => break Err(unreachable(&name, "it closed the push before answering")),
            },
            piece = body.recv(), if !sent_all => match piece {
                Some(Ok(piece)) => {
                    stall_at = tokio::time::Instant::now() + push.idle;
                    for part in piece.chunks(MAX_FRAME_PAYLOAD) {
                        let frame = send(Frame::Binary(piece.slice_ref(part)));
                        // A peer that stops reading is a stall, like a client that stops sending.
                        match tokio::time::timeout(push.idle, sink.send(frame)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => return Err(lost(e)),
                            Err(_) => return Err(stalled_error(&name, push.idle)),
                        }
                    }
                }
                // The local client stopped: closing without the end frame makes
                // the peer discard what it wrote.
                Some(Err(stopped)) => {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
                    return Err(ApiError::new(code::TRANSFER_FAILED, 502, format!(
                        "the push to peer {name} was cut off ({stopped})"
                    )));
                }
                None => {
                    let end = sink.send(send(Frame::Binary(Bytes::new())));
                    match tokio::time::timeout(push.idle, end).await {
                        Ok(sent) => sent.map_err(lost)?,
                        Err(_) => return Err(stalled_error(&name, push.idle)),
                    }
                    sent_all = true;
                    answer_by = tokio::time::Instant::now() + HEAD_TIMEOUT;
                }
            },
            () = tokio::time::sleep_until(stall_at), if !sent_all => {
                break Err(stalled_error(&name, push.idle));
            }
            () = tokio::time::sleep_until(answer_by), if sent_all => {
                break Err(unreachable(&name, "its answer to the push did not come"));
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
    outcome
}

fn form_text(boundary: &str, name: &str, value: &str) -> String {
    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
}

/// Waits until `last` has not moved for `idle`.
async fn stalled(last: Rc<Cell<Instant>>, idle: Duration) {
    loop {
        let quiet = last.get().elapsed();
        if quiet >= idle {
            return;
        }
        tokio::time::sleep(idle - quiet).await;
    }
}

/// A TypeScript Loopsy: its multipart REST route.
async fn push_multipart(client: Rc<PeerClient>, push: PeerPush) -> Result<Value, ApiError> {
    let name = client.name().to_owned();
    let boundary = format!(
        "loopsy-{}",
        hex(&random_bytes::<12>().map_err(|e| ApiError::internal(e.to_string()))?)
    );
    let mut head = form_text(&boundary, "destPath", &push.dest_path);
    if let Some(checksum) = &push.checksum {
        head.push_str(&form_text(&boundary, "checksum", checksum));
    }
    head.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ));
    let tail = format!("\r\n--{boundary}--\r\n");
    let last = Rc::new(Cell::new(Instant::now()));
    let moved = last.clone();
    // The client's pieces as they come; an early stop aborts the request, so
    // the peer sees a cut-off form and keeps nothing.
    let pieces = stream::unfold(push.body.0, move |mut body| {
        let moved = moved.clone();
        async move {
            match body.recv().await {
                Some(Ok(piece)) => {
                    moved.set(Instant::now());
                    Some((Ok::<Bytes, std::io::Error>(piece), body))
                }
                Some(Err(stopped)) => Some((Err(std::io::Error::other(stopped)), body)),
                None => None,
            }
        }
    });
    let form = stream::once(async move { Ok(Bytes::from(head)) })
        .chain(pieces)
        .chain(stream::once(async move { Ok(Bytes::from(tail)) }));
    let sending = client
        .rest("/api/v1/transfer/push")
        .content_type(format!("multipart/form-data; boundary={boundary}"))
        .send_stream(form);
    let mut response = tokio::select! {
        sent = sending => sent.map_err(|e| unreachable(&name, format!("the push failed ({e})")))?,
        () = stalled(last, push.idle) => return Err(stalled_error(&name, push.idle)),
    };
    let body = tokio::time::timeout(HEAD_TIMEOUT, response.body().limit(ANSWER_LIMIT))
        .await
        .map_err(|_| unreachable(&name, "its answer to the push did not come"))?
        .map_err(|e| unreachable(&name, format!("its answer to the push is unreadable ({e})")))?;
    if response.status().is_success() {
        serde_json::from_slice(&body)
            .map_err(|_| unreachable(&name, "its answer to the push is not JSON"))
    } else {
        Err(rest_refusal(&name, response.status().as_u16(), &body))
    }
}

impl Handler<PeerPush> for PeerLink {
    type Result = ResponseFuture<Result<Value, ApiError>>;

    fn handle(&mut self, message: PeerPush, _: &mut Self::Context) -> Self::Result {
        match self.client() {
            Some(client) if client.is_typescript() => Box::pin(push_multipart(client, message)),
            Some(client) => Box::pin(push_framed(client, message)),
            None => Box::pin(async {
                Err(ApiError::internal(
                    "this peer has no client; see the daemon log",
                ))
            }),
        }
    }
}
