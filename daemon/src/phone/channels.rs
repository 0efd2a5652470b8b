//! The phone channels' state machine: what each message on a channel does. A
//! pairing channel runs `XXpsk3` with the open window's secret, then takes the
//! 4-digit code; a paired phone's channel runs `KK` with the key stored for its
//! id, then carries its framed protocol.
//!
//! Every decision is the Router's: whether a window is open for a token (and
//! its secret), whether a code is right, storing the phone the relay named, and
//! whether a connecting phone is paired (and its key). The machine asks with an
//! [`Effect::Ask`], waits in a state of its own, and goes on from the Router's
//! answer in [`answered`]. It sends nothing itself: each step returns the
//! channel's next state and the effects for the link to carry out, so it is
//! tested without a socket or a Router.

use std::sync::{Arc, Mutex};

use loopsy_transports::e2e::frames::Reassembler;
use loopsy_transports::e2e::{
    Channel, Handshake, PairingSecret, StaticKey, connection_prologue, fingerprint,
    pairing_prologue,
};
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::framing::Frame;
use loopsy_transports::relay_wire::{ChannelKind, FromLaptop};
use loopsy_transports::secrets::from_hex32;
use loopsy_transports::wire::{Reply, Request};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Messages a channel may send while the Router is asked about it, and their
/// bytes in all (handshake messages are a few hundred bytes; a relay frame may
/// be 1 MiB); they are handled, in order, once it has answered.
const MAX_EARLY: usize = 8;
const MAX_EARLY_BYTES: usize = 16 * 1024;

pub enum PhoneChannel {
    /// Pairing channel opened: is a window open for its token?
    PairingOpening {
        token_id: String,
        asking: u64,
        early: Vec<Vec<u8>>,
    },
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
    /// The phone's code is with the Router.
    PairingChecking {
        token_id: String,
        asking: u64,
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
    /// The relay named the phone; the Router is storing it.
    PairingStoring {
        asking: u64,
        channel: Channel,
        phone_id: String,
    },
    /// A paired phone's channel opened: is it paired here, with which key?
    PhoneOpening {
        phone_id: String,
        asking: u64,
        early: Vec<Vec<u8>>,
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

/// Something the link does after a step.
pub enum Effect {
    /// Bytes (a handshake message or a sealed frame) on channel `id`.
    Frame(u32, Vec<u8>),
    /// A control message to the relay.
    Control(FromLaptop),
    /// Ask the Router `request` for this channel, as `subject` (`pairing:<token
    /// id>`, `phone:<id>`); its answer goes to [`answered`] with `asking`.
    Ask {
        subject: String,
        asking: u64,
        request: Request,
    },
    /// A paired phone finished its handshake: serve its channel.
    Serve {
        id: u32,
        phone_id: String,
        channel: Channel,
    },
}

/// A channel's next state (`None`: close it), what to do, and messages that
/// came early, to be handled now in order.
pub struct Step {
    pub next: Option<PhoneChannel>,
    pub effects: Vec<Effect>,
    pub replay: Vec<Vec<u8>>,
}

impl Step {
    fn close(effects: Vec<Effect>) -> Self {
        Self {
            next: None,
            effects,
            replay: Vec::new(),
        }
    }
    /// `next`, then the messages that came while the Router was asked.
    fn replaying(next: PhoneChannel, early: Vec<Vec<u8>>) -> Self {
        Self {
            next: Some(next),
            effects: Vec::new(),
            replay: early,
        }
    }
    fn to(next: PhoneChannel, effects: Vec<Effect>) -> Self {
        Self {
            next: Some(next),
            effects,
            replay: Vec::new(),
        }
    }
}

/// What a step may consult.
pub struct Context<'a> {
    pub key: &'a StaticKey,
    pub device_id: &'a str,
    /// This machine's name, told to a phone once it is paired.
    pub device_name: &'a str,
    /// Numbers the link's questions to the Router, so a late answer for a
    /// channel since closed (and its id reused) is told apart.
    pub next_ask: &'a mut u64,
}

impl Context<'_> {
    fn ask(&mut self, subject: String, request: Request) -> (u64, Effect) {
        *self.next_ask += 1;
        let asking = *self.next_ask;
        let effect = Effect::Ask {
            subject,
            asking,
            request,
        };
        (asking, effect)
    }
}

/// A JSON message sealed on `channel` as a frame of channel `id`.
pub fn sealed_json(id: u32, channel: &mut Channel, value: &Value) -> Option<Effect> {
    let bytes = serde_json::to_vec(value).ok()?;
    match channel.seal(&bytes) {
        Ok(sealed) => Some(Effect::Frame(id, sealed)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot seal a message to a phone");
            None
        }
    }
}

/// The relay opened a channel: a pairing or a paired phone's connection.
/// Either way the Router is asked first.
pub fn open(cx: &mut Context<'_>, kind: ChannelKind) -> Step {
    match kind {
        ChannelKind::Pairing { token_id } => {
            let request = Request::PhonePairOpen {
                token_id: token_id.clone(),
            };
            let (asking, ask) = cx.ask(format!("pairing:{token_id}"), request);
            let next = PhoneChannel::PairingOpening {
                token_id,
                asking,
                early: Vec::new(),
            };
            Step::to(next, vec![ask])
        }
        ChannelKind::Phone { phone_id } => {
            let request = Request::PhoneConnect {
                phone_id: phone_id.clone(),
            };
            let (asking, ask) = cx.ask(format!("phone:{phone_id}"), request);
            let next = PhoneChannel::PhoneOpening {
                phone_id,
                asking,
                early: Vec::new(),
            };
            Step::to(next, vec![ask])
        }
    }
}

impl PhoneChannel {
    /// The messages kept while the Router is asked whether to open this channel.
    fn early(&mut self) -> Option<&mut Vec<Vec<u8>>> {
        match self {
            Self::PairingOpening { early, .. } | Self::PhoneOpening { early, .. } => Some(early),
            _ => None,
        }
    }

