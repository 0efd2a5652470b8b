//! The host side of pairing: the one window the owner opens with `loopsy pair`.
//! The Router holds it (in memory only) and feeds it the joiner's messages and
//! its owner's decision; it answers with the next message and, once both owners
//! accepted, the peer to store.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use loopsy_transports::e2e::{Channel, Handshake, PairingSecret, StaticKey};
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::secrets::{KeyDigest, from_hex, generate_api_key, hex};
use serde_json::{Value, json};

use super::protocol::{self, Introduction, Step};
use crate::peers::store::{Dialect, PeerRecord};
use crate::router::Capabilities;
use crate::secrets::random_bytes;

/// How long a window stays open.
pub const WINDOW: Duration = Duration::from_secs(300);
/// How long a joiner has between message 1 and message 3.
const HANDSHAKE_WINDOW: Duration = Duration::from_secs(10);

enum Stage {
    Waiting,
    Handshaking {
        handshake: Box<Handshake>,
        since: Instant,
    },
    Committed,
    Comparing,
    Ended(String),
}

/// The answer of a step: the sealed reply, and a peer to store before sending it.
pub struct StepReply {
    pub message: String,
    pub store: Option<PeerRecord>,
}

pub struct HostWindow {
    pub pairing_id: String,
    code: String,
    psk: PairingSecret,
    ours: Introduction,
    expires: Instant,
    wrong_codes: u8,
    stage: Stage,
    channel: Option<Channel>,
    joiner: Option<(Introduction, IpAddr)>,
    /// The address the current pairing's message 1 came from.
    joiner_ip: Option<IpAddr>,
    nonce: [u8; 32],
    handshake_hash: Vec<u8>,
    sas: Option<String>,
    /// The owner's grants once it accepted; `Some(None)` once it declined.
    host_decision: Option<Option<Capabilities>>,
    /// The joiner's grants and the credential we are to call it with.
    joiner_decision: Option<(Capabilities, String)>,
    /// What the joiner will call us with (sent only once both accepted).
    minted: String,
    stored: bool,
}

fn ended(reason: &str) -> ApiError {
    ApiError::new(
        code::PEER_PAIRING_ENDED,
        410,
        format!("this pairing is over: {reason}"),
    )
}

fn failed(what: &str) -> impl Fn(String) -> ApiError + '_ {
    move |e| ApiError::internal(format!("{what}: {e}"))
}

impl HostWindow {
    pub fn open(ours: Introduction, now: Instant, lasting: Duration) -> Result<Self, ApiError> {
        let code = protocol::invite_code().map_err(|e| ApiError::internal(e.to_string()))?;
        Self::open_with_code(ours, code, now, lasting)
    }

