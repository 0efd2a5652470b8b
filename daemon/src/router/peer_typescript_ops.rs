//! Peers that run the original TypeScript Loopsy, which cannot pair: the owner
//! adds one with a key copied from it (`peers.typescript.add`), and mints a
//! key for it to call us with (`peers.typescript.invite`). Both are the
//! owner's, on the Unix socket only.
//!
//! Adding one over TLS pins the certificate it shows then (trust on first
//! use: a guard rail, since nothing vouches for that first certificate);
//! over plain HTTP, which the owner must ask for, the key crosses the LAN in
//! clear, as it does between two TypeScript Loopsies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::peer_tls::Trust;
use loopsy_transports::wire::{CopiedKey, method};
use serde_json::{Value, json};

use super::peer_ops::later;
use super::{Capabilities, Router, Work};
use crate::peers::client::{PeerClient, SMALL_ANSWER_BYTES, authority};
use crate::peers::pairing::join::StorePeer;
use crate::peers::pairing::protocol::clean;
use crate::peers::store::{Dialect, PeerBook, PeerRecord};
use crate::peers::typescript_keys::{self, TypeScriptKey};
use crate::secrets::{self, KeyDigest};

/// The original's default port (it serves one port, plain HTTP unless `tls.enabled`).
const TYPESCRIPT_PORT: u16 = crate::config::DEFAULT_PORT;
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The key a TypeScript peer's `/identity` needs, as a usable header value.
fn check_key(key: &CopiedKey) -> Result<String, ApiError> {
    let key = key.0.trim();
    let printable = key.chars().all(|c| c.is_ascii_graphic());
    if key.is_empty() || key.len() > 512 || !printable {
        return Err(ApiError::bad_request(
            "the key file should hold the peer's API key on one line (`loopsy key show` there, or its auth.apiKey)",
        ));
    }
    Ok(key.to_owned())
}

/// What the original's `capabilities` (`execute`, `transfer`, `context`,
/// `ai-tasks`) let us do there, in our names. Messages are context entries.
fn their_capabilities(identity: &Value) -> Capabilities {
    let listed: Vec<&str> = identity
        .get("capabilities")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut ours = Vec::new();
    for (theirs, mine) in [
        ("execute", "exec"),
        ("transfer", "transfer"),
        ("context", "context"),
        ("context", "messages"),
    ] {
        if listed.contains(&theirs) && !ours.contains(&mine.to_owned()) {
            ours.push(mine.to_owned());
        }
    }
    Capabilities::parse(&ours).unwrap_or_default()
}

fn field(identity: &Value, name: &str, default: &str) -> String {
    clean(
        identity
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or(default),
        128,
    )
}

pub(super) fn add(router: &mut Router, address: &str, key: &CopiedKey, plain_http: bool) -> Work {
    let (host, port) = match super::peer_pairing_ops::parse_address_or(address, TYPESCRIPT_PORT) {
        Ok(found) => found,
        Err(e) => return Work::Done(Err(e)),
    };
    let key = match check_key(key) {
        Ok(key) => key,
        Err(e) => return Work::Done(Err(e)),
    };
    // The original makes a new node id at every start, so a TypeScript peer
    // is known by where it is.
    let node_id = format!("typescript-{}", authority(&host, port));
    if router
        .peers
        .links
        .values()
        .any(|(r, _)| r.dialect == Dialect::Loopsy && r.address == host && r.port == port)
    {
        return Work::Done(Err(ApiError::bad_request(format!(
            "{host}:{port} is a paired loopsy daemon already; a TypeScript entry would only weaken it"
        ))));
    }
    let Some(store) = router.self_address.clone() else {
        return Work::Done(Err(ApiError::unavailable(
            "the daemon is starting; try again",
        )));
    };
    later(async move {
        let name = authority(&host, port);
        // Over TLS: meet its certificate without the key, then send the key
        // only to that certificate.
        let (trust, fingerprint) = if plain_http {
            (None, String::new())
        } else {
            let seen = Arc::new(Mutex::new(None));
            let probe = PeerClient::typescript(
                &name,
                &host,
                port,
                Some(Trust::Record(seen.clone())),
                None,
            )?;
            probe
                .call_limited(method::HEALTH, json!({}), PROBE_TIMEOUT, SMALL_ANSWER_BYTES)
                .await
                .map_err(|e| ApiError::new(e.code, e.status, format!(
                    "{}; if that TypeScript Loopsy serves plain HTTP (its default), add it again with --plain-http",
                    e.message
                )))?;
            let fingerprint = seen
                .lock()
                .ok()
                .and_then(|s| s.clone())
                .ok_or_else(|| ApiError::internal("no certificate was recorded"))?;
            (Some(Trust::Pinned(fingerprint.clone())), fingerprint)
        };
        let client = PeerClient::typescript(&name, &host, port, trust, Some(key.clone()))?;
        let identity = client
            .call_limited(method::IDENTITY, json!({}), PROBE_TIMEOUT, SMALL_ANSWER_BYTES)
            .await
            .map_err(|e| match e.status {
                401 | 403 => ApiError::new(
                    code::INVALID_KEY,
                    400,
                    format!("{name} refused the key; check the key file (its auth.apiKey, or a key in its auth.allowedKeys)"),
                ),
                _ => e,
            })?;
        let now = crate::sessions::now_ms() as i64;
        let record = PeerRecord {
            node_id,
            hostname: field(&identity, "hostname", &host),
            address: host,
            port,
            cert_fp: fingerprint,
            // It calls us with a key minted by `peers invite --for-typescript`,
            // never with anything kept here.
            inbound_digest: KeyDigest::of(
                &secrets::generate_api_key().map_err(|e| ApiError::internal(e.to_string()))?,
            ),
            inbound: Capabilities::none(),
            outbound_secret: key,
            outbound: their_capabilities(&identity),
            version: field(&identity, "version", "unknown"),
            platform: field(&identity, "platform", "unknown"),
            paired_at: now,
            last_seen: Some(now),
            dialect: Dialect::TypeScript { plain_http },
        };
        let answer = json!({
            "added": record.label(),
            "hostname": record.hostname,
            "version": record.version,
            "certFingerprint": record.cert_fp,
            "weMay": record.outbound.names(),
            "plainHttp": plain_http,
        });
        store
            .send(StorePeer(record))
            .await
            .map_err(|_| ApiError::unavailable("the daemon is stopping"))??;
        Ok(answer)
    })
}

