//! What a stranger on the internet tries: frames that announce a gigabyte,
//! floods of registrations and tokens, more sockets than a device needs,
//! forged `X-Forwarded-For`, and reading the metrics.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use loopsy_transports::relay_wire::{SUBPROTOCOL, close};
use serde_json::json;

use crate::support::*;

/// A WebSocket opened by hand (so that frames can lie about their length),
/// past its `101 Switching Protocols`.
fn raw_socket(relay: &Relay, path: &str, bearer: &str) -> TcpStream {
    let host = relay.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}, loopsy.bearer.{bearer}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// The close code among the server's frames, or `None` if the socket ended without one.
fn close_code(mut stream: TcpStream) -> Option<u16> {
    loop {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).ok()?;
        let length = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                stream.read_exact(&mut n).ok()?;
                u64::from(u16::from_be_bytes(n))
            }
            127 => {
                let mut n = [0u8; 8];
                stream.read_exact(&mut n).ok()?;
                u64::from_be_bytes(n)
            }
            short => u64::from(short),
        };
        let mut payload = vec![0u8; usize::try_from(length).ok()?];
        stream.read_exact(&mut payload).ok()?;
        if head[0] & 0x0f == 0x8 {
            return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        }
    }
}

/// Announces a 1 GiB binary frame and sends its payload in 64 KiB pieces
/// until the relay answers, giving up after 64 MiB. Returns the close code and
/// how much payload went out first.
fn announce_a_gigabyte(stream: TcpStream) -> (Option<u16>, usize) {
    let (closed_tx, closed) = mpsc::channel();
    let reader = stream.try_clone().unwrap();
    std::thread::spawn(move || closed_tx.send(close_code(reader)));
    let mut stream = stream;
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[9, 9, 9, 9]);
    stream.write_all(&header).unwrap();
    let piece = vec![0x5a; 64 * 1024];
    let mut sent = 0;
    while sent < 64 << 20 {
        if let Ok(code) = closed.try_recv() {
            return (code, sent);
        }
        if stream.write_all(&piece).is_err() {
            break;
        }
        sent += piece.len();
    }
    (
        closed.recv_timeout(Duration::from_secs(5)).ok().flatten(),
        sent,
    )
}

#[actix_rt::test]
async fn a_frame_announcing_a_gigabyte_is_refused_from_its_header_on_every_socket_kind() {
    let relay = start_relay(&[]).await;
    let (device, secret, mut laptop, token) = laptop_with_token(&relay).await;
    let phone_token = issue(&relay, &device, &secret).await;
    let (phone_id, phone_secret) = paired_phone(&relay, &device, &mut laptop, &phone_token).await;
    let doors = [
        (format!("/pair/connect/{device}"), token),
        (
            format!("/phone/connect/{device}?phone_id={phone_id}"),
            phone_secret,
        ),
        (
            format!("/laptop/connect?device_id={device}"),
            secret.clone(),
        ),
    ];
    for (path, bearer) in doors {
        let stream = raw_socket(&relay, &path, &bearer);
        let (code, sent) = actix_rt::task::spawn_blocking(move || announce_a_gigabyte(stream))
            .await
            .unwrap();
        assert_eq!(code, Some(close::TOO_BIG), "{path}: after {sent} bytes");
        assert!(sent < 64 << 20, "{path}: the relay read on");
    }
    // The relay carries on: the laptop connects again.
    socket(
        format!("{}/laptop/connect?device_id={device}", relay.url),
        &secret,
    )
    .await
    .unwrap();
}

#[actix_rt::test]
async fn a_device_holds_a_bounded_number_of_pairing_tokens() {
    let relay = start_relay(&["--max-pair-tokens-per-device", "3"]).await;
    let (device, secret) = register(&relay).await;
    for _ in 0..3 {
        issue(&relay, &device, &secret).await;
    }
    let (status, _) = post(
        format!("{}/pair/issue?device_id={device}", relay.url),
        Some(&secret),
        json!({}),
    )
    .await;
    assert_eq!(status, 429, "a fourth live token");
    let (other, other_secret) = register(&relay).await;
    issue(&relay, &other, &other_secret).await;
}

