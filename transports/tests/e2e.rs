//! The end-to-end layer: published Noise vectors through our aws-lc-rs
//! resolver, loopsy's own vectors (shared with the browser), and the failures
//! that must close a channel.

// Test code: a failed expectation is a failed test, so panicking is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use loopsy_transports::e2e::resolver::AwsLcResolver;
use loopsy_transports::e2e::{
    Channel, E2eError, Handshake, PairingSecret, StaticKey, connection_prologue, pairing_prologue,
};
use serde_json::{Value, json};
use snow::Builder;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn field(vector: &Value, name: &str) -> Option<Vec<u8>> {
    vector.get(name).and_then(Value::as_str).map(hex)
}

fn build(vector: &Value, side: &str) -> snow::HandshakeState {
    let name = vector["protocol_name"].as_str().unwrap();
    let statik = field(vector, &format!("{side}_static"));
    let ephemeral = field(vector, &format!("{side}_ephemeral")).unwrap();
    let remote = field(vector, &format!("{side}_remote_static"));
    let prologue = field(vector, &format!("{side}_prologue")).unwrap_or_default();
    let psk: Option<[u8; 32]> = vector
        .get(format!("{side}_psks"))
        .and_then(|p| p[0].as_str())
        .map(|p| hex(p).try_into().unwrap());
    let mut builder = Builder::with_resolver(name.parse().unwrap(), Box::new(AwsLcResolver))
        .fixed_ephemeral_key_for_testing_only(&ephemeral)
        .prologue(&prologue)
        .unwrap();
    if let Some(s) = &statik {
        builder = builder.local_private_key(s).unwrap();
    }
    if let Some(r) = &remote {
        builder = builder.remote_public_key(r).unwrap();
    }
    if let Some(p) = &psk {
        builder = builder.psk(3, p).unwrap();
    }
    if side == "init" {
        builder.build_initiator()
    } else {
        builder.build_responder()
    }
    .unwrap()
}

/// Runs a vector: every handshake and transport message must match byte for byte.
fn run_vector(vector: &Value) {
    let mut init = build(vector, "init");
    let mut resp = build(vector, "resp");
    let mut transports: Option<(snow::TransportState, snow::TransportState)> = None;
    let mut buffer = vec![0u8; 65535];
    let mut plain = vec![0u8; 65535];
    for (i, message) in vector["messages"].as_array().unwrap().iter().enumerate() {
        let payload = hex(message["payload"].as_str().unwrap());
        let expected = hex(message["ciphertext"].as_str().unwrap());
        let initiator_sends = i % 2 == 0;
        let (n, m) = match &mut transports {
            None => {
                let (sender, receiver) = if initiator_sends {
                    (&mut init, &mut resp)
                } else {
                    (&mut resp, &mut init)
                };
                let n = sender.write_message(&payload, &mut buffer).unwrap();
                let m = receiver.read_message(&buffer[..n], &mut plain).unwrap();
                (n, m)
            }
            Some((i_t, r_t)) => {
                let (sender, receiver) = if initiator_sends {
                    (i_t, r_t)
                } else {
                    (r_t, i_t)
                };
                let n = sender.write_message(&payload, &mut buffer).unwrap();
                let m = receiver.read_message(&buffer[..n], &mut plain).unwrap();
                (n, m)
            }
        };
        assert_eq!(
            to_hex(&buffer[..n]),
            to_hex(&expected),
            "{} message {i}",
            vector["protocol_name"]
        );
        assert_eq!(&plain[..m], &payload[..]);
        if transports.is_none() && init.is_handshake_finished() && resp.is_handshake_finished() {
            assert_eq!(
                to_hex(init.get_handshake_hash()),
                vector["handshake_hash"].as_str().unwrap(),
                "handshake hash"
            );
            let i_state = std::mem::replace(&mut init, build(vector, "init"));
            let r_state = std::mem::replace(&mut resp, build(vector, "resp"));
            transports = Some((
                i_state.into_transport_mode().unwrap(),
                r_state.into_transport_mode().unwrap(),
            ));
        }
    }
    assert!(
        transports.is_some(),
        "the vector's handshake never finished"
    );
}

