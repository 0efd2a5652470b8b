//! `RelayLink`: the daemon's one outbound WebSocket to its relay, and every
//! phone channel multiplexed on it. This file holds the socket (connect,
//! jittered backoff 1 s → 30 s, the writer with its urgent lane, `liveness`),
//! the carrying out of the channel state machine's effects (`channels` steps,
//! the Router decides: its questions go out as requests of principal
//! `RelayChannel`), and the serving of established channels by a
//! `FramedConnection` whose requests reach the Router as principal `Phone`.
//! The owner's operations are in `owner_ops`, the relay's HTTP side in
//! `relay_client`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use awc::ws::{Frame as WsFrame, Message as WsMessage};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use loopsy_transports::e2e::frames::{Reassembler, seal_frame};
use loopsy_transports::e2e::{Channel, StaticKey};
use loopsy_transports::error::ApiError;
use loopsy_transports::framed_connection::FramedConnection;
use loopsy_transports::framing::Frame;
use loopsy_transports::relay_wire::{
    FromLaptop, MAX_FRAME, SUBPROTOCOL, ToLaptop, channel_frame, split_channel_frame,
};
use loopsy_transports::wire::{Evidence, Inbound, Reply, Request};
use tokio::sync::mpsc;

use super::channels::{self, Effect, PhoneChannel};
use super::liveness::{DEFAULT_PING_EVERY, Liveness};
use super::relay_client::{HANDSHAKE_TIMEOUT, relay_client, ws_base};
use super::store::{PhoneBook, RelayCredentials, load_relay};
use crate::paths::DataDir;

/// First and longest wait between reconnection attempts.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Frames queued toward the relay before senders wait.
const OUTBOUND: usize = 1024;
/// Frames from one phone queued toward its connection before it is cut.
const INBOUND_PER_PHONE: usize = 256;

/// Bulk frames (phone output) toward the relay: bounded, so a slow relay link
/// slows the sessions feeding it.
pub(super) type Outbound = mpsc::Sender<WsMessage>;
/// This actor's own messages (handshakes, pairing answers, control): served
/// first and never full, so none is lost behind bulk output.
pub(super) type Urgent = mpsc::UnboundedSender<WsMessage>;

pub struct RelayLink {
    pub(super) data_dir: DataDir,
    router: Recipient<Inbound>,
    hostname: String,
    pub(super) key: Option<Arc<StaticKey>>,
    pub(super) phones: Option<PhoneBook>,
    pub(super) credentials: Option<RelayCredentials>,
    outbound: Option<Outbound>,
    urgent: Option<Urgent>,
    pub(super) connected: bool,
    pub(super) last_error: Option<String>,
    pub(super) backoff: Duration,
    /// Bumped on every (re)connection, so a stale stream's end is ignored.
    pub(super) generation: u64,
    pub(super) channels: HashMap<u32, PhoneChannel>,
    /// Numbers this link's questions to the Router (see `channels::Context`).
    next_ask: u64,
    liveness: Liveness,
    /// Stops reading the current socket when it is given up on.
    reading: Option<futures_util::stream::AbortHandle>,
    /// Where phones' `FramedConnection`s run (`None`: the link's own arbiter).
    connections: Option<actix_rt::ArbiterHandle>,
    /// The relay's origins, for the app the LAN transport serves.
    origins: super::RelayOrigins,
}

impl RelayLink {
    pub fn new(data_dir: DataDir, router: Recipient<Inbound>, hostname: String) -> Self {
        let key = super::store::load_or_create_key(&data_dir)
            .map_err(|e| tracing::error!(error = %e, "the phone path is off: no end-to-end key"))
            .ok()
            .map(Arc::new);
        let phones = PhoneBook::open(&data_dir)
            .map_err(|e| tracing::error!(error = %e, "the phone path is off: cannot open the phone list"))
            .ok();
        let credentials = load_relay(&data_dir)
            .map_err(|e| tracing::error!(error = %e, "cannot read the relay registration"))
            .ok()
            .flatten();
        Self {
            data_dir,
            router,
            hostname,
            key,
            phones,
            credentials,
            outbound: None,
            urgent: None,
            connected: false,
            last_error: None,
            backoff: BACKOFF_FIRST,
            generation: 0,
            channels: HashMap::new(),
            next_ask: 0,
            liveness: Liveness::new(DEFAULT_PING_EVERY),
            reading: None,
            connections: None,
            origins: super::RelayOrigins::default(),
        }
    }

