//! LAN pairing as the Router decides it: the owner's one host window
//! (`peers.pair.open|status|confirm`, socket only) and its joins
//! (`peers.join|join.status|join.confirm`, a `JoinSession` actor), and the
//! steps another daemon sends (`peer.pair.hello|finish|step`: public, over the
//! TLS listener only, from the address that began the pairing). The protocol
//! itself is `peers::pairing`; storing a pairing both owners accepted is
//! `peer_ops::store_then`.

use std::time::{Duration, Instant};

use actix::prelude::*;
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::wire::{PairDecision, PeerRequest};
use serde_json::{Value, json};

use super::peer_ops::{Door, done, later, store_then};
use super::{Capabilities, Router, Work};
use crate::peers::pairing::host::HostWindow;
use crate::peers::pairing::join::{JoinDecide, JoinSession, JoinStatus};
use crate::peers::pairing::protocol::{self, Introduction};

pub(super) fn run(router: &mut Router, request: PeerRequest) -> Work {
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
            let paired = router.peers.paired_ids();
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
            Some(join) => {
                later(async move { join.send(JoinStatus).await.map_err(|_| join_ended()) })
            }
            None => done(Ok(json!({"active": false}))),
        },
        PeerRequest::JoinConfirm(decision) => {
            let grants = match grants_of(&decision) {
                Ok(grants) => grants,
                Err(e) => return Work::Done(Err(e)),
            };
            match router.peers.joining.clone() {
                Some(join) => later(async move {
                    join.send(JoinDecide(grants))
                        .await
                        .map_err(|_| join_ended())?
                }),
                None => Work::Done(Err(ApiError::new(
                    code::PEER_WINDOW_NOT_FOUND,
                    404,
                    "no join in progress; start one with `loopsy pair <host>`",
                ))),
            }
        }
        _ => Work::Done(Err(ApiError::internal(
            "a request reached the pairing operations by mistake",
        ))),
    }
}

fn join_ended() -> ApiError {
    ApiError::new(
        code::PEER_WINDOW_NOT_FOUND,
        404,
        "the join ended; start again with `loopsy pair <host>`",
    )
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
    parse_address_or(address, crate::config::DEFAULT_PORT + 1)
}

/// `host[:port]`, the port defaulting to `default`.
pub fn parse_address_or(address: &str, default: u16) -> Result<(String, u16), ApiError> {
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
    let paired = router.peers.paired_ids();
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
