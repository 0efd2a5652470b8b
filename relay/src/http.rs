//! The relay's plain HTTP endpoints: health, metrics, device registration,
//! pair tokens, and the phone list with revocation.

use actix_web::{HttpRequest, HttpResponse, web};
use loopsy_transports::secrets::{KeyDigest, generate_api_key};
use serde::Deserialize;
use serde_json::json;

use crate::access::bearer;
use crate::metrics;
use crate::rooms::RevokePhone;
use crate::state::{DeviceQuery, PhoneQuery, RelayState, refuse};

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "ok": true,
        "service": "loopsy-relay",
        "version": env!("CARGO_PKG_VERSION"),
        "ts": crate::now_ms(),
    }))
}

/// Counters for Prometheus, behind the `--metrics-secret-file` bearer; off without it.
pub async fn metrics(req: HttpRequest, state: web::Data<RelayState>) -> HttpResponse {
    let Some(required) = &state.metrics_secret else {
        return refuse(
            404,
            "metrics are off; start the relay with --metrics-secret-file",
        );
    };
    if !bearer(&req).is_some_and(|presented| KeyDigest::of(&presented).matches(required)) {
        metrics::add(&state.metrics.rejected_auth, 1);
        return refuse(401, "metrics need the relay's metrics secret as a bearer");
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

fn too_many_registrations(state: &RelayState, retry: u64) -> HttpResponse {
    metrics::add(&state.metrics.rejected_rate, 1);
    HttpResponse::TooManyRequests()
        .insert_header(("Retry-After", retry.to_string()))
        .body("too many registrations (from this address, or at this relay); try again later")
}

/// The store did not answer: the caller may try again (503), and the log says why.
pub fn store_failed(error: &crate::store::StoreError) -> HttpResponse {
    tracing::error!(%error, "the relay's storage failed");
    HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", "2"))
        .content_type("text/plain; charset=utf-8")
        .body("the relay's storage is not answering; try again in a moment")
}

pub async fn register(req: HttpRequest, state: web::Data<RelayState>) -> HttpResponse {
    // Pages of other sites must not spend this relay's registrations.
    if !crate::access::page_origin_allowed(&req, &state.allowed_origins) {
        metrics::add(&state.metrics.rejected_origin, 1);
        return refuse(403, "origin not allowed");
    }
    let Some(ip) = crate::access::client_ip(&req, &state.trusted_proxies) else {
        return refuse(400, "no peer address");
    };
    // This node's windows first (no database round trip for a flood; they
    // count attempts without the secret too, so it cannot be guessed fast),
    // then the secret, then the fleet's windows (PostgreSQL; one SQLite node
    // is its own fleet), which only callers with the secret reach.
    if let Err(retry) = state.registrations.check(ip) {
        return too_many_registrations(&state, retry);
    }
    if let Some(required) = &state.registration_secret {
        let presented = req
            .headers()
            .get("x-registration-secret")
            .and_then(|v| v.to_str().ok());
        if !presented.is_some_and(|p| KeyDigest::of(p).matches(required)) {
            metrics::add(&state.metrics.rejected_auth, 1);
            return refuse(
                403,
                "registration needs the relay's registration secret (X-Registration-Secret)",
            );
        }
    }
    let fleet = state
        .store
        .admit_registration(
            &ip.to_string(),
            crate::now_ms(),
            state.registrations.per_ip_limit(),
            state.registrations.total_limit(),
        )
        .await;
    match fleet {
        Ok(Ok(())) => {}
        Ok(Err(retry)) => return too_many_registrations(&state, retry),
        Err(e) => return store_failed(&e),
    }
    let Ok(secret) = generate_api_key() else {
        return refuse(500, "the relay's random source failed");
    };
    let device_id = uuid::Uuid::new_v4().to_string();
    let digest = KeyDigest::of(&secret);
    match state
        .store
        .register_device(&device_id, &digest, crate::now_ms())
        .await
    {
        Ok(()) => {
            metrics::add(&state.metrics.registrations, 1);
            HttpResponse::Created().json(json!({
                "deviceId": device_id,
                "deviceSecret": secret,
                "relayUrl": state.public_url,
            }))
        }
        Err(e) => store_failed(&e),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IssueBody {
    ttl_seconds: Option<u64>,
    /// The daemon's own token (derived from the pairing link's seed): its id
    /// (32 hex) and the SHA-256 of the token (64 hex). Without them the relay
    /// makes a token and returns it.
    token_id: Option<String>,
    token_digest: Option<String>,
}

/// A token the daemon made, as `(id, digest)`; `Err` names what is wrong.
fn daemons_token(body: &IssueBody) -> Result<Option<(String, KeyDigest)>, &'static str> {
    match (&body.token_id, &body.token_digest) {
        (None, None) => Ok(None),
        (Some(id), Some(digest)) => {
            let hex = |s: &str, n: usize| {
                s.len() == n
                    && s.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            };
            if !hex(id, 32) {
                return Err("tokenId must be 32 lower-case hex digits");
            }
            let digest = loopsy_transports::secrets::from_hex32(digest)
                .filter(|_| hex(digest, 64))
                .and_then(|bytes| KeyDigest::from_bytes(&bytes))
                .ok_or("tokenDigest must be 64 lower-case hex digits")?;
            Ok(Some((id.clone(), digest)))
        }
        _ => Err("send tokenId and tokenDigest together, or neither"),
    }
}

/// Shortest lifetime of a pair token.
const MIN_PAIR_TTL: u64 = 30;
/// Lifetime of a pair token when none is asked for.
const DEFAULT_PAIR_TTL: u64 = 600;

pub async fn issue_pair_token(
    req: HttpRequest,
    query: web::Query<DeviceQuery>,
    body: Option<web::Json<IssueBody>>,
    state: web::Data<RelayState>,
) -> HttpResponse {
    let Some(device_id) = query.into_inner().device_id.filter(|d| !d.is_empty()) else {
        return refuse(400, "device_id required");
    };
    if let Some(no) = state
        .device_authorized(&device_id, bearer(&req))
        .await
        .refusal("missing or wrong device secret")
    {
        return no;
    }
    let body = body.map(|b| b.into_inner()).unwrap_or_default();
    let asked = body.ttl_seconds.unwrap_or(DEFAULT_PAIR_TTL);
    let ttl = asked.clamp(MIN_PAIR_TTL, state.max_pair_ttl.as_secs().max(MIN_PAIR_TTL));
    let (token, token_id, digest) = match daemons_token(&body) {
        Ok(Some((id, digest))) => (None, id, digest),
        Ok(None) => {
            let Ok(token) = generate_api_key() else {
                return refuse(500, "the relay's random source failed");
            };
            let digest = KeyDigest::of(&token);
            (Some(token), uuid::Uuid::new_v4().to_string(), digest)
        }
        Err(problem) => return refuse(400, problem),
    };
    let expires_at = crate::now_ms() / 1000 + ttl;
    let most = state.max_pair_tokens_per_device;
    let now = crate::now_ms() / 1000;
    // Expired tokens are swept at most once a minute per node, not per request.
    let last = state.last_purge.load(std::sync::atomic::Ordering::Relaxed);
    if now >= last + 60
        && state
            .last_purge
            .compare_exchange(
                last,
                now,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            )
            .is_ok()
    {
        let _ = state.store.purge_expired_tokens(now).await;
    }
    match state
        .store
        .issue_pair_token(&device_id, &digest, &token_id, expires_at, now, most)
        .await
    {
        Ok(true) => HttpResponse::Created().json(json!({
            // Only a token the relay made is sent back; the daemon's own it knows.
            "token": token,
            "tokenId": token_id,
            "expiresAt": expires_at,
            // Where phones open the app, when not at this relay.
            "appUrl": state.app_url.as_ref().map(|app| app.page()),
        })),
        Ok(false) => {
            metrics::add(&state.metrics.rejected_rate, 1);
            refuse(
                429,
                "this device holds as many pairing tokens as the relay allows; use one or let one expire",
            )
        }
        Err(crate::store::StoreError::Conflict) => {
            refuse(409, "a pairing token with this id or digest exists already")
        }
        Err(e) => store_failed(&e),
    }
}

pub async fn list_phones(
    req: HttpRequest,
    device: web::Path<String>,
    state: web::Data<RelayState>,
) -> HttpResponse {
    let device_id = device.into_inner();
    if let Some(no) = state
        .device_authorized(&device_id, bearer(&req))
        .await
        .refusal("missing or wrong device secret")
    {
        return no;
    }
    match state.store.phones(&device_id).await {
        Ok(phones) => HttpResponse::Ok().json(json!({ "phones": phones })),
        Err(e) => store_failed(&e),
    }
}

pub async fn revoke_phone(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<RelayState>,
) -> HttpResponse {
    let (device_id, phone_id) = path.into_inner();
    if let Some(no) = state
        .device_authorized(&device_id, bearer(&req))
        .await
        .refusal("missing or wrong device secret")
    {
        return no;
    }
    remove_phone(&state, device_id, phone_id).await
}

/// A phone removes itself (the web app's "forget this laptop"). An app on an
/// allowed origin of its own may ask (CORS); pages of other sites may not.
pub async fn revoke_self(
    req: HttpRequest,
    device: web::Path<String>,
    query: web::Query<PhoneQuery>,
    state: web::Data<RelayState>,
) -> HttpResponse {
    if !crate::access::page_origin_allowed(&req, &state.allowed_origins) {
        metrics::add(&state.metrics.rejected_origin, 1);
        return refuse(403, "origin not allowed");
    }
    let device_id = device.into_inner();
    let Some(phone_id) = query.into_inner().phone_id.filter(|p| !p.is_empty()) else {
        return with_cors(&req, refuse(400, "phone_id required"));
    };
    if let Some(no) = state
        .phone_authorized(&device_id, &phone_id, bearer(&req))
        .await
        .refusal("missing or wrong phone secret")
    {
        return with_cors(&req, no);
    }
    with_cors(&req, remove_phone(&state, device_id, phone_id).await)
}

/// The browser's question before an app on another origin sends `DELETE`
/// with a bearer: answered yes only for origins this relay allows.
pub async fn revoke_self_preflight(req: HttpRequest, state: web::Data<RelayState>) -> HttpResponse {
    if !crate::access::page_origin_allowed(&req, &state.allowed_origins) {
        metrics::add(&state.metrics.rejected_origin, 1);
        return refuse(403, "origin not allowed");
    }
    let mut answer = HttpResponse::NoContent();
    answer
        .insert_header(("Access-Control-Allow-Methods", "DELETE"))
        .insert_header(("Access-Control-Allow-Headers", "authorization"))
        .insert_header(("Access-Control-Max-Age", "600"));
    with_cors(&req, answer.finish())
}

/// Names the request's (already allowed) origin as the one that may read the answer.
fn with_cors(req: &HttpRequest, mut response: HttpResponse) -> HttpResponse {
    if let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN).cloned() {
        let headers = response.headers_mut();
        headers.insert(actix_web::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            actix_web::http::header::VARY,
            actix_web::http::header::HeaderValue::from_static("Origin"),
        );
    }
    response
}

async fn remove_phone(state: &RelayState, device_id: String, phone_id: String) -> HttpResponse {
    match state.store.remove_phone(&device_id, &phone_id).await {
        Ok(removed) => {
            if let Some(room) = state.rooms.existing(&device_id) {
                room.do_send(RevokePhone { phone_id });
            }
            if removed {
                HttpResponse::NoContent().finish()
            } else {
                refuse(404, "no such phone")
            }
        }
        Err(e) => store_failed(&e),
    }
}

pub async fn not_found() -> HttpResponse {
    refuse(404, "not found")
}