#[test]
fn published_noise_vectors_pass_on_aws_lc() {
    let file: Value = serde_json::from_str(include_str!("vectors/noise.json")).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    for vector in vectors {
        run_vector(vector);
    }
}

fn key(byte: u8) -> StaticKey {
    StaticKey::from_private(&[byte; 32]).unwrap()
}

/// Pairs a phone and a daemon; returns both channels.
fn paired(
    secret_phone: &[u8; 32],
    secret_daemon: &[u8; 32],
) -> Result<(Channel, Channel), E2eError> {
    let (phone, daemon) = (key(1), key(2));
    let prologue = pairing_prologue("device-1", "token-1");
    let mut p = Handshake::pairing_phone(&phone, &PairingSecret(*secret_phone), &prologue)?;
    let mut d = Handshake::pairing_daemon(&daemon, &PairingSecret(*secret_daemon), &prologue)?;
    d.read(&p.write(b"")?)?;
    p.read(&d.write(b"")?)?;
    assert_eq!(
        p.remote_static(),
        Some(*daemon.public()),
        "the phone learns the daemon's key"
    );
    d.read(&p.write(b"")?)?;
    assert_eq!(d.remote_static(), Some(*phone.public()));
    Ok((p.into_channel()?, d.into_channel()?))
}

#[test]
fn pairing_needs_the_secret_from_the_qr() {
    let (mut phone, mut daemon) = paired(&[7; 32], &[7; 32]).unwrap();
    let sealed = phone.seal(b"4-digit code 1234").unwrap();
    assert_eq!(daemon.open(&sealed).unwrap(), b"4-digit code 1234");
    assert!(
        !sealed.windows(4).any(|w| w == b"1234"),
        "sealed bytes carry no plaintext"
    );
    assert!(
        paired(&[7; 32], &[8; 32]).is_err(),
        "a wrong pairing secret must fail the handshake"
    );
}

fn connected() -> (Channel, Channel) {
    let (phone, daemon) = (key(1), key(2));
    let prologue = connection_prologue("device-1", "phone-1");
    let mut p = Handshake::connection_phone(&phone, daemon.public(), &prologue).unwrap();
    let mut d = Handshake::connection_daemon(&daemon, phone.public(), &prologue).unwrap();
    d.read(&p.write(b"").unwrap()).unwrap();
    p.read(&d.write(b"").unwrap()).unwrap();
    (p.into_channel().unwrap(), d.into_channel().unwrap())
}

#[test]
fn connection_refuses_an_unknown_phone_or_a_swapped_phone_id() {
    let (stranger, daemon, phone) = (key(9), key(2), key(1));
    let prologue = connection_prologue("device-1", "phone-1");
    let mut p = Handshake::connection_phone(&stranger, daemon.public(), &prologue).unwrap();
    let mut d = Handshake::connection_daemon(&daemon, phone.public(), &prologue).unwrap();
    assert!(
        d.read(&p.write(b"").unwrap()).is_err(),
        "an unpaired key is refused"
    );
    let mut p = Handshake::connection_phone(&phone, daemon.public(), &prologue).unwrap();
    let mut d = Handshake::connection_daemon(
        &daemon,
        phone.public(),
        &connection_prologue("device-1", "phone-2"),
    )
    .unwrap();
    let first = p.write(b"").unwrap();
    // KK's first message is sealed under keys that mix in the prologue.
    assert!(
        d.read(&first).is_err(),
        "a phone id swapped by the relay is refused"
    );
}

#[test]
fn connections_use_fresh_keys() {
    let (mut a, _) = connected();
    let (mut b, _) = connected();
    assert_ne!(a.seal(b"same").unwrap(), b.seal(b"same").unwrap());
}

