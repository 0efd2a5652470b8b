//! What the relay tests share: the real `loopsy-relay` binary on a free
//! loopback port, registration, tokens, and WebSockets over awc.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use awc::ws::{Codec, Frame, Message};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use loopsy_transports::relay_wire::{FromLaptop, SUBPROTOCOL, ToLaptop};
use serde_json::{Value, json};

/// Where the relays of a test binary keep their state (each binary builds
/// one of the variants).
#[derive(Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Relay {
    pub child: Child,
    pub url: String,
    pub _dir: tempfile::TempDir,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A relay on the backend this test binary runs on (`crate::BACKEND`).
pub async fn start_relay(extra: &[&str]) -> Relay {
    let database = match crate::BACKEND {
        Backend::Sqlite => None,
        Backend::Postgres => Some(crate::postgres_server::fresh_database()),
    };
    start_relay_at(free_port(), database.as_deref(), extra).await
}

/// A relay on `port`, on PostgreSQL `database` (else SQLite), with `extra` flags.
pub async fn start_relay_at(port: u16, database: Option<&str>, extra: &[&str]) -> Relay {
    let dir = tempfile::tempdir().unwrap();
    let database: Vec<&str> = database
        .map(|url| vec!["--database", url])
        .unwrap_or_default();
    let child = Command::new(env!("CARGO_BIN_EXE_loopsy-relay"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(&database)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let relay = Relay {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(r) = awc::Client::new()
            .get(format!("{}/health", relay.url))
            .send()
            .await
            && r.status() == 200
        {
            return relay;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the relay did not come up");
}

pub async fn post(url: String, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = awc::Client::new().post(url);
    if let Some(b) = bearer {
        request = request.bearer_auth(b);
    }
    let mut response = request.send_json(&body).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.body().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub async fn register(relay: &Relay) -> (String, String) {
    let (status, device) = post(format!("{}/device/register", relay.url), None, json!({})).await;
    assert_eq!(status, 201, "{device}");
    (
        device["deviceId"].as_str().unwrap().into(),
        device["deviceSecret"].as_str().unwrap().into(),
    )
}

pub async fn issue(relay: &Relay, device: &str, secret: &str) -> String {
    let (status, token) = post(
        format!("{}/pair/issue?device_id={device}", relay.url),
        Some(secret),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{token}");
    token["token"].as_str().unwrap().into()
}

pub type Socket = actix_codec::Framed<awc::BoxedSocket, Codec>;

/// A registered device with its laptop connected, and a fresh pair token.
pub async fn laptop_with_token(relay: &Relay) -> (String, String, Socket, String) {
    let (device, secret) = register(relay).await;
    let laptop = socket(
        format!("{}/laptop/connect?device_id={device}", relay.url),
        &secret,
    )
    .await
    .unwrap();
    let token = issue(relay, &device, &secret).await;
    (device, secret, laptop, token)
}

/// Opens a WebSocket with the bearer in `Sec-WebSocket-Protocol`; the status
/// of a refused upgrade otherwise.
pub async fn socket(url: String, bearer: &str) -> Result<Socket, u16> {
    let protocols = [SUBPROTOCOL.to_owned(), format!("loopsy.bearer.{bearer}")];
    match awc::Client::new()
        .ws(url)
        .protocols(protocols)
        .max_frame_size(4 << 20)
        .connect()
        .await
    {
        Ok((_, socket)) => Ok(socket),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
        Err(e) => panic!("{e}"),
    }
}

pub enum Got {
    Binary(Bytes),
    Text(String),
    Closed(Option<u16>),
}

pub async fn next(socket: &mut Socket) -> Got {
    loop {
        let frame = actix_rt::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("no frame within 5 s");
        match frame {
            Some(Ok(Frame::Binary(b))) => return Got::Binary(b),
            Some(Ok(Frame::Text(t))) => return Got::Text(String::from_utf8(t.to_vec()).unwrap()),
            Some(Ok(Frame::Close(reason))) => return Got::Closed(reason.map(|r| r.code.into())),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Got::Closed(None),
        }
    }
}

/// The channel of the phone that opened next (past the closes of earlier ones).
pub async fn phone_opened(laptop: &mut Socket) -> u32 {
    loop {
        match laptop_message(laptop).await {
            ToLaptop::Open { channel, .. } => return channel,
            ToLaptop::Close { .. } => {}
            other => panic!("the laptop was told {other:?}, not of the phone"),
        }
    }
}

pub async fn laptop_message(laptop: &mut Socket) -> ToLaptop {
    match next(laptop).await {
        Got::Text(t) => serde_json::from_str(&t).unwrap(),
        _ => panic!("expected a control message"),
    }
}

pub async fn send_control(laptop: &mut Socket, message: FromLaptop) {
    laptop
        .send(Message::Text(
            serde_json::to_string(&message).unwrap().into(),
        ))
        .await
        .unwrap();
}

/// Pairs a phone on `token` through the laptop's accept; its id and secret.
pub async fn paired_phone(
    relay: &Relay,
    device: &str,
    laptop: &mut Socket,
    token: &str,
) -> (String, String) {
    let mut pairing = socket(format!("{}/pair/connect/{device}", relay.url), token)
        .await
        .unwrap();
    let ToLaptop::Open { channel, .. } = laptop_message(laptop).await else {
        panic!("expected open")
    };
    send_control(laptop, FromLaptop::PairAccept { channel }).await;
    let Got::Text(text) = next(&mut pairing).await else {
        panic!("expected the phone's credentials")
    };
    let loopsy_transports::relay_wire::ToPhone::Credentials {
        phone_id,
        phone_secret,
        ..
    } = serde_json::from_str(&text).unwrap();
    let _paired = laptop_message(laptop).await;
    (phone_id, phone_secret)
}

/// A socket the relay lets in only to close it at once: the close code and
/// reason it gives (what a browser reads, as it sees no HTTP status).
pub async fn closed_at_once(url: String, bearer: &str) -> (u16, String) {
    let mut socket = socket(url, bearer).await.expect("the upgrade");
    loop {
        let frame = actix_rt::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("no close within 5 s");
        match frame {
            Some(Ok(Frame::Close(Some(reason)))) => {
                return (reason.code.into(), reason.description.unwrap_or_default());
            }
            Some(Ok(Frame::Close(None))) | Some(Err(_)) | None => return (0, String::new()),
            Some(Ok(_)) => {}
        }
    }
}
