//! The phone channels' state machine: what each message on a channel does. A
//! pairing channel runs `XXpsk3` with the open window's secret, then takes the
//! 4-digit code; a paired phone's channel runs `KK` with the key stored for its
//! id, then carries its framed protocol. The machine sends nothing itself: each
//! step returns the channel's next state and the [`Effect`]s for the link to
//! carry out (frames, control messages, audit lines, serving a connection), so
//! it is tested without a socket.

use std::sync::{Arc, Mutex};

use loopsy_transports::e2e::frames::Reassembler;
use loopsy_transports::e2e::{
    Channel, Handshake, StaticKey, connection_prologue, pairing_prologue,
};
use loopsy_transports::framing::Frame;
use loopsy_transports::relay_wire::{ChannelKind, FromLaptop};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::pairing::{CodeCheck, PairingWindows};
use super::store::PhoneBook;

pub enum PhoneChannel {
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

/// Something the link does after a step.
pub enum Effect {
    /// Bytes (a handshake message or a sealed frame) on channel `id`.
    Frame(u32, Vec<u8>),
    /// A control message to the relay.
    Control(FromLaptop),
    /// An audit line of the phone path.
    Audit {
        op: &'static str,
        principal: String,
        outcome: &'static str,
        status: u16,
    },
    /// A paired phone finished its handshake: serve its channel.
    Serve {
        id: u32,
        phone_id: String,
        channel: Channel,
    },
}

/// A channel's next state (`None`: close it) and what to do.
pub struct Step {
    pub next: Option<PhoneChannel>,
    pub effects: Vec<Effect>,
}

impl Step {
    fn close(effects: Vec<Effect>) -> Self {
        Self {
            next: None,
            effects,
        }
    }
    fn to(next: PhoneChannel, effects: Vec<Effect>) -> Self {
        Self {
            next: Some(next),
            effects,
        }
    }
}

/// What a step may consult.
pub struct Context<'a> {
    pub key: &'a StaticKey,
    pub device_id: &'a str,
    pub windows: &'a mut PairingWindows,
    pub phones: Option<&'a PhoneBook>,
}

