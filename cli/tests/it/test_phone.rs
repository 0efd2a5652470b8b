//! A phone in Rust that speaks the phone side exactly as the web app does:
//! it reads the pairing URL's fragment, pairs (`Noise_XXpsk3` + the 4-digit
//! code) through the relay, then connects (`Noise_KK`) and speaks the framed
//! JSON-RPC protocol inside the channel.

use std::time::Duration;

use awc::ws::{Codec, Frame as WsFrame, Message};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use loopsy_transports::e2e::frames::{Reassembler, seal_frame};
use loopsy_transports::e2e::{
    Channel, Handshake, PairingSecret, StaticKey, connection_prologue, pairing_link,
    pairing_prologue,
};
use loopsy_transports::framing::Frame;
use loopsy_transports::relay_wire::{BEARER_PROTOCOL_PREFIX, SUBPROTOCOL, ToPhone};
use serde_json::{Value, json};

pub type Socket = actix_codec::Framed<awc::BoxedSocket, Codec>;

/// What the QR code's URL carries, and what the phone derives from it.
#[derive(Clone, Debug)]
pub struct PairingUrl {
    /// The relay: named in the link, or the page's origin when the relay serves the app.
    pub relay: String,
    pub device_id: String,
    pub token_id: String,
    pub token: String,
    pub secret: [u8; 32],
}

impl PairingUrl {
    pub fn parse(url: &str) -> Self {
        let (page, fragment) = url.split_once('#').expect("the URL has a fragment");
        let link = pairing_link::parse_fragment(fragment).expect("a pairing link");
        // Without a relay in the link, the page's origin is the relay.
        let relay = link.relay_url.clone().unwrap_or_else(|| {
            page.strip_suffix("/app/")
                .expect("the link opens the relay's /app/")
                .to_owned()
        });
        Self {
            relay,
            device_id: link.device_id.clone(),
            token_id: link.seed.token_id(),
            token: link.seed.token(),
            secret: link.seed.psk().0,
        }
    }
}

pub async fn socket(url: String, bearer: &str) -> Result<Socket, String> {
    let url = url.replacen("http://", "ws://", 1);
    let protocols = [
        SUBPROTOCOL.to_owned(),
        format!("{BEARER_PROTOCOL_PREFIX}{bearer}"),
    ];
    awc::Client::new()
        .ws(url)
        .protocols(protocols)
        .max_frame_size(4 << 20)
        .connect()
        .await
        .map(|(_, socket)| socket)
        .map_err(|e| e.to_string())
}

pub enum Got {
    Binary(Bytes),
    Text(String),
    Closed(Option<u16>),
}

pub async fn next(socket: &mut Socket) -> Got {
    loop {
        let frame = actix_rt::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("the relay sent nothing for 20 s");
        match frame {
            Some(Ok(WsFrame::Binary(b))) => return Got::Binary(b),
            Some(Ok(WsFrame::Text(t))) => return Got::Text(String::from_utf8_lossy(&t).into()),
            Some(Ok(WsFrame::Close(reason))) => return Got::Closed(reason.map(|r| r.code.into())),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Got::Closed(None),
        }
    }
}

async fn binary(socket: &mut Socket) -> Bytes {
    match next(socket).await {
        Got::Binary(bytes) => bytes,
        Got::Text(text) => panic!("expected a binary frame, got text {text}"),
        Got::Closed(code) => panic!("the socket closed ({code:?})"),
    }
}

/// A paired phone: its own key and its relay credentials.
pub struct TestPhone {
    pub key: StaticKey,
    /// The daemon's static key, as the pairing handshake showed it.
    pub daemon_key: [u8; 32],
    pub url: PairingUrl,
    pub phone_id: String,
    pub phone_secret: String,
    /// What the daemon said about itself once paired.
    pub paired: Value,
}

/// What a pairing attempt ended with.
pub enum PairingEnd {
    Paired(Box<TestPhone>),
    /// The daemon's sealed answers to the wrong codes, then the closing.
    Refused(Vec<Value>),
}