    /// Keeps `origins` naming this link's relay.
    pub fn with_published_origins(mut self, origins: super::RelayOrigins) -> Self {
        origins.set(self.credentials.as_ref().map(|c| c.url.as_str()));
        self.origins = origins;
        self
    }

    /// Now at `credentials`' relay (kept by the caller).
    pub(super) fn set_credentials(&mut self, credentials: RelayCredentials) {
        self.origins.set(Some(&credentials.url));
        self.credentials = Some(credentials);
    }

    /// Serves phones' connections on `arbiter`, apart from the link's own thread.
    pub fn with_connections_on(mut self, arbiter: actix_rt::ArbiterHandle) -> Self {
        self.connections = Some(arbiter);
        self
    }

    /// Pings every `every` (`relay.pingIntervalSec`), and gives the link up when
    /// the relay stays silent past [`Liveness::dead_after`].
    pub fn with_ping_interval(mut self, every: Duration) -> Self {
        self.liveness = Liveness::new(every);
        self
    }

    /// Declares a link that has been silent too long dead, and reconnects.
    fn check_liveness(&mut self, ctx: &mut Context<Self>) {
        if !self.connected {
            return;
        }
        if let Some(silent) = self.liveness.overdue() {
            tracing::warn!(
                silent_ms = silent.as_millis() as u64,
                "the relay has not answered for {:.1} s; the link is half-open, reconnecting",
                silent.as_secs_f64()
            );
            self.last_error = Some(format!(
                "the relay stopped answering (silent for {:.1} s)",
                silent.as_secs_f64()
            ));
            self.generation += 1;
            self.disconnected(ctx);
        }
    }

    fn device_id(&self) -> String {
        self.credentials
            .as_ref()
            .map(|c| c.device_id.clone())
            .unwrap_or_default()
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let Some(credentials) = self.credentials.clone() else {
            return;
        };
        self.generation += 1;
        let generation = self.generation;
        let url = format!(
            "{}/laptop/connect?device_id={}",
            ws_base(&credentials.url),
            credentials.device_id
        );
        // The secret goes in `Authorization` (proxies redact it in their logs);
        // browsers, which cannot set it, use the subprotocol instead.
        let bearer = format!("Bearer {}", credentials.device_secret);
        let client = relay_client(credentials.ca_file.as_deref());
        let attempt = async move {
            let connecting = client
                .map_err(|e| e.message)?
                .ws(url)
                .protocols([SUBPROTOCOL])
                .set_header(awc::http::header::AUTHORIZATION, bearer)
                .max_frame_size(MAX_FRAME + 4)
                .connect();
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
                Ok(Ok((_, socket))) => Ok(socket),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the relay did not answer within 15 s".to_owned()),
            }
        };
        ctx.spawn(actix::fut::wrap_future::<_, Self>(attempt).map(move |result, link, ctx| {
            if generation != link.generation {
                return;
            }
            match result {
                Ok(socket) => {
                    let (mut sink, stream) = socket.split();
                    let (outbound, mut queue) = mpsc::channel::<WsMessage>(OUTBOUND);
                    let (urgent, mut urgent_queue) = mpsc::unbounded_channel::<WsMessage>();
                    let ping_every = link.liveness.ping_every();
                    actix_rt::spawn(async move {
                        let mut ping = tokio::time::interval(ping_every);
                        ping.tick().await;
                        loop {
                            let message = tokio::select! {
                                biased;
                                message = urgent_queue.recv() => message,
                                message = queue.recv() => message,
                                _ = ping.tick() => Some(WsMessage::Ping(Bytes::new())),
                            };
                            let Some(message) = message else { break };
                            // A relay that takes nothing for two intervals is gone:
                            // never wait on it for ever.
                            let sent = tokio::time::timeout(ping_every * 2, sink.send(message)).await;
                            if !matches!(sent, Ok(Ok(()))) {
                                break;
                            }
                        }
                        let _ = tokio::time::timeout(ping_every, sink.close()).await;
                    });
                    link.outbound = Some(outbound);
                    link.urgent = Some(urgent);
                    link.connected = true;
                    link.last_error = None;
                    link.backoff = BACKOFF_FIRST;
                    link.liveness.heard();
                    tracing::info!(relay = %link.credentials.as_ref().map(|c| c.url.as_str()).unwrap_or(""), "connected to the relay");
                    // Each item names its connection, and the end comes as an
                    // item too: a stale connection's end cannot cut a newer one.
                    let (stream, reading) = futures_util::stream::abortable(stream);
                    link.reading = Some(reading);
                    ctx.add_stream(
                        stream
                            .map(Some)
                            .chain(futures_util::stream::once(async { None }))
                            .map(move |frame| (generation, frame)),
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot reach the relay; retrying");
                    link.last_error = Some(error);
                    link.schedule_reconnect(ctx);
                }
            }
        }));
    }