fn audit(op: &'static str, principal: String, outcome: &'static str, status: u16) -> Effect {
    Effect::Audit {
        op,
        principal,
        outcome,
        status,
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

/// A channel waiting for its first handshake message, or closed when the
/// handshake could not be set up.
fn begin<E>(
    handshake: Result<Handshake, E>,
    state: impl FnOnce(Handshake) -> PhoneChannel,
) -> Step {
    match handshake {
        Ok(handshake) => Step::to(state(handshake), Vec::new()),
        Err(_) => Step::close(Vec::new()),
    }
}

/// The relay opened a channel: a pairing or a paired phone's connection.
pub fn open(cx: &mut Context<'_>, kind: ChannelKind) -> Step {
    match kind {
        ChannelKind::Pairing { token_id } => {
            let Some(secret) = cx.windows.secret(&token_id) else {
                tracing::info!("a phone tried a pairing token with no open window here");
                let refused = audit(
                    "phone.pair.open",
                    format!("pairing:{token_id}"),
                    "not-found",
                    404,
                );
                return Step::close(vec![refused]);
            };
            let prologue = pairing_prologue(cx.device_id, &token_id);
            let handshake = Handshake::pairing_daemon(cx.key, &secret, &prologue);
            begin(handshake, |handshake| PhoneChannel::PairingHandshake {
                token_id,
                handshake,
            })
        }
        ChannelKind::Phone { phone_id } => {
            let phone_key = cx.phones.and_then(|p| p.key_of(&phone_id).ok().flatten());
            let Some(phone_key) = phone_key else {
                tracing::info!(phone = %phone_id, "refusing a phone that is not paired here");
                return Step::close(vec![audit(
                    "phone.connect",
                    format!("phone:{phone_id}"),
                    "denied",
                    403,
                )]);
            };
            let prologue = connection_prologue(cx.device_id, &phone_id);
            let handshake = Handshake::connection_daemon(cx.key, &phone_key, &prologue);
            begin(handshake, |handshake| PhoneChannel::Connecting {
                phone_id,
                handshake,
            })
        }
    }
}

/// One message on channel `id` in `state`.
pub fn advance(cx: &mut Context<'_>, id: u32, state: PhoneChannel, payload: &[u8]) -> Step {
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
            let code = message["code"].as_str().unwrap_or_default();
            let principal = format!("pairing:{token_id}");
            match cx.windows.check_code(&token_id, code) {
                CodeCheck::Right => {
                    let effects = vec![
                        audit("phone.pair.code", principal, "ok", 200),
                        Effect::Control(FromLaptop::PairAccept { channel: id }),
                    ];
                    let next = PhoneChannel::PairingAccepted {
                        token_id,
                        channel,
                        phone_key,
                        label,
                    };
                    Step::to(next, effects)
                }
                CodeCheck::Wrong { attempts_left } => {
                    tracing::warn!(attempts_left, "a phone sent a wrong pairing code");
                    let mut effects = vec![audit("phone.pair.code", principal, "denied", 403)];
                    effects.extend(sealed_json(
                        id,
                        &mut channel,
                        &json!({ "type": "code-wrong", "attemptsLeft": attempts_left }),
                    ));
                    let next = PhoneChannel::PairingCode {
                        token_id,
                        channel,
                        phone_key,
                        label,
                    };
                    Step::to(next, effects)
                }
                CodeCheck::Dead => {
                    tracing::warn!("five wrong pairing codes: the pairing window is closed");
                    let mut effects = vec![audit("phone.pair.dead", principal, "denied", 403)];
                    effects.extend(sealed_json(
                        id,
                        &mut channel,
                        &json!({ "type": "pairing-dead" }),
                    ));
                    effects.push(Effect::Control(FromLaptop::PairKill { channel: id }));
                    Step::close(effects)
                }
                CodeCheck::Closed => {
                    let dead = sealed_json(id, &mut channel, &json!({ "type": "pairing-dead" }));
                    Step::close(dead.into_iter().collect())
                }
            }
        }
        accepted @ PhoneChannel::PairingAccepted { .. } => Step::to(accepted, Vec::new()),
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
            Step {
                next: None,
                effects: vec![
                    Effect::Frame(id, reply),
                    Effect::Serve {
                        id,
                        phone_id,
                        channel,
                    },
                ],
            }
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
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    struct Pairing {
        key: StaticKey,
        windows: PairingWindows,
        code: String,
        phone: Option<Handshake>,
    }

    fn pairing() -> Pairing {
        let key = StaticKey::generate().expect("key");
        let mut windows = PairingWindows::default();
        let (secret, code) = windows.open("t1", Duration::from_secs(60)).expect("window");
        let phone_key = StaticKey::generate().expect("phone key");
        let phone = Handshake::pairing_phone(&phone_key, &secret, &pairing_prologue("d1", "t1"))
            .expect("phone side");
        Pairing {
            key,
            windows,
            code,
            phone: Some(phone),
        }
    }

    impl Pairing {
        /// A context over this pairing's window, and the channel kind naming it.
        fn context(&mut self) -> (Context<'_>, ChannelKind) {
            let cx = Context {
                key: &self.key,
                device_id: "d1",
                windows: &mut self.windows,
                phones: None,
            };
            let kind = ChannelKind::Pairing {
                token_id: "t1".into(),
            };
            (cx, kind)
        }
    }

    fn frames(effects: &[Effect]) -> Vec<Vec<u8>> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Frame(_, bytes) => Some(bytes.clone()),
                _ => None,
            })
            .collect()
    }

    /// Runs the pairing handshake with the phone side; returns the daemon's
    /// state awaiting the code and the phone's channel.
    fn to_code(p: &mut Pairing) -> (PhoneChannel, Channel) {
        let mut phone = p.phone.take().expect("the phone's handshake");
        let (mut cx, kind) = p.context();
        let mut state = open(&mut cx, kind).next.expect("a pairing state");
        let first = phone.write(b"").expect("message 1");
        let step = advance(&mut cx, 7, state, &first);
        let reply = frames(&step.effects).pop().expect("message 2");
        state = step.next.expect("still pairing");
        phone.read(&reply).expect("read message 2");
        let last = phone
            .write(br#"{"label":"test phone"}"#)
            .expect("message 3");
        let step = advance(&mut cx, 7, state, &last);
        assert!(step.effects.is_empty(), "nothing before the code");
        (
            step.next.expect("awaiting the code"),
            phone.into_channel().expect("phone channel"),
        )
    }

    fn send_code(p: &mut Pairing, state: PhoneChannel, phone: &mut Channel, code: &str) -> Step {
        let (mut cx, _) = p.context();
        let sealed = phone
            .seal(json!({ "code": code }).to_string().as_bytes())
            .expect("seal");
        advance(&mut cx, 7, state, &sealed)
    }

    fn audited(effects: &[Effect]) -> Vec<(&'static str, &'static str)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Audit { op, outcome, .. } => Some((*op, *outcome)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_right_code_accepts_and_is_audited() {
        let mut p = pairing();
        let (state, mut phone) = to_code(&mut p);
        let code = p.code.clone();
        let step = send_code(&mut p, state, &mut phone, &code);
        assert_eq!(audited(&step.effects), vec![("phone.pair.code", "ok")]);
        assert!(
            step.effects
                .iter()
                .any(|e| matches!(e, Effect::Control(FromLaptop::PairAccept { channel: 7 })))
        );
        assert!(matches!(
            step.next,
            Some(PhoneChannel::PairingAccepted { .. })
        ));
    }

    #[test]
    fn five_wrong_codes_kill_the_token() {
        let mut p = pairing();
        let (mut state, mut phone) = to_code(&mut p);
        let wrong = if p.code == "0000" { "1111" } else { "0000" };
        for left in (1..=4).rev() {
            let step = send_code(&mut p, state, &mut phone, wrong);
            assert_eq!(audited(&step.effects), vec![("phone.pair.code", "denied")]);
            let answer = phone
                .open(&frames(&step.effects)[0])
                .expect("sealed answer");
            let answer: Value = serde_json::from_slice(&answer).expect("JSON");
            assert_eq!(answer["attemptsLeft"], left);
            state = step.next.expect("still waiting for the code");
        }
        let step = send_code(&mut p, state, &mut phone, wrong);
        assert!(step.next.is_none());
        assert_eq!(audited(&step.effects), vec![("phone.pair.dead", "denied")]);
        assert!(
            step.effects
                .iter()
                .any(|e| matches!(e, Effect::Control(FromLaptop::PairKill { channel: 7 })))
        );
    }

    #[test]
    fn a_token_without_a_window_and_an_unknown_phone_are_refused() {
        let key = StaticKey::generate().expect("key");
        let mut windows = PairingWindows::default();
        let mut cx = Context {
            key: &key,
            device_id: "d1",
            windows: &mut windows,
            phones: None,
        };
        let step = open(
            &mut cx,
            ChannelKind::Pairing {
                token_id: "nope".into(),
            },
        );
        assert!(step.next.is_none());
        assert_eq!(
            audited(&step.effects),
            vec![("phone.pair.open", "not-found")]
        );
        let step = open(
            &mut cx,
            ChannelKind::Phone {
                phone_id: "stranger".into(),
            },
        );
        assert!(step.next.is_none());
        assert_eq!(audited(&step.effects), vec![("phone.connect", "denied")]);
    }

    #[test]
    fn garbage_closes_a_pairing_channel_without_a_word() {
        let mut p = pairing();
        let (mut cx, kind) = p.context();
        let state = open(&mut cx, kind).next.expect("state");
        let step = advance(&mut cx, 3, state, b"not a handshake message");
        assert!(step.next.is_none() && step.effects.is_empty());
    }
}