/// Opens a pairing socket and sends the first handshake message: whether the
/// daemon answered it (a refused attempt is closed instead).
pub async fn pairing_answered(url: &PairingUrl) -> bool {
    let key = StaticKey::generate().unwrap();
    let Ok(mut socket) = socket(
        format!("{}/pair/connect/{}", url.relay, url.device_id),
        &url.token,
    )
    .await
    else {
        return false;
    };
    let prologue = pairing_prologue(&url.device_id, &url.token_id);
    let mut handshake =
        Handshake::pairing_phone(&key, &PairingSecret(url.secret), &prologue).unwrap();
    let first = handshake.write(b"").unwrap();
    if socket.send(Message::Binary(first.into())).await.is_err() {
        return false;
    }
    loop {
        match next(&mut socket).await {
            Got::Binary(_) => return true,
            Got::Text(_) => {}
            Got::Closed(_) => return false,
        }
    }
}

/// Pairs through the relay, typing each of `codes` in turn until one works.
pub async fn pair(url: &PairingUrl, codes: &[&str]) -> PairingEnd {
    let key = StaticKey::generate().unwrap();
    let mut socket = socket(
        format!("{}/pair/connect/{}", url.relay, url.device_id),
        &url.token,
    )
    .await
    .expect("pairing socket");
    let prologue = pairing_prologue(&url.device_id, &url.token_id);
    let mut handshake =
        Handshake::pairing_phone(&key, &PairingSecret(url.secret), &prologue).unwrap();
    socket
        .send(Message::Binary(handshake.write(b"").unwrap().into()))
        .await
        .unwrap();
    handshake.read(&binary(&mut socket).await).unwrap();
    // Kept only if a message sealed under the pairing secret opens (the paired answer).
    let daemon_key = handshake.remote_static().expect("the daemon's key");
    let label = json!({ "label": "test phone" }).to_string();
    socket
        .send(Message::Binary(
            handshake.write(label.as_bytes()).unwrap().into(),
        ))
        .await
        .unwrap();
    let mut channel = handshake.into_channel().unwrap();
    let mut answers = Vec::new();
    let mut credentials = None;
    for code in codes {
        let sealed = channel
            .seal(
                json!({ "type": "code", "code": code })
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
        socket.send(Message::Binary(sealed.into())).await.unwrap();
        loop {
            match next(&mut socket).await {
                Got::Text(text) => {
                    credentials = Some(serde_json::from_str::<ToPhone>(&text).unwrap())
                }
                Got::Binary(bytes) => {
                    let answer: Value =
                        serde_json::from_slice(&channel.open(&bytes).unwrap()).unwrap();
                    match answer["type"].as_str() {
                        Some("paired") => {
                            let Some(ToPhone::Credentials {
                                phone_id,
                                phone_secret,
                                ..
                            }) = credentials.take()
                            else {
                                panic!("paired without relay credentials");
                            };
                            return PairingEnd::Paired(Box::new(TestPhone {
                                key,
                                daemon_key,
                                url: url.clone(),
                                phone_id,
                                phone_secret,
                                paired: answer,
                            }));
                        }
                        _ => {
                            let dead = answer["type"] == "pairing-dead";
                            answers.push(answer);
                            if dead {
                                // The relay closes the socket once the token is dead.
                                while !matches!(next(&mut socket).await, Got::Closed(_)) {}
                                return PairingEnd::Refused(answers);
                            }
                            break;
                        }
                    }
                }
                Got::Closed(_) => return PairingEnd::Refused(answers),
            }
        }
    }
    PairingEnd::Refused(answers)
}

/// An established channel of a paired phone.
pub struct Connection {
    pub socket: Socket,
    channel: Channel,
    reassembler: Reassembler,
    next_id: u64,
}

impl TestPhone {
    pub async fn connect(&self) -> Result<Connection, String> {
        let url = &self.url;
        let mut socket = socket(
            format!(
                "{}/phone/connect/{}?phone_id={}",
                url.relay, url.device_id, self.phone_id
            ),
            &self.phone_secret,
        )
        .await?;
        let prologue = connection_prologue(&url.device_id, &self.phone_id);
        let mut handshake =
            Handshake::connection_phone(&self.key, &self.daemon_key, &prologue).unwrap();
        socket
            .send(Message::Binary(handshake.write(b"").unwrap().into()))
            .await
            .map_err(|e| e.to_string())?;
        match next(&mut socket).await {
            Got::Binary(reply) => handshake.read(&reply).map_err(|e| e.to_string())?,
            Got::Text(text) => return Err(text),
            Got::Closed(code) => return Err(format!("closed {code:?}")),
        };
        Ok(Connection {
            socket,
            channel: handshake.into_channel().unwrap(),
            reassembler: Reassembler::default(),
            next_id: 1,
        })
    }
}

impl Connection {
    pub async fn send_frame(&mut self, frame: Frame) {
        for sealed in seal_frame(&mut self.channel, &frame).unwrap() {
            self.socket
                .send(Message::Binary(sealed.into()))
                .await
                .unwrap();
        }
    }

    /// The next whole frame from the daemon; `None` once the socket closed.
    pub async fn frame(&mut self) -> Option<Frame> {
        loop {
            match next(&mut self.socket).await {
                Got::Binary(bytes) => {
                    let plaintext = self.channel.open(&bytes).expect("a frame that opens");
                    if let Some(frame) = self.reassembler.push(&plaintext).unwrap() {
                        return Some(frame);
                    }
                }
                Got::Text(_) => {}
                Got::Closed(_) => return None,
            }
        }
    }

    /// Drops what still comes until the socket closes; its close code.
    pub async fn closed_with(&mut self) -> Option<u16> {
        loop {
            if let Got::Closed(code) = next(&mut self.socket).await {
                return code;
            }
        }
    }

    /// Sends a JSON-RPC call; returns its id.
    pub async fn call(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.send_frame(Frame::Json(Bytes::from(body.to_string())))
            .await;
        id
    }

    /// A call's answer (skipping notifications and binary frames).
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.call(method, params).await;
        loop {
            match self
                .frame()
                .await
                .expect("the channel closed before the answer")
            {
                Frame::Json(bytes) => {
                    let message: Value = serde_json::from_slice(&bytes).unwrap();
                    if message["id"] == id {
                        return message;
                    }
                }
                Frame::Binary(_) => {}
            }
        }
    }

    /// Reads terminal output until `needle` appears.
    pub async fn read_until(&mut self, needle: &str) -> String {
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains(needle) {
            match self
                .frame()
                .await
                .expect("the channel closed before the output")
            {
                Frame::Binary(bytes) => seen.extend_from_slice(&bytes),
                Frame::Json(_) => {}
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }
}

impl Connection {
    /// Attaches to a session (from `from_offset` when given); returns the
    /// start event's `offset` and `snapshotBytes`: the phone's position is
    /// offset + bytes received − snapshotBytes.
    pub async fn attach(&mut self, id: &str, from_offset: Option<u64>) -> (u64, u64) {
        let mut params = json!({ "id": id });
        if let Some(offset) = from_offset {
            params["fromOffset"] = json!(offset);
        }
        self.call("session.attach", params).await;
        loop {
            if let Some(Frame::Json(bytes)) = self.frame().await {
                let message: Value = serde_json::from_slice(&bytes).unwrap();
                if message["params"]["type"] == "start" {
                    let offset = message["params"]["offset"]
                        .as_u64()
                        .expect("the start event names its offset");
                    return (
                        offset,
                        message["params"]["snapshotBytes"].as_u64().unwrap_or(0),
                    );
                }
                assert!(message.get("error").is_none(), "attach failed: {message}");
            }
        }
    }

    /// Terminal output until `needle`, or until the channel closes (`false`).
    pub async fn output_until(&mut self, needle: &str, into: &mut Vec<u8>) -> bool {
        while !String::from_utf8_lossy(into).contains(needle) {
            match self.frame().await {
                Some(Frame::Binary(bytes)) => into.extend_from_slice(&bytes),
                Some(Frame::Json(_)) => {}
                None => return false,
            }
        }
        true
    }
}