    /// A window whose code was chosen elsewhere: what a man in the middle who
    /// learned the code runs (the attack tests play him with it).
    pub fn open_with_code(
        ours: Introduction,
        code: String,
        now: Instant,
        lasting: Duration,
    ) -> Result<Self, ApiError> {
        let random = |e: crate::secrets::RandomUnavailable| ApiError::internal(e.to_string());
        Ok(Self {
            pairing_id: hex(&random_bytes::<16>().map_err(random)?),
            psk: protocol::psk_of(&code),
            code,
            ours,
            expires: now + lasting.min(WINDOW),
            wrong_codes: 0,
            stage: Stage::Waiting,
            channel: None,
            joiner: None,
            joiner_ip: None,
            nonce: random_bytes::<32>().map_err(random)?,
            handshake_hash: Vec::new(),
            sas: None,
            host_decision: None,
            joiner_decision: None,
            minted: generate_api_key().map_err(random)?,
            stored: false,
        })
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// Whether the window still takes messages (not ended, not expired).
    pub fn is_live(&self, now: Instant) -> bool {
        now < self.expires && !matches!(self.stage, Stage::Ended(_))
    }

    fn end(&mut self, reason: &str) {
        self.stage = Stage::Ended(reason.to_owned());
        self.channel = None;
    }

    fn check_live(&mut self, now: Instant) -> Result<(), ApiError> {
        if now >= self.expires && !matches!(self.stage, Stage::Ended(_)) {
            self.end("the window expired");
        }
        match &self.stage {
            Stage::Ended(reason) => Err(ended(reason)),
            _ => Ok(()),
        }
    }

    /// Message 1 in, message 2 (with our introduction) out. The pairing that
    /// starts here gets a fresh id and belongs to the address that sent it:
    /// nobody else can send its next steps (and so end it with garbage).
    pub fn hello(&mut self, message: &str, from: IpAddr, now: Instant) -> Result<Value, ApiError> {
        self.check_live(now)?;
        match &self.stage {
            Stage::Waiting => {}
            Stage::Handshaking { since, .. } if now.duration_since(*since) >= HANDSHAKE_WINDOW => {}
            _ => {
                return Err(ApiError::new(
                    code::PEER_PAIRING_BUSY,
                    409,
                    "another machine is pairing with this window; wait, or open a new one with `loopsy pair`",
                ));
            }
        }
        let bytes =
            from_hex(message).ok_or_else(|| ApiError::bad_request("the message is not hex"))?;
        let key = StaticKey::generate().map_err(|e| ApiError::internal(e.to_string()))?;
        let mut handshake =
            Handshake::pairing_between_daemons(&key, &self.psk, protocol::PROLOGUE, false)
                .map_err(|e| failed("cannot start the handshake")(e.to_string()))?;
        handshake
            .read(&bytes)
            .map_err(|e| ApiError::bad_request(format!("message 1 is malformed: {e}")))?;
        let intro =
            serde_json::to_vec(&self.ours).map_err(|e| failed("introduction")(e.to_string()))?;
        let reply = handshake
            .write(&intro)
            .map_err(|e| failed("cannot write message 2")(e.to_string()))?;
        self.pairing_id =
            hex(&random_bytes::<16>().map_err(|e| ApiError::internal(e.to_string()))?);
        self.joiner_ip = Some(from);
        self.stage = Stage::Handshaking {
            handshake: Box::new(handshake),
            since: now,
        };
        Ok(json!({"pairing": self.pairing_id, "message": hex(&reply)}))
    }

    fn same_pairing(&self, pairing: &str, from: IpAddr) -> Result<(), ApiError> {
        if pairing == self.pairing_id && self.joiner_ip == Some(from) {
            Ok(())
        } else {
            Err(ApiError::new(
                code::PEER_WINDOW_NOT_FOUND,
                404,
                "no such pairing; start again with `loopsy pair <host>`",
            ))
        }
    }

    /// Message 3 in: the proof of the invite code and the joiner's introduction.
    /// `paired` are the node ids paired already: pairing one again would
    /// replace it, so it is refused (remove it first).
    pub fn finish(
        &mut self,
        pairing: &str,
        message: &str,
        from: IpAddr,
        paired: &[String],
        now: Instant,
    ) -> Result<Value, ApiError> {
        self.check_live(now)?;
        self.same_pairing(pairing, from)?;
        let Stage::Handshaking { .. } = self.stage else {
            return Err(ApiError::invalid_request("send message 1 first"));
        };
        let Stage::Handshaking { mut handshake, .. } =
            std::mem::replace(&mut self.stage, Stage::Waiting)
        else {
            return Err(ApiError::internal("pairing stage changed underfoot"));
        };
        let bytes =
            from_hex(message).ok_or_else(|| ApiError::bad_request("the message is not hex"))?;
        let payload = match handshake.read(&bytes) {
            Ok(payload) => payload,
            Err(_) => {
                self.wrong_codes += 1;
                let left = protocol::MAX_WRONG_CODES.saturating_sub(self.wrong_codes);
                if left == 0 {
                    self.end("three wrong invite codes closed the window");
                    return Err(ended(
                        "three wrong invite codes closed the window; open a new one with `loopsy pair`",
                    ));
                }
                return Err(ApiError::new(
                    code::PEER_CODE_WRONG,
                    403,
                    format!("wrong invite code; {left} tries left"),
                ));
            }
        };
        let joiner: Introduction = serde_json::from_slice(&payload)
            .map_err(|e| ApiError::bad_request(format!("the introduction is malformed: {e}")))?;
        joiner.check().map_err(|e| {
            ApiError::bad_request(format!("the joining daemon's introduction: {e}"))
        })?;
        if joiner.node_id == self.ours.node_id {
            return Err(ApiError::bad_request("a daemon cannot pair with itself"));
        }
        if paired.contains(&joiner.node_id) {
            return Err(ApiError::new(
                code::PEER_PAIRING_BUSY,
                409,
                "that machine is paired already; remove it first (`loopsy peers remove`) to pair it again",
            ));
        }
        let handshake_hash = handshake.hash();
        let mut channel = handshake
            .into_channel()
            .map_err(|e| failed("cannot finish the handshake")(e.to_string()))?;
        let step = Step::Commit {
            commit: hex(&protocol::commitment(&self.nonce)),
        };
        let sealed = seal(&mut channel, &step)?;
        self.handshake_hash = handshake_hash;
        self.channel = Some(channel);
        self.joiner = Some((joiner, from));
        self.stage = Stage::Committed;
        Ok(json!({"message": sealed}))
    }

    /// One sealed step from the joiner.
    pub fn step(
        &mut self,
        pairing: &str,
        message: &str,
        from: IpAddr,
        now: Instant,
    ) -> Result<StepReply, ApiError> {
        self.check_live(now)?;
        self.same_pairing(pairing, from)?;
        let bytes =
            from_hex(message).ok_or_else(|| ApiError::bad_request("the message is not hex"))?;
        let Some(channel) = self.channel.as_mut() else {
            return Err(ApiError::invalid_request("finish the handshake first"));
        };
        // A message that does not open, or says nonsense, ends the pairing:
        // nobody honest sends one.
        let step = match channel
            .open(&bytes)
            .ok()
            .and_then(|p| serde_json::from_slice::<Step>(&p).ok())
        {
            Some(step) => step,
            None => {
                self.end("a pairing message did not open");
                return Err(ended("a pairing message did not open"));
            }
        };
        let (reply, store) = match (&self.stage, step) {
            (Stage::Committed, Step::Nonce { nonce }) => {
                let Some(theirs) = loopsy_transports::secrets::from_hex32(&nonce) else {
                    self.end("the joiner's nonce is malformed");
                    return Err(ended("the joiner's nonce is malformed"));
                };
                self.sas = Some(protocol::sas(&self.handshake_hash, &self.nonce, &theirs));
                self.stage = Stage::Comparing;
                (
                    Step::Nonce {
                        nonce: hex(&self.nonce),
                    },
                    None,
                )
            }
            (
                Stage::Comparing,
                Step::Confirm {
                    accept,
                    grants,
                    credential,
                },
            ) => {
                if self.joiner_decision.is_some() {
                    self.end("the joiner confirmed twice");
                    return Err(ended("the joiner confirmed twice"));
                }
                match (accept, credential) {
                    (true, Some(credential))
                        if credential.len() == 64
                            && credential.bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        let grants = Capabilities::parse(&grants).unwrap_or_default();
                        self.joiner_decision = Some((grants, credential));
                        self.settle()
                    }
                    _ => (
                        Step::Declined {
                            reason: "the joining machine's owner declined".into(),
                        },
                        None,
                    ),
                }
            }
            (Stage::Comparing, Step::Poll) => self.settle(),
            _ => {
                self.end("a pairing message came out of order");
                return Err(ended("a pairing message came out of order"));
            }
        };
        let Some(channel) = self.channel.as_mut() else {
            return Err(ended("the pairing ended"));
        };
        let message = seal(channel, &reply)?;
        match &reply {
            Step::Declined { reason } => self.end(reason),
            // Done: the window closes, so another can be opened at once.
            Step::Paired { .. } => self.end("paired"),
            _ => {}
        }
        Ok(StepReply { message, store })
    }

