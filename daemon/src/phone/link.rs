//! `RelayLink`: the daemon's one outbound WebSocket to its relay, and every
//! phone channel multiplexed on it. It reconnects with jittered backoff
//! (1 s → 30 s), runs the end-to-end handshakes as the responder — `XXpsk3`
//! plus the 4-digit code for pairing, `KK` for each connection of a paired
//! phone — and hands each established phone channel to a `FramedConnection`
//! whose requests reach the Router as principal `Phone`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use awc::ws::{Frame as WsFrame, Message as WsMessage};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use loopsy_transports::e2e::frames::{Reassembler, seal_frame};
use loopsy_transports::e2e::{
    Channel, Handshake, StaticKey, connection_prologue, fingerprint, pairing_prologue,
};
use loopsy_transports::error::ApiError;
use loopsy_transports::framed_connection::FramedConnection;
use loopsy_transports::framing::Frame;
use loopsy_transports::relay_wire::{
    ChannelKind, FromLaptop, MAX_FRAME, SUBPROTOCOL, ToLaptop, channel_frame, split_channel_frame,
};
use loopsy_transports::wire::{Evidence, Inbound, Reply, Request};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::events::PhoneEvents;
use super::liveness::{DEFAULT_PING_EVERY, Liveness};
use super::pairing::{CodeCheck, PairingWindows};
use super::store::{PhoneBook, RelayCredentials, load_relay, save_relay};
use crate::paths::DataDir;

/// First and longest wait between reconnection attempts.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection (TCP, TLS, upgrade) must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Frames queued toward the relay before senders wait.
const OUTBOUND: usize = 1024;
/// Frames from one phone queued toward its connection before it is cut.
const INBOUND_PER_PHONE: usize = 256;

/// Bulk frames (phone output) toward the relay: bounded, so a slow relay link
/// slows the sessions feeding it.
type Outbound = mpsc::Sender<WsMessage>;
/// This actor's own messages (handshakes, pairing answers, control): served
/// first and never full, so none is lost behind bulk output.
type Urgent = mpsc::UnboundedSender<WsMessage>;

enum PhoneChannel {
    /// Pairing, waiting for the phone's next handshake message.
    PairingHandshake {
        token_id: String,
        handshake: Handshake,
    },
    /// Pairing handshake done; waiting for the right code.
    PairingCode {
        token_id: String,
        channel: Channel,
        phone_key: [u8; 32],
        label: Option<String>,
    },
    /// Code accepted; waiting for the relay to mint the phone's id.
    PairingAccepted {
        token_id: String,
        channel: Channel,
        phone_key: [u8; 32],
        label: Option<String>,
    },
    /// A paired phone connecting: waiting for its `KK` message.
    Connecting {
        phone_id: String,
        handshake: Handshake,
    },
    /// Established: frames go to the phone's `FramedConnection`.
    Open {
        phone_id: String,
        crypto: Arc<Mutex<Channel>>,
        reassembler: Reassembler,
        frames: mpsc::Sender<Result<Frame, String>>,
    },
}

