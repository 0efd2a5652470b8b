//! The joining side of pairing (`loopsy pair <host>`): one `JoinSession` actor
//! per attempt. It runs the handshake with the host's daemon over TLS (noting
//! the certificate it meets, which the host must name inside the handshake),
//! works out the SAS, and after its owner's decision sends the grants and a
//! fresh credential, then waits for the host owner's decision. Once both
//! accepted it hands the peer to the Router to store.

use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use loopsy_transports::e2e::{Channel, Handshake, StaticKey};
use loopsy_transports::error::ApiError;
use loopsy_transports::peer_tls::Trust;
use loopsy_transports::secrets::{KeyDigest, from_hex, from_hex32, generate_api_key, hex};
use serde_json::{Value, json};

use super::host::{WINDOW, seal};
use super::protocol::{self, Introduction, Step};
use crate::peers::client::{PeerClient, SMALL_ANSWER_BYTES};
use crate::peers::store::{Dialect, PeerRecord};
use crate::router::Capabilities;
use crate::secrets::random_bytes;

/// How long one pairing request to the host may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the host is asked whether its owner decided.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Where the join stands, for `peers.join.status`.
#[derive(Debug, Clone)]
enum State {
    Connecting,
    Comparing,
    Waiting,
    Paired(String),
    Ended(String),
}

/// What the Router is asked to do with a peer both owners accepted.
#[derive(Message)]
#[rtype(result = "Result<(), ApiError>")]
pub struct StorePeer(pub PeerRecord);

pub struct JoinSession {
    ours: Introduction,
    address: String,
    port: u16,
    code: String,
    store: Recipient<StorePeer>,
    state: State,
    client: Option<Rc<PeerClient>>,
    channel: Option<Channel>,
    pairing: String,
    sas: Option<String>,
    host: Option<Introduction>,
    started: Instant,
    /// Node ids paired already (pairing one again would replace it).
    paired: Vec<String>,
}

impl JoinSession {
    pub fn new(
        ours: Introduction,
        address: String,
        port: u16,
        code: String,
        store: Recipient<StorePeer>,
    ) -> Self {
        Self {
            ours,
            address,
            port,
            code,
            store,
            state: State::Connecting,
            client: None,
            channel: None,
            pairing: String::new(),
            sas: None,
            host: None,
            started: Instant::now(),
            paired: Vec::new(),
        }
    }

    /// Refuses to pair again with these node ids.
    pub fn refusing(mut self, paired: Vec<String>) -> Self {
        self.paired = paired;
        self
    }

    fn status(&self) -> Value {
        let (state, reason) = match &self.state {
            State::Connecting => ("connecting", None),
            State::Comparing => ("comparing", None),
            State::Waiting => ("waiting-for-peer", None),
            State::Paired(label) => ("paired", Some(label.clone())),
            State::Ended(reason) => ("ended", Some(reason.clone())),
        };
        json!({
            "active": true,
            "state": state,
            "reason": reason,
            "sas": self.sas,
            "peer": self.host.as_ref().map(|h| json!({
                "nodeId": h.node_id, "hostname": h.hostname, "address": self.address,
                "port": self.port, "version": h.version, "platform": h.platform,
                "certFingerprint": h.cert_fp,
            })),
        })
    }
}

fn refused(problem: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        loopsy_transports::error::code::PEER_PAIRING_ENDED,
        502,
        problem.to_string(),
    )
}