    /// What the joiner hears now, given both decisions so far.
    fn settle(&mut self) -> (Step, Option<PeerRecord>) {
        match (&self.host_decision, &self.joiner_decision) {
            (Some(None), _) => (
                Step::Declined {
                    reason: "the host's owner declined".into(),
                },
                None,
            ),
            (Some(Some(grants)), Some(_)) => {
                let store = (!self.stored).then(|| self.record()).flatten();
                self.stored = true;
                (
                    Step::Paired {
                        grants: grants.names().iter().map(|n| (*n).to_owned()).collect(),
                        credential: self.minted.clone(),
                    },
                    store,
                )
            }
            _ => (Step::Pending, None),
        }
    }

    /// The joiner as we store it, once both accepted.
    fn record(&self) -> Option<PeerRecord> {
        let (joiner, from) = self.joiner.as_ref()?;
        let (their_grants, credential) = self.joiner_decision.as_ref()?;
        let ours = self.host_decision.as_ref()?.as_ref()?;
        Some(PeerRecord {
            node_id: joiner.node_id.clone(),
            hostname: joiner.hostname.clone(),
            address: from.to_string(),
            port: joiner.peer_port,
            cert_fp: joiner.cert_fp.clone(),
            inbound_digest: KeyDigest::of(&self.minted),
            inbound: *ours,
            outbound_secret: credential.clone(),
            outbound: *their_grants,
            version: joiner.version.clone(),
            platform: joiner.platform.clone(),
            paired_at: crate::sessions::now_ms() as i64,
            last_seen: Some(crate::sessions::now_ms() as i64),
            dialect: Dialect::Loopsy,
        })
    }

