//! One `Room` actor per device splices its laptop socket with its phone
//! sockets. Every socket has a bounded outbound queue: a phone that reads too
//! slowly is dropped (close 4008) instead of slowing the laptop or the other
//! phones; frames from phones wait for room in the laptop's queue, so a busy
//! laptop slows the phones that feed it and nothing piles up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use bytes::Bytes;
use loopsy_transports::relay_wire::{ChannelKind, FromLaptop, ToLaptop, ToPhone, close};
use loopsy_transports::secrets::{KeyDigest, generate_api_key};
use tokio::sync::mpsc;

use crate::metrics::{self, Metrics};
use crate::store::{PhoneRecord, Store};

/// What a socket's writer task sends.
#[derive(Debug)]
pub enum Outbound {
    Binary(Bytes),
    Text(String),
    /// The answer to a client's ping (RFC 6455 §5.5.3).
    Pong(Bytes),
    Close(u16, &'static str),
}

/// Frames queued per socket before a phone counts as too slow.
pub const SOCKET_QUEUE: usize = 256;

/// How long a closed channel's last frames may take to reach a phone that
/// has stopped reading before its socket is closed regardless.
const LAST_FRAMES_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A socket's way out, in two lanes: bulk frames in a bounded queue (a
/// reader that falls behind fills it), and control messages and closes in a
/// lane of their own that the writer serves first and that never fills, so a
/// close or a control message is never lost behind bulk output.
#[derive(Clone)]
pub struct Sink {
    frames: mpsc::Sender<Outbound>,
    urgent: mpsc::UnboundedSender<Outbound>,
}

/// The writer's ends of a [`Sink`].
pub struct SinkQueues {
    pub frames: mpsc::Receiver<Outbound>,
    pub urgent: mpsc::UnboundedReceiver<Outbound>,
}

impl Sink {
    pub fn new() -> (Self, SinkQueues) {
        let (frames, frame_queue) = mpsc::channel(SOCKET_QUEUE);
        let (urgent, urgent_queue) = mpsc::unbounded_channel();
        (
            Self { frames, urgent },
            SinkQueues {
                frames: frame_queue,
                urgent: urgent_queue,
            },
        )
    }

    /// A bulk frame, if there is room.
    pub fn try_frame(&self, frame: Outbound) -> Result<(), mpsc::error::TrySendError<Outbound>> {
        self.frames.try_send(frame)
    }

    /// A bulk frame, waiting for room.
    pub async fn frame(&self, frame: Outbound) -> bool {
        self.frames.send(frame).await.is_ok()
    }

    /// A control message or a close, ahead of bulk frames.
    pub fn urgent(&self, message: Outbound) {
        let _ = self.urgent.send(message);
    }