pub struct RelayLink {
    data_dir: DataDir,
    router: Recipient<Inbound>,
    hostname: String,
    key: Option<Arc<StaticKey>>,
    phones: Option<PhoneBook>,
    credentials: Option<RelayCredentials>,
    outbound: Option<Outbound>,
    urgent: Option<Urgent>,
    connected: bool,
    last_error: Option<String>,
    backoff: Duration,
    /// Bumped on every (re)connection, so a stale stream's end is ignored.
    generation: u64,
    channels: HashMap<u32, PhoneChannel>,
    windows: PairingWindows,
    liveness: Liveness,
    /// Stops reading the current socket when it is given up on.
    reading: Option<futures_util::stream::AbortHandle>,
    events: PhoneEvents,
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
            windows: PairingWindows::default(),
            liveness: Liveness::new(DEFAULT_PING_EVERY),
            reading: None,
            events: PhoneEvents::default(),
        }
    }

    /// Pings every `every` (`relay.pingIntervalSec`), and gives the link up when
    /// the relay stays silent past [`Liveness::dead_after`].
    pub fn with_ping_interval(mut self, every: Duration) -> Self {
        self.liveness = Liveness::new(every);
        self
    }

    /// Writes pairing attempts, phone connections and revocations to the audit log.
    pub fn with_audit(mut self, audit: Addr<crate::audit::AuditLog>) -> Self {
        self.events = PhoneEvents::new(audit);
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

    fn control(&self, message: &FromLaptop) {
        if let Ok(text) = serde_json::to_string(message) {
            self.send(WsMessage::Text(text.into()));
        }
    }

    fn sealed_json(&self, channel_id: u32, channel: &mut Channel, value: &Value) {
        let Ok(bytes) = serde_json::to_vec(value) else {
            return;
        };
        match channel.seal(&bytes) {
            Ok(sealed) => self.send(WsMessage::Binary(channel_frame(channel_id, &sealed))),
            Err(e) => tracing::warn!(error = %e, "cannot seal a message to a phone"),
        }
    }

    fn close_channel(&mut self, channel: u32) {
        self.channels.remove(&channel);
        self.control(&FromLaptop::Close { channel });
    }

    fn on_control(&mut self, message: ToLaptop) {
        match message {
            ToLaptop::Open { channel, kind } => self.on_open(channel, kind),
            ToLaptop::Close { channel } => {
                self.channels.remove(&channel);
            }
            ToLaptop::Paired { channel, phone_id } => self.on_paired(channel, phone_id),
            ToLaptop::Revoked { phone_id } => {
                self.events.record(
                    "phone.revoked-at-relay",
                    format!("phone:{phone_id}"),
                    "ok",
                    200,
                );
                self.forget_phone(&phone_id);
            }
        }
    }

    fn on_open(&mut self, channel: u32, kind: ChannelKind) {
        let Some(key) = self.key.clone() else {
            return self.close_channel(channel);
        };
        let device_id = self.device_id();
        let state = match kind {
            ChannelKind::Pairing { token_id } => {
                let Some(secret) = self.windows.secret(&token_id) else {
                    tracing::info!("a phone tried a pairing token with no open window here");
                    self.events.record(
                        "phone.pair.open",
                        format!("pairing:{token_id}"),
                        "not-found",
                        404,
                    );
                    return self.close_channel(channel);
                };
                let prologue = pairing_prologue(&device_id, &token_id);
                match Handshake::pairing_daemon(&key, &secret, &prologue) {
                    Ok(handshake) => PhoneChannel::PairingHandshake {
                        token_id,
                        handshake,
                    },
                    Err(_) => return self.close_channel(channel),
                }
            }
            ChannelKind::Phone { phone_id } => {
                let phone_key = self
                    .phones
                    .as_ref()
                    .and_then(|p| p.key_of(&phone_id).ok().flatten());
                let Some(phone_key) = phone_key else {
                    tracing::info!(phone = %phone_id, "refusing a phone that is not paired here");
                    self.events
                        .record("phone.connect", format!("phone:{phone_id}"), "denied", 403);
                    return self.close_channel(channel);
                };
                let prologue = connection_prologue(&device_id, &phone_id);
                match Handshake::connection_daemon(&key, &phone_key, &prologue) {
                    Ok(handshake) => PhoneChannel::Connecting {
                        phone_id,
                        handshake,
                    },
                    Err(_) => return self.close_channel(channel),
                }
            }
        };
        self.channels.insert(channel, state);
    }

    fn on_bytes(&mut self, id: u32, payload: &[u8]) {
        let Some(state) = self.channels.remove(&id) else {
            return;
        };
        match self.advance(id, state, payload) {
            Some(next) => {
                self.channels.insert(id, next);
            }
            None => self.control(&FromLaptop::Close { channel: id }),
        }
    }

    /// One message on a phone channel; the channel's next state, or `None` to close it.
    fn advance(&mut self, id: u32, state: PhoneChannel, payload: &[u8]) -> Option<PhoneChannel> {
        match state {
            PhoneChannel::PairingHandshake {
                token_id,
                mut handshake,
            } => {
                let phone_payload = handshake.read(payload).ok()?;
                if !handshake.is_finished() {
                    // No payload before the pairing secret is proven (this message
                    // shows the daemon's public key to whoever opened the channel;
                    // it is in the QR code anyway and is not a secret).
                    let reply = handshake.write(b"").ok()?;
                    self.send(WsMessage::Binary(channel_frame(id, &reply)));
                    return Some(PhoneChannel::PairingHandshake {
                        token_id,
                        handshake,
                    });
                }
                let phone_key = handshake.remote_static()?;
                let label = serde_json::from_slice::<Value>(&phone_payload)
                    .ok()
                    .and_then(|v| v["label"].as_str().map(|l| l.chars().take(64).collect()));
                let channel = handshake.into_channel().ok()?;
                Some(PhoneChannel::PairingCode {
                    token_id,
                    channel,
                    phone_key,
                    label,
                })
            }
            PhoneChannel::PairingCode {
                token_id,
                mut channel,
                phone_key,
                label,
            } => {
                let message: Value = serde_json::from_slice(&channel.open(payload).ok()?).ok()?;
                let code = message["code"].as_str().unwrap_or_default();
                match self.windows.check_code(&token_id, code) {
                    CodeCheck::Right => {
                        self.events.record(
                            "phone.pair.code",
                            format!("pairing:{token_id}"),
                            "ok",
                            200,
                        );
                        self.control(&FromLaptop::PairAccept { channel: id });
                        Some(PhoneChannel::PairingAccepted {
                            token_id,
                            channel,
                            phone_key,
                            label,
                        })
                    }
                    CodeCheck::Wrong { attempts_left } => {
                        tracing::warn!(attempts_left, "a phone sent a wrong pairing code");
                        self.events.record(
                            "phone.pair.code",
                            format!("pairing:{token_id}"),
                            "denied",
                            403,
                        );
                        self.sealed_json(
                            id,
                            &mut channel,
                            &json!({ "type": "code-wrong", "attemptsLeft": attempts_left }),
                        );
                        Some(PhoneChannel::PairingCode {
                            token_id,
                            channel,
                            phone_key,
                            label,
                        })
                    }
                    CodeCheck::Dead => {
                        tracing::warn!("five wrong pairing codes: the pairing window is closed");
                        self.events.record(
                            "phone.pair.dead",
                            format!("pairing:{token_id}"),
                            "denied",
                            403,
                        );
                        self.sealed_json(id, &mut channel, &json!({ "type": "pairing-dead" }));
                        self.control(&FromLaptop::PairKill { channel: id });
                        None
                    }
                    CodeCheck::Closed => {
                        self.sealed_json(id, &mut channel, &json!({ "type": "pairing-dead" }));
                        None
                    }
                }
            }
            accepted @ PhoneChannel::PairingAccepted { .. } => Some(accepted),
            PhoneChannel::Connecting {
                phone_id,
                mut handshake,
            } => {
                handshake.read(payload).ok()?;
                let reply = handshake.write(b"").ok()?;
                self.send(WsMessage::Binary(channel_frame(id, &reply)));
                let channel = handshake.into_channel().ok()?;
                self.open_connection(id, phone_id, channel)
            }
            PhoneChannel::Open {
                phone_id,
                crypto,
                mut reassembler,
                frames,
            } => {
                let plaintext = crypto.lock().ok()?.open(payload).ok()?;
                match reassembler.push(&plaintext) {
                    Ok(Some(frame)) => frames.try_send(Ok(frame)).ok()?,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(phone = %phone_id, error = %e, "closing a phone channel");
                        return None;
                    }
                }
                Some(PhoneChannel::Open {
                    phone_id,
                    crypto,
                    reassembler,
                    frames,
                })
            }
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
        FramedConnection::start(
            incoming,
            move |queue| seal_toward_phone(queue, sealer, id, outbound),
            self.router.clone(),
            Evidence::Phone {
                phone_id: phone_id.clone(),
            },
        );
        tracing::info!(phone = %phone_id, "a phone connected");
        self.events
            .record("phone.connect", format!("phone:{phone_id}"), "ok", 200);
        Some(PhoneChannel::Open {
            phone_id,
            crypto,
            reassembler: Reassembler::default(),
            frames,
        })
    }

    fn on_paired(&mut self, id: u32, phone_id: String) {
        let Some(PhoneChannel::PairingAccepted {
            token_id,
            mut channel,
            phone_key,
            label,
        }) = self.channels.remove(&id)
        else {
            return;
        };
        let stored = self
            .phones
            .as_ref()
            .map(|book| book.add(&phone_id, &phone_key, label.as_deref()));
        if !matches!(stored, Some(Ok(()))) {
            tracing::error!(phone = %phone_id, "cannot store a newly paired phone");
            self.sealed_json(id, &mut channel, &json!({ "type": "pairing-dead" }));
            return self.close_channel(id);
        }
        let phone_fingerprint = fingerprint(&phone_key);
        self.windows.complete(
            &token_id,
            &phone_id,
            label.clone(),
            phone_fingerprint.clone(),
        );
        tracing::info!(phone = %phone_id, label = ?label, fingerprint = %phone_fingerprint, "a phone paired");
        self.events
            .record("phone.paired", format!("phone:{phone_id}"), "ok", 200);
        let daemon_fingerprint = self
            .key
            .as_ref()
            .map(|k| fingerprint(k.public()))
            .unwrap_or_default();
        self.sealed_json(
            id,
            &mut channel,
            &json!({
                "type": "paired",
                "phoneId": phone_id,
                "deviceId": self.device_id(),
                "deviceName": self.hostname,
                "fingerprint": daemon_fingerprint,
            }),
        );
        // The phone connects again with its new credentials; this channel is done.
        self.close_channel(id);
    }

    fn forget_phone(&mut self, phone_id: &str) -> bool {
        let removed = self
            .phones
            .as_ref()
            .is_some_and(|book| book.remove(phone_id).unwrap_or(false));
        let doomed: Vec<u32> = self
            .channels
            .iter()
            .filter(|(_, c)| matches!(c, PhoneChannel::Open { phone_id: p, .. } | PhoneChannel::Connecting { phone_id: p, .. } if p == phone_id))
            .map(|(id, _)| *id)
            .collect();
        for id in doomed {
            self.close_channel(id);
        }
        removed
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

fn ws_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_owned()
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
                Some((channel, payload)) => self.on_bytes(channel, &payload),
                None => tracing::debug!("ignoring a short frame from the relay"),
            },
            Ok(WsFrame::Text(text)) => match serde_json::from_slice::<ToLaptop>(&text) {
                Ok(message) => self.on_control(message),
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

/// An owner's request about the relay and phones (from the Router).
#[derive(Message)]
#[rtype(result = "Result<Reply, ApiError>")]
pub struct RelayRequest(pub Request);

/// The pairing window's lifetime when `mobile.pair` names none (the relay's default too).
const DEFAULT_PAIR_TTL_SECS: u64 = 600;
/// The shortest window the relay grants.
const MIN_PAIR_TTL_SECS: u64 = 30;
/// How far the relay's clock may run ahead of ours.
const CLOCK_SLACK_SECS: u64 = 60;

/// The lifetime of a pairing window from the relay's `expiresAt` (unix seconds):
/// never longer than asked for (plus clock slack), never already over. A relay
/// that answers otherwise is refused rather than trusted.
fn relay_expiry(expires_at: u64, now: u64, asked: Duration) -> Result<Duration, ApiError> {
    let remaining = expires_at.saturating_sub(now);
    if remaining == 0 || remaining > asked.as_secs() + CLOCK_SLACK_SECS {
        return Err(ApiError::unavailable(format!(
            "the relay answered a pairing expiry {remaining} s away where {} s were asked for; check the relay (is it a loopsy relay, and is its clock right?)",
            asked.as_secs()
        )));
    }
    Ok(Duration::from_secs(remaining.min(asked.as_secs())))
}

fn relay_error(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(format!("{what}: {e}"))
}

/// Roots a relay's certificate may chain to: the Mozilla set compiled in
/// (webpki-roots), plus the certificates of `ca_file` for a relay with a
/// private CA. TLS via rustls with the aws-lc-rs provider; HTTP/1.1 only
/// (WebSockets need it).
fn tls_client(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                format!(
                    "the CA file {} holds a bad certificate: {e}",
                    path.display()
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An HTTP/WebSocket client for the relay.
fn relay_client(ca_file: Option<&std::path::Path>) -> Result<awc::Client, ApiError> {
    let tls = tls_client(ca_file).map_err(ApiError::invalid_request)?;
    Ok(awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(tls))
        .timeout(HANDSHAKE_TIMEOUT)
        .finish())
}

/// Sends a request to the relay that should answer 201 with JSON; that JSON.
async fn created(
    request: awc::ClientRequest,
    body: Option<Value>,
    refused: &str,
) -> Result<Value, ApiError> {
    let request = request.timeout(HANDSHAKE_TIMEOUT);
    let sent = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    };
    let mut response = sent.map_err(|e| relay_error("cannot reach the relay", e))?;
    let body: Value = response
        .json()
        .await
        .map_err(|e| relay_error("the relay's answer is unreadable", e))?;
    if response.status() != 201 {
        return Err(relay_error(refused, response.status()));
    }
    Ok(body)
}

fn not_configured() -> ApiError {
    ApiError::invalid_request(
        "this machine is not registered at a relay; run `loopsy relay configure <url>` first",
    )
}

/// Encodes a value for a URL fragment parameter.
fn fragment_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl Handler<RelayRequest> for RelayLink {
    type Result = ResponseActFuture<Self, Result<Reply, ApiError>>;

    fn handle(
        &mut self,
        RelayRequest(request): RelayRequest,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        let ready = |result| Box::pin(actix::fut::ready(result)) as Self::Result;
        match request {
            Request::RelayStatus => ready(Ok(Reply::ok(json!({
                "configured": self.credentials.is_some(),
                "url": self.credentials.as_ref().map(|c| c.url.clone()),
                "deviceId": self.credentials.as_ref().map(|c| c.device_id.clone()),
                "connected": self.connected,
                "lastError": self.last_error,
                "phoneChannels": self.channels.len(),
                "fingerprint": self.key.as_ref().map(|k| fingerprint(k.public())),
            })))),
            Request::PhonesList => ready(match self.phones.as_ref().map(PhoneBook::list) {
                Some(Ok(phones)) => Ok(Reply::ok(json!({ "phones": phones }))),
                _ => Err(ApiError::internal("cannot read the phone list")),
            }),
            Request::PhonesRevoke { phone_id } => {
                let removed = self.forget_phone(&phone_id);
                self.control(&FromLaptop::Revoke {
                    phone_id: phone_id.clone(),
                });
                ready(if removed {
                    Ok(Reply::ok(json!({ "revoked": phone_id })))
                } else {
                    Err(ApiError::new(
                        7001,
                        404,
                        format!("no paired phone '{phone_id}'; see `loopsy phone list`"),
                    ))
                })
            }
            Request::MobilePairStatus { token_id } => ready(
                self.windows
                    .status(&token_id)
                    .map(Reply::ok)
                    .ok_or_else(|| ApiError::new(7001, 404, "no such pairing window")),
            ),
            Request::RelayConfigure {
                url,
                force,
                ca_file,
            } => self.configure(url, force, ca_file.map(std::path::PathBuf::from), ctx),
            Request::MobilePair { ttl_seconds } => self.open_pairing(ttl_seconds),
            other => ready(Err(ApiError::internal(format!(
                "'{}' is not a relay operation",
                other.op()
            )))),
        }
    }
}

impl RelayLink {
    /// Drops the current connection (and its phone channels) and connects now.
    fn restart_link(&mut self, ctx: &mut Context<Self>) {
        self.generation += 1;
        self.channels.clear();
        self.outbound = None;
        self.urgent = None;
        self.connected = false;
        self.backoff = BACKOFF_FIRST;
        self.connect(ctx);
    }

    fn configure(
        &mut self,
        url: String,
        force: bool,
        ca_file: Option<std::path::PathBuf>,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<Reply, ApiError>> {
        let url = url.trim().trim_end_matches('/').to_owned();
        if let Some(current) = self
            .credentials
            .as_ref()
            .filter(|c| c.url == url && c.ca_file == ca_file && !force)
        {
            // Already registered there: keep the device (and its paired phones), reconnect now.
            let answer = json!({ "url": url, "deviceId": current.device_id, "reconnected": true });
            self.restart_link(ctx);
            return Box::pin(actix::fut::ready(Ok(Reply::ok(answer))));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Box::pin(actix::fut::ready(Err(ApiError::invalid_request(
                "the relay URL must start with https:// (or http:// for a relay on this machine or LAN)",
            ))));
        }
        let register = {
            let (url, ca_file) = (url.clone(), ca_file.clone());
            async move {
                let request =
                    relay_client(ca_file.as_deref())?.post(format!("{url}/device/register"));
                let body = created(request, None, "the relay refused the registration").await?;
                match (body["deviceId"].as_str(), body["deviceSecret"].as_str()) {
                    (Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
                    _ => Err(relay_error(
                        "the relay's answer lacks the device id",
                        "deviceId/deviceSecret",
                    )),
                }
            }
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(register).map(move |registered, link, ctx| {
                let (device_id, device_secret) = registered?;
                let credentials = RelayCredentials {
                    url: url.clone(),
                    device_id: device_id.clone(),
                    device_secret,
                    ca_file,
                };
                save_relay(&link.data_dir, &credentials).map_err(|e| {
                    ApiError::internal(format!("cannot save the relay registration: {e}"))
                })?;
                link.credentials = Some(credentials);
                link.restart_link(ctx);
                tracing::info!(relay = %url, device = %device_id, "registered at the relay");
                Ok(Reply::ok(json!({ "url": url, "deviceId": device_id })))
            }),
        )
    }

    fn open_pairing(
        &mut self,
        ttl_seconds: Option<u64>,
    ) -> ResponseActFuture<Self, Result<Reply, ApiError>> {
        let (Some(credentials), Some(key)) = (self.credentials.clone(), self.key.clone()) else {
            return Box::pin(actix::fut::ready(Err(not_configured())));
        };
        let asked = match crate::limits::seconds(
            "ttlSeconds",
            ttl_seconds.unwrap_or(DEFAULT_PAIR_TTL_SECS),
            MIN_PAIR_TTL_SECS,
            crate::limits::MAX_PAIR_TTL,
        ) {
            Ok(asked) => asked,
            Err(error) => return Box::pin(actix::fut::ready(Err(error))),
        };
        let ttl_seconds = Some(asked.as_secs());
        let issue = async move {
            let request = relay_client(credentials.ca_file.as_deref())?
                .post(format!(
                    "{}/pair/issue?device_id={}",
                    credentials.url, credentials.device_id
                ))
                .bearer_auth(&credentials.device_secret);
            let body = json!({ "ttlSeconds": ttl_seconds });
            let body = created(request, Some(body), "the relay refused a pairing token").await?;
            match (
                body["token"].as_str(),
                body["tokenId"].as_str(),
                body["expiresAt"].as_u64(),
            ) {
                (Some(token), Some(id), Some(expires)) => {
                    Ok((credentials, token.to_owned(), id.to_owned(), expires))
                }
                _ => Err(relay_error(
                    "the relay's answer lacks the token",
                    "token/tokenId/expiresAt",
                )),
            }
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(issue).map(move |issued, link, _| {
                let (credentials, token, token_id, expires_at) = issued?;
                let now = crate::sessions::now_ms() / 1000;
                let ttl = relay_expiry(expires_at, now, asked)?;
                let (secret, code) = link
                    .windows
                    .open(&token_id, ttl)
                    .ok_or_else(|| ApiError::internal("the system random source failed"))?;
                let hex = crate::secrets::hex;
                let url = format!(
                    "{}/app#v=1&r={}&d={}&i={}&t={}&k={}&s={}",
                    credentials.url,
                    fragment_value(&credentials.url),
                    fragment_value(&credentials.device_id),
                    fragment_value(&token_id),
                    fragment_value(&token),
                    hex(key.public()),
                    hex(&secret.0),
                );
                tracing::info!(expires_at, "a pairing window is open");
                Ok(Reply::ok(json!({
                    "url": url,
                    "code": code,
                    "tokenId": token_id,
                    "expiresAt": expires_at,
                    "fingerprint": fingerprint(key.public()),
                })))
            }),
        )
    }
}