/// Handshake and nonce exchange: the channel, the pairing id, the SAS and the
/// host's introduction. `seen` holds the fingerprint the TLS connection met.
pub async fn handshake(
    client: Rc<PeerClient>,
    seen: Arc<Mutex<Option<String>>>,
    ours: Introduction,
    code: String,
) -> Result<(Channel, String, String, Introduction), ApiError> {
    let key = StaticKey::generate().map_err(|e| ApiError::internal(e.to_string()))?;
    let psk = protocol::psk_of(&code);
    let mut hs = Handshake::pairing_between_daemons(&key, &psk, protocol::PROLOGUE, true)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let hello = hs
        .write(&[])
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let answer = client
        .call_limited(
            loopsy_transports::wire::method::PEER_PAIR_HELLO,
            json!({"message": hex(&hello)}),
            STEP_TIMEOUT,
            SMALL_ANSWER_BYTES,
        )
        .await?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(pairing), Some(message)) = (text(&answer, "pairing"), text(&answer, "message"))
    else {
        return Err(refused("the host's answer to message 1 is malformed"));
    };
    let reply = from_hex(&message).ok_or_else(|| refused("message 2 is not hex"))?;
    let intro = hs
        .read(&reply)
        .map_err(|e| refused(format!("message 2 did not open: {e}")))?;
    let host: Introduction = serde_json::from_slice(&intro)
        .map_err(|e| refused(format!("the host's introduction is malformed: {e}")))?;
    host.check()
        .map_err(|e| refused(format!("the host's introduction: {e}")))?;
    // The certificate the TLS connection met must be the one the host names
    // inside the handshake: otherwise something between us terminates TLS.
    let met = seen.lock().ok().and_then(|s| s.clone());
    if met.as_deref() != Some(host.cert_fp.as_str()) {
        return Err(refused(
            "the host's TLS certificate is not the one it names in the handshake; something between the machines is intercepting",
        ));
    }
    let mine = serde_json::to_vec(&ours).map_err(|e| ApiError::internal(e.to_string()))?;
    let finish = hs
        .write(&mine)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let hash = hs.hash();
    let mut channel = hs
        .into_channel()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let answer = client
        .call_limited(
            loopsy_transports::wire::method::PEER_PAIR_FINISH,
            json!({"pairing": pairing, "message": hex(&finish)}),
            STEP_TIMEOUT,
            SMALL_ANSWER_BYTES,
        )
        .await?;
    let Step::Commit { commit } = open(&mut channel, &answer)? else {
        return Err(refused("the host did not commit to its nonce"));
    };
    let nonce = random_bytes::<32>().map_err(|e| ApiError::internal(e.to_string()))?;
    let mine = Step::Nonce { nonce: hex(&nonce) };
    let Step::Nonce { nonce: theirs } = exchange(&client, &mut channel, &pairing, &mine).await?
    else {
        return Err(refused("the host did not reveal its nonce"));
    };
    let theirs = from_hex32(&theirs).ok_or_else(|| refused("the host's nonce is malformed"))?;
    if hex(&protocol::commitment(&theirs)) != commit {
        return Err(refused("the host's nonce does not match its commitment"));
    }
    Ok((
        channel,
        pairing,
        protocol::sas(&hash, &theirs, &nonce),
        host,
    ))
}

/// Seals `step`, sends it, and opens the host's answer.
async fn exchange(
    client: &PeerClient,
    channel: &mut Channel,
    pairing: &str,
    step: &Step,
) -> Result<Step, ApiError> {
    let sealed = seal(channel, step)?;
    let answer = client
        .call_limited(
            loopsy_transports::wire::method::PEER_PAIR_STEP,
            json!({"pairing": pairing, "message": sealed}),
            STEP_TIMEOUT,
            SMALL_ANSWER_BYTES,
        )
        .await?;
    open(channel, &answer)
}

fn open(channel: &mut Channel, answer: &Value) -> Result<Step, ApiError> {
    let sealed = answer
        .get("message")
        .and_then(Value::as_str)
        .and_then(from_hex)
        .ok_or_else(|| refused("the host's answer is malformed"))?;
    let plain = channel
        .open(&sealed)
        .map_err(|_| refused("the host's message did not open"))?;
    serde_json::from_slice(&plain).map_err(|_| refused("the host's message is malformed"))
}

/// Sends the owner's acceptance and waits for the host owner's decision.
async fn settle(
    client: Rc<PeerClient>,
    mut channel: Channel,
    pairing: String,
    grants: Capabilities,
    deadline: Instant,
) -> Result<(Capabilities, String, String), ApiError> {
    let minted = generate_api_key().map_err(|e| ApiError::internal(e.to_string()))?;
    let mut step = Step::Confirm {
        accept: true,
        grants: grants.names().iter().map(|n| (*n).to_owned()).collect(),
        credential: Some(minted.clone()),
    };
    loop {
        match exchange(&client, &mut channel, &pairing, &step).await? {
            Step::Pending if Instant::now() < deadline => {
                tokio::time::sleep(POLL_EVERY).await;
                step = Step::Poll;
            }
            Step::Pending => return Err(refused("the host's owner did not decide in time")),
            Step::Paired { grants, credential } if credential.len() == 64 => {
                let theirs = Capabilities::parse(&grants).unwrap_or_default();
                return Ok((theirs, credential, minted));
            }
            Step::Declined { reason } => {
                return Err(refused(format!(
                    "no pairing: {}",
                    protocol::clean(&reason, 200)
                )));
            }
            _ => return Err(refused("the host answered out of order")),
        }
    }
}