    /// The owner's decision. Accepting after the joiner did gives the peer to store.
    pub fn confirm(
        &mut self,
        grants: Option<Capabilities>,
        now: Instant,
    ) -> Result<Option<PeerRecord>, ApiError> {
        self.check_live(now)?;
        if !matches!(self.stage, Stage::Comparing) {
            return Err(ApiError::invalid_request(
                "there is no code to compare yet: wait until the other machine has joined",
            ));
        }
        if self.host_decision.is_some() {
            return Err(ApiError::invalid_request(
                "you already decided on this pairing",
            ));
        }
        self.host_decision = Some(grants);
        if grants.is_none() {
            // The joiner hears it at its next poll; keep the channel for that.
            return Ok(None);
        }
        if self.joiner_decision.is_some() && !self.stored {
            self.stored = true;
            return Ok(self.record());
        }
        Ok(None)
    }

    /// For `loopsy pair`: the code, the SAS once there is one, the other side.
    pub fn status(&mut self, now: Instant) -> Value {
        let _ = self.check_live(now);
        let state = match &self.stage {
            Stage::Waiting | Stage::Handshaking { .. } | Stage::Committed => "waiting",
            Stage::Comparing if self.stored => "paired",
            Stage::Comparing if self.host_decision.is_some() => "waiting-for-peer",
            Stage::Comparing => "comparing",
            Stage::Ended(_) if self.stored => "paired",
            Stage::Ended(_) => "ended",
        };
        let reason = match &self.stage {
            Stage::Ended(reason) => Some(reason.clone()),
            _ => None,
        };
        let joiner = self.joiner.as_ref().map(|(intro, from)| {
            json!({"nodeId": intro.node_id, "hostname": intro.hostname, "address": from.to_string(),
                   "version": intro.version, "platform": intro.platform, "certFingerprint": intro.cert_fp})
        });
        json!({
            "active": true,
            "state": state,
            "reason": reason,
            "code": self.code,
            "sas": if matches!(self.stage, Stage::Comparing) || self.stored { self.sas.clone() } else { None },
            "peer": joiner,
            "peerConfirmed": self.joiner_decision.is_some(),
            "wrongCodesLeft": protocol::MAX_WRONG_CODES.saturating_sub(self.wrong_codes),
            "expiresInSec": self.expires.saturating_duration_since(now).as_secs(),
        })
    }
}

/// Seals a step for the channel, as hex.
pub fn seal(channel: &mut Channel, step: &Step) -> Result<String, ApiError> {
    let plain = serde_json::to_vec(step).map_err(|e| ApiError::internal(e.to_string()))?;
    channel
        .seal(&plain)
        .map(|sealed| hex(&sealed))
        .map_err(|e| ApiError::internal(format!("cannot seal a pairing message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intro(node_id: &str) -> Introduction {
        Introduction {
            node_id: node_id.into(),
            hostname: "kai".into(),
            version: "0.1.0".into(),
            platform: "linux".into(),
            cert_fp: "ab".repeat(32),
            peer_port: 19533,
        }
    }

    const HOST: &str = "6f1e9b1c-0d1a-4c55-9a53-3f4f2c9e8a10";
    const JOINER: &str = "0b7c6a3e-1f2d-4e5a-8b9c-0d1e2f3a4b5c";

    #[test]
    fn a_pairing_belongs_to_the_address_that_began_it_and_a_paired_node_cannot_pair_again()
    -> Result<(), Box<dyn std::error::Error>> {
        let now = Instant::now();
        let mut window = HostWindow::open(intro(HOST), now, WINDOW)?;
        let psk = protocol::psk_of(window.code());
        let key = StaticKey::generate()?;
        let mut joiner = Handshake::pairing_between_daemons(&key, &psk, protocol::PROLOGUE, true)?;
        let (joiner_ip, other_ip): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let answer = window.hello(&hex(&joiner.write(&[])?), joiner_ip, now)?;
        let pairing = answer["pairing"]
            .as_str()
            .ok_or("no pairing id")?
            .to_owned();
        joiner.read(&from_hex(answer["message"].as_str().ok_or("no message 2")?).ok_or("hex")?)?;
        let finish = hex(&joiner.write(&serde_json::to_vec(&intro(JOINER))?)?);
        // Someone else who saw the pairing id can neither step nor finish it,
        // and the window is none the worse for their trying.
        let status = |e: ApiError| e.status;
        assert_eq!(
            window
                .step(&pairing, "00", other_ip, now)
                .map(|_| ())
                .map_err(status),
            Err(404)
        );
        assert_eq!(
            window
                .finish(&pairing, &finish, other_ip, &[], now)
                .map(|_| ())
                .map_err(status),
            Err(404)
        );
        assert!(window.is_live(now));
        // The joiner itself, already paired, is told to remove the old pairing first.
        let again = window.finish(&pairing, &finish, joiner_ip, &[JOINER.to_owned()], now);
        assert_eq!(again.map(|_| ()).map_err(status), Err(409));
        assert!(window.is_live(now), "no wrong code was counted");
        Ok(())
    }
}
