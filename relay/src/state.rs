//! What every request handler shares, and the checks of device and phone secrets.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use loopsy_transports::secrets::KeyDigest;

use crate::access::{Cidr, ConnectionCap, RegistrationLimits};
use crate::metrics::{self, Metrics};
use crate::rooms::Rooms;
use crate::store::{Store, StoreError};

pub struct RelayState {
    pub store: Arc<dyn Store>,
    pub rooms: Rooms,
    pub metrics: Arc<Metrics>,
    pub allowed_origins: Vec<String>,
    pub connection_cap: ConnectionCap,
    pub registrations: RegistrationLimits,
    /// When set, registering a device needs this secret.
    pub registration_secret: Option<KeyDigest>,
    /// When set, `GET /metrics` needs it; otherwise `/metrics` is off.
    pub metrics_secret: Option<KeyDigest>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
    /// Unused, unexpired pair tokens one device may hold.
    pub max_pair_tokens_per_device: u32,
    /// How the relay is reached from outside (`https://relay.example`).
    pub public_url: String,
    /// Where phones open the app, when the relay does not serve it.
    pub app_url: Option<loopsy_webapp::AppUrl>,
    /// When expired tokens were last swept (seconds).
    pub last_purge: std::sync::atomic::AtomicU64,
    /// Longest lifetime of a pair token.
    pub max_pair_ttl: Duration,
}

/// A plain-text refusal with a status.
pub fn refuse(status: u16, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(message.to_owned())
}

/// `?device_id=` of a request.
#[derive(serde::Deserialize)]
pub struct DeviceQuery {
    pub device_id: Option<String>,
}

/// `?phone_id=` of a request.
#[derive(serde::Deserialize)]
pub struct PhoneQuery {
    pub phone_id: Option<String>,
}

/// What a secret check found: a wrong secret is not a store that failed.
pub enum Verdict {
    Granted,
    Refused,
    Unavailable(StoreError),
}

impl Verdict {
    /// The answer for a caller not let through (`wrong` says what was wrong); `None` when granted.
    pub fn refusal(self, wrong: &str) -> Option<HttpResponse> {
        match self {
            Self::Granted => None,
            Self::Refused => Some(refuse(401, wrong)),
            Self::Unavailable(e) => Some(crate::http::store_failed(&e)),
        }
    }
}

impl RelayState {
    /// Counts a refusal in the metrics.
    fn counted(&self, checked: Result<bool, StoreError>) -> Verdict {
        match checked {
            Ok(true) => Verdict::Granted,
            Ok(false) => {
                metrics::add(&self.metrics.rejected_auth, 1);
                Verdict::Refused
            }
            Err(e) => Verdict::Unavailable(e),
        }
    }

    pub async fn device_authorized(&self, device_id: &str, bearer: Option<String>) -> Verdict {
        let checked = match bearer {
            None => Ok(false),
            Some(secret) => {
                self.store
                    .device_secret_matches(device_id, &KeyDigest::of(&secret))
                    .await
            }
        };
        self.counted(checked)
    }

    /// Whether the presented secret is a phone's that was revoked (not an auth refusal).
    pub async fn phone_was_revoked(
        &self,
        device_id: &str,
        phone_id: &str,
        bearer: Option<String>,
    ) -> bool {
        let Some(secret) = bearer else { return false };
        self.store
            .phone_was_revoked(device_id, phone_id, &KeyDigest::of(&secret))
            .await
            .unwrap_or(false)
    }

    pub async fn phone_authorized(
        &self,
        device_id: &str,
        phone_id: &str,
        bearer: Option<String>,
    ) -> Verdict {
        let checked = match bearer {
            None => Ok(false),
            Some(secret) => {
                self.store
                    .phone_secret_matches(device_id, phone_id, &KeyDigest::of(&secret))
                    .await
            }
        };
        self.counted(checked)
    }
}