#[test]
fn an_altered_replayed_reordered_or_dropped_frame_closes_the_channel() {
    type Attack = fn(Vec<Vec<u8>>) -> Vec<Vec<u8>>;
    let attacks: [(&str, Attack); 4] = [
        ("flipped bit", |mut f| {
            f[1][3] ^= 1;
            f
        }),
        ("replay", |mut f| {
            let again = f[0].clone();
            f.insert(1, again);
            f
        }),
        ("reorder", |mut f| {
            f.swap(0, 1);
            f
        }),
        ("drop", |mut f| {
            f.remove(1);
            f
        }),
    ];
    for (name, attack) in attacks {
        let (mut phone, mut daemon) = connected();
        let frames: Vec<Vec<u8>> = (0..4)
            .map(|i| phone.seal(format!("frame {i}").as_bytes()).unwrap())
            .collect();
        let mut opened = Vec::new();
        let mut failed = false;
        for frame in attack(frames) {
            match daemon.open(&frame) {
                Ok(plain) if !failed => opened.push(plain),
                Ok(_) => panic!("{name}: a frame opened after the channel failed"),
                Err(_) => failed = true,
            }
        }
        assert!(failed, "{name}: the channel must fail");
        assert!(
            opened
                .iter()
                .enumerate()
                .all(|(i, p)| p == format!("frame {i}").as_bytes()),
            "{name}: only the untouched prefix may be applied"
        );
        assert!(
            matches!(daemon.open(b"anything"), Err(E2eError::Broken)),
            "{name}: stays closed"
        );
    }
}

#[test]
fn oversized_frames_are_refused() {
    let (mut phone, mut daemon) = connected();
    assert!(matches!(
        phone.seal(&vec![0u8; 70_000]),
        Err(E2eError::TooLarge(70_000))
    ));
    assert!(daemon.open(&vec![0u8; 2 << 20]).is_err());
    assert!(
        daemon.open(&[1, 2, 3]).is_err(),
        "garbage closes the channel"
    );
}

/// loopsy's own vectors for the browser: fixed keys, the real prologues, every
/// handshake message and a few transport frames. Regenerate with
/// `LOOPSY_WRITE_VECTORS=1 cargo test -p loopsy-transports --test e2e`.
#[test]
fn loopsy_vectors_are_current() {
    let mut cases = Vec::new();
    for (pattern, prologue, psk) in [
        (
            loopsy_transports::e2e::PAIRING_PATTERN,
            pairing_prologue("3f2c0b6e-1d7a-4c55-9a0e-5b1f2d3c4e5f", "tok-0001"),
            Some([0x42u8; 32]),
        ),
        (
            loopsy_transports::e2e::CONNECTION_PATTERN,
            connection_prologue("3f2c0b6e-1d7a-4c55-9a0e-5b1f2d3c4e5f", "phone-0001"),
            None,
        ),
    ] {
        let phone = key(0x11);
        let daemon = key(0x22);
        let (phone_e, daemon_e) = ([0x33u8; 32], [0x44u8; 32]);
        let make = |initiator: bool| {
            let (local, ephemeral, remote) = if initiator {
                (&phone, &phone_e, &daemon)
            } else {
                (&daemon, &daemon_e, &phone)
            };
            let mut b = Builder::with_resolver(pattern.parse().unwrap(), Box::new(AwsLcResolver))
                .local_private_key(local.private())
                .unwrap()
                .fixed_ephemeral_key_for_testing_only(ephemeral)
                .prologue(&prologue)
                .unwrap();
            if psk.is_none() {
                b = b.remote_public_key(remote.public()).unwrap();
            }
            if let Some(p) = &psk {
                b = b.psk(3, p).unwrap();
            }
            if initiator {
                b.build_initiator()
            } else {
                b.build_responder()
            }
            .unwrap()
        };
        let (mut p, mut d) = (make(true), make(false));
        let mut buffer = vec![0u8; 65535];
        let mut plain = vec![0u8; 65535];
        let mut messages = Vec::new();
        let mut turn = 0;
        while !(p.is_handshake_finished() && d.is_handshake_finished()) {
            let payload = format!("handshake payload {turn}").into_bytes();
            let (s, r) = if turn % 2 == 0 {
                (&mut p, &mut d)
            } else {
                (&mut d, &mut p)
            };
            let n = s.write_message(&payload, &mut buffer).unwrap();
            r.read_message(&buffer[..n], &mut plain).unwrap();
            messages
                .push(json!({ "payload": to_hex(&payload), "ciphertext": to_hex(&buffer[..n]) }));
            turn += 1;
        }
        let hash = to_hex(p.get_handshake_hash());
        let (mut pt, mut dt) = (
            p.into_transport_mode().unwrap(),
            d.into_transport_mode().unwrap(),
        );
        for i in 0..4 {
            let payload = format!("transport frame {i}").into_bytes();
            let (s, r) = if i % 2 == 0 {
                (&mut pt, &mut dt)
            } else {
                (&mut dt, &mut pt)
            };
            let n = s.write_message(&payload, &mut buffer).unwrap();
            r.read_message(&buffer[..n], &mut plain).unwrap();
            messages.push(json!({ "from": if i % 2 == 0 { "phone" } else { "daemon" }, "payload": to_hex(&payload), "ciphertext": to_hex(&buffer[..n]) }));
        }
        cases.push(json!({
            "protocol_name": pattern,
            "prologue": to_hex(&prologue),
            "phone_static_private": to_hex(phone.private()),
            "phone_static_public": to_hex(phone.public()),
            "phone_ephemeral_private": to_hex(&phone_e),
            "daemon_static_private": to_hex(daemon.private()),
            "daemon_static_public": to_hex(daemon.public()),
            "daemon_ephemeral_private": to_hex(&daemon_e),
            "psk": psk.map(|p| to_hex(&p)),
            "handshake_hash": hash,
            "messages": messages,
        }));
    }
    let file = json!({
        "about": "loopsy's phone channel: the phone is the Noise initiator; transport messages after the handshake alternate phone, daemon. Made by transports/tests/e2e.rs.",
        "fingerprint_of_daemon_static_public": loopsy_transports::e2e::fingerprint(key(0x22).public()),
        "cases": cases,
    });
    let text = serde_json::to_string_pretty(&file).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/loopsy-e2e.json");
    if std::env::var_os("LOOPSY_WRITE_VECTORS").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == text,
        "tests/vectors/loopsy-e2e.json is stale; regenerate it (see this test's comment)"
    );
}

