//! LAN peers, as the Router decides them: the owner's pairing window and joins
//! (socket only), the pairing steps another daemon sends (TLS only), the peer
//! list, removal (here at once, there when it answers), and calls through a
//! peer's `PeerLink`. The pairing protocol itself lives in `peers::pairing`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::fut::ActorFutureExt;
use actix::prelude::*;
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::wire::{Evidence, PairDecision, PeerRequest, Reply, Request};
use serde_json::{Value, json};

use super::{Capabilities, Principal, Router, Work};
use crate::peers::discovery::ListDiscovered;
use crate::peers::link::{LinkStatus, PeerCall, PeerLink, StopLink};
use crate::peers::pairing::host::HostWindow;
use crate::peers::pairing::join::{JoinDecide, JoinSession, JoinStatus, StorePeer};
use crate::peers::pairing::protocol::{self, Introduction};
use crate::peers::store::{self, PeerBook, PeerRecord};

/// Longest `peers.call` of `exec.run` waits (its own timeout is bounded by the peer).
const MAX_CALL: Duration = Duration::from_secs(3600);
/// How much longer than its own timeout a run may take to come back.
const CALL_MARGIN: Duration = Duration::from_secs(5);
/// Other calls through a peer link.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a removal waits for the peer to hear of it.
const UNPAIR_TIMEOUT: Duration = Duration::from_secs(3);

/// What the Router keeps about peers.
pub struct PeerState {
    /// Fingerprint of this daemon's TLS certificate and its TLS port.
    pub cert_fp: String,
    pub port: u16,
    pub window: Option<HostWindow>,
    pub joining: Option<Addr<JoinSession>>,
    pub links: BTreeMap<String, (PeerRecord, Addr<PeerLink>)>,
    /// Which linked peers are online, as their links last said.
    pub online: BTreeMap<String, bool>,
    /// Per peer, what ends its framed connections when it is removed.
    pub framed: BTreeMap<String, tokio::sync::watch::Sender<bool>>,
}

impl PeerState {
    /// The signal that ends `node_id`'s framed connections.
    pub fn framed_ends(&mut self, node_id: &str) -> tokio::sync::watch::Receiver<bool> {
        self.framed
            .entry(node_id.to_owned())
            .or_insert_with(|| tokio::sync::watch::channel(false).0)
            .subscribe()
    }

    /// `status`'s counts: paired peers, those online, those offline (the rest are unknown yet).
    pub fn counts(&self) -> (usize, usize, usize) {
        let online = self.online.values().filter(|o| **o).count();
        let offline = self.online.values().filter(|o| !**o).count();
        (self.links.len(), online, offline)
    }

    pub fn new(cert_fp: String, port: u16) -> Self {
        Self {
            cert_fp,
            port,
            window: None,
            joining: None,
            links: BTreeMap::new(),
            online: BTreeMap::new(),
            framed: BTreeMap::new(),
        }
    }

    pub fn records(&self) -> Vec<PeerRecord> {
        self.links.values().map(|(r, _)| r.clone()).collect()
    }

    /// The node id and link of the peer `name` means (hostname, node id, prefix).
    pub fn named(&self, name: &str) -> Result<(String, Addr<PeerLink>), ApiError> {
        let records = self.records();
        let node_id = store::resolve(&records, name)
            .map(|peer| peer.node_id.clone())
            .map_err(|problem| ApiError::new(code::PEER_NOT_FOUND, 404, problem))?;
        match self.links.get(&node_id) {
            Some((_, link)) => Ok((node_id, link.clone())),
            None => Err(ApiError::new(
                code::PEER_NOT_FOUND,
                404,
                "that peer is gone",
            )),
        }
    }
}

fn introduction(router: &Router) -> Introduction {
    let id = &router.identity;
    Introduction {
        node_id: id.node_id.clone(),
        hostname: id.hostname.clone(),
        version: crate::identity::DAEMON_VERSION.to_owned(),
        platform: id.platform.to_owned(),
        cert_fp: router.peers.cert_fp.clone(),
        peer_port: router.peers.port,
    }
}

fn grants_of(decision: &PairDecision) -> Result<Option<Capabilities>, ApiError> {
    if !decision.accept {
        return Ok(None);
    }
    match &decision.grants {
        None => Ok(Some(Capabilities::peer_default())),
        Some(names) => Capabilities::parse(names)
            .map(Some)
            .map_err(ApiError::bad_request),
    }
}