impl Actor for JoinSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let seen = Arc::new(Mutex::new(None));
        let name = crate::peers::client::authority(&self.address, self.port);
        let client = match PeerClient::new(
            &name,
            &self.address,
            self.port,
            Trust::Record(seen.clone()),
            None,
        ) {
            Ok(client) => Rc::new(client),
            Err(e) => {
                self.state = State::Ended(e.message);
                return;
            }
        };
        self.client = Some(client.clone());
        let work = handshake(
            client,
            seen,
            self.ours.clone(),
            std::mem::take(&mut self.code),
        );
        ctx.spawn(work.into_actor(self).map(|result, act, _| match result {
            Ok((_, _, _, host)) if act.paired.contains(&host.node_id) => {
                act.state = State::Ended(format!(
                    "{} is paired already; remove it first (`loopsy peers remove`) to pair it again",
                    host.hostname
                ));
            }
            Ok((channel, pairing, sas, host)) => {
                act.channel = Some(channel);
                act.pairing = pairing;
                act.sas = Some(sas);
                act.host = Some(host);
                act.state = State::Comparing;
            }
            Err(e) => act.state = State::Ended(e.message),
        }));
        // A join nobody finishes ends with the window it joined.
        ctx.run_later(WINDOW, |act, ctx| {
            if !matches!(act.state, State::Paired(_)) {
                act.state = State::Ended("the pairing window expired".into());
            }
            ctx.stop();
        });
    }
}

/// `peers.join.status`.
#[derive(Message)]
#[rtype(result = "Value")]
pub struct JoinStatus;

impl Handler<JoinStatus> for JoinSession {
    type Result = MessageResult<JoinStatus>;
    fn handle(&mut self, _: JoinStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.status())
    }
}

/// `peers.join.confirm`: the owner's decision; answered at once, settled in the background.
#[derive(Message)]
#[rtype(result = "Result<Value, ApiError>")]
pub struct JoinDecide(pub Option<Capabilities>);

impl Handler<JoinDecide> for JoinSession {
    type Result = Result<Value, ApiError>;

    fn handle(&mut self, decision: JoinDecide, ctx: &mut Self::Context) -> Self::Result {
        if !matches!(self.state, State::Comparing) {
            return Err(ApiError::invalid_request(
                "there is no code to compare: the join is not at that step (see `peers.join.status`)",
            ));
        }
        let (Some(client), Some(mut channel), Some(host)) =
            (self.client.clone(), self.channel.take(), self.host.clone())
        else {
            return Err(ApiError::internal("the join lost its channel"));
        };
        let pairing = self.pairing.clone();
        let Some(grants) = decision.0 else {
            self.state = State::Ended("you declined".into());
            // Tell the host, so its owner is not left waiting; best effort.
            let step = Step::Confirm {
                accept: false,
                grants: vec![],
                credential: None,
            };
            if let Ok(sealed) = seal(&mut channel, &step) {
                let tell = async move {
                    let _ = client
                        .call_limited(
                            loopsy_transports::wire::method::PEER_PAIR_STEP,
                            json!({"pairing": pairing, "message": sealed}),
                            STEP_TIMEOUT,
                            SMALL_ANSWER_BYTES,
                        )
                        .await;
                };
                ctx.spawn(tell.into_actor(self));
            }
            return Ok(self.status());
        };
        self.state = State::Waiting;
        let deadline = self.started + WINDOW;
        let (address, port) = (self.address.clone(), self.port);
        let store = self.store.clone();
        let work = async move {
            let (theirs, credential, minted) =
                settle(client, channel, pairing, grants, deadline).await?;
            let now = crate::sessions::now_ms() as i64;
            let record = PeerRecord {
                node_id: host.node_id.clone(),
                hostname: host.hostname.clone(),
                address,
                port,
                cert_fp: host.cert_fp.clone(),
                inbound_digest: KeyDigest::of(&minted),
                inbound: grants,
                outbound_secret: credential,
                outbound: theirs,
                version: host.version.clone(),
                platform: host.platform.clone(),
                paired_at: now,
                last_seen: Some(now),
                dialect: Dialect::Loopsy,
            };
            let label = record.label();
            store
                .send(StorePeer(record))
                .await
                .map_err(|_| ApiError::unavailable("the daemon is stopping"))??;
            Ok::<_, ApiError>(label)
        };
        ctx.spawn(work.into_actor(self).map(|result, act, _| {
            act.state = match result {
                Ok(label) => State::Paired(label),
                Err(e) => State::Ended(e.message),
            };
        }));
        Ok(self.status())
    }
}

/// A newer join replaces this one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndJoin;

impl Handler<EndJoin> for JoinSession {
    type Result = ();

    fn handle(&mut self, _: EndJoin, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
