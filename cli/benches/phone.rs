//! `just bench`, the phone part: a phone (the Rust test phone, speaking exactly
//! what the web app speaks) drives a session through a real relay, end-to-end
//! encrypted. Each figure stands next to a baseline measured in the same run:
//! keystroke echo against the same session attached directly on the Unix
//! socket; `cat` throughput against reading a PTY directly; relay memory per
//! idle laptop connection against the idle relay; handshakes per second against
//! the X25519 operations they are made of.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::disallowed_methods)]

mod support;
#[path = "../tests/it/test_phone.rs"]
#[allow(dead_code)]
mod test_phone;

use std::io::BufReader;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use loopsy_transports::e2e::{Handshake, StaticKey, connection_prologue};
use loopsy_transports::framing::Frame;
use serde_json::{Value, json};
use support::*;
use test_phone::{Connection, PairingEnd, PairingUrl, TestPhone, pair};

fn paired_phone(data: &std::path::Path) -> Box<TestPhone> {
    let window: Value = serde_json::from_str(&ok(data, &["mobile", "pair", "--json"])).unwrap();
    let url = PairingUrl::parse(window["url"].as_str().unwrap());
    let code = window["code"].as_str().unwrap().to_owned();
    match actix_rt::System::new().block_on(pair(&url, &[&code])) {
        PairingEnd::Paired(phone) => phone,
        PairingEnd::Refused(answers) => panic!("pairing refused: {answers:?}"),
    }
}

/// A new `sh` session, attached, from the phone.
async fn phone_session(phone: &TestPhone) -> Connection {
    let mut connection = phone.connect().await.unwrap();
    let started = connection
        .request(
            "session.start",
            json!({ "command": "sh", "env": { "PS1": "$ " } }),
        )
        .await;
    let id = started["result"]["id"].as_str().unwrap().to_owned();
    connection.attach(&id, None).await;
    connection
}

async fn type_bytes(connection: &mut Connection, bytes: &'static [u8]) {
    connection
        .send_frame(Frame::Binary(Bytes::from_static(bytes)))
        .await;
}

