//! The three WebSocket doors: `/laptop/connect` (device secret),
//! `/phone/connect/{device}` (phone secret) and `/pair/connect/{device}` (a
//! one-time pair token). Each socket gets a writer task draining its bounded
//! queue, pings every 25 s and an idle timeout; a frame announcing more than
//! 1 MiB closes it (1009) from its header, before its payload is read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::Addr;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message};
use loopsy_transports::relay_wire::{
    ChannelKind, FromLaptop, MAX_FRAME, SUBPROTOCOL, close, split_channel_frame,
};
use loopsy_transports::secrets::KeyDigest;
use tokio::sync::mpsc;

use crate::access::{ConnectionSlot, bearer, client_ip, origin_allowed};
use crate::frame_guard::{Tripped, guarded};
use crate::metrics;
use crate::rooms::{
    JoinRefused, LaptopControl, LaptopFrame, LaptopJoin, LaptopLeave, Outbound, PhoneJoin,
    PhoneLeave, Room, Sink, SinkQueues,
};
use crate::state::{DeviceQuery, PhoneQuery, RelayState, Verdict, refuse};

const PING_EVERY: Duration = Duration::from_secs(25);
/// A socket with no frame (pongs included) for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(70);
/// How long a close frame may take to go out before the socket is just cut.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

fn reason(code: u16, description: &'static str) -> CloseReason {
    CloseReason {
        code: CloseCode::Other(code),
        description: Some(description.to_owned()),
    }
}

/// Checks origin and capacity; the socket's slot lives as long as the socket.
/// A refusal is a status and a message.
fn admit(req: &HttpRequest, state: &RelayState) -> Result<ConnectionSlot, (u16, &'static str)> {
    if !origin_allowed(req, &state.allowed_origins) {
        metrics::add(&state.metrics.rejected_origin, 1);
        return Err((403, "origin not allowed"));
    }
    let ip = client_ip(req, &state.trusted_proxies).ok_or((400, "no peer address"))?;
    state.connection_cap.take(ip).ok_or_else(|| {
        metrics::add(&state.metrics.rejected_capacity, 1);
        (429, "too many connections from this address")
    })
}

/// Sends one message; a close ends the socket (dropping the session ends the
/// connection even when the peer stopped reading).
async fn deliver(session: &mut actix_ws::Session, message: Outbound) -> bool {
    match message {
        Outbound::Binary(bytes) => session.binary(bytes).await.is_ok(),
        Outbound::Text(text) => session.text(text).await.is_ok(),
        Outbound::Pong(bytes) => session.pong(&bytes).await.is_ok(),
        Outbound::Close(code, why) => {
            let _ =
                tokio::time::timeout(CLOSE_GRACE, session.clone().close(Some(reason(code, why))))
                    .await;
            false
        }
    }
}

/// The socket's writer: urgent messages first, then bulk frames, pings in
/// between. A close that arrives while a send waits on a peer that stopped
/// reading still ends the socket at once.
async fn write_socket(
    mut session: actix_ws::Session,
    mut queues: SinkQueues,
    _done: mpsc::Sender<()>,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut held: std::collections::VecDeque<Outbound> = std::collections::VecDeque::new();
    loop {
        let next = match held.pop_front() {
            Some(message) => message,
            None => tokio::select! {
                biased;
                urgent = queues.urgent.recv() => match urgent { Some(m) => m, None => return },
                frame = queues.frames.recv() => match frame { Some(m) => m, None => return },
                _ = ping.tick() => {
                    if session.ping(b"").await.is_err() { return; }
                    continue;
                }
            },
        };
        let sending = deliver(&mut session, next);
        tokio::pin!(sending);
        // Most sends complete at once; only one that waits races the urgent lane.
        if let Some(sent) = futures_util::FutureExt::now_or_never(&mut sending) {
            if !sent {
                return;
            }
            continue;
        }
        loop {
            tokio::select! {
                biased;
                sent = &mut sending => {
                    if !sent { return; }
                    break;
                }
                Some(urgent) = queues.urgent.recv() => match urgent {
                    Outbound::Close(..) => return,
                    other => held.push_back(other),
                },
            }
        }
    }
}

/// Largest frame a socket takes: a channel number and a maximal payload.
const MAX_SOCKET_FRAME: usize = MAX_FRAME + 4;

/// The reading side of an upgraded socket.
struct Reader {
    stream: actix_ws::MessageStream,
    /// Ends when the writer does.
    writer_gone: mpsc::Receiver<()>,
    /// Told when a frame header announced more than [`MAX_SOCKET_FRAME`].
    oversized: Tripped,
}

/// Upgrades (behind the frame guard) and starts the writer and pinger;
/// returns the response, the socket's sink and its reading side.
async fn upgrade(
    req: &HttpRequest,
    body: web::Payload,
) -> Result<(HttpResponse, Sink, Reader), actix_web::Error> {
    let (body, oversized) = guarded(req, body, MAX_SOCKET_FRAME as u64).await?;
    let (response, session, stream) = actix_ws::handle_with_protocols(req, body, &[SUBPROTOCOL])?;
    let stream = stream.max_frame_size(MAX_SOCKET_FRAME);
    let (sink, queues) = Sink::new();
    // Dropped when the writer ends, so the reader stops too.
    let (writer_done, writer_gone) = mpsc::channel::<()>(1);
    actix_web::rt::spawn(write_socket(session, queues, writer_done));
    let reader = Reader {
        stream,
        writer_gone,
        oversized,
    };
    Ok((response, sink, reader))
}