/// The pairing steps come only over the TLS listener: the joiner pins the
/// certificate it meets there.
fn tls_only(evidence_tls: bool) -> Result<(), ApiError> {
    if evidence_tls {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "pairing runs over the peers' TLS port (server.peerPort), not plain HTTP",
        ))
    }
}

fn done(result: Result<Value, ApiError>) -> Work {
    Work::Done(result.map(Reply::ok))
}

/// The door the request being handled came in by: whether over the TLS
/// listener, and from which address. Set by the Router just before it calls
/// a handler (handlers run synchronously on its thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct Door {
    pub tls: bool,
    pub from: Option<std::net::IpAddr>,
}

impl Door {
    pub fn of(evidence: &Evidence) -> Self {
        match evidence {
            Evidence::LanHttp(http) => Self {
                tls: http.tls,
                from: http.remote.map(|a| a.ip()),
            },
            _ => Self::default(),
        }
    }
}

pub(super) fn run(router: &mut Router, request: Request, principal: &Principal) -> Work {
    let Request::Peers(request) = request else {
        return Work::Done(Err(ApiError::internal(
            "a request reached the peer operations by mistake",
        )));
    };
    let now = Instant::now();
    let Door { tls, from } = router.door;
    match request {
        PeerRequest::PairOpen { ttl_seconds } => done(open_window(router, ttl_seconds, now)),
        PeerRequest::PairStatus => done(Ok(match router.peers.window.as_mut() {
            Some(window) => window.status(now),
            None => json!({"active": false}),
        })),
        PeerRequest::PairConfirm(decision) => {
            let grants = match grants_of(&decision) {
                Ok(grants) => grants,
                Err(e) => return Work::Done(Err(e)),
            };
            let Some(window) = router.peers.window.as_mut() else {
                return Work::Done(Err(no_window()));
            };
            match window.confirm(grants, now) {
                Ok(Some(record)) => store_then(router, record, Value::Null),
                Ok(None) => done(Ok(window.status(now))),
                Err(e) => Work::Done(Err(e)),
            }
        }
        PeerRequest::Hello { message } => {
            if let Err(e) = tls_only(tls).and_then(|()| bounded(&message)) {
                return Work::Done(Err(e));
            }
            match (router.peers.window.as_mut(), from) {
                (Some(window), Some(from)) => done(window.hello(&message, from, now)),
                _ => Work::Done(Err(no_window())),
            }
        }
        PeerRequest::Finish { pairing, message } => {
            if let Err(e) = tls_only(tls).and_then(|()| bounded(&message)) {
                return Work::Done(Err(e));
            }
            let paired: Vec<String> = router.peers.links.keys().cloned().collect();
            let (Some(window), Some(from)) = (router.peers.window.as_mut(), from) else {
                return Work::Done(Err(no_window()));
            };
            done(window.finish(&pairing, &message, from, &paired, now))
        }
        PeerRequest::Step { pairing, message } => {
            if let Err(e) = tls_only(tls).and_then(|()| bounded(&message)) {
                return Work::Done(Err(e));
            }
            let (Some(window), Some(from)) = (router.peers.window.as_mut(), from) else {
                return Work::Done(Err(no_window()));
            };
            match window.step(&pairing, &message, from, now) {
                Ok(reply) => {
                    let answer = json!({"message": reply.message});
                    match reply.store {
                        Some(record) => store_then(router, record, answer),
                        None => done(Ok(answer)),
                    }
                }
                Err(e) => Work::Done(Err(e)),
            }
        }
        PeerRequest::Join { address, code } => done(join(router, &address, &code.0)),
        PeerRequest::JoinStatus => match router.peers.joining.clone() {
            Some(join) => later(async move {
                join.send(JoinStatus).await.map_err(|_| {
                    ApiError::new(
                        code::PEER_WINDOW_NOT_FOUND,
                        404,
                        "the join ended; start again with `loopsy pair <host>`",
                    )
                })
            }),
            None => done(Ok(json!({"active": false}))),
        },
        PeerRequest::JoinConfirm(decision) => {
            let grants = match grants_of(&decision) {
                Ok(grants) => grants,
                Err(e) => return Work::Done(Err(e)),
            };
            match router.peers.joining.clone() {
                Some(join) => later(async move {
                    join.send(JoinDecide(grants)).await.map_err(|_| {
                        ApiError::new(
                            code::PEER_WINDOW_NOT_FOUND,
                            404,
                            "the join ended; start again with `loopsy pair <host>`",
                        )
                    })?
                }),
                None => Work::Done(Err(ApiError::new(
                    code::PEER_WINDOW_NOT_FOUND,
                    404,
                    "no join in progress; start one with `loopsy pair <host>`",
                ))),
            }
        }
        PeerRequest::List => {
            let links: Vec<_> = router
                .peers
                .links
                .values()
                .map(|(_, link)| link.clone())
                .collect();
            let paired: Vec<String> = router.peers.links.keys().cloned().collect();
            let addresses: Vec<String> = router
                .peers
                .links
                .values()
                .map(|(r, _)| r.address.clone())
                .collect();
            // Configured by hand (`discovery.manualPeers`): listed, not contacted.
            let manual: Vec<Value> = router
                .settings
                .config
                .discovery
                .manual_peers
                .iter()
                .filter(|m| !addresses.contains(&m.address))
                .map(|m| {
                    json!({"address": m.address, "port": m.port, "hostname": m.hostname,
                           "paired": false, "status": "manual"})
                })
                .collect();
            let discovery = router.services.discovery.clone();
            later(async move {
                let mut peers = Vec::with_capacity(links.len());
                for link in links {
                    if let Ok(status) = link.send(LinkStatus).await {
                        peers.push(status);
                    }
                }
                // Heard but not paired: listed, never contacted.
                if let Some(discovery) = discovery
                    && let Ok(heard) = discovery.send(ListDiscovered).await
                {
                    peers.extend(
                        heard
                            .iter()
                            .filter(|d| !paired.contains(&d.node_id))
                            .map(|d| d.to_json()),
                    );
                }
                peers.extend(manual);
                Ok(json!({"peers": peers}))
            })
        }
        PeerRequest::Remove { peer } => remove(router, &peer),
        PeerRequest::TransferPush {
            peer,
            dest_path,
            checksum,
            body,
        } => super::peer_transfer_ops::push(router, &peer, dest_path, checksum, body),
        PeerRequest::Tunnel {
            peer,
            to_peer,
            back,
        } => super::peer_transfer_ops::tunnel(router, &peer, to_peer, back),
        // Over TLS only, and for paired peers only (as the docs say).
        PeerRequest::FramedOpen => match principal {
            Principal::PairedPeer(peer) if tls => {
                let ends = router.peers.framed_ends(&peer.node_id);
                Work::Done(Ok(Reply::ok(json!({})).ending_when(ends)))
            }
            _ => Work::Done(Err(ApiError::forbidden(
                "the framed connection is for paired peers on the TLS port; pair with `loopsy pair`",
            ))),
        },
        PeerRequest::TransferPull { peer, source_path } => {
            super::peer_transfer_ops::pull(router, &peer, source_path)
        }
        PeerRequest::Call {
            peer,
            method,
            params,
        } => call(router, &peer, method, params),
        PeerRequest::Unpair => match principal {
            Principal::PairedPeer(peer) => {
                let node_id = peer.node_id.clone();
                forget(router, &node_id);
                tracing::info!(peer = %principal, "a peer unpaired; forgot it");
                Work::Later(Box::pin(
                    actix::fut::wrap_future::<_, Router>(remove_stored(router, node_id))
                        .map(|r, _, _| r.map(|_| Reply::ok(json!({"unpaired": true})))),
                ))
            }
            _ => Work::Done(Err(ApiError::forbidden(
                "only a paired peer can unpair itself",
            ))),
        },
    }
}

