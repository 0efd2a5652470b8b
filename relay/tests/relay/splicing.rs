//! Splicing end to end: pairing, connections, bytes both ways, revocation,
//! the laptop's controls, slow phones, and the limits that held before.

use std::time::{Duration, Instant};

use awc::ws::{Frame, Message};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use loopsy_transports::relay_wire::{
    FromLaptop, MAX_FRAME, SUBPROTOCOL, ToLaptop, ToPhone, channel_frame, close,
    split_channel_frame,
};
use serde_json::json;

use crate::support::*;

#[actix_rt::test]
async fn a_phone_pairs_then_connects_and_bytes_flow_both_ways() {
    let relay = start_relay(&[]).await;
    let (device, secret, mut laptop, token) = laptop_with_token(&relay).await;

    let mut pairing = socket(format!("{}/pair/connect/{device}", relay.url), &token)
        .await
        .unwrap();
    let ToLaptop::Open { channel, .. } = laptop_message(&mut laptop).await else {
        panic!("expected open")
    };
    pairing
        .send(Message::Binary(Bytes::from_static(b"sealed-hello")))
        .await
        .unwrap();
    let Got::Binary(frame) = next(&mut laptop).await else {
        panic!()
    };
    assert_eq!(
        split_channel_frame(frame),
        Some((channel, Bytes::from_static(b"sealed-hello")))
    );
    laptop
        .send(Message::Binary(channel_frame(channel, b"sealed-reply")))
        .await
        .unwrap();
    let Got::Binary(reply) = next(&mut pairing).await else {
        panic!()
    };
    assert_eq!(&reply[..], b"sealed-reply");

    send_control(&mut laptop, FromLaptop::PairAccept { channel }).await;
    let Got::Text(text) = next(&mut pairing).await else {
        panic!()
    };
    let ToPhone::Credentials {
        phone_id,
        phone_secret,
        ..
    } = serde_json::from_str(&text).unwrap();
    assert_eq!(
        laptop_message(&mut laptop).await,
        ToLaptop::Paired {
            channel,
            phone_id: phone_id.clone()
        }
    );

    assert_eq!(
        closed_at_once(format!("{}/pair/connect/{device}", relay.url), &token).await,
        (close::PAIRING_REFUSED, "pairing link used".to_owned()),
        "a used token is refused, and the phone is told why"
    );
    let mut phone = socket(
        format!("{}/phone/connect/{device}?phone_id={phone_id}", relay.url),
        &phone_secret,
    )
    .await
    .unwrap();
    let ToLaptop::Open { channel, kind } = laptop_message(&mut laptop).await else {
        panic!()
    };
    assert_eq!(
        kind,
        loopsy_transports::relay_wire::ChannelKind::Phone {
            phone_id: phone_id.clone()
        }
    );
    phone
        .send(Message::Binary(Bytes::from_static(b"k")))
        .await
        .unwrap();
    let Got::Binary(frame) = next(&mut laptop).await else {
        panic!()
    };
    assert_eq!(split_channel_frame(frame).unwrap().0, channel);

    // Revocation through the API cuts the live socket at once.
    let revoked_at = Instant::now();
    let response = awc::Client::new()
        .delete(format!("{}/device/{device}/phones/{phone_id}", relay.url))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let Got::Closed(code) = next(&mut phone).await else {
        panic!("the revoked phone got a frame")
    };
    assert_eq!(code, Some(close::REVOKED));
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
    // A revoked phone is let in only to be told so; a wrong secret is refused.
    assert_eq!(
        closed_at_once(
            format!("{}/phone/connect/{device}?phone_id={phone_id}", relay.url),
            &phone_secret
        )
        .await,
        (close::REVOKED, "phone revoked".to_owned())
    );
    assert_eq!(
        socket(
            format!("{}/phone/connect/{device}?phone_id={phone_id}", relay.url),
            "not-its-secret"
        )
        .await
        .err(),
        Some(401)
    );
}