#[actix_rt::test]
async fn phone_and_pairing_sockets_are_capped_per_device() {
    let relay = start_relay(&[
        "--max-pairing-sockets-per-device",
        "2",
        "--max-phone-sockets-per-device",
        "3",
    ])
    .await;
    let (device, secret, mut laptop, token) = laptop_with_token(&relay).await;
    let pair = || socket(format!("{}/pair/connect/{device}", relay.url), &token);
    // A socket joins its room a moment after its 101: each is waited for
    // (the laptop hears it opened), so the one refused is the third.
    let _first = pair().await.unwrap();
    phone_opened(&mut laptop).await;
    let _second = pair().await.unwrap();
    phone_opened(&mut laptop).await;
    let mut third = pair().await.unwrap();
    let Got::Closed(code) = next(&mut third).await else {
        panic!("a third pairing socket was spliced")
    };
    assert_eq!(code, Some(close::DEVICE_FULL));
    // One more phone socket of any kind fits; then the device is full.
    let other = issue(&relay, &device, &secret).await;
    let (phone_id, phone_secret) = {
        // Pairing needs a free pairing slot: close one.
        drop(_first);
        let _closed = laptop_message(&mut laptop).await;
        paired_phone(&relay, &device, &mut laptop, &other).await
    };
    let phone = || {
        socket(
            format!("{}/phone/connect/{device}?phone_id={phone_id}", relay.url),
            &phone_secret,
        )
    };
    let _a = phone().await.unwrap();
    phone_opened(&mut laptop).await;
    let _b = phone().await.unwrap();
    phone_opened(&mut laptop).await;
    let mut over = phone().await.unwrap();
    let Got::Closed(code) = next(&mut over).await else {
        panic!("a fourth phone socket was spliced")
    };
    assert_eq!(code, Some(close::DEVICE_FULL));
}

/// Registers with `X-Forwarded-For: forwarded`; the status.
async fn register_from(relay: &Relay, forwarded: &str) -> u16 {
    awc::Client::new()
        .post(format!("{}/device/register", relay.url))
        .insert_header(("X-Forwarded-For", forwarded))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_rt::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy_and_registrations_have_a_total() {
    // Not trusted: a forged header changes nothing, the peer's limit holds.
    let relay = start_relay(&["--registrations-per-minute", "2"]).await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        statuses.push(register_from(&relay, &format!("10.0.0.{n}")).await);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        2,
        "{statuses:?}"
    );

    // Behind a trusted proxy each client has its own limit, the relay a total.
    let proxied = start_relay(&[
        "--registrations-per-minute",
        "2",
        "--registrations-per-minute-total",
        "4",
        "--trusted-proxy",
        "127.0.0.1/32",
    ])
    .await;
    assert_eq!(register_from(&proxied, "10.0.0.1").await, 201);
    assert_eq!(register_from(&proxied, "10.0.0.1").await, 201);
    assert_eq!(register_from(&proxied, "10.0.0.1").await, 429, "per client");
    // A client cannot pose as another by writing its own hop in front.
    assert_eq!(
        register_from(&proxied, "10.0.0.2, 10.0.0.1").await,
        429,
        "the proxy's hop counts, not what the client wrote"
    );
    assert_eq!(register_from(&proxied, "10.0.0.3").await, 201);
    assert_eq!(register_from(&proxied, "10.0.0.4").await, 201);
    assert_eq!(
        register_from(&proxied, "10.0.0.5").await,
        429,
        "relay total"
    );
}

#[actix_rt::test]
async fn metrics_need_their_secret_and_head_is_answered_wherever_get_is() {
    let open = start_relay(&[]).await;
    let off = awc::Client::new()
        .get(format!("{}/metrics", open.url))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 404, "metrics are off without a secret");

    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("metrics-secret");
    std::fs::write(&secret_file, "scrape-me\n").unwrap();
    let relay = start_relay(&["--metrics-secret-file", secret_file.to_str().unwrap()]).await;
    let url = format!("{}/metrics", relay.url);
    let client = awc::Client::new();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        client
            .get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let mut scraped = client
        .get(&url)
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    let body = scraped.body().await.unwrap();
    assert!(
        String::from_utf8_lossy(&body).contains("loopsy_relay_"),
        "a Prometheus page"
    );

    for path in [
        "/health",
        "/app/",
        "/app/assets/app.js",
        "/app/manifest.webmanifest",
        "/app/sw.js",
    ] {
        let mut head = client
            .head(format!("{}{path}", relay.url))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert!(
            head.body().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
}

#[test]
fn a_database_the_relay_cannot_use_is_said_at_start_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter2-secret").unwrap();
    let unused = free_port();
    for (database, said) in [
        (
            format!("postgres://loopsy@127.0.0.1:{unused}/relay"),
            "cannot reach the relay's PostgreSQL",
        ),
        (
            "mysql://loopsy@127.0.0.1/relay".to_owned(),
            "--database takes a PostgreSQL URL",
        ),
        (
            "postgres://loopsy@127.0.0.1:notaport/relay".to_owned(),
            "is not one PostgreSQL takes",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_loopsy-relay"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--database", &database, "--database-password-file"])
            .arg(&password)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{database}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(said), "{database}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "the password never shows: {stderr}"
        );
    }
}