    /// A close that follows the frames already queued (a laptop's last words
    /// reach the phone before its close). A reader whose queue is full is
    /// too slow anyway: it is closed at once as such. One that does not take
    /// those last frames within [`LAST_FRAMES_GRACE`] is closed then all the same.
    pub fn close_after_frames(&self, code: u16, reason: &'static str) {
        match self.frames.try_send(Outbound::Close(code, reason)) {
            Ok(()) => {
                let urgent = self.urgent.clone();
                actix_web::rt::spawn(async move {
                    tokio::time::sleep(LAST_FRAMES_GRACE).await;
                    // A no-op when the close went out in time (the writer is gone).
                    let _ = urgent.send(Outbound::Close(code, reason));
                });
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.urgent(Outbound::Close(
                    close::TOO_SLOW,
                    "the phone read too slowly",
                ));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

fn text<T: serde::Serialize>(message: &T) -> Outbound {
    Outbound::Text(serde_json::to_string(message).unwrap_or_default())
}

struct Laptop {
    connection: u64,
    sink: Sink,
}

struct Channel {
    kind: ChannelKind,
    sink: Sink,
}

/// Open phone sockets a device may have: all kinds together, and pairings.
#[derive(Debug, Clone, Copy)]
pub struct SocketCaps {
    pub phones: usize,
    pub pairings: usize,
}

pub struct Room {
    device_id: String,
    laptop: Option<Laptop>,
    channels: HashMap<u32, Channel>,
    next_channel: u32,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    caps: SocketCaps,
    /// Phones the laptop was told are revoked: a revocation arrives again
    /// from the database's announcement (PostgreSQL), and is told once.
    told_revoked: std::collections::HashSet<String>,
}

/// Revocations a room remembers having told (a bound, not a policy).
const TOLD_REVOKED_KEPT: usize = 256;

impl Actor for Room {
    type Context = Context<Self>;
}

impl Room {
    fn close_channel(&mut self, channel: u32, code: u16, reason: &'static str) {
        if let Some(gone) = self.channels.remove(&channel) {
            gone.sink.urgent(Outbound::Close(code, reason));
        }
    }

    /// Ends a channel the laptop is done with, after what it sent on it.
    fn finish_channel(&mut self, channel: u32, code: u16, reason: &'static str) {
        if let Some(gone) = self.channels.remove(&channel) {
            gone.sink.close_after_frames(code, reason);
        }
    }

    fn close_all(&mut self, code: u16, reason: &'static str) {
        for (_, gone) in self.channels.drain() {
            gone.sink.urgent(Outbound::Close(code, reason));
        }
    }

    fn tell_laptop(&self, message: &ToLaptop) {
        if let Some(laptop) = &self.laptop {
            laptop.sink.urgent(text(message));
        }
    }

    fn revoke(&mut self, phone_id: &str) {
        let doomed: Vec<u32> = self
            .channels
            .iter()
            .filter(|(_, c)| matches!(&c.kind, ChannelKind::Phone { phone_id: p } if p == phone_id))
            .map(|(n, _)| *n)
            .collect();
        for channel in doomed {
            self.close_channel(channel, close::REVOKED, "phone revoked");
        }
        if self.told_revoked.len() >= TOLD_REVOKED_KEPT {
            self.told_revoked.clear();
        }
        if self.told_revoked.insert(phone_id.to_owned()) {
            self.tell_laptop(&ToLaptop::Revoked {
                phone_id: phone_id.to_owned(),
            });
        }
    }

    fn stop_if_idle(&self, ctx: &mut Context<Self>) {
        if self.laptop.is_none() && self.channels.is_empty() {
            ctx.stop();
        }
    }

    fn complete_pairing(&mut self, channel: u32, ctx: &mut Context<Self>) {
        let Some(Channel {
            kind: ChannelKind::Pairing { token_id },
            ..
        }) = self.channels.get(&channel)
        else {
            return;
        };
        let (store, device_id, token_id) =
            (self.store.clone(), self.device_id.clone(), token_id.clone());
        let work = async move {
            let secret = generate_api_key().ok()?;
            let phone = PhoneRecord {
                phone_id: uuid::Uuid::new_v4().to_string(),
                label: None,
                paired_at: crate::now_ms() as i64,
            };
            let digest = KeyDigest::of(&secret);
            match store
                .complete_pairing(&device_id, &token_id, &phone, &digest)
                .await
            {
                Ok(true) => Some((phone.phone_id, secret)),
                Ok(false) => None,
                Err(e) => {
                    tracing::error!(error = %e, "cannot store a new phone");
                    None
                }
            }
        };
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(move |done, room, _| {
                let Some((phone_id, phone_secret)) = done else {
                    room.close_channel(
                        channel,
                        close::PAIRING_REFUSED,
                        "pairing token already used or dead",
                    );
                    return;
                };
                metrics::add(&room.metrics.pairings, 1);
                if let Some(open) = room.channels.get(&channel) {
                    let credentials = ToPhone::Credentials {
                        device_id: room.device_id.clone(),
                        phone_id: phone_id.clone(),
                        phone_secret,
                    };
                    open.sink.urgent(text(&credentials));
                }
                room.tell_laptop(&ToLaptop::Paired { channel, phone_id });
            }),
        );
    }
}

/// A laptop socket joins (replacing any earlier one of the device).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LaptopJoin {
    pub connection: u64,
    pub sink: Sink,
}

impl Handler<LaptopJoin> for Room {
    type Result = ();
    fn handle(&mut self, msg: LaptopJoin, _ctx: &mut Context<Self>) {
        if let Some(old) = self.laptop.take() {
            old.sink.urgent(Outbound::Close(
                close::REPLACED,
                "replaced by a new laptop connection",
            ));
        }
        // The phones' end-to-end channels ended with the old connection.
        self.close_all(
            close::DEVICE_OFFLINE,
            "the laptop reconnected; connect again",
        );
        self.laptop = Some(Laptop {
            connection: msg.connection,
            sink: msg.sink,
        });
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct LaptopLeave {
    pub connection: u64,
}

impl Handler<LaptopLeave> for Room {
    type Result = ();
    fn handle(&mut self, msg: LaptopLeave, ctx: &mut Context<Self>) {
        if self
            .laptop
            .as_ref()
            .is_some_and(|l| l.connection == msg.connection)
        {
            self.laptop = None;
            self.close_all(close::DEVICE_OFFLINE, "the laptop went offline");
        }
        self.stop_if_idle(ctx);
    }
}

/// A binary frame from the laptop: `u32 channel | sealed bytes`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LaptopFrame {
    pub channel: u32,
    pub payload: Bytes,
}

impl Handler<LaptopFrame> for Room {
    type Result = ();
    fn handle(&mut self, msg: LaptopFrame, _ctx: &mut Context<Self>) {
        let Some(open) = self.channels.get(&msg.channel) else {
            return;
        };
        match open.sink.try_frame(Outbound::Binary(msg.payload)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::add(&self.metrics.dropped_slow_phones, 1);
                self.close_channel(msg.channel, close::TOO_SLOW, "the phone read too slowly");
                self.tell_laptop(&ToLaptop::Close {
                    channel: msg.channel,
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.channels.remove(&msg.channel);
                self.tell_laptop(&ToLaptop::Close {
                    channel: msg.channel,
                });
            }
        }
    }
}

/// A control message from the laptop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LaptopControl(pub FromLaptop);

impl Handler<LaptopControl> for Room {
    type Result = ();
    fn handle(&mut self, msg: LaptopControl, ctx: &mut Context<Self>) {
        match msg.0 {
            FromLaptop::Close { channel } => {
                self.finish_channel(channel, close::CLOSED_BY_DEVICE, "closed by the laptop")
            }
            FromLaptop::PairAccept { channel } => self.complete_pairing(channel, ctx),
            FromLaptop::PairKill { channel } => {
                let token_id = match self.channels.get(&channel) {
                    Some(Channel {
                        kind: ChannelKind::Pairing { token_id },
                        ..
                    }) => token_id.clone(),
                    _ => return,
                };
                // Out of the room at once, with every other socket of that
                // token: the laptop's close that follows must not end them
                // before the token is dead on disk, or a phone could come
                // straight back with it.
                let doomed: Vec<u32> = self
                    .channels
                    .iter()
                    .filter(|(_, c)| matches!(&c.kind, ChannelKind::Pairing { token_id: t } if *t == token_id))
                    .map(|(n, _)| *n)
                    .collect();
                let dying: Vec<Channel> = doomed
                    .iter()
                    .filter_map(|n| self.channels.remove(n))
                    .collect();
                let store = self.store.clone();
                // On a task of its own: the room may stop (its laptop gone)
                // before the kill is stored, and the phones must be closed anyway.
                actix_web::rt::spawn(async move {
                    let kill = store.kill_pair_token(&token_id).await;
                    if kill.is_err() {
                        tracing::error!("cannot mark a pairing token dead after wrong codes");
                    }
                    for channel in dying {
                        channel
                            .sink
                            .close_after_frames(close::PAIRING_REFUSED, "too many wrong codes");
                    }
                });
            }
            FromLaptop::Revoke { phone_id } => {
                let (store, device_id, phone) =
                    (self.store.clone(), self.device_id.clone(), phone_id.clone());
                actix_web::rt::spawn(async move {
                    if let Err(e) = store.remove_phone(&device_id, &phone).await {
                        tracing::error!(error = %e, "cannot store a revocation the laptop made");
                    }
                });
                self.revoke(&phone_id);
            }
        }
    }
}

/// Why a phone socket could not join its device's room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefused {
    /// No laptop socket.
    Offline,
    /// The phone was revoked between its check and its joining.
    Revoked,
    /// The device has as many phone (or pairing) sockets as it may.
    Full,
}

/// A phone socket joins: its channel number and the laptop's queue.
#[derive(Message)]
#[rtype(result = "Result<(u32, Sink), JoinRefused>")]
pub struct PhoneJoin {
    pub kind: ChannelKind,
    pub sink: Sink,
}

impl Handler<PhoneJoin> for Room {
    type Result = Result<(u32, Sink), JoinRefused>;
    fn handle(&mut self, msg: PhoneJoin, _ctx: &mut Context<Self>) -> Self::Result {
        // Authorized before a revocation that arrived while it upgraded.
        if let ChannelKind::Phone { phone_id } = &msg.kind
            && self.told_revoked.contains(phone_id)
        {
            return Err(JoinRefused::Revoked);
        }
        let laptop = self
            .laptop
            .as_ref()
            .ok_or(JoinRefused::Offline)?
            .sink
            .clone();
        let pairings = self
            .channels
            .values()
            .filter(|c| matches!(c.kind, ChannelKind::Pairing { .. }))
            .count();
        let pairing = matches!(msg.kind, ChannelKind::Pairing { .. });
        if self.channels.len() >= self.caps.phones || (pairing && pairings >= self.caps.pairings) {
            metrics::add(&self.metrics.rejected_capacity, 1);
            return Err(JoinRefused::Full);
        }
        self.next_channel = self.next_channel.wrapping_add(1).max(1);
        let channel = self.next_channel;
        self.tell_laptop(&ToLaptop::Open {
            channel,
            kind: msg.kind.clone(),
        });
        self.channels.insert(
            channel,
            Channel {
                kind: msg.kind,
                sink: msg.sink,
            },
        );
        Ok((channel, laptop))
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct PhoneLeave {
    pub channel: u32,
}

impl Handler<PhoneLeave> for Room {
    type Result = ();
    fn handle(&mut self, msg: PhoneLeave, ctx: &mut Context<Self>) {
        if self.channels.remove(&msg.channel).is_some() {
            self.tell_laptop(&ToLaptop::Close {
                channel: msg.channel,
            });
        }
        self.stop_if_idle(ctx);
    }
}

/// The owner revoked a phone through the HTTP API.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RevokePhone {
    pub phone_id: String,
}

/// A phone of this device reached another node of the fleet: the laptop is
/// let go, to reconnect through the balancer to the node its phones reach.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LaptopWanted;

impl Handler<LaptopWanted> for Room {
    type Result = ();
    fn handle(&mut self, _: LaptopWanted, _ctx: &mut Context<Self>) {
        if let Some(laptop) = self.laptop.as_ref() {
            laptop.sink.urgent(Outbound::Close(
                close::MOVED,
                "this device's phones reach another relay node; reconnect",
            ));
        }
    }
}

impl Handler<RevokePhone> for Room {
    type Result = ();
    fn handle(&mut self, msg: RevokePhone, _ctx: &mut Context<Self>) {
        self.revoke(&msg.phone_id);
    }
}

/// The rooms of all devices with a live socket.
pub struct Rooms {
    rooms: Mutex<HashMap<String, Addr<Room>>>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    caps: SocketCaps,
}

impl Rooms {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>, caps: SocketCaps) -> Self {
        Self {
            rooms: Mutex::default(),
            store,
            metrics,
            caps,
        }
    }

    /// The device's room, started on this thread's arbiter if it has none.
    pub fn room(&self, device_id: &str) -> Option<Addr<Room>> {
        let mut rooms = self.rooms.lock().ok()?;
        if let Some(room) = rooms.get(device_id).filter(|r| r.connected()) {
            return Some(room.clone());
        }
        rooms.retain(|_, r| r.connected());
        let room = Room {
            device_id: device_id.to_owned(),
            laptop: None,
            channels: HashMap::new(),
            told_revoked: Default::default(),
            next_channel: 0,
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            caps: self.caps,
        }
        .start();
        rooms.insert(device_id.to_owned(), room.clone());
        Some(room)
    }

    /// The device's room if it has one (revocation of an offline device needs none).
    pub fn existing(&self, device_id: &str) -> Option<Addr<Room>> {
        self.rooms
            .lock()
            .ok()?
            .get(device_id)
            .filter(|r| r.connected())
            .cloned()
    }
}