#[actix_rt::test]
async fn secrets_are_checked_and_never_taken_from_the_url() {
    let relay = start_relay(&[]).await;
    let (device, secret) = register(&relay).await;
    let status = awc::Client::new()
        .get(format!(
            "{}/laptop/connect?device_id={device}&token={secret}",
            relay.url
        ))
        .insert_header(("Upgrade", "websocket"))
        .insert_header(("Connection", "Upgrade"))
        .insert_header(("Sec-WebSocket-Version", "13"))
        .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "a bearer in the query string is ignored");
    assert_eq!(
        socket(
            format!("{}/laptop/connect?device_id={device}", relay.url),
            "wrong"
        )
        .await
        .err(),
        Some(401)
    );
    let (status, _) = post(
        format!("{}/pair/issue?device_id={device}", relay.url),
        Some("wrong"),
        json!({}),
    )
    .await;
    assert_eq!(status, 401);
    let other_origin = awc::Client::new()
        .ws(format!("{}/laptop/connect?device_id={device}", relay.url))
        .origin("https://evil.example")
        .protocols([SUBPROTOCOL.to_owned(), format!("loopsy.bearer.{secret}")])
        .connect()
        .await;
    assert!(
        matches!(other_origin, Err(awc::error::WsClientError::InvalidResponseStatus(s)) if s == 403)
    );
}

#[actix_rt::test]
async fn pair_tokens_die_after_five_sockets() {
    let relay = start_relay(&[]).await;
    let (device, secret) = register(&relay).await;
    let _laptop = socket(
        format!("{}/laptop/connect?device_id={device}", relay.url),
        &secret,
    )
    .await
    .unwrap();
    let token = issue(&relay, &device, &secret).await;
    for _ in 0..5 {
        let mut attempt = socket(format!("{}/pair/connect/{device}", relay.url), &token)
            .await
            .unwrap();
        let _ = attempt.close().await;
    }
    assert_eq!(
        closed_at_once(format!("{}/pair/connect/{device}", relay.url), &token).await,
        (
            close::PAIRING_REFUSED,
            "pairing link closed after wrong codes".to_owned()
        )
    );
    assert_eq!(
        closed_at_once(format!("{}/pair/connect/{device}", relay.url), "made-up").await,
        (
            close::PAIRING_REFUSED,
            "pairing link unknown or expired".to_owned()
        )
    );
}

/// A laptop, a phone on its pairing socket, and the channel between them.
struct PairingChannel {
    device: String,
    token: String,
    laptop: Socket,
    pairing: Socket,
    channel: u32,
}

async fn pairing_channel(relay: &Relay) -> PairingChannel {
    let (device, _, mut laptop, token) = laptop_with_token(relay).await;
    let pairing = socket(format!("{}/pair/connect/{device}", relay.url), &token)
        .await
        .unwrap();
    let ToLaptop::Open { channel, .. } = laptop_message(&mut laptop).await else {
        panic!()
    };
    PairingChannel {
        device,
        token,
        laptop,
        pairing,
        channel,
    }
}

#[actix_rt::test]
async fn the_laptop_kills_a_token_after_wrong_codes() {
    let relay = start_relay(&[]).await;
    let PairingChannel {
        device,
        token,
        mut laptop,
        mut pairing,
        channel,
    } = pairing_channel(&relay).await;
    // What the daemon sends: its sealed answer, the kill, then its close.
    laptop
        .send(Message::Binary(channel_frame(channel, b"pairing-dead")))
        .await
        .unwrap();
    send_control(&mut laptop, FromLaptop::PairKill { channel }).await;
    send_control(&mut laptop, FromLaptop::Close { channel }).await;
    let Got::Binary(answer) = next(&mut pairing).await else {
        panic!("the laptop's answer was lost behind its close")
    };
    assert_eq!(&answer[..], b"pairing-dead");
    let Got::Closed(code) = next(&mut pairing).await else {
        panic!()
    };
    assert_eq!(code, Some(close::PAIRING_REFUSED));
    // The socket closes only once the token is dead on disk: a phone coming
    // straight back with it is refused.
    assert_eq!(
        closed_at_once(format!("{}/pair/connect/{device}", relay.url), &token)
            .await
            .0,
        close::PAIRING_REFUSED
    );
}

