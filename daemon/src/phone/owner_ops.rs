//! The owner's relay and phone operations, as the Router hands them over
//! (`RelayRequest`): the link's status, the paired phones and their revocation,
//! registering at a relay, and the relay's pairing token for a window the
//! Router opens.

use actix::prelude::*;
use loopsy_transports::e2e::fingerprint;
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::relay_wire::FromLaptop;
use loopsy_transports::wire::{Reply, Request};
use serde_json::json;

use super::link::RelayLink;
use std::time::Duration;

use super::relay_client::{created, not_configured, relay_client, relay_error, relay_expiry};
use super::store::{PhoneBook, RelayCredentials, save_relay};

/// An owner's request about the relay and phones (from the Router).
#[derive(Message)]
#[rtype(result = "Result<Reply, ApiError>")]
pub struct RelayRequest {
    pub request: Request,
}

impl Handler<RelayRequest> for RelayLink {
    type Result = ResponseActFuture<Self, Result<Reply, ApiError>>;

    fn handle(
        &mut self,
        RelayRequest { request }: RelayRequest,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        let ready = |result| Box::pin(actix::fut::ready(result)) as Self::Result;
        match request {
            Request::RelayStatus => ready(Ok(Reply::ok(json!({
                "configured": self.credentials.is_some(),
                "url": self.credentials.as_ref().map(|c| c.url.clone()),
                "deviceId": self.credentials.as_ref().map(|c| c.device_id.clone()),
                "connected": self.connected,
                "lastError": self.last_error,
                "phoneChannels": self.channels.len(),
                "fingerprint": self.key.as_ref().map(|k| fingerprint(k.public())),
            })))),
            Request::PhonesList => ready(match self.phones.as_ref().map(PhoneBook::list) {
                Some(Ok(phones)) => Ok(Reply::ok(json!({ "phones": phones }))),
                _ => Err(ApiError::internal("cannot read the phone list")),
            }),
            Request::PhonesRevoke { phone_id } => {
                // The relay first, so that it closes the phone's sockets as
                // revoked (4003) before this side's channel closes reach it.
                self.control(&FromLaptop::Revoke {
                    phone_id: phone_id.clone(),
                });
                let removed = self.forget_phone(&phone_id);
                ready(if removed {
                    Ok(Reply::ok(json!({ "revoked": phone_id })))
                } else {
                    Err(ApiError::new(
                        code::PHONE_NOT_FOUND,
                        404,
                        format!("no paired phone '{phone_id}'; see `loopsy phone list`"),
                    ))
                })
            }
            Request::RelayConfigure {
                url,
                force,
                ca_file,
            } => self.configure(url, force, ca_file.map(std::path::PathBuf::from), ctx),
            other => ready(Err(ApiError::internal(format!(
                "'{}' is not a relay operation",
                other.op()
            )))),
        }
    }
}

