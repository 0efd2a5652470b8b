//! What a hostile or broken relay can do to the phone path, end to end with the
//! real daemon and relay: it sees no plaintext, a frame it alters, replays,
//! reorders or drops closes the channel, a garbage handshake closes the socket,
//! and the daemon checks a TLS relay's certificate.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use loopsy_transports::framing::Frame;
use serde_json::{Value, json};

use crate::harness::*;
use crate::phone::*;

/// A TCP proxy in front of the relay: client bytes go through untouched;
/// `relay_to_client` carries (and may record or alter) the relay's answers.
fn proxy<F>(relay_url: &str, relay_to_client: F) -> String
where
    F: Fn(TcpStream, TcpStream) + Clone + Send + 'static,
{
    let target = relay_url.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&target) else {
                return;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
            });
            let carry = relay_to_client.clone();
            std::thread::spawn(move || carry(server, client));
        }
    });
    url
}

/// A TCP proxy in front of the relay that records every byte the relay sends
/// (to the daemon and to phones; WebSocket frames from a server are not masked).
fn recording_proxy(relay_url: &str) -> (String, Arc<Mutex<Vec<u8>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let url = proxy(relay_url, move |mut server, mut client| {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(n) = server.read(&mut buffer) {
            if n == 0 || client.write_all(&buffer[..n]).is_err() {
                break;
            }
            record.lock().unwrap().extend_from_slice(&buffer[..n]);
        }
    });
    (url, seen)
}

#[test]
fn the_relay_sees_neither_keystrokes_nor_output_nor_session_names() {
    let mut seen = None;
    let stack = stack_via(|relay| {
        let (proxy, recording) = recording_proxy(relay);
        seen = Some(recording);
        proxy
    });
    let seen = seen.unwrap();
    let phone = paired(&stack.loopsy);
    actix_rt::System::new().block_on(async {
        let mut connection = phone.connect().await.unwrap();
        let started = connection.request("session.start", shell_params()).await;
        let id = started["result"]["id"].as_str().unwrap().to_owned();
        connection.call("session.attach", json!({ "id": id })).await;
        connection
            .send_frame(Frame::Binary(Bytes::from_static(
                b"echo tap-$((6*7))-marker\n",
            )))
            .await;
        connection.read_until("tap-42-marker").await;
        let listed = connection.request("session.list", json!({})).await;
        assert!(listed.to_string().contains("secret-session-name"));
    });
    let recorded = seen.lock().unwrap().clone();
    let contains = |needle: &str| {
        recorded
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    assert!(
        contains("\"type\":\"open\""),
        "the recorder must see the relay's own (plain) control messages"
    );
    for secret in [
        "tap-42-marker",
        "tap-$((6*7))",
        "secret-session-name",
        "session.start",
    ] {
        assert!(
            !contains(secret),
            "the relay carried '{secret}' in the clear"
        );
    }
    let _ = stack.relay_url;
}

/// A CA and a certificate for 127.0.0.1 signed by it, as PEM files in `dir`.
fn test_certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("relay.pem"),
        dir.join("relay.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[test]
fn the_daemon_reaches_a_tls_relay_and_checks_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificates(dir.path());
    let port = free_port();
    let child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["relay", "serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _relay = KillOnDrop(child);
    wait_until("the TLS relay listens", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let url = format!("https://127.0.0.1:{port}");
    let loopsy = Loopsy::started();
    // Without the private CA, the relay's certificate is refused.
    let refused = loopsy.run(&["relay", "configure", &url]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(
        message.contains("certificate") || message.contains("cannot reach"),
        "{message}"
    );
    loopsy.ok(&[
        "relay",
        "configure",
        &url,
        "--ca-file",
        ca.to_str().unwrap(),
    ]);
    wait_until("the daemon's link to the TLS relay is up", || {
        let out = loopsy.run(&["relay", "status", "--json"]);
        serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|s| s["connected"] == true)
    });
    let window: Value = serde_json::from_str(&loopsy.ok(&["mobile", "pair", "--json"])).unwrap();
    assert!(
        window["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{url}/app/#"))
    );
}

/// What a hostile relay does to one frame it carries toward the laptop.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tamper {
    FlipBit,
    Replay,
    Reorder,
    Drop,
}

/// A proxy in front of the relay that, once armed, tampers with the next
/// binary WebSocket frame the relay sends toward a laptop (server frames are
/// unmasked, so the proxy can parse them).
fn tampering_proxy(relay_url: &str, tamper: Tamper) -> (String, Arc<AtomicBool>) {
    let armed = Arc::new(AtomicBool::new(false));
    let trigger = armed.clone();
    let url = proxy(relay_url, move |mut server, mut client| {
        let mut pending: Vec<u8> = Vec::new();
        let mut headers_done = false;
        let mut websocket = false;
        let mut held: Option<Vec<u8>> = None;
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(n) = server.read(&mut buffer) {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buffer[..n]);
            let mut out = Vec::new();
            if !headers_done {
                let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                websocket = pending.starts_with(b"HTTP/1.1 101");
                out.extend(pending.drain(..end + 4));
                headers_done = true;
            }
            if !websocket {
                // Plain HTTP (registration, tokens): carried as it is.
                out.append(&mut pending);
            }
            // Whole frames only: 2-byte header, extended length, payload.
            while pending.len() >= 2 {
                let short = usize::from(pending[1] & 0x7f);
                let (header, len) = match short {
                    126 if pending.len() >= 4 => {
                        (4, usize::from(u16::from_be_bytes([pending[2], pending[3]])))
                    }
                    127 if pending.len() >= 10 => (
                        10,
                        u64::from_be_bytes(pending[2..10].try_into().unwrap()) as usize,
                    ),
                    126 | 127 => break,
                    n => (2, n),
                };
                if pending.len() < header + len {
                    break;
                }
                let mut frame: Vec<u8> = pending.drain(..header + len).collect();
                let binary = frame[0] & 0x0f == 2;
                if binary && trigger.swap(false, Ordering::SeqCst) {
                    match tamper {
                        Tamper::FlipBit => {
                            // Past the 4-byte channel number, inside the sealed bytes.
                            frame[header + 4 + 3] ^= 0x10;
                            out.extend(frame);
                        }
                        Tamper::Replay => {
                            out.extend(frame.clone());
                            out.extend(frame);
                        }
                        Tamper::Reorder => held = Some(frame),
                        Tamper::Drop => {}
                    }
                    continue;
                }
                out.extend(frame);
                if let Some(late) = held.take() {
                    out.extend(late);
                }
            }
            if client.write_all(&out).is_err() {
                break;
            }
        }
    });
    (url, armed)
}