/// Reads binary output until it has seen `marker`; the byte count.
async fn drain(connection: &mut Connection, marker: &[u8]) -> u64 {
    let mut total = 0u64;
    let mut tail: Vec<u8> = Vec::new();
    while let Some(frame) = connection.frame().await {
        if let Frame::Binary(bytes) = frame {
            total += bytes.len() as u64;
            tail.extend_from_slice(&bytes);
            if tail.windows(marker.len()).any(|w| w == marker) {
                break;
            }
            let keep = tail.len().saturating_sub(marker.len());
            tail.drain(..keep);
        }
    }
    total
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (daemon, _relay, data) = daemon_at_relay(tmp.path());
    let phone = paired_phone(&data);
    println!(
        "phone through the relay (end-to-end encrypted; {} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // Keystroke echo: the phone vs the same kind of session attached on the Unix socket.
    let (_, client) = session_with_client(&daemon.data.join("loopsyd.sock"));
    let mut typing = client.try_clone().unwrap();
    let mut client = BufReader::with_capacity(256 * 1024, client);
    std::thread::sleep(Duration::from_millis(300));
    prepare_session_echo(&mut typing, &mut client);
    let [unix_rtt] = interleaved(500, [&mut || session_echo_round(&mut typing, &mut client)]);
    let phone_rtt = actix_rt::System::new().block_on(async {
        let mut connection = phone_session(&phone).await;
        type_bytes(&mut connection, b"stty raw -echo; cat\n").await;
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        // Whatever the command line printed comes first; wait for it to stop.
        while actix_rt::time::timeout(Duration::from_millis(200), connection.frame())
            .await
            .is_ok()
        {}
        let mut rtt = Vec::new();
        for _ in 0..500 {
            let t = Instant::now();
            type_bytes(&mut connection, b"x").await;
            while !matches!(connection.frame().await, Some(Frame::Binary(b)) if !b.is_empty()) {}
            rtt.push(t.elapsed());
        }
        rtt.sort();
        rtt
    });
    println!("keystroke echo round trip, phone → relay → daemon → PTY → back");
    println!(
        "  phone p50 {:.3} ms, p99 {:.3} ms; the same session attached on the Unix socket p50 {:.3} ms, p99 {:.3} ms; p50 ratio {:.1}x (target p50 < 0.3 ms; the original, unencrypted: 0.6 ms)",
        ms(percentile(&phone_rtt, 0.5)),
        ms(percentile(&phone_rtt, 0.99)),
        ms(percentile(&unix_rtt, 0.5)),
        ms(percentile(&unix_rtt, 0.99)),
        percentile(&phone_rtt, 0.5).as_secs_f64() / percentile(&unix_rtt, 0.5).as_secs_f64(),
    );

    // Throughput: `cat` of 200 MB to the phone vs the PTY read directly.
    let text = tmp.path().join("text.txt");
    write_text_file(&text);
    let command: &'static str = Box::leak(cat_command(&text).into_boxed_str());
    let direct = direct_pty(command);
    let (phone_bytes, phone_secs) = actix_rt::System::new().block_on(async {
        let mut connection = phone_session(&phone).await;
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        let began = Instant::now();
        type_bytes(&mut connection, command.as_bytes()).await;
        let bytes = drain(&mut connection, CAT_MARKER).await;
        (bytes, began.elapsed().as_secs_f64())
    });
    let mbps = |bytes: u64, secs: f64| bytes as f64 / secs / 1e6;
    println!("`cat` of 200 MB of text to the phone");
    println!(
        "  through the relay {:.0} MB/s; reading the PTY directly {:.0} MB/s; ratio {:.2}x (target >= 0.7x; the original: 12 vs 77 MB/s)",
        mbps(phone_bytes, phone_secs),
        mbps(direct.bytes, direct.secs),
        mbps(phone_bytes, phone_secs) / mbps(direct.bytes, direct.secs)
    );

    // Handshakes per second: in process, and whole connections through the relay.
    let phone_key = StaticKey::generate().unwrap();
    let daemon_key = StaticKey::generate().unwrap();
    let prologue = connection_prologue("device", "phone");
    let window = Duration::from_secs(2);
    let began = Instant::now();
    let mut handshakes = 0u64;
    while began.elapsed() < window {
        let mut p =
            Handshake::connection_phone(&phone_key, daemon_key.public(), &prologue).unwrap();
        let mut d =
            Handshake::connection_daemon(&daemon_key, phone_key.public(), &prologue).unwrap();
        d.read(&p.write(b"").unwrap()).unwrap();
        p.read(&d.write(b"").unwrap()).unwrap();
        let _ = (p.into_channel().unwrap(), d.into_channel().unwrap());
        handshakes += 1;
    }
    let handshake_rate = handshakes as f64 / began.elapsed().as_secs_f64();
    let began = Instant::now();
    let mut operations = 0u64;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    while began.elapsed() < window {
        let mine = aws_lc_rs::agreement::EphemeralPrivateKey::generate(
            &aws_lc_rs::agreement::X25519,
            &rng,
        )
        .unwrap();
        let theirs = aws_lc_rs::agreement::UnparsedPublicKey::new(
            &aws_lc_rs::agreement::X25519,
            *daemon_key.public(),
        );
        aws_lc_rs::agreement::agree_ephemeral(mine, theirs, (), |_| Ok::<(), ()>(())).unwrap();
        operations += 1;
    }
    let x25519_rate = operations as f64 / began.elapsed().as_secs_f64();
    let connects = actix_rt::System::new().block_on(async {
        let began = Instant::now();
        let mut n = 0u64;
        while began.elapsed() < window {
            let mut connection = phone.connect().await.unwrap();
            let _ = connection.socket.close().await;
            n += 1;
        }
        n as f64 / began.elapsed().as_secs_f64()
    });
    println!("end-to-end handshakes (Noise KK, both sides in one thread)");
    println!(
        "  {handshake_rate:.0}/s; X25519 keygen+agreement {x25519_rate:.0}/s (a KK handshake is 2 keygens and 8 agreements: ideal {:.0}/s, {:.2}x of it)",
        x25519_rate / 5.0,
        handshake_rate / (x25519_rate / 5.0)
    );
    println!(
        "  whole phone connections through the relay (WebSocket upgrade + KK), one after another: {connects:.0}/s"
    );
    drop(daemon);
}