    /// Drops the current connection (and its phone channels) and connects now.
    pub(super) fn restart_link(&mut self, ctx: &mut Context<Self>) {
        self.generation += 1;
        self.channels.clear();
        self.outbound = None;
        self.urgent = None;
        if let Some(reading) = self.reading.take() {
            reading.abort();
        }
        self.connected = false;
        self.backoff = BACKOFF_FIRST;
        self.connect(ctx);
    }

    fn schedule_reconnect(&mut self, ctx: &mut Context<Self>) {
        // Jitter in [½, 1] of the step, so many laptops do not return in lockstep.
        let jitter =
            0.5 + f64::from(crate::secrets::random_bytes::<1>().map_or(128, |b| b[0])) / 510.0;
        let wait = self.backoff.mul_f64(jitter);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        let generation = self.generation;
        ctx.run_later(wait, move |link, ctx| {
            if link.generation == generation {
                link.connect(ctx);
            }
        });
    }

    fn disconnected(&mut self, ctx: &mut Context<Self>) {
        self.outbound = None;
        self.urgent = None;
        if let Some(reading) = self.reading.take() {
            reading.abort();
        }
        self.connected = false;
        // Every phone channel ended with the socket that carried it.
        self.channels.clear();
        self.schedule_reconnect(ctx);
    }

    /// Sends one of this actor's own messages (never dropped while connected).
    fn send(&self, message: WsMessage) {
        if let Some(urgent) = &self.urgent {
            let _ = urgent.send(message);
        }
    }

    pub(super) fn control(&self, message: &FromLaptop) {
        if let Ok(text) = serde_json::to_string(message) {
            self.send(WsMessage::Text(text.into()));
        }
    }

    fn close_channel(&mut self, channel: u32) {
        self.channels.remove(&channel);
        self.control(&FromLaptop::Close { channel });
    }

    fn on_control(&mut self, message: ToLaptop, ctx: &mut Context<Self>) {
        match message {
            ToLaptop::Open { channel, kind } => {
                self.run_step(channel, ctx, |cx| channels::open(cx, kind));
            }
            ToLaptop::Close { channel } => {
                self.channels.remove(&channel);
            }
            ToLaptop::Paired { channel, phone_id } => {
                let Some(state) = self.channels.remove(&channel) else {
                    return;
                };
                self.run_step(channel, ctx, |cx| {
                    channels::relay_named(cx, state, phone_id)
                });
            }
            ToLaptop::Revoked { phone_id } => self.revoked_at_relay(phone_id, ctx),
        }
    }