impl RelayLink {
    fn configure(
        &mut self,
        url: String,
        force: bool,
        ca_file: Option<std::path::PathBuf>,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<Reply, ApiError>> {
        let url = url.trim().trim_end_matches('/').to_owned();
        if let Some(current) = self
            .credentials
            .as_ref()
            .filter(|c| c.url == url && c.ca_file == ca_file && !force)
        {
            // Already registered there: keep the device (and its paired phones), reconnect now.
            let answer = json!({ "url": url, "deviceId": current.device_id, "reconnected": true });
            self.restart_link(ctx);
            return Box::pin(actix::fut::ready(Ok(Reply::ok(answer))));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Box::pin(actix::fut::ready(Err(ApiError::invalid_request(
                "the relay URL must start with https:// (or http:// for a relay on this machine or LAN)",
            ))));
        }
        let register = {
            let (url, ca_file) = (url.clone(), ca_file.clone());
            async move {
                let request =
                    relay_client(ca_file.as_deref())?.post(format!("{url}/device/register"));
                let body = created(request, None, "the relay refused the registration").await?;
                match (body["deviceId"].as_str(), body["deviceSecret"].as_str()) {
                    (Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
                    _ => Err(relay_error(
                        "the relay's answer lacks the device id",
                        "deviceId/deviceSecret",
                    )),
                }
            }
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(register).map(move |registered, link, ctx| {
                let (device_id, device_secret) = registered?;
                let credentials = RelayCredentials {
                    url: url.clone(),
                    device_id: device_id.clone(),
                    device_secret,
                    ca_file,
                };
                save_relay(&link.data_dir, &credentials).map_err(|e| {
                    ApiError::internal(format!("cannot save the relay registration: {e}"))
                })?;
                link.set_credentials(credentials);
                link.restart_link(ctx);
                tracing::info!(relay = %url, device = %device_id, "registered at the relay");
                Ok(Reply::ok(json!({ "url": url, "deviceId": device_id })))
            }),
        )
    }
}

/// `mobile.pair`'s first half, asked by the Router: registers the window's
/// token (made by the Router from the link's seed, sent as its id and digest)
/// at the relay, and checks the relay's answer.
#[derive(Message)]
#[rtype(result = "Result<IssuedToken, ApiError>")]
pub struct IssuePairingToken {
    pub ttl: Duration,
    pub token_id: String,
    pub token_digest: String,
}

pub struct IssuedToken {
    /// How long the relay keeps the token, no longer than asked.
    pub ttl: Duration,
    pub expires_at: u64,
    /// The relay, as phones reach it (`https://relay.example`).
    pub relay_url: String,
    /// Where the relay says phones open the app, when not at the relay.
    pub relay_app_url: Option<loopsy_webapp::AppUrl>,
    pub device_id: String,
    pub fingerprint: String,
}

impl Handler<IssuePairingToken> for RelayLink {
    type Result = ResponseFuture<Result<IssuedToken, ApiError>>;

    fn handle(&mut self, issue: IssuePairingToken, _: &mut Self::Context) -> Self::Result {
        let (Some(credentials), Some(key)) = (self.credentials.clone(), self.key.clone()) else {
            return Box::pin(std::future::ready(Err(not_configured())));
        };
        Box::pin(async move {
            let request = relay_client(credentials.ca_file.as_deref())?
                .post(format!(
                    "{}/pair/issue?device_id={}",
                    credentials.url, credentials.device_id
                ))
                .bearer_auth(&credentials.device_secret);
            let body = json!({
                "ttlSeconds": issue.ttl.as_secs(),
                "tokenId": issue.token_id,
                "tokenDigest": issue.token_digest,
            });
            let body = created(request, Some(body), "the relay refused a pairing token").await?;
            let Some(expires_at) = body["expiresAt"].as_u64() else {
                return Err(relay_error(
                    "the relay's answer lacks the expiry",
                    "expiresAt",
                ));
            };
            let now = crate::sessions::now_ms() / 1000;
            let ttl = relay_expiry(expires_at, now, issue.ttl)?;
            if body["tokenId"].as_str() != Some(issue.token_id.as_str()) {
                return Err(ApiError::unavailable(
                    "the relay made a pairing token of its own: it is older than this daemon; update loopsy-relay",
                ));
            }
            let relay_app_url = match body["appUrl"].as_str() {
                None => None,
                Some(text) => match loopsy_webapp::AppUrl::parse(text) {
                    Ok(app) => Some(app),
                    Err(problem) => {
                        tracing::warn!(%problem, "the relay names an app address that is none; using the relay's own app");
                        None
                    }
                },
            };
            Ok(IssuedToken {
                ttl,
                expires_at,
                relay_url: credentials.url.trim_end_matches('/').to_owned(),
                relay_app_url,
                device_id: credentials.device_id.clone(),
                fingerprint: fingerprint(key.public()),
            })
        })
    }
}