#[actix_rt::test]
async fn a_laptop_close_arrives_after_everything_it_sent_before() {
    let relay = start_relay(&[]).await;
    let PairingChannel {
        mut laptop,
        mut pairing,
        channel,
        ..
    } = pairing_channel(&relay).await;
    for n in 0..200u32 {
        laptop
            .send(Message::Binary(channel_frame(channel, &n.to_be_bytes())))
            .await
            .unwrap();
    }
    send_control(&mut laptop, FromLaptop::Close { channel }).await;
    for n in 0..200u32 {
        match next(&mut pairing).await {
            Got::Binary(bytes) => assert_eq!(&bytes[..], n.to_be_bytes()),
            Got::Closed(code) => panic!("closed ({code:?}) before frame {n}"),
            Got::Text(t) => panic!("unexpected {t}"),
        }
    }
    let Got::Closed(code) = next(&mut pairing).await else {
        panic!("no close after the frames")
    };
    assert_eq!(code, Some(close::CLOSED_BY_DEVICE));
}

#[actix_rt::test]
async fn an_oversized_frame_closes_the_socket_and_the_relay_carries_on() {
    let relay = start_relay(&[]).await;
    let (device, secret) = register(&relay).await;
    let mut laptop = socket(
        format!("{}/laptop/connect?device_id={device}", relay.url),
        &secret,
    )
    .await
    .unwrap();
    laptop
        .send(Message::Binary(Bytes::from(vec![0u8; 2 * MAX_FRAME])))
        .await
        .unwrap();
    assert!(matches!(next(&mut laptop).await, Got::Closed(_)));
    let mut again = socket(
        format!("{}/laptop/connect?device_id={device}", relay.url),
        &secret,
    )
    .await
    .unwrap();
    again.send(Message::Ping(Bytes::new())).await.unwrap();
}

/// A client with keepalive (the daemon, Python `websockets`) drops a link whose
/// pings go unanswered: every socket kind gets its pong, with the ping's bytes.
#[actix_rt::test]
async fn pings_are_answered_on_every_socket_kind() {
    let relay = start_relay(&[]).await;
    let (device, secret, mut laptop, token) = laptop_with_token(&relay).await;
    let mut pairing = socket(format!("{}/pair/connect/{device}", relay.url), &token)
        .await
        .unwrap();
    for (kind, socket) in [("laptop", &mut laptop), ("pairing", &mut pairing)] {
        socket
            .send(Message::Ping(Bytes::from_static(b"are-you-there")))
            .await
            .unwrap();
        let pong = loop {
            let frame = actix_rt::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .unwrap_or_else(|_| panic!("{kind}: no pong within 5 s"));
            match frame {
                Some(Ok(Frame::Pong(bytes))) => break bytes,
                Some(Ok(_)) => {}
                other => panic!("{kind}: the socket ended: {other:?}"),
            }
        };
        assert_eq!(&pong[..], b"are-you-there", "{kind}");
    }
    let _ = secret;
}