    /// The channel of a pairing waiting on the Router or the relay; anything
    /// the phone sends meanwhile is opened (so the counters stay in step) and dropped.
    fn waiting_channel(&mut self) -> Option<&mut Channel> {
        match self {
            Self::PairingChecking { channel, .. }
            | Self::PairingAccepted { channel, .. }
            | Self::PairingStoring { channel, .. } => Some(channel),
            _ => None,
        }
    }
}

/// One message on channel `id` in `state`.
pub fn advance(cx: &mut Context<'_>, id: u32, mut state: PhoneChannel, payload: &[u8]) -> Step {
    if let Some(early) = state.early() {
        let held: usize = early.iter().map(Vec::len).sum();
        if early.len() >= MAX_EARLY || held + payload.len() > MAX_EARLY_BYTES {
            return Step::close(Vec::new());
        }
        early.push(payload.to_vec());
        return Step::to(state, Vec::new());
    }
    if let Some(channel) = state.waiting_channel() {
        return match channel.open(payload) {
            Ok(_) => Step::to(state, Vec::new()),
            Err(_) => Step::close(Vec::new()),
        };
    }
    match state {
        PhoneChannel::PairingHandshake {
            token_id,
            mut handshake,
        } => {
            let Ok(phone_payload) = handshake.read(payload) else {
                return Step::close(Vec::new());
            };
            if !handshake.is_finished() {
                // No payload before the pairing secret is proven (this message
                // shows the daemon's public key to whoever opened the channel;
                // it is in the QR code anyway and is not a secret).
                let Ok(reply) = handshake.write(b"") else {
                    return Step::close(Vec::new());
                };
                let next = PhoneChannel::PairingHandshake {
                    token_id,
                    handshake,
                };
                return Step::to(next, vec![Effect::Frame(id, reply)]);
            }
            let (Some(phone_key), Ok(channel)) =
                (handshake.remote_static(), handshake.into_channel())
            else {
                return Step::close(Vec::new());
            };
            let label = serde_json::from_slice::<Value>(&phone_payload)
                .ok()
                .and_then(|v| v["label"].as_str().map(|l| l.chars().take(64).collect()));
            let next = PhoneChannel::PairingCode {
                token_id,
                channel,
                phone_key,
                label,
            };
            Step::to(next, Vec::new())
        }
        PhoneChannel::PairingCode {
            token_id,
            mut channel,
            phone_key,
            label,
        } => {
            let message: Option<Value> = channel
                .open(payload)
                .ok()
                .and_then(|plain| serde_json::from_slice(&plain).ok());
            let Some(message) = message else {
                return Step::close(Vec::new());
            };
            let request = Request::PhonePairCode {
                token_id: token_id.clone(),
                code: message["code"].as_str().unwrap_or_default().to_owned(),
            };
            // The name the person gave this phone on the code screen, if any.
            let label = message["label"]
                .as_str()
                .map(|l| l.trim().chars().take(64).collect::<String>())
                .filter(|l| !l.is_empty())
                .or(label);
            let (asking, ask) = cx.ask(format!("pairing:{token_id}"), request);
            let next = PhoneChannel::PairingChecking {
                token_id,
                asking,
                channel,
                phone_key,
                label,
            };
            Step::to(next, vec![ask])
        }
        PhoneChannel::Connecting {
            phone_id,
            mut handshake,
        } => {
            let reply = handshake.read(payload).and_then(|_| handshake.write(b""));
            let Ok(reply) = reply else {
                return Step::close(Vec::new());
            };
            let Ok(channel) = handshake.into_channel() else {
                return Step::close(Vec::new());
            };
            // The link serves it and keeps the `Open` state.
            Step::close(vec![
                Effect::Frame(id, reply),
                Effect::Serve {
                    id,
                    phone_id,
                    channel,
                },
            ])
        }
        PhoneChannel::Open {
            phone_id,
            crypto,
            mut reassembler,
            frames,
        } => {
            let plaintext = match crypto.lock() {
                Ok(mut channel) => channel.open(payload).ok(),
                Err(_) => None,
            };
            let Some(plaintext) = plaintext else {
                return Step::close(Vec::new());
            };
            match reassembler.push(&plaintext) {
                Ok(Some(frame)) => {
                    if frames.try_send(Ok(frame)).is_err() {
                        return Step::close(Vec::new());
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(phone = %phone_id, error = %e, "closing a phone channel");
                    return Step::close(Vec::new());
                }
            }
            let next = PhoneChannel::Open {
                phone_id,
                crypto,
                reassembler,
                frames,
            };
            Step::to(next, Vec::new())
        }
        // Taken by `early` and `waiting_channel` above.
        waiting @ (PhoneChannel::PairingOpening { .. }
        | PhoneChannel::PhoneOpening { .. }
        | PhoneChannel::PairingChecking { .. }
        | PhoneChannel::PairingAccepted { .. }
        | PhoneChannel::PairingStoring { .. }) => Step::to(waiting, Vec::new()),
    }
}

/// The relay minted `phone_id` for the phone on channel `id`: the Router stores it.
pub fn relay_named(cx: &mut Context<'_>, state: PhoneChannel, phone_id: String) -> Step {
    let PhoneChannel::PairingAccepted {
        token_id,
        channel,
        phone_key,
        label,
    } = state
    else {
        return Step::to(state, Vec::new());
    };
    let request = Request::PhonePaired {
        token_id,
        phone_id: phone_id.clone(),
        phone_key,
        label,
    };
    let (asking, ask) = cx.ask(format!("phone:{phone_id}"), request);
    let next = PhoneChannel::PairingStoring {
        asking,
        channel,
        phone_id,
    };
    Step::to(next, vec![ask])
}

/// Tells a phone its pairing failed, then `then` (after the message, so the
/// relay carries it before acting on a control), then closes.
fn pairing_dead(id: u32, channel: &mut Channel, then: Vec<Effect>) -> Step {
    let mut effects: Vec<Effect> = sealed_json(id, channel, &json!({ "type": "pairing-dead" }))
        .into_iter()
        .collect();
    effects.extend(then);
    Step::close(effects)
}

/// The Router answered question `asking` about channel `id` in `state`.
pub fn answered(
    cx: &mut Context<'_>,
    id: u32,
    state: PhoneChannel,
    asked: u64,
    answer: Result<Reply, ApiError>,
) -> Step {
    match state {
        PhoneChannel::PairingOpening {
            token_id,
            asking,
            early,
        } if asking == asked => {
            let Some(secret) = answer.ok().and_then(|r| key_in(&r, "secret")) else {
                return Step::close(Vec::new());
            };
            let prologue = pairing_prologue(cx.device_id, &token_id);
            match Handshake::pairing_daemon(cx.key, &PairingSecret(secret), &prologue) {
                Ok(handshake) => Step::replaying(
                    PhoneChannel::PairingHandshake {
                        token_id,
                        handshake,
                    },
                    early,
                ),
                Err(_) => Step::close(Vec::new()),
            }
        }
        PhoneChannel::PhoneOpening {
            phone_id,
            asking,
            early,
        } if asking == asked => {
            let Some(phone_key) = answer.ok().and_then(|r| key_in(&r, "key")) else {
                return Step::close(Vec::new());
            };
            let prologue = connection_prologue(cx.device_id, &phone_id);
            match Handshake::connection_daemon(cx.key, &phone_key, &prologue) {
                Ok(handshake) => Step::replaying(
                    PhoneChannel::Connecting {
                        phone_id,
                        handshake,
                    },
                    early,
                ),
                Err(_) => Step::close(Vec::new()),
            }
        }
        PhoneChannel::PairingChecking {
            token_id,
            asking,
            mut channel,
            phone_key,
            label,
        } if asking == asked => match answer {
            Ok(_) => Step::to(
                PhoneChannel::PairingAccepted {
                    token_id,
                    channel,
                    phone_key,
                    label,
                },
                vec![Effect::Control(FromLaptop::PairAccept { channel: id })],
            ),
            Err(error) if error.code == code::PAIRING_CODE_WRONG => {
                let left = error
                    .details
                    .as_ref()
                    .map_or(json!(null), |d| d["attemptsLeft"].clone());
                let told = sealed_json(
                    id,
                    &mut channel,
                    &json!({ "type": "code-wrong", "attemptsLeft": left }),
                );
                let next = PhoneChannel::PairingCode {
                    token_id,
                    channel,
                    phone_key,
                    label,
                };
                Step::to(next, told.into_iter().collect())
            }
            Err(error) if error.code == code::PAIRING_DEAD => pairing_dead(
                id,
                &mut channel,
                vec![Effect::Control(FromLaptop::PairKill { channel: id })],
            ),
            Err(_) => pairing_dead(id, &mut channel, Vec::new()),
        },
        PhoneChannel::PairingStoring {
            asking,
            mut channel,
            phone_id,
        } if asking == asked => match answer {
            Ok(_) => {
                let paired = json!({
                    "type": "paired",
                    "phoneId": phone_id,
                    "deviceId": cx.device_id,
                    "deviceName": cx.device_name,
                    "fingerprint": fingerprint(cx.key.public()),
                });
                // The phone connects again with its new credentials; this channel is done.
                Step::close(sealed_json(id, &mut channel, &paired).into_iter().collect())
            }
            Err(_) => pairing_dead(id, &mut channel, Vec::new()),
        },
        // An answer to an older question, or for a channel that moved on.
        other => Step::to(other, Vec::new()),
    }
}

/// The 32 bytes (hex) under `field` in an answer of the Router.
fn key_in(reply: &Reply, field: &str) -> Option<[u8; 32]> {
    reply.body[field].as_str().and_then(from_hex32)
}

#[cfg(test)]
mod tests;