/// What the reader loop got.
enum Incoming {
    Binary(bytes::Bytes),
    Text(String),
    End,
}

/// The next frame worth handling; answers pings, ends on close, error,
/// idleness or an oversized frame.
async fn next_frame(reader: &mut Reader, sink: &Sink) -> Incoming {
    loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout(IDLE_TIMEOUT, reader.stream.recv()) => frame,
            _ = reader.writer_gone.recv() => return Incoming::End,
            () = reader.oversized.wait() => {
                sink.urgent(Outbound::Close(close::TOO_BIG, "frame too large"));
                // What still comes is dropped unread while the close goes out,
                // so the client sees it before the connection ends.
                let _ = tokio::time::timeout(CLOSE_GRACE, reader.stream.recv()).await;
                return Incoming::End;
            }
        };
        match frame {
            Err(_idle) => {
                sink.urgent(Outbound::Close(close::IDLE, "idle"));
                return Incoming::End;
            }
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return Incoming::End,
            Ok(Some(Ok(Message::Binary(bytes)))) => return Incoming::Binary(bytes),
            Ok(Some(Ok(Message::Text(text)))) => return Incoming::Text(text.to_string()),
            // actix-ws leaves answering pings to us; a client with keepalive
            // (the daemon, browsers' libraries, Python `websockets`) counts a
            // missing pong as a dead link. Control frames carry at most 125 bytes.
            Ok(Some(Ok(Message::Ping(bytes)))) if bytes.len() <= 125 => {
                sink.urgent(Outbound::Pong(bytes));
            }
            // Pongs only prove the socket alive.
            Ok(Some(Ok(_))) => {}
        }
    }
}

pub async fn laptop_connect(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<DeviceQuery>,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, actix_web::Error> {
    let Some(device_id) = query.into_inner().device_id.filter(|d| !d.is_empty()) else {
        return Ok(refuse(400, "device_id required"));
    };
    let slot = match admit(&req, &state) {
        Ok(slot) => slot,
        Err((status, message)) => return Ok(refuse(status, message)),
    };
    if let Some(no) = state
        .device_authorized(&device_id, bearer(&req))
        .await
        .refusal("missing or wrong device secret")
    {
        return Ok(no);
    }
    let (response, sink, mut reader) = upgrade(&req, body).await?;
    let connection = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        let _slot = slot;
        let Some(room) = join_laptop(&state, &device_id, connection, &sink).await else {
            sink.urgent(Outbound::Close(
                close::DEVICE_OFFLINE,
                "relay busy; reconnect",
            ));
            return;
        };
        metrics::add(&state.metrics.laptops, 1);
        tracing::info!(device = %device_id, "laptop connected");
        loop {
            match next_frame(&mut reader, &sink).await {
                Incoming::Binary(frame) => {
                    metrics::add(&state.metrics.frames_from_laptops, 1);
                    metrics::add(&state.metrics.bytes_from_laptops, frame.len() as u64);
                    if let Some((channel, payload)) = split_channel_frame(frame) {
                        room.do_send(LaptopFrame { channel, payload });
                    }
                }
                Incoming::Text(text) => match serde_json::from_str::<FromLaptop>(&text) {
                    Ok(control) => room.do_send(LaptopControl(control)),
                    Err(e) => {
                        tracing::debug!(error = %e, "ignoring a garbled control message from a laptop")
                    }
                },
                Incoming::End => break,
            }
        }
        room.do_send(LaptopLeave { connection });
        metrics::sub(&state.metrics.laptops, 1);
        tracing::info!(device = %device_id, "laptop disconnected");
    });
    Ok(response)
}

async fn join_laptop(
    state: &RelayState,
    device_id: &str,
    connection: u64,
    sink: &Sink,
) -> Option<Addr<Room>> {
    // A room that just stopped refuses mail: the second try starts a new one.
    for _ in 0..2 {
        let room = state.rooms.room(device_id)?;
        if room
            .send(LaptopJoin {
                connection,
                sink: sink.clone(),
            })
            .await
            .is_ok()
        {
            return Some(room);
        }
    }
    None
}

