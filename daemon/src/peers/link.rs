//! `PeerLink`: one actor per paired peer, the client side of every call to it.
//! It checks the peer's health every 15 s (5 s timeout), calls it offline after
//! 3 failures and keeps re-checking with backoff until it is back (the original
//! never re-checked). A circuit breaker stops calls for 30 s after 5 failures
//! within 60 s, so a dead peer costs callers an instant error rather than a
//! timeout each. Idempotent calls are retried with backoff; others never are.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::peer_tls::Trust;
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use super::client::PeerClient;
use super::store::{Dialect, PeerRecord};

const HEALTH_EVERY: Duration = Duration::from_secs(15);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
const OFFLINE_AFTER: u32 = 3;
/// Longest wait between checks of an offline peer.
const MAX_RECHECK: Duration = Duration::from_secs(120);
const BREAKER_FAILURES: usize = 5;
const BREAKER_WINDOW: Duration = Duration::from_secs(60);
const BREAKER_OPEN: Duration = Duration::from_secs(30);
/// Retries of an idempotent call that could not reach the peer.
const RETRIES: u32 = 2;
const RETRY_BASE: Duration = Duration::from_millis(200);

/// Methods a retry cannot do twice.
const IDEMPOTENT: &[&str] = &[
    method::HEALTH,
    method::IDENTITY,
    method::STATUS,
    method::CONTEXT_GET,
    method::CONTEXT_LIST,
    method::CONTEXT_SET,
    method::CONTEXT_DELETE,
    method::TRANSFER_LIST,
    method::EXEC_JOBS,
    method::SESSION_LIST,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Unknown,
    Online,
    Offline,
}

/// A link's peer came online or went offline (for `status`).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct LinkHealth {
    pub node_id: String,
    pub online: bool,
}

pub struct PeerLink {
    record: PeerRecord,
    /// Who hears of health changes (the Router).
    report: Option<Recipient<LinkHealth>>,
    client: Option<Rc<PeerClient>>,
    health: Health,
    failures: u32,
    /// When recent calls or checks failed, for the breaker.
    recent_failures: VecDeque<Instant>,
    open_until: Option<Instant>,
    last_seen: Option<i64>,
    version: String,
}

impl PeerLink {
    pub fn new(record: PeerRecord) -> Self {
        Self {
            report: None,
            last_seen: record.last_seen,
            version: record.version.clone(),
            record,
            client: None,
            health: Health::Unknown,
            failures: 0,
            recent_failures: VecDeque::new(),
            open_until: None,
        }
    }

    /// The client of this peer (for calls that stream, in `link_transfer`).
    pub(super) fn client(&self) -> Option<Rc<PeerClient>> {
        self.client.clone()
    }

    /// Tells `report` whenever the peer comes online or goes offline.
    pub fn reporting_to(mut self, report: Recipient<LinkHealth>) -> Self {
        self.report = Some(report);
        self
    }

    fn set_health(&mut self, health: Health) {
        if health != self.health
            && let Some(report) = &self.report
        {
            report.do_send(LinkHealth {
                node_id: self.record.node_id.clone(),
                online: health == Health::Online,
            });
        }
        self.health = health;
    }

    fn note_failure(&mut self, now: Instant) {
        self.recent_failures.push_back(now);
        while self
            .recent_failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > BREAKER_WINDOW)
        {
            self.recent_failures.pop_front();
        }
        if self.recent_failures.len() >= BREAKER_FAILURES {
            self.open_until = Some(now + BREAKER_OPEN);
            self.recent_failures.clear();
            tracing::warn!(peer = %self.record.label(), "peer failing; calls paused for 30 s");
        }
    }

    fn note_success(&mut self) {
        self.set_health(Health::Online);
        self.failures = 0;
        self.last_seen = Some(crate::sessions::now_ms() as i64);
    }

    fn check_health(&mut self, ctx: &mut Context<Self>) {
        let Some(client) = self.client.clone() else {
            return;
        };
        // `health` needs no credential: the pinned certificate is the proof of
        // who answers, and a peer that has not stored us yet still counts as up.
        let probe = async move {
            let small = super::client::SMALL_ANSWER_BYTES;
            client
                .call_limited(method::HEALTH, json!({}), HEALTH_TIMEOUT, small)
                .await
        };
        ctx.spawn(probe.into_actor(self).map(|result, act, ctx| {
            // The original makes a new node id at every start: a TypeScript
            // peer is known by its address (and, over TLS, its pinned certificate).
            let any_id = act.record.dialect != Dialect::Loopsy;
            let result = result.and_then(|health| {
                if any_id
                    || health.get("nodeId").and_then(Value::as_str)
                        == Some(act.record.node_id.as_str())
                {
                    Ok(health)
                } else {
                    Err(ApiError::new(
                        code::PEER_UNREACHABLE,
                        502,
                        "it answers with another node id",
                    ))
                }
            });
            match result {
                Ok(_) => {
                    if act.health != Health::Online {
                        tracing::info!(peer = %act.record.label(), "peer online");
                    }
                    act.note_success();
                }
                Err(error) => {
                    act.failures += 1;
                    if act.failures >= OFFLINE_AFTER && act.health != Health::Offline {
                        tracing::warn!(peer = %act.record.label(), error = %error.message, "peer offline");
                        act.set_health(Health::Offline);
                    }
                }
            }
            act.schedule_check(ctx);
        }));
    }

    /// Online peers every 15 s; offline ones with doubling waits up to 2 min.
    fn schedule_check(&mut self, ctx: &mut Context<Self>) {
        let wait = if self.health == Health::Offline {
            let doublings = self.failures.saturating_sub(OFFLINE_AFTER).min(3);
            (HEALTH_EVERY * 2u32.pow(doublings)).min(MAX_RECHECK)
        } else {
            HEALTH_EVERY
        };
        ctx.run_later(wait, |act, ctx| act.check_health(ctx));
    }
}

