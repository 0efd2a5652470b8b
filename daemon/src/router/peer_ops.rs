//! LAN peers as the Router decides them, beyond pairing (`peer_pairing_ops`):
//! the peer list, removal (here at once, there when it answers), calls and
//! tunnels through a peer's `PeerLink`, storing and linking a paired peer, and
//! what the Router keeps about peers (`PeerState`, the request's `Door`).

use std::collections::BTreeMap;
use std::time::Duration;

use actix::fut::ActorFutureExt;
use actix::prelude::*;
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::wire::{Evidence, PeerRequest, Reply, Request};
use serde_json::{Value, json};

use super::{Principal, Router, Work};
use crate::peers::discovery::ListDiscovered;
use crate::peers::link::{LinkStatus, PeerCall, PeerLink, StopLink};
use crate::peers::pairing::host::HostWindow;
use crate::peers::pairing::join::{JoinSession, StorePeer};
use crate::peers::store::{self, PeerBook, PeerRecord};
use crate::peers::typescript_keys::TypeScriptKey;

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
    /// The keys minted for TypeScript peers to call us with.
    pub typescript_keys: Vec<TypeScriptKey>,
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

    pub fn new(cert_fp: String, port: u16, typescript_keys: Vec<TypeScriptKey>) -> Self {
        Self {
            typescript_keys,
            cert_fp,
            port,
            window: None,
            joining: None,
            links: BTreeMap::new(),
            online: BTreeMap::new(),
            framed: BTreeMap::new(),
        }
    }

    /// The node ids paired now.
    pub fn paired_ids(&self) -> Vec<String> {
        self.links.keys().cloned().collect()
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

pub(super) fn done(result: Result<Value, ApiError>) -> Work {
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
    let Door { tls, .. } = router.door;
    match request {
        request @ (PeerRequest::PairOpen { .. }
        | PeerRequest::PairStatus
        | PeerRequest::PairConfirm(_)
        | PeerRequest::Hello { .. }
        | PeerRequest::Finish { .. }
        | PeerRequest::Step { .. }
        | PeerRequest::Join { .. }
        | PeerRequest::JoinStatus
        | PeerRequest::JoinConfirm(_)) => super::peer_pairing_ops::run(router, request),
        PeerRequest::List => {
            let links: Vec<_> = router
                .peers
                .links
                .values()
                .map(|(_, link)| link.clone())
                .collect();
            let paired = router.peers.paired_ids();
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
            let keys = super::peer_typescript_ops::listed_keys(router);
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
                peers.extend(keys);
                Ok(json!({"peers": peers}))
            })
        }
        PeerRequest::Remove { peer } => remove(router, &peer),
        PeerRequest::AddTypeScript {
            address,
            key,
            plain_http,
        } => super::peer_typescript_ops::add(router, &address, &key, plain_http),
        PeerRequest::InviteTypeScript { name, grants } => {
            super::peer_typescript_ops::invite(router, &name, grants.as_deref())
        }
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

/// Stores a peer both owners accepted, then answers `answer`.
pub(super) fn store_then(router: &mut Router, record: PeerRecord, answer: Value) -> Work {
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
        Err(e) => {
            return super::peer_typescript_ops::remove_key(router, name.trim())
                .unwrap_or(Work::Done(Err(e)));
        }
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
    if record.dialect != crate::peers::store::Dialect::Loopsy {
        link.do_send(StopLink);
        return later(async move {
            stored.await?;
            Ok(json!({
                "removed": label,
                "peerTold": false,
                "note": "removed here; the TypeScript Loopsy keeps its own keys (edit its auth.allowedKeys)",
            }))
        });
    }
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
    // A wait on a session lasts its own timeout (seconds), which the peer bounds.
    let waits = params
        .get("timeoutSec")
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_CALL.as_secs_f64())));
    let within = match (method.as_str(), asked) {
        (loopsy_transports::wire::method::SESSION_WAIT, _) => {
            waits.unwrap_or(Duration::from_secs(60)) + CALL_MARGIN
        }
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
