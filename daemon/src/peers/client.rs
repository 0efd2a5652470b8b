//! The client side of the peer wire: JSON-RPC 2.0 at `POST /rpc` on a peer's
//! TLS listener, trusting only the pinned certificate (or, while pairing,
//! recording whichever certificate it meets). A TypeScript Loopsy peer is
//! asked the same things over its REST routes instead, over TLS with its
//! pinned certificate or, when its user said so, plain HTTP. Every call is bounded in time
//! and in the size of the answer, so a peer that hangs, trickles bytes or
//! answers garbage costs a clear error, never a stuck actor.

use std::time::Duration;

use loopsy_transports::error::{ApiError, code};
use loopsy_transports::peer_tls::{self, Trust};
use serde_json::{Value, json};

/// Largest answer to a health check or a pairing step.
pub const SMALL_ANSWER_BYTES: usize = 64 * 1024;
/// Largest answer read from a peer.
pub const MAX_ANSWER_BYTES: usize = 48 * 1024 * 1024;
/// How long an idle pooled connection is reused.
const POOLED_IDLE: Duration = Duration::from_secs(3);
/// How long a connection may take to open (TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One peer's address and how far it is trusted.
pub struct PeerClient {
    http: awc::Client,
    /// `https://host:port`.
    base: String,
    url: String,
    bearer: Option<String>,
    /// Who it is, for error messages.
    name: String,
    /// A TypeScript Loopsy: REST routes instead of `/rpc`.
    rest_dialect: bool,
}

pub fn unreachable(name: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        code::PEER_UNREACHABLE,
        502,
        format!("peer {name}: {problem}"),
    )
}

/// `host:port` as a URL authority (IPv6 literals in brackets).
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl PeerClient {
    /// A client for `address:port`; `bearer` is sent only with a pinned certificate.
    pub fn new(
        name: &str,
        address: &str,
        port: u16,
        trust: Trust,
        bearer: Option<String>,
    ) -> Result<Self, ApiError> {
        let bearer = match trust {
            Trust::Pinned(_) => bearer,
            // A certificate nobody vouched for never receives a credential.
            Trust::Record(_) => None,
        };
        Self::build(name, address, port, Some(trust), bearer, false)
    }

    /// A client for a TypeScript Loopsy at `address:port`: over TLS with
    /// `trust` (the credential only with a pinned certificate), or over plain
    /// HTTP when `trust` is `None` (the user chose that for this peer).
    pub fn typescript(
        name: &str,
        address: &str,
        port: u16,
        trust: Option<Trust>,
        bearer: Option<String>,
    ) -> Result<Self, ApiError> {
        let bearer = match trust {
            Some(Trust::Record(_)) => None,
            _ => bearer,
        };
        Self::build(name, address, port, trust, bearer, true)
    }

    fn build(
        name: &str,
        address: &str,
        port: u16,
        trust: Option<Trust>,
        bearer: Option<String>,
        rest_dialect: bool,
    ) -> Result<Self, ApiError> {
        let mut connector = awc::Connector::new().timeout(CONNECT_TIMEOUT);
        let scheme = match trust {
            Some(trust) => {
                let tls = peer_tls::client_config(trust)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                connector = connector.rustls_0_23(std::sync::Arc::new(tls));
                "https"
            }
            None => "http",
        };
        // Shorter than the server's keep-alive (actix-web's 5 s): a pooled
        // connection the peer already closed would fail the next request
        // mid-body (a push's broken pipe) instead of opening a new one.
        let connector = connector.conn_keep_alive(POOLED_IDLE);
        Ok(Self {
            http: awc::Client::builder()
                .connector(connector)
                .disable_timeout()
                .finish(),
            base: format!("{scheme}://{}", authority(address, port)),
            url: format!("{scheme}://{}/rpc", authority(address, port)),
            bearer,
            name: name.to_owned(),
            rest_dialect,
        })
    }

    /// A REST request to `path` (`/api/v1/…`) with the credential, for the
    /// calls JSON-RPC cannot carry (file bodies). No timeout of its own: the
    /// caller bounds it by progress.
    pub fn rest(&self, path: &str) -> awc::ClientRequest {
        let request = self.http.post(format!("{}{path}", self.base));
        match &self.bearer {
            Some(bearer) => request.bearer_auth(bearer),
            None => request,
        }
    }

    /// A WebSocket to `path` with the credential (the framed connection).
    pub fn ws(&self, path: &str) -> awc::ws::WebsocketsRequest {
        let url = format!("ws{}", self.base.strip_prefix("http").unwrap_or(&self.base)) + path;
        let request = self.http.ws(url);
        match &self.bearer {
            Some(bearer) => request.bearer_auth(bearer),
            None => request,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a TypeScript Loopsy (REST routes, no framed connections).
    pub fn is_typescript(&self) -> bool {
        self.rest_dialect
    }

    /// Calls `method`; the peer's error answers come back as errors with its
    /// status and code, everything else wrong as 502/504.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        within: Duration,
    ) -> Result<Value, ApiError> {
        self.call_limited(method, params, within, MAX_ANSWER_BYTES)
            .await
    }

    /// As `call`, reading at most `limit` bytes of answer (health checks and
    /// pairing, whose answers are small, take 64 KiB: `SMALL_ANSWER_BYTES`).
    pub async fn call_limited(
        &self,
        method: &str,
        params: Value,
        within: Duration,
        limit: usize,
    ) -> Result<Value, ApiError> {
        if self.rest_dialect {
            return self.call_rest(method, &params, within, limit).await;
        }
        let name = &self.name;
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let work = async {
            let mut request = self.http.post(&self.url);
            if let Some(bearer) = &self.bearer {
                request = request.bearer_auth(bearer);
            }
            let mut response = request
                .send_json(&body)
                .await
                .map_err(|e| unreachable(name, format!("cannot reach it ({e})")))?;
            let bytes = response
                .body()
                .limit(limit)
                .await
                .map_err(|e| unreachable(name, format!("its answer is unreadable ({e})")))?;
            serde_json::from_slice::<Value>(&bytes)
                .map_err(|_| unreachable(name, "it answered something that is not JSON-RPC"))
        };
        let answer = tokio::time::timeout(within, work).await.map_err(|_| {
            ApiError::new(
                code::PEER_UNREACHABLE,
                504,
                format!("peer {name} did not answer within {} s", within.as_secs()),
            )
        })??;
        read_answer(name, answer)
    }
}

impl PeerClient {
    /// `method` as the TypeScript Loopsy's REST route for it.
    async fn call_rest(
        &self,
        method: &str,
        params: &Value,
        within: Duration,
        limit: usize,
    ) -> Result<Value, ApiError> {
        let name = &self.name;
        let rest = super::typescript_rest::route(name, method, params)?;
        let work = async {
            let mut request = self
                .http
                .request(rest.verb, format!("{}{}", self.base, rest.path));
            if let Some(bearer) = &self.bearer {
                request = request.bearer_auth(bearer);
            }
            let sent = match &rest.body {
                Some(body) => request.send_json(body).await,
                None => request.send().await,
            };
            let mut response =
                sent.map_err(|e| unreachable(name, format!("cannot reach it ({e})")))?;
            let bytes = response
                .body()
                .limit(limit)
                .await
                .map_err(|e| unreachable(name, format!("its answer is unreadable ({e})")))?;
            let status = response.status().as_u16();
            if !response.status().is_success() {
                return Err(rest_refusal(name, status, &bytes));
            }
            serde_json::from_slice::<Value>(&bytes)
                .map_err(|_| unreachable(name, "it answered something that is not JSON"))
        };
        tokio::time::timeout(within, work).await.map_err(|_| {
            ApiError::new(
                code::PEER_UNREACHABLE,
                504,
                format!("peer {name} did not answer within {} s", within.as_secs()),
            )
        })?
    }
}

/// A REST error body (`{"error":{code,message}}`) as the peer stated it.
pub fn rest_refusal(name: &str, status: u16, body: &[u8]) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(|m| crate::peers::pairing::protocol::clean(m, 1000))
        .unwrap_or_else(|| format!("it answered HTTP {status}"));
    let loopsy_code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(code::PEER_UNREACHABLE);
    let status = if (400..600).contains(&status) {
        status
    } else {
        502
    };
    ApiError::new(loopsy_code, status, format!("peer {name}: {message}"))
}

