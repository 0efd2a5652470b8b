//! The operations the Router answers itself: they are cheap, or (key rotation)
//! move their blocking part off the Router's thread.

use actix::prelude::*;
use loopsy_transports::error::ApiError;
use loopsy_transports::wire::Reply;
use serde_json::json;

use super::Router;
use crate::config;
use crate::identity::{DAEMON_VERSION, PROTOCOL_VERSION};
use crate::secrets;

fn uptime_ms(router: &Router) -> u64 {
    router.started.elapsed().as_millis() as u64
}

/// `GET /api/v1/health` (spec §1.6).
pub fn health(router: &Router) -> Reply {
    Reply::ok(json!({
        "status": "ok",
        "nodeId": router.identity.node_id,
        "uptime": uptime_ms(router),
        "version": PROTOCOL_VERSION,
    }))
}

/// `GET /api/v1/identity` (spec §1.6). Capabilities list only what this daemon serves.
pub fn identity(router: &Router) -> Reply {
    let id = &router.identity;
    Reply::ok(json!({
        "nodeId": id.node_id,
        "hostname": id.hostname,
        "platform": id.platform,
        "version": PROTOCOL_VERSION,
        "port": id.port,
        "capabilities": [],
    }))
}

/// `GET /api/v1/status` (spec §1.6), plus where this daemon lives, for the CLI.
pub fn status(router: &Router) -> Reply {
    let id = &router.identity;
    let (total, online, offline) = router.peers.counts();
    let server = &router.settings.config.server;
    Reply::ok(json!({
        "nodeId": id.node_id,
        "hostname": id.hostname,
        "platform": id.platform,
        "version": PROTOCOL_VERSION,
        "uptime": uptime_ms(router),
        "peers": { "total": total, "online": online, "offline": offline },
        "jobs": { "active": router.jobs.active(), "total": router.jobs.total() },
        "context": { "entries": router.services.context.entries() },
        "mcpClients": router.mcp.list(),
        "daemon": {
            "version": DAEMON_VERSION,
            "pid": std::process::id(),
            "listen": format!("{}:{}", server.host, server.port),
            // Where peers pair and call (TLS), and the certificate they pin.
            "peerListen": format!("{}:{}", server.host, router.peers.port),
            "certFingerprint": router.peers.cert_fp,
            "dataDir": router.settings.data_dir.root().display().to_string(),
            "socket": router.settings.data_dir.socket().display().to_string(),
            // The phone app this daemon embeds; the app warns when it is another.
            "webApp": loopsy_webapp::build_id(),
        },
    }))
}

pub fn key_show(router: &Router) -> Reply {
    Reply::ok(json!({ "apiKey": router.settings.config.auth.api_key }))
}

/// Env variables that would override a key written to the file.
const KEY_ENV: &[&str] = &[
    "LOOPSY_API_KEY",
    "LOOPSY_AUTH__API_KEY",
    "LOOPSY_AUTH__APIKEY",
];

/// New key → `config.yaml` (atomic, `0600`) → auth table, in that order, so the
/// old key stops working the moment the new one is durable.
pub fn key_rotate(router: &mut Router) -> ResponseActFuture<Router, Result<Reply, ApiError>> {
    if let Some(var) = KEY_ENV.iter().find(|var| std::env::var_os(var).is_some()) {
        let error = ApiError::bad_request(format!(
            "The daemon's key comes from the environment variable {var}; change it there and restart"
        ));
        return Box::pin(actix::fut::ready(Err(error)));
    }
    let data_dir = router.settings.data_dir.clone();
    let write = actix_rt::task::spawn_blocking(move || -> Result<_, String> {
        let key = secrets::generate_api_key().map_err(|e| e.to_string())?;
        config::set_api_key(&data_dir, &key).map_err(|e| e.to_string())?;
        Ok((key, super::config_mtime(&data_dir)))
    });
    Box::pin(actix::fut::wrap_future::<_, Router>(write).map(
        |written, router, _ctx| match written {
            Ok(Ok((key, mtime))) => {
                let mut settings = router.settings.clone();
                settings.config.auth.api_key = key.clone();
                router.apply(settings, mtime);
                tracing::info!("API key rotated; the previous key no longer works");
                Ok(Reply::ok(json!({ "apiKey": key })))
            }
            Ok(Err(message)) => Err(ApiError::internal(format!(
                "Could not save the new key: {message}"
            ))),
            Err(_) => Err(ApiError::internal(
                "The key rotation task failed; the old key is still in use",
            )),
        },
    ))
}

/// `daemon.stop`: the daemon drains and exits.
pub fn stop(router: &Router) -> Reply {
    tracing::info!("stop requested by the owner");
    router.shutdown.notify_one();
    Reply::ok(json!({ "status": "stopping" }))
}

/// The owner's relay and phone operations, answered by the relay link.
pub fn to_relay_link(router: &Router, request: loopsy_transports::wire::Request) -> super::Work {
    let relay = router.services.relay.clone();
    super::Work::Later(Box::pin(actix::fut::wrap_future(async move {
        relay
            .send(crate::phone::RelayRequest { request })
            .await
            .map_err(|_| ApiError::unavailable("the relay link stopped; restart the daemon"))?
    })))
}