#[test]
fn a_relay_that_alters_replays_reorders_or_drops_a_frame_gets_the_channel_closed() {
    for tamper in [
        Tamper::FlipBit,
        Tamper::Replay,
        Tamper::Reorder,
        Tamper::Drop,
    ] {
        let mut trigger = None;
        let stack = stack_via(|relay| {
            let (proxy, armed) = tampering_proxy(relay, tamper);
            trigger = Some(armed);
            proxy
        });
        let armed = trigger.unwrap();
        let phone = paired(&stack.loopsy);
        let witness = stack.loopsy.dir.path().join(format!("applied-{tamper:?}"));
        actix_rt::System::new().block_on(async {
            let mut connection = phone.connect().await.unwrap();
            let started = connection.request("session.start", shell_params()).await;
            let id = started["result"]["id"].as_str().unwrap().to_owned();
            connection.attach(&id, None).await;
            let first = format!("touch '{}-1'\n", witness.display());
            let second = format!("touch '{}-2'\n", witness.display());
            // The first of these is the one the relay tampers with (held back
            // and sent after the second when reordering).
            armed.store(true, Ordering::SeqCst);
            connection
                .send_frame(Frame::Binary(Bytes::from(first)))
                .await;
            connection
                .send_frame(Frame::Binary(Bytes::from(second)))
                .await;
            while connection.frame().await.is_some() {}
            // The channel is closed; a fresh one still works.
            let mut again = phone.connect().await.unwrap();
            let listed = again.request("session.list", json!({})).await;
            assert!(listed.get("result").is_some(), "{tamper:?}: {listed}");
        });
        let applied = |n: u8| std::path::Path::new(&format!("{}-{n}", witness.display())).exists();
        match tamper {
            // Nothing after the tampered frame is applied.
            Tamper::FlipBit | Tamper::Drop | Tamper::Reorder => {
                assert!(
                    !applied(1) && !applied(2),
                    "{tamper:?}: a command ran after the tampering"
                );
            }
            // The original arrived and ran once; its copy closed the channel.
            Tamper::Replay => {
                wait_until("the untouched original runs", || applied(1));
                assert!(
                    !applied(2),
                    "{tamper:?}: a command ran after the replayed copy"
                );
            }
        }
    }
}

#[test]
fn a_garbage_handshake_closes_the_phone_socket() {
    let stack = stack();
    let phone = paired(&stack.loopsy);
    actix_rt::System::new().block_on(async {
        use futures_util::SinkExt;
        let url = &phone.url;
        let mut socket = crate::test_phone::socket(
            format!(
                "{}/phone/connect/{}?phone_id={}",
                url.relay, url.device_id, phone.phone_id
            ),
            &phone.phone_secret,
        )
        .await
        .unwrap();
        socket
            .send(awc::ws::Message::Binary(Bytes::from_static(&[7u8; 48])))
            .await
            .unwrap();
        assert!(matches!(
            crate::test_phone::next(&mut socket).await,
            crate::test_phone::Got::Closed(_)
        ));
        assert!(phone.connect().await.is_ok(), "the daemon carries on");
    });
}