/// The result of a JSON-RPC answer, or its error as the peer stated it.
pub(super) fn read_answer(name: &str, mut answer: Value) -> Result<Value, ApiError> {
    if let Some(result) = answer.get_mut("result") {
        return Ok(result.take());
    }
    let Some(error) = answer.get("error") else {
        return Err(unreachable(
            name,
            "it answered JSON without a result or an error",
        ));
    };
    let message = crate::peers::pairing::protocol::clean(
        error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message"),
        1000,
    );
    let data = error.get("data");
    let status = data
        .and_then(|d| d.get("httpStatus"))
        .and_then(Value::as_u64)
        .filter(|s| (400..600).contains(s))
        .unwrap_or(502) as u16;
    let loopsy_code = data
        .and_then(|d| d.get("loopsyCode"))
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(code::PEER_UNREACHABLE);
    Err(ApiError::new(
        loopsy_code,
        status,
        format!("peer {name}: {message}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_and_errors_keep_their_status() {
        assert_eq!(
            read_answer("p", json!({"result": {"ok": 1}})).ok(),
            Some(json!({"ok": 1}))
        );
        let refused = read_answer(
            "p",
            json!({"error": {"code": -32000, "message": "no", "data": {"httpStatus": 403, "loopsyCode": 1002}}}),
        );
        assert!(refused.is_err_and(|e| e.status == 403 && e.message.contains("peer p: no")));
        let odd = read_answer("p", json!({"error": {"data": {"httpStatus": 200}}}));
        assert!(odd.is_err_and(|e| e.status == 502));
        assert!(read_answer("p", json!([])).is_err());
        assert_eq!(authority("::1", 5), "[::1]:5");
        assert_eq!(authority("10.0.0.2", 5), "10.0.0.2:5");
    }
}
