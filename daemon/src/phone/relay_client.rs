//! The relay's HTTP side, as the daemon uses it: registering, issuing pairing
//! tokens, checking what the relay answers (an expiry beyond what was asked is
//! refused), and the TLS client (rustls on aws-lc-rs, Mozilla roots plus an
//! optional private CA) shared with the WebSocket link.

use std::sync::Arc;
use std::time::Duration;

use loopsy_transports::error::ApiError;
use serde_json::Value;

/// A connection (TCP, TLS, upgrade) or an HTTP exchange must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The pairing window's lifetime when `mobile.pair` names none (the relay's default too).
pub const DEFAULT_PAIR_TTL_SECS: u64 = 600;
/// The shortest window the relay grants.
pub const MIN_PAIR_TTL_SECS: u64 = 30;
/// How far the relay's clock may run ahead of ours.
const CLOCK_SLACK_SECS: u64 = 60;

/// The lifetime of a pairing window from the relay's `expiresAt` (unix seconds):
/// never longer than asked for (plus clock slack), never already over. A relay
/// that answers otherwise is refused rather than trusted.
pub fn relay_expiry(expires_at: u64, now: u64, asked: Duration) -> Result<Duration, ApiError> {
    let remaining = expires_at.saturating_sub(now);
    if remaining == 0 || remaining > asked.as_secs() + CLOCK_SLACK_SECS {
        return Err(ApiError::unavailable(format!(
            "the relay answered a pairing expiry {remaining} s away where {} s were asked for; check the relay (is it a loopsy relay, and is its clock right?)",
            asked.as_secs()
        )));
    }
    Ok(Duration::from_secs(remaining.min(asked.as_secs())))
}

pub fn relay_error(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(format!("{what}: {e}"))
}

/// Roots a relay's certificate may chain to: the Mozilla set compiled in
/// (webpki-roots), plus the certificates of `ca_file` for a relay with a
/// private CA. TLS via rustls with the aws-lc-rs provider; HTTP/1.1 only
/// (WebSockets need it).
pub fn tls_client(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                format!(
                    "the CA file {} holds a bad certificate: {e}",
                    path.display()
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An HTTP/WebSocket client for the relay.
pub fn relay_client(ca_file: Option<&std::path::Path>) -> Result<awc::Client, ApiError> {
    let tls = tls_client(ca_file).map_err(ApiError::invalid_request)?;
    Ok(awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(tls))
        .timeout(HANDSHAKE_TIMEOUT)
        .finish())
}

/// Sends a request to the relay that should answer 201 with JSON; that JSON.
pub async fn created(
    request: awc::ClientRequest,
    body: Option<Value>,
    refused: &str,
) -> Result<Value, ApiError> {
    let request = request.timeout(HANDSHAKE_TIMEOUT);
    let sent = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    };
    let mut response = sent.map_err(|e| relay_error("cannot reach the relay", e))?;
    let body: Value = response
        .json()
        .await
        .map_err(|e| relay_error("the relay's answer is unreadable", e))?;
    if response.status() != 201 {
        return Err(relay_error(refused, response.status()));
    }
    Ok(body)
}

pub fn not_configured() -> ApiError {
    ApiError::invalid_request(
        "this machine is not registered at a relay; run `loopsy relay configure <url>` first",
    )
}

/// `ws://` or `wss://` for the relay's `http://` or `https://` URL.
pub fn ws_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_owned()
    }
}