/// The pairing link's vectors, for the browser's `parsePairingLink` (web/test):
/// what a fragment names and what it derives. `LOOPSY_WRITE_VECTORS=1` rewrites them.
#[test]
fn pairing_link_vectors_are_current() {
    use loopsy_transports::e2e::pairing_link::{PairingSeed, parse_fragment};
    use loopsy_transports::secrets::hex;
    let cases: Vec<Value> = [
        ([0u8; 16], "3f2c9a1e-0b7d-4c55-9e21-6a8f0d1b2c3e", None),
        ([0xa5; 16], "00000000-0000-4000-8000-000000000000", None),
        (
            std::array::from_fn(|i| i as u8 * 17),
            "a-device-id-of-another-relay",
            None,
        ),
        (
            [0x3c; 16],
            "3f2c9a1e-0b7d-4c55-9e21-6a8f0d1b2c3e",
            Some("https://relay.example.com"),
        ),
        (
            std::array::from_fn(|i| 255 - i as u8),
            "a-device-id-of-another-relay",
            Some("http://192.168.1.20:8787"),
        ),
    ]
    .into_iter()
    .map(|(seed, device, relay)| {
        let seed = PairingSeed(seed);
        let fragment = match relay {
            Some(url) => seed.fragment_with_relay(device, url).unwrap(),
            None => seed.fragment(device),
        };
        let parsed = parse_fragment(&fragment).unwrap();
        assert_eq!(parsed.device_id, device);
        assert_eq!(parsed.seed.0, seed.0);
        assert_eq!(parsed.relay_url.as_deref(), relay);
        serde_json::json!({
            "fragment": fragment,
            "deviceId": device,
            "relay": relay,
            "psk": hex(&seed.psk().0),
            "token": seed.token(),
            "tokenId": seed.token_id(),
        })
    })
    .collect();
    let file = serde_json::json!({
        "about": "Pairing links: the fragment, and what the phone derives from it (transports/src/e2e/pairing_link.rs).",
        "cases": cases,
    });
    let text = serde_json::to_string_pretty(&file).unwrap() + "\n";
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/pairing-link.json"
    );
    if std::env::var_os("LOOPSY_WRITE_VECTORS").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == text,
        "tests/vectors/pairing-link.json is stale; run this test with LOOPSY_WRITE_VECTORS=1"
    );
}