impl Actor for PeerLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let record = &self.record;
        let (label, pinned, secret) = (
            record.label(),
            Trust::Pinned(record.cert_fp.clone()),
            Some(record.outbound_secret.clone()),
        );
        let client = match record.dialect {
            Dialect::Loopsy => {
                PeerClient::new(&label, &record.address, record.port, pinned, secret)
            }
            Dialect::TypeScript { plain_http } => {
                let trust = (!plain_http).then_some(pinned);
                PeerClient::typescript(&label, &record.address, record.port, trust, secret)
            }
        };
        match client {
            Ok(client) => self.client = Some(Rc::new(client)),
            Err(error) => {
                tracing::error!(peer = %record.label(), %error.message, "cannot make a client for this peer")
            }
        }
        // The first check at once: the original had none until 15 s had passed.
        self.check_health(ctx);
    }
}

/// A call to the peer, through this link.
#[derive(Message)]
#[rtype(result = "Result<Value, ApiError>")]
pub struct PeerCall {
    pub method: String,
    pub params: Value,
    pub within: Duration,
}

impl Handler<PeerCall> for PeerLink {
    type Result = ResponseActFuture<Self, Result<Value, ApiError>>;

    fn handle(&mut self, call: PeerCall, _: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        if let Some(until) = self.open_until.filter(|until| now < *until) {
            let wait = until.saturating_duration_since(now).as_secs().max(1);
            let error = ApiError::new(
                code::PEER_UNREACHABLE,
                503,
                format!(
                    "peer {} failed 5 times within a minute; calls resume in {wait} s",
                    self.record.label()
                ),
            );
            return Box::pin(actix::fut::ready(Err(error)));
        }
        let Some(client) = self.client.clone() else {
            return Box::pin(actix::fut::ready(Err(ApiError::internal(
                "this peer has no client; see the daemon log",
            ))));
        };
        let retries = if IDEMPOTENT.contains(&call.method.as_str()) {
            RETRIES
        } else {
            0
        };
        let work = async move {
            let mut attempt = 0;
            loop {
                let result = client
                    .call(&call.method, call.params.clone(), call.within)
                    .await;
                match result {
                    Err(e) if e.code == code::PEER_UNREACHABLE && attempt < retries => {
                        tokio::time::sleep(RETRY_BASE * 2u32.pow(attempt)).await;
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        };
        Box::pin(work.into_actor(self).map(|result, act, _| {
            match &result {
                // The peer answered (even with a refusal): it is alive.
                Ok(_) => act.note_success(),
                Err(e) if e.code != code::PEER_UNREACHABLE => act.note_success(),
                Err(_) => act.note_failure(Instant::now()),
            }
            result
        }))
    }
}

/// The link's view of its peer, for `peers.list`.
#[derive(Message)]
#[rtype(result = "Value")]
pub struct LinkStatus;

impl Handler<LinkStatus> for PeerLink {
    type Result = MessageResult<LinkStatus>;

    fn handle(&mut self, _: LinkStatus, _: &mut Self::Context) -> Self::Result {
        let r = &self.record;
        MessageResult(json!({
            "nodeId": r.node_id,
            "hostname": r.hostname,
            "address": r.address,
            "port": r.port,
            "status": match self.health {
                Health::Unknown => "unknown",
                Health::Online => "online",
                Health::Offline => "offline",
            },
            "paired": true,
            "lastSeen": self.last_seen,
            "pairedAt": r.paired_at,
            "version": self.version,
            "platform": r.platform,
            "certFingerprint": r.cert_fp,
            "kind": r.dialect.describe(),
            "theyMay": r.inbound.names(),
            "weMay": r.outbound.names(),
            "breakerOpen": self.open_until.is_some_and(|u| Instant::now() < u),
        }))
    }
}

/// Stop the link (its peer was removed or paired again).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopLink;

impl Handler<StopLink> for PeerLink {
    type Result = ();

    fn handle(&mut self, _: StopLink, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