#[actix_rt::test]
async fn registration_is_limited_per_address_and_can_need_a_secret() {
    let relay = start_relay(&[]).await;
    let mut created = 0;
    let mut limited = 0;
    for _ in 0..1000 {
        match post(format!("{}/device/register", relay.url), None, json!({}))
            .await
            .0
        {
            201 => created += 1,
            429 => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 5);
    assert_eq!(limited, 995);

    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("registration-secret");
    std::fs::write(&secret_file, "let-me-in\n").unwrap();
    let guarded = start_relay(&["--registration-secret-file", secret_file.to_str().unwrap()]).await;
    assert_eq!(
        post(format!("{}/device/register", guarded.url), None, json!({}))
            .await
            .0,
        403
    );
    let response = awc::Client::new()
        .post(format!("{}/device/register", guarded.url))
        .insert_header(("X-Registration-Secret", "let-me-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[actix_rt::test]
async fn a_phone_finds_an_offline_laptop_closed() {
    let relay = start_relay(&[]).await;
    let (device, secret) = register(&relay).await;
    let token = issue(&relay, &device, &secret).await;
    let mut pairing = socket(format!("{}/pair/connect/{device}", relay.url), &token)
        .await
        .unwrap();
    let Got::Closed(code) = next(&mut pairing).await else {
        panic!()
    };
    assert_eq!(code, Some(close::DEVICE_OFFLINE));
}

#[actix_rt::test]
async fn a_phone_that_does_not_read_is_dropped_without_slowing_the_laptop() {
    let secrets = tempfile::tempdir().unwrap();
    let metrics_secret = secrets.path().join("metrics-secret");
    std::fs::write(&metrics_secret, "scrape").unwrap();
    let relay = start_relay(&["--metrics-secret-file", metrics_secret.to_str().unwrap()]).await;
    let (device, _, mut laptop, token) = laptop_with_token(&relay).await;
    // This phone does not read (until the end).
    let mut stalled = socket(format!("{}/pair/connect/{device}", relay.url), &token)
        .await
        .unwrap();
    let ToLaptop::Open { channel, .. } = laptop_message(&mut laptop).await else {
        panic!()
    };
    let chunk = vec![0u8; 64 * 1024];
    let mut closed = None;
    for _ in 0..2000 {
        laptop
            .send(Message::Binary(channel_frame(channel, &chunk)))
            .await
            .unwrap();
        if let Ok(Some(Ok(Frame::Text(text)))) =
            actix_rt::time::timeout(Duration::from_millis(1), laptop.next()).await
        {
            closed = Some(serde_json::from_slice::<ToLaptop>(&text).unwrap());
            break;
        }
    }
    assert_eq!(
        closed,
        Some(ToLaptop::Close { channel }),
        "the relay must drop the stalled phone"
    );
    // The laptop's socket is fine.
    laptop.send(Message::Ping(Bytes::new())).await.unwrap();
    // The stalled phone's socket was cut: what it had buffered, then the end.
    while !matches!(next(&mut stalled).await, Got::Closed(_)) {}
    let metrics = awc::Client::new()
        .get(format!("{}/metrics", relay.url))
        .bearer_auth("scrape")
        .send()
        .await
        .unwrap()
        .body()
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("loopsy_relay_rejects_total{reason=\"slow_phone\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("loopsy_relay_connections{side=\"laptop\"} 1"),
        "{metrics}"
    );
}

#[actix_rt::test]
async fn sockets_per_address_are_capped() {
    let relay = start_relay(&["--max-connections-per-ip", "2"]).await;
    // Three devices: a second socket of one device would replace (close) its first.
    let mut devices = Vec::new();
    for _ in 0..3 {
        devices.push(register(&relay).await);
    }
    let url = |device: &str| format!("{}/laptop/connect?device_id={device}", relay.url);
    let a = socket(url(&devices[0].0), &devices[0].1).await.unwrap();
    let _b = socket(url(&devices[1].0), &devices[1].1).await.unwrap();
    assert_eq!(
        socket(url(&devices[2].0), &devices[2].1).await.err(),
        Some(429)
    );
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    while socket(url(&devices[2].0), &devices[2].1).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "a closed socket's slot was never freed"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The daemon makes the pairing token (from the QR link's seed) and registers
/// it as an id and a digest: the relay never sends it back, the token opens the
/// pairing socket, and a malformed or repeated registration is refused.
#[actix_rt::test]
async fn a_token_the_daemon_made_is_registered_by_its_digest() {
    use loopsy_transports::e2e::pairing_link::PairingSeed;
    let relay = start_relay(&[]).await;
    let (device, secret, mut laptop, _) = laptop_with_token(&relay).await;
    let seed = PairingSeed([9; 16]);
    let issue_url = format!("{}/pair/issue?device_id={device}", relay.url);
    let body = json!({ "tokenId": seed.token_id(), "tokenDigest": seed.token_digest() });
    let (status, answer) = post(issue_url.clone(), Some(&secret), body.clone()).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["tokenId"], seed.token_id());
    assert!(
        answer["token"].is_null(),
        "the relay never had the token to send"
    );
    let _pairing = socket(
        format!("{}/pair/connect/{device}", relay.url),
        &seed.token(),
    )
    .await
    .unwrap();
    let ToLaptop::Open { kind, .. } = laptop_message(&mut laptop).await else {
        panic!("expected open")
    };
    assert_eq!(
        kind,
        loopsy_transports::relay_wire::ChannelKind::Pairing {
            token_id: seed.token_id()
        }
    );
    assert_eq!(post(issue_url.clone(), Some(&secret), body).await.0, 409);
    for bad in [
        json!({ "tokenId": "short", "tokenDigest": seed.token_digest() }),
        json!({ "tokenId": seed.token_id(), "tokenDigest": "zz" }),
        json!({ "tokenId": PairingSeed([8; 16]).token_id() }),
    ] {
        assert_eq!(
            post(issue_url.clone(), Some(&secret), bad.clone()).await.0,
            400,
            "{bad}"
        );
    }
}
