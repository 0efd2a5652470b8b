//! The state machine against a phone's side of the handshakes, with the
//! Router's answers given by hand: what it asks, and what it does with each answer.

use loopsy_transports::secrets::hex;

use super::*;

const SECRET: [u8; 32] = [7; 32];

struct Daemon {
    key: StaticKey,
    next_ask: u64,
}

impl Daemon {
    fn new() -> Self {
        Self {
            key: StaticKey::generate().expect("key"),
            next_ask: 0,
        }
    }
    fn cx(&mut self) -> Context<'_> {
        Context {
            key: &self.key,
            device_id: "d1",
            device_name: "laptop",
            next_ask: &mut self.next_ask,
        }
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

/// The one question in `effects`: its number and request.
fn question(effects: &[Effect]) -> (u64, &Request) {
    let asked: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Ask {
                asking, request, ..
            } => Some((*asking, request)),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "one question to the Router");
    asked[0]
}

fn secret_answer() -> Result<Reply, ApiError> {
    Ok(Reply::ok(json!({ "secret": hex(&SECRET) })))
}

/// A pairing channel through its handshake, the phone's first message sent
/// before the Router answered. Returns the state awaiting the code and the
/// phone's channel.
fn to_code(daemon: &mut Daemon) -> (PhoneChannel, Channel) {
    let phone_key = StaticKey::generate().expect("phone key");
    let mut phone = Handshake::pairing_phone(
        &phone_key,
        &PairingSecret(SECRET),
        &pairing_prologue("d1", "t1"),
    )
    .expect("phone side");
    let opened = open(
        &mut daemon.cx(),
        ChannelKind::Pairing {
            token_id: "t1".into(),
        },
    );
    let (asking, request) = question(&opened.effects);
    assert!(matches!(request, Request::PhonePairOpen { token_id } if token_id == "t1"));
    // The phone does not wait for the Router: its first message arrives early.
    let first = phone.write(b"").expect("message 1");
    let early = advance(&mut daemon.cx(), 7, opened.next.expect("opening"), &first);
    assert!(
        early.effects.is_empty(),
        "nothing is said before the Router answers"
    );
    let step = answered(
        &mut daemon.cx(),
        7,
        early.next.expect("still opening"),
        asking,
        secret_answer(),
    );
    assert_eq!(step.replay, vec![first], "the early message is handled now");
    let step = advance(
        &mut daemon.cx(),
        7,
        step.next.expect("handshake"),
        &step.replay[0],
    );
    let reply = frames(&step.effects).pop().expect("message 2");
    phone.read(&reply).expect("read message 2");
    let last = phone
        .write(br#"{"label":"test phone"}"#)
        .expect("message 3");
    let step = advance(
        &mut daemon.cx(),
        7,
        step.next.expect("still pairing"),
        &last,
    );
    assert!(step.effects.is_empty(), "nothing before the code");
    (
        step.next.expect("awaiting the code"),
        phone.into_channel().expect("phone channel"),
    )
}

/// Sends `code`; returns the checking state and the question's number.
fn send_code(
    daemon: &mut Daemon,
    state: PhoneChannel,
    phone: &mut Channel,
    code: &str,
) -> (PhoneChannel, u64) {
    let sealed = phone
        .seal(json!({ "code": code }).to_string().as_bytes())
        .expect("seal");
    let step = advance(&mut daemon.cx(), 7, state, &sealed);
    let (asking, request) = question(&step.effects);
    assert!(
        matches!(request, Request::PhonePairCode { token_id, code: sent } if token_id == "t1" && sent == code)
    );
    (step.next.expect("checking"), asking)
}

#[test]
fn the_code_goes_to_the_router_and_its_yes_accepts() {
    let mut daemon = Daemon::new();
    let (state, mut phone) = to_code(&mut daemon);
    let (state, asking) = send_code(&mut daemon, state, &mut phone, "1234");
    let step = answered(
        &mut daemon.cx(),
        7,
        state,
        asking,
        Ok(Reply::ok(json!({ "accepted": true }))),
    );
    assert!(
        step.effects
            .iter()
            .any(|e| matches!(e, Effect::Control(FromLaptop::PairAccept { channel: 7 })))
    );
    let named = relay_named(&mut daemon.cx(), step.next.expect("accepted"), "p1".into());
    let (asking, request) = question(&named.effects);
    assert!(
        matches!(request, Request::PhonePaired { phone_id, label, .. } if phone_id == "p1" && label.as_deref() == Some("test phone"))
    );
    let done = answered(
        &mut daemon.cx(),
        7,
        named.next.expect("storing"),
        asking,
        Ok(Reply::ok(json!({}))),
    );
    assert!(done.next.is_none(), "the phone reconnects as itself");
    let told: Value =
        serde_json::from_slice(&phone.open(&frames(&done.effects)[0]).expect("sealed"))
            .expect("JSON");
    assert_eq!(told["type"], "paired");
    assert_eq!(told["phoneId"], "p1");
    assert_eq!(told["deviceName"], "laptop");
}

#[test]
fn a_wrong_code_is_told_and_a_dead_window_kills_the_token() {
    let mut daemon = Daemon::new();
    let (state, mut phone) = to_code(&mut daemon);
    let (state, asking) = send_code(&mut daemon, state, &mut phone, "0000");
    let mut wrong = ApiError::new(code::PAIRING_CODE_WRONG, 403, "wrong");
    wrong.details = Some(json!({ "attemptsLeft": 4 }));
    let step = answered(&mut daemon.cx(), 7, state, asking, Err(wrong));
    let told: Value =
        serde_json::from_slice(&phone.open(&frames(&step.effects)[0]).expect("sealed"))
            .expect("JSON");
    assert_eq!(told, json!({ "type": "code-wrong", "attemptsLeft": 4 }));
    let (state, asking) = send_code(
        &mut daemon,
        step.next.expect("code again"),
        &mut phone,
        "0001",
    );
    let dead = ApiError::new(code::PAIRING_DEAD, 410, "dead");
    let step = answered(&mut daemon.cx(), 7, state, asking, Err(dead));
    assert!(step.next.is_none());
    assert!(
        step.effects
            .iter()
            .any(|e| matches!(e, Effect::Control(FromLaptop::PairKill { channel: 7 })))
    );
    let told: Value =
        serde_json::from_slice(&phone.open(&frames(&step.effects)[0]).expect("sealed"))
            .expect("JSON");
    assert_eq!(told["type"], "pairing-dead");
}

#[test]
fn a_refusal_closes_and_a_stale_answer_changes_nothing() {
    let mut daemon = Daemon::new();
    let opened = open(
        &mut daemon.cx(),
        ChannelKind::Phone {
            phone_id: "stranger".into(),
        },
    );
    let (asking, request) = question(&opened.effects);
    assert!(matches!(request, Request::PhoneConnect { phone_id } if phone_id == "stranger"));
    let state = opened.next.expect("opening");
    let stale = answered(
        &mut daemon.cx(),
        3,
        state,
        asking + 100,
        Ok(Reply::ok(json!({ "key": hex(&[1; 32]) }))),
    );
    assert!(stale.effects.is_empty());
    assert!(
        matches!(stale.next, Some(PhoneChannel::PhoneOpening { .. })),
        "still waiting"
    );
    let refused = ApiError::new(code::PHONE_NOT_FOUND, 403, "not paired");
    let step = answered(
        &mut daemon.cx(),
        3,
        stale.next.expect("opening"),
        asking,
        Err(refused),
    );
    assert!(step.next.is_none() && step.effects.is_empty());
}

#[test]
fn garbage_and_floods_close_a_channel_without_a_word() {
    let mut daemon = Daemon::new();
    let opened = open(
        &mut daemon.cx(),
        ChannelKind::Pairing {
            token_id: "t1".into(),
        },
    );
    let (asking, _) = question(&opened.effects);
    let step = answered(
        &mut daemon.cx(),
        3,
        opened.next.expect("opening"),
        asking,
        secret_answer(),
    );
    let step = advance(
        &mut daemon.cx(),
        3,
        step.next.expect("handshake"),
        b"not a handshake message",
    );
    assert!(step.next.is_none() && step.effects.is_empty());

    let opened = open(
        &mut daemon.cx(),
        ChannelKind::Pairing {
            token_id: "t1".into(),
        },
    );
    let mut state = opened.next.expect("opening");
    for _ in 0..MAX_EARLY {
        state = advance(&mut daemon.cx(), 4, state, b"early")
            .next
            .expect("kept");
    }
    assert!(
        advance(&mut daemon.cx(), 4, state, b"one too many")
            .next
            .is_none()
    );

    // Nor may a few early messages hold more than a handshake needs.
    let opened = open(
        &mut daemon.cx(),
        ChannelKind::Pairing {
            token_id: "t1".into(),
        },
    );
    let big = vec![0u8; MAX_EARLY_BYTES / 2 + 1];
    let state = advance(&mut daemon.cx(), 5, opened.next.expect("opening"), &big)
        .next
        .expect("the first is kept");
    assert!(advance(&mut daemon.cx(), 5, state, &big).next.is_none());
}