pub(super) fn later(
    work: impl std::future::Future<Output = Result<Value, ApiError>> + 'static,
) -> Work {
    Work::Later(Box::pin(
        actix::fut::wrap_future::<_, Router>(work).map(|r, _, _| r.map(Reply::ok)),
    ))
}

fn bounded(message: &str) -> Result<(), ApiError> {
    if message.len() > protocol::MAX_MESSAGE_HEX {
        Err(ApiError::bad_request("the pairing message is too large"))
    } else {
        Ok(())
    }
}

fn no_window() -> ApiError {
    ApiError::new(
        code::PEER_WINDOW_NOT_FOUND,
        404,
        "no pairing window is open here; its owner opens one with `loopsy pair`",
    )
}

fn open_window(router: &mut Router, ttl: Option<u64>, now: Instant) -> Result<Value, ApiError> {
    if ttl.is_some_and(|t| !(30..=300).contains(&t)) {
        return Err(ApiError::bad_request(
            "ttlSeconds must be between 30 and 300",
        ));
    }
    if let Some(window) = router.peers.window.as_ref()
        && window.is_live(now)
    {
        return Err(ApiError::new(
            code::PEER_PAIRING_BUSY,
            409,
            "a pairing window is already open; finish or decline it first (`loopsy pair` shows it)",
        ));
    }
    let mut window = HostWindow::open(
        introduction(router),
        now,
        ttl.map(Duration::from_secs)
            .unwrap_or(crate::peers::pairing::host::WINDOW),
    )?;
    let status = window.status(now);
    router.peers.window = Some(window);
    Ok(json!({
        "code": status["code"],
        "expiresInSec": status["expiresInSec"],
        "peerPort": router.peers.port,
        "hostname": router.identity.hostname,
        "certFingerprint": router.peers.cert_fp,
    }))
}