    /// The relay revoked a phone: the Router forgets it, then its channels close.
    fn revoked_at_relay(&mut self, phone_id: String, ctx: &mut Context<Self>) {
        let request = Request::PhoneRevokedAtRelay {
            phone_id: phone_id.clone(),
        };
        let asked = self.ask_router("relay".to_owned(), request);
        ctx.spawn(asked.map(move |_, link, _| link.close_channels_of(&phone_id)));
    }

    fn on_bytes(&mut self, id: u32, payload: &[u8], ctx: &mut Context<Self>) {
        let Some(state) = self.channels.remove(&id) else {
            return;
        };
        self.run_step(id, ctx, |cx| channels::advance(cx, id, state, payload));
    }

    /// One step of the channel state machine on channel `id`, then its effects.
    fn run_step(
        &mut self,
        id: u32,
        ctx: &mut Context<Self>,
        step: impl FnOnce(&mut channels::Context<'_>) -> channels::Step,
    ) {
        let device_id = self.device_id();
        let Some(key) = self.key.clone() else {
            return self.close_channel(id);
        };
        let mut cx = channels::Context {
            key: &key,
            device_id: &device_id,
            device_name: &self.hostname,
            next_ask: &mut self.next_ask,
        };
        let step = step(&mut cx);
        self.apply(id, step, ctx);
    }

    /// `request` to the Router for a phone channel, as `subject`.
    fn ask_router(
        &self,
        subject: String,
        request: Request,
    ) -> impl ActorFuture<Self, Output = Result<Reply, ApiError>> + 'static {
        let asked = self.router.send(Inbound {
            request,
            evidence: Evidence::RelayChannel { subject },
        });
        actix::fut::wrap_future(async move {
            match asked.await {
                Ok(handled) => handled.outcome,
                Err(_) => Err(ApiError::unavailable("the Router stopped")),
            }
        })
    }

    /// Carries out a step of the channel state machine: its effects, then its
    /// next state (or the channel's close, unless it is now being served), then
    /// the messages that came early.
    fn apply(&mut self, id: u32, step: channels::Step, ctx: &mut Context<Self>) {
        let mut served = false;
        for effect in step.effects {
            match effect {
                Effect::Frame(channel, bytes) => {
                    self.send(WsMessage::Binary(channel_frame(channel, &bytes)));
                }
                Effect::Control(message) => self.control(&message),
                Effect::Ask {
                    subject,
                    asking,
                    request,
                } => {
                    let asked = self.ask_router(subject, request);
                    ctx.spawn(asked.map(move |answer, link, ctx| {
                        let Some(state) = link.channels.remove(&id) else {
                            return;
                        };
                        link.run_step(id, ctx, |cx| {
                            channels::answered(cx, id, state, asking, answer)
                        });
                    }));
                }
                Effect::Serve {
                    id,
                    phone_id,
                    channel,
                } => match self.open_connection(id, phone_id, channel) {
                    Some(open) => {
                        self.channels.insert(id, open);
                        served = true;
                    }
                    None => self.control(&FromLaptop::Close { channel: id }),
                },
            }
        }
        match step.next {
            Some(next) => {
                self.channels.insert(id, next);
            }
            None if !served => return self.control(&FromLaptop::Close { channel: id }),
            None => {}
        }
        for payload in step.replay {
            self.on_bytes(id, &payload, ctx);
        }
    }

    /// Serves an established phone channel as a `FramedConnection`.
    fn open_connection(
        &mut self,
        id: u32,
        phone_id: String,
        channel: Channel,
    ) -> Option<PhoneChannel> {
        let outbound = self.outbound.clone()?;
        let crypto = Arc::new(Mutex::new(channel));
        let (frames, queue) = mpsc::channel::<Result<Frame, String>>(INBOUND_PER_PHONE);
        let incoming = Box::pin(futures_util::stream::unfold(
            queue,
            |mut queue| async move { queue.recv().await.map(|frame| (frame, queue)) },
        ));
        let sealer = crypto.clone();
        let router = self.router.clone();
        let evidence = Evidence::Phone {
            phone_id: phone_id.clone(),
        };
        // Served on the connections' arbiter, not the link's: what a phone sends
        // is handled beside the daemon's other connections.
        let serve = move || {
            FramedConnection::start(
                incoming,
                move |queue| seal_toward_phone(queue, sealer, id, outbound),
                router,
                evidence,
            );
        };
        match &self.connections {
            Some(arbiter) => {
                arbiter.spawn_fn(serve);
            }
            None => serve(),
        }
        tracing::info!(phone = %phone_id, "a phone connected");
        Some(PhoneChannel::Open {
            phone_id,
            crypto,
            reassembler: Reassembler::default(),
            frames,
        })
    }