pub async fn phone_connect(
    req: HttpRequest,
    body: web::Payload,
    device: web::Path<String>,
    query: web::Query<PhoneQuery>,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, actix_web::Error> {
    let device_id = device.into_inner();
    let Some(phone_id) = query.into_inner().phone_id.filter(|p| !p.is_empty()) else {
        return Ok(refuse(400, "phone_id required"));
    };
    let slot = match admit(&req, &state) {
        Ok(slot) => slot,
        Err((status, message)) => return Ok(refuse(status, message)),
    };
    match state
        .phone_authorized(&device_id, &phone_id, bearer(&req))
        .await
    {
        Verdict::Granted => {}
        Verdict::Unavailable(e) => return Ok(crate::http::store_failed(&e)),
        Verdict::Refused => {
            // A browser sees no status of a refused upgrade: a revoked phone is
            // let in only to be told so by its close code.
            if state
                .phone_was_revoked(&device_id, &phone_id, bearer(&req))
                .await
            {
                return refuse_after_upgrade(&req, body, slot, close::REVOKED, "phone revoked")
                    .await;
            }
            return Ok(refuse(401, "missing or wrong phone secret"));
        }
    }
    let kind = ChannelKind::Phone { phone_id };
    splice_phone(req, body, device_id, kind, slot, state.into_inner()).await
}

pub async fn pair_connect(
    req: HttpRequest,
    body: web::Payload,
    device: web::Path<String>,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, actix_web::Error> {
    let device_id = device.into_inner();
    let slot = match admit(&req, &state) {
        Ok(slot) => slot,
        Err((status, message)) => return Ok(refuse(status, message)),
    };
    let Some(token) = bearer(&req) else {
        metrics::add(&state.metrics.rejected_auth, 1);
        return Ok(refuse(401, "missing pairing token"));
    };
    let checked = state
        .store
        .attempt_pair_token(&device_id, &KeyDigest::of(&token), crate::now_ms() / 1000)
        .await;
    let token_id = match checked {
        Ok(Ok(token_id)) => token_id,
        Ok(Err(refusal)) => {
            metrics::add(&state.metrics.rejected_auth, 1);
            // Said after the upgrade, where the phone's app can read it.
            return refuse_after_upgrade(
                &req,
                body,
                slot,
                close::PAIRING_REFUSED,
                refusal.reason(),
            )
            .await;
        }
        Err(e) => return Ok(crate::http::store_failed(&e)),
    };
    let kind = ChannelKind::Pairing { token_id };
    splice_phone(req, body, device_id, kind, slot, state.into_inner()).await
}

/// Upgrades only to close at once with `code` and `reason`: how a browser,
/// which sees no HTTP status of a refused upgrade, learns why.
async fn refuse_after_upgrade(
    req: &HttpRequest,
    body: web::Payload,
    slot: ConnectionSlot,
    code: u16,
    reason: &'static str,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, sink, mut reader) = upgrade(req, body).await?;
    sink.urgent(Outbound::Close(code, reason));
    actix_web::rt::spawn(async move {
        let _slot = slot;
        // Until the close went out and the socket ended (bounded by the idle timeout).
        while !matches!(next_frame(&mut reader, &sink).await, Incoming::End) {}
    });
    Ok(response)
}

async fn splice_phone(
    req: HttpRequest,
    body: web::Payload,
    device_id: String,
    kind: ChannelKind,
    slot: ConnectionSlot,
    state: std::sync::Arc<RelayState>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, sink, mut reader) = upgrade(&req, body).await?;
    actix_web::rt::spawn(async move {
        let _slot = slot;
        let joined = match state.rooms.existing(&device_id) {
            Some(room) => match room
                .send(PhoneJoin {
                    kind,
                    sink: sink.clone(),
                })
                .await
            {
                Ok(Ok(joined)) => Ok((room, joined)),
                Ok(Err(refused)) => Err(refused),
                Err(_) => Err(JoinRefused::Offline),
            },
            None => Err(JoinRefused::Offline),
        };
        let (room, (channel, laptop)) = match joined {
            Ok(joined) => joined,
            Err(JoinRefused::Offline) => {
                sink.urgent(Outbound::Close(
                    close::DEVICE_OFFLINE,
                    "the laptop is offline",
                ));
                // In a fleet its laptop may sit on a node the balancer no longer
                // names for it (that node came back since): ask for it.
                if let Err(e) = state.store.want_laptop(&device_id).await {
                    tracing::warn!(error = %e, "cannot ask the fleet for a device's laptop");
                }
                return;
            }
            Err(JoinRefused::Revoked) => {
                sink.urgent(Outbound::Close(close::REVOKED, "phone revoked"));
                return;
            }
            Err(JoinRefused::Full) => {
                sink.urgent(Outbound::Close(
                    close::DEVICE_FULL,
                    "this device has as many phone sockets as the relay allows",
                ));
                return;
            }
        };
        metrics::add(&state.metrics.phones, 1);
        loop {
            match next_frame(&mut reader, &sink).await {
                Incoming::Binary(payload) => {
                    metrics::add(&state.metrics.frames_from_phones, 1);
                    metrics::add(&state.metrics.bytes_from_phones, payload.len() as u64);
                    let frame = loopsy_transports::relay_wire::channel_frame(channel, &payload);
                    // Waits for room: a busy laptop slows this phone, nothing piles up.
                    if !laptop.frame(Outbound::Binary(frame)).await {
                        break;
                    }
                }
                // Phones speak only end-to-end bytes to the laptop.
                Incoming::Text(_) => {}
                Incoming::End => break,
            }
        }
        room.do_send(PhoneLeave { channel });
        metrics::sub(&state.metrics.phones, 1);
    });
    Ok(response)
}