/// `host[:port]`, the port defaulting to the standard peer port.
pub fn parse_address(address: &str) -> Result<(String, u16), ApiError> {
    let address = address.trim();
    let bad = || ApiError::bad_request(format!("'{address}' is not host[:port]"));
    if address.is_empty()
        || address.len() > 255
        || address
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        return Err(bad());
    }
    let default = crate::config::DEFAULT_PORT + 1;
    if let Some(rest) = address.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if tail.is_empty() => default,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            let port: u16 = port.parse().map_err(|_| bad())?;
            if port == 0 || host.is_empty() {
                return Err(bad());
            }
            Ok((host.to_owned(), port))
        }
        Some(_) => Ok((address.to_owned(), default)),
        None => Ok((address.to_owned(), default)),
    }
}

fn join(router: &mut Router, address: &str, code: &str) -> Result<Value, ApiError> {
    if !protocol::is_invite_code(code) {
        return Err(ApiError::bad_request(
            "the invite code is the 6 digits `loopsy pair` shows on the other machine",
        ));
    }
    let (host, port) = parse_address(address)?;
    if let Some(previous) = router.peers.joining.take() {
        previous.do_send(crate::peers::pairing::join::EndJoin);
    }
    let ours = introduction(router);
    let paired: Vec<String> = router.peers.links.keys().cloned().collect();
    let store = router
        .self_address
        .clone()
        .ok_or_else(|| ApiError::internal("the Router has no address yet"))?;
    let code = code.to_owned();
    let join = JoinSession::start_in_arbiter(&router.services.peers, move |_| {
        JoinSession::new(ours, host, port, code, store.recipient()).refusing(paired)
    });
    router.peers.joining = Some(join);
    Ok(json!({"state": "connecting"}))
}

/// Stores a peer both owners accepted, then answers `answer`.
fn store_then(router: &mut Router, record: PeerRecord, answer: Value) -> Work {
    let data_dir = router.settings.data_dir.clone();
    let stored = record.clone();
    let write = actix_rt::task::spawn_blocking(move || {
        PeerBook::open(&data_dir).and_then(|b| b.put(&stored))
    });
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(write).map(
        move |result, act, _| match result {
            Ok(Ok(())) => {
                act.activate_peer(record);
                Ok(Reply::ok(answer))
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot store a paired peer in loopsy.db");
                Err(ApiError::internal(
                    "cannot store the peer; see the daemon log",
                ))
            }
            Err(_) => Err(ApiError::internal("the peer store task failed")),
        },
    )))
}

impl Router {
    /// Starts (or restarts) the link of a stored peer and accepts its credential.
    pub(super) fn activate_peer(&mut self, record: PeerRecord) {
        tracing::info!(peer = %record.label(), "paired; peer stored");
        let link_record = record.clone();
        let report = self.self_address.clone().map(|a| a.recipient());
        let link = PeerLink::start_in_arbiter(&self.services.peers, move |_| match report {
            Some(report) => PeerLink::new(link_record).reporting_to(report),
            None => PeerLink::new(link_record),
        });
        if let Some((_, old)) = self
            .peers
            .links
            .insert(record.node_id.clone(), (record, link))
        {
            old.do_send(StopLink);
        }
        self.rebuild_auth();
    }
}

impl Handler<crate::peers::link::LinkHealth> for Router {
    type Result = ();

    fn handle(&mut self, health: crate::peers::link::LinkHealth, _: &mut Self::Context) {
        if self.peers.links.contains_key(&health.node_id) {
            self.peers.online.insert(health.node_id, health.online);
        }
    }
}

impl Handler<StorePeer> for Router {
    type Result = ResponseActFuture<Self, Result<(), ApiError>>;

