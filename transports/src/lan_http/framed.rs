//! `GET /api/v1/framed`: the framed JSON-RPC protocol of the Unix socket over
//! a WebSocket, one frame per binary message (`framing::to_message`), for a
//! peer's daemon (a tunnel from its owner's CLI: `loopsy shell --peer`). The
//! Router is asked first (`peer.framed`), so a caller it does not accept is
//! refused before the upgrade; then a `FramedConnection` serves it, and the
//! Router decides each request inside as it decides any other.

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::render::render_rest;
use super::{LanState, ask_router, evidence_of};
use crate::framed_connection::FramedConnection;
use crate::framing::{self, Frame, MAX_FRAME_PAYLOAD};
use crate::wire::{PeerRequest, Request};

pub const PATH: &str = "/api/v1/framed";

pub(super) async fn open(
    state: web::Data<LanState>,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let mut handled = ask_router(&state, &req, Request::Peers(PeerRequest::FramedOpen)).await;
    let ends_when = match &mut handled.outcome {
        Ok(reply) => reply.ends_when.take(),
        Err(_) => return render_rest(handled),
    };
    let (response, mut session, messages) = match actix_ws::handle(&req, body) {
        Ok(upgraded) => upgraded,
        Err(e) => return HttpResponse::from_error(e),
    };
    // One frame per message, at most what a socket frame may hold.
    let messages = messages.max_frame_size(MAX_FRAME_PAYLOAD + 1);
    let frames = Box::pin(messages.filter_map(|message| async move {
        match message {
            Ok(actix_ws::Message::Binary(bytes)) => {
                Some(framing::from_message(bytes).map_err(|e| e.to_string()))
            }
            Ok(actix_ws::Message::Close(_)) => Some(Err("closed".to_owned())),
            Ok(_) => None,
            Err(e) => Some(Err(e.to_string())),
        }
    }))
    // (The reader ends the connection at the first error, a close included;
    // the Router ends it when the peer is removed: frames stop, and the
    // connection with everything running in it.)
    .take_until(ended(ends_when))
    .boxed_local();
    let writer = move |mut queue: tokio::sync::mpsc::Receiver<Frame>| async move {
        while let Some(frame) = queue.recv().await {
            if session.binary(framing::to_message(frame)).await.is_err() {
                return;
            }
        }
        let _ = session.close(None).await;
    };
    FramedConnection::start(frames, writer, state.router.clone(), evidence_of(&req));
    response
}

/// Resolves once `ends` turns true (or its sender is gone); never without one.
async fn ended(ends: Option<tokio::sync::watch::Receiver<bool>>) {
    match ends {
        Some(mut ends) => {
            let _ = ends.wait_for(|ended| *ended).await;
        }
        None => std::future::pending().await,
    }
}