    pub(super) fn forget_phone(&mut self, phone_id: &str) -> bool {
        let removed = self
            .phones
            .as_ref()
            .is_some_and(|book| book.remove(phone_id).unwrap_or(false));
        self.close_channels_of(phone_id);
        removed
    }

    /// Closes every channel of `phone_id`, connected or connecting.
    fn close_channels_of(&mut self, phone_id: &str) {
        let doomed: Vec<u32> = self
            .channels
            .iter()
            .filter(|(_, c)| matches!(c, PhoneChannel::Open { phone_id: p, .. } | PhoneChannel::Connecting { phone_id: p, .. } | PhoneChannel::PhoneOpening { phone_id: p, .. } if p == phone_id))
            .map(|(id, _)| *id)
            .collect();
        for id in doomed {
            self.close_channel(id);
        }
    }
}

/// Seals frames from a phone's `FramedConnection` toward the relay, in order.
async fn seal_toward_phone(
    mut queue: mpsc::Receiver<Frame>,
    crypto: Arc<Mutex<Channel>>,
    id: u32,
    outbound: Outbound,
) {
    while let Some(frame) = queue.recv().await {
        let sealed = match crypto.lock() {
            Ok(mut channel) => seal_frame(&mut channel, &frame),
            Err(_) => return,
        };
        let Ok(sealed) = sealed else { return };
        for message in sealed {
            // Waits for room: a slow relay link slows the session's output.
            if outbound
                .send(WsMessage::Binary(channel_frame(id, &message)))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

impl Actor for RelayLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        ctx.run_interval(self.liveness.check_every(), |link, ctx| {
            link.check_liveness(ctx)
        });
        self.connect(ctx);
    }
}

/// A frame of connection `u64`, or `None` when that connection's stream ended.
type WsItem = (u64, Option<Result<WsFrame, awc::error::WsProtocolError>>);

impl StreamHandler<WsItem> for RelayLink {
    fn handle(&mut self, (generation, frame): WsItem, ctx: &mut Self::Context) {
        if generation != self.generation {
            return;
        }
        self.liveness.heard();
        let Some(frame) = frame else {
            tracing::warn!("the relay link ended; reconnecting");
            self.generation += 1;
            return self.disconnected(ctx);
        };
        match frame {
            Ok(WsFrame::Binary(bytes)) => match split_channel_frame(bytes) {
                Some((channel, payload)) => self.on_bytes(channel, &payload, ctx),
                None => tracing::debug!("ignoring a short frame from the relay"),
            },
            Ok(WsFrame::Text(text)) => match serde_json::from_slice::<ToLaptop>(&text) {
                Ok(message) => self.on_control(message, ctx),
                Err(e) => {
                    tracing::debug!(error = %e, "ignoring a garbled control message from the relay")
                }
            },
            Ok(WsFrame::Ping(bytes)) => self.send(WsMessage::Pong(bytes)),
            Ok(WsFrame::Close(reason)) => {
                tracing::warn!(reason = ?reason, "the relay closed the link");
                self.last_error = reason.and_then(|r| r.description);
                self.generation += 1;
                self.disconnected(ctx);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the relay link failed");
                self.last_error = Some(e.to_string());
                self.generation += 1;
                self.disconnected(ctx);
            }
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {
        // Each connection's end arrives as its own item (see `connect`).
    }
}