    fn handle(&mut self, StorePeer(record): StorePeer, _: &mut Self::Context) -> Self::Result {
        match store_then(self, record, Value::Null) {
            Work::Later(pending) => Box::pin(pending.map(|r, _, _| r.map(drop))),
            Work::Done(r) => Box::pin(actix::fut::ready(r.map(drop))),
        }
    }
}

/// Stops accepting a peer's credential and stops its link, at once.
fn forget(router: &mut Router, node_id: &str) -> Option<(PeerRecord, Addr<PeerLink>)> {
    let removed = router.peers.links.remove(node_id);
    router.peers.online.remove(node_id);
    // Its open framed connections (attached sessions, streams) end now too.
    if let Some(ends) = router.peers.framed.remove(node_id) {
        let _ = ends.send(true);
    }
    router.rebuild_auth();
    removed
}

fn remove_stored(
    router: &Router,
    node_id: String,
) -> impl std::future::Future<Output = Result<bool, ApiError>> + 'static {
    let data_dir = router.settings.data_dir.clone();
    let task = actix_rt::task::spawn_blocking(move || {
        PeerBook::open(&data_dir).and_then(|b| b.remove(&node_id))
    });
    async move {
        match task.await {
            Ok(Ok(removed)) => Ok(removed),
            _ => Err(ApiError::internal(
                "cannot remove the peer from loopsy.db; see the daemon log",
            )),
        }
    }
}

fn remove(router: &mut Router, name: &str) -> Work {
    let node_id = match router.peers.named(name) {
        Ok((node_id, _)) => node_id,
        Err(e) => return Work::Done(Err(e)),
    };
    let Some((record, link)) = forget(router, &node_id) else {
        return Work::Done(Err(ApiError::new(
            code::PEER_NOT_FOUND,
            404,
            "that peer is gone already",
        )));
    };
    let stored = remove_stored(router, node_id);
    let label = record.label();
    later(async move {
        stored.await?;
        let told = link
            .send(PeerCall {
                method: loopsy_transports::wire::method::PEER_UNPAIR.to_owned(),
                params: json!({}),
                within: UNPAIR_TIMEOUT,
            })
            .await;
        link.do_send(StopLink);
        let told = matches!(told, Ok(Ok(_)));
        Ok(json!({
            "removed": label,
            "peerTold": told,
            "note": if told { "removed on both machines" } else { "removed here; the peer did not answer, so remove this machine there too (`loopsy peers remove`)" },
        }))
    })
}

fn call(router: &mut Router, name: &str, method: String, params: Option<Value>) -> Work {
    if method.starts_with("peer.") || method.starts_with("peers.") || method.len() > 64 {
        return Work::Done(Err(ApiError::bad_request(format!(
            "'{method}' cannot be asked of a peer through another"
        ))));
    }
    let link = match router.peers.named(name) {
        Ok((_, link)) => link,
        Err(e) => return Work::Done(Err(e)),
    };
    let params = params.unwrap_or_else(|| json!({}));
    // A buffered run lasts as long as its own timeout (ms), which the peer bounds.
    // (The CLI sends it as a float; anything not a sane number gets the default.)
    let asked = params
        .get("timeout")
        .and_then(Value::as_f64)
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_millis(ms.min(MAX_CALL.as_millis() as f64) as u64));
    let within = match (method.as_str(), asked) {
        (loopsy_transports::wire::method::EXEC_RUN, Some(asked)) => asked + CALL_MARGIN,
        (loopsy_transports::wire::method::EXEC_RUN, None) => {
            Duration::from_millis(router.settings.config.execution.default_timeout) + CALL_MARGIN
        }
        _ => CALL_TIMEOUT,
    }
    .min(MAX_CALL);
    later(async move {
        link.send(PeerCall {
            method,
            params,
            within,
        })
        .await
        .map_err(|_| ApiError::unavailable("the peer link stopped; try again"))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_and_without_ports() {
        assert_eq!(
            parse_address("kai.local").ok(),
            Some(("kai.local".into(), 19533))
        );
        assert_eq!(
            parse_address("10.0.0.2:4000").ok(),
            Some(("10.0.0.2".into(), 4000))
        );
        assert_eq!(parse_address("[::1]:7").ok(), Some(("::1".into(), 7)));
        assert_eq!(parse_address("::1").ok(), Some(("::1".into(), 19533)));
        for bad in ["", "a b", "h:0", "h:99999", "user@h", "http://h", "[::1]x"] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }
}