pub(super) fn invite(router: &mut Router, name: &str, grants: Option<&[String]>) -> Work {
    if let Err(problem) = typescript_keys::check_name(name) {
        return Work::Done(Err(ApiError::bad_request(problem)));
    }
    // A name that also named a peer would make `peers remove NAME` ambiguous.
    let taken = router.settings.config.auth.allowed_keys.contains_key(name)
        || router.peers.typescript_keys.iter().any(|k| k.name == name)
        || router.peers.named(name).is_ok();
    if taken {
        return Work::Done(Err(ApiError::bad_request(format!(
            "'{name}' names a key already; `loopsy peers remove {name}` first, or choose another name"
        ))));
    }
    let capabilities = match grants {
        None => Capabilities::peer_default(),
        Some(names) => match Capabilities::parse(names) {
            Ok(c) => c,
            Err(problem) => return Work::Done(Err(ApiError::bad_request(problem))),
        },
    };
    let key = match secrets::generate_api_key() {
        Ok(key) => key,
        Err(e) => return Work::Done(Err(ApiError::internal(e.to_string()))),
    };
    let minted = TypeScriptKey {
        name: name.to_owned(),
        digest: KeyDigest::of(&key),
        capabilities,
        created_at: crate::sessions::now_ms() as i64,
    };
    let data_dir = router.settings.data_dir.clone();
    let stored = minted.clone();
    let write = actix_rt::task::spawn_blocking(move || {
        PeerBook::open(&data_dir).and_then(|b| b.put_typescript_key(&stored))
    });
    let ours = router.identity.hostname.clone();
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(write).map(
        move |written, router, _| match written {
            Ok(Ok(true)) => {
                tracing::info!(name = %minted.name, "minted a key for a TypeScript peer");
                let answer = json!({
                    "name": minted.name,
                    "key": key,
                    "theyMay": minted.capabilities.names(),
                    "allowedKeysEntry": format!("auth:\n  allowedKeys:\n    {ours}: \"{key}\""),
                });
                router.peers.typescript_keys.push(minted);
                router.rebuild_auth();
                Ok(loopsy_transports::wire::Reply::ok(answer))
            }
            Ok(Ok(false)) => Err(ApiError::bad_request(
                "that name was taken a moment ago; choose another",
            )),
            _ => Err(ApiError::internal(
                "cannot store the key in loopsy.db; see the daemon log",
            )),
        },
    )))
}

/// Removes the minted key `name`, if there is one: `None` when there is not.
pub(super) fn remove_key(router: &mut Router, name: &str) -> Option<Work> {
    let at = router
        .peers
        .typescript_keys
        .iter()
        .position(|k| k.name == name)?;
    router.peers.typescript_keys.remove(at);
    router.rebuild_auth();
    let data_dir = router.settings.data_dir.clone();
    let name = name.to_owned();
    let task = actix_rt::task::spawn_blocking({
        let name = name.clone();
        move || PeerBook::open(&data_dir).and_then(|b| b.remove_typescript_key(&name))
    });
    Some(later(async move {
        match task.await {
            Ok(Ok(_)) => Ok(json!({
                "removed": name,
                "peerTold": false,
                "note": "the key no longer works here; delete it from that TypeScript Loopsy's auth.allowedKeys too",
            })),
            _ => Err(ApiError::internal(
                "the key no longer works, but removing it from loopsy.db failed; see the daemon log",
            )),
        }
    }))
}

/// The minted keys, for `peers.list` (never the keys themselves).
pub(super) fn listed_keys(router: &Router) -> Vec<Value> {
    router
        .peers
        .typescript_keys
        .iter()
        .map(|k| {
            json!({"name": k.name, "kind": "typescript key (it calls us)", "paired": false,
                   "status": "key", "theyMay": k.capabilities.names(), "createdAt": k.created_at})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_originals_capabilities_become_ours() {
        let caps = their_capabilities(
            &json!({"capabilities": ["execute", "transfer", "context", "ai-tasks"]}),
        );
        assert_eq!(
            caps.names(),
            vec!["exec", "transfer", "context", "messages"]
        );
        assert_eq!(their_capabilities(&json!({})), Capabilities::none());
        assert!(check_key(&CopiedKey(" abc \n".into())).is_ok_and(|k| k == "abc"));
        assert!(check_key(&CopiedKey("a b".into())).is_err());
        assert!(check_key(&CopiedKey(String::new())).is_err());
    }
}
