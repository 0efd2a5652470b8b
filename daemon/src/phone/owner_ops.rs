//! The owner's relay and phone operations, as the Router hands them over
//! (`RelayRequest`): the link's status, the paired phones and their revocation,
//! registering at a relay, and opening a pairing window.

use actix::prelude::*;
use loopsy_transports::e2e::fingerprint;
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::relay_wire::FromLaptop;
use loopsy_transports::wire::{Reply, Request};
use serde_json::json;

use super::link::RelayLink;
use super::relay_client::{
    DEFAULT_PAIR_TTL_SECS, MIN_PAIR_TTL_SECS, created, fragment_value, not_configured,
    relay_client, relay_error, relay_expiry,
};
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
                let removed = self.forget_phone(&phone_id);
                self.control(&FromLaptop::Revoke {
                    phone_id: phone_id.clone(),
                });
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
            Request::MobilePairStatus { token_id } => ready(
                self.windows
                    .status(&token_id)
                    .map(Reply::ok)
                    .ok_or_else(|| {
                        ApiError::new(
                            code::PAIRING_WINDOW_NOT_FOUND,
                            404,
                            "no such pairing window",
                        )
                    }),
            ),
            Request::RelayConfigure {
                url,
                force,
                ca_file,
            } => self.configure(url, force, ca_file.map(std::path::PathBuf::from), ctx),
            Request::MobilePair { ttl_seconds } => self.open_pairing(ttl_seconds),
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
                link.credentials = Some(credentials);
                link.restart_link(ctx);
                tracing::info!(relay = %url, device = %device_id, "registered at the relay");
                Ok(Reply::ok(json!({ "url": url, "deviceId": device_id })))
            }),
        )
    }

    fn open_pairing(
        &mut self,
        ttl_seconds: Option<u64>,
    ) -> ResponseActFuture<Self, Result<Reply, ApiError>> {
        let (Some(credentials), Some(key)) = (self.credentials.clone(), self.key.clone()) else {
            return Box::pin(actix::fut::ready(Err(not_configured())));
        };
        let asked = match crate::limits::seconds(
            "ttlSeconds",
            ttl_seconds.unwrap_or(DEFAULT_PAIR_TTL_SECS),
            MIN_PAIR_TTL_SECS,
            crate::limits::MAX_PAIR_TTL,
        ) {
            Ok(asked) => asked,
            Err(error) => return Box::pin(actix::fut::ready(Err(error))),
        };
        let ttl_seconds = Some(asked.as_secs());
        let issue = async move {
            let request = relay_client(credentials.ca_file.as_deref())?
                .post(format!(
                    "{}/pair/issue?device_id={}",
                    credentials.url, credentials.device_id
                ))
                .bearer_auth(&credentials.device_secret);
            let body = json!({ "ttlSeconds": ttl_seconds });
            let body = created(request, Some(body), "the relay refused a pairing token").await?;
            match (
                body["token"].as_str(),
                body["tokenId"].as_str(),
                body["expiresAt"].as_u64(),
            ) {
                (Some(token), Some(id), Some(expires)) => {
                    Ok((credentials, token.to_owned(), id.to_owned(), expires))
                }
                _ => Err(relay_error(
                    "the relay's answer lacks the token",
                    "token/tokenId/expiresAt",
                )),
            }
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(issue).map(move |issued, link, _| {
                let (credentials, token, token_id, expires_at) = issued?;
                let now = crate::sessions::now_ms() / 1000;
                let ttl = relay_expiry(expires_at, now, asked)?;
                let (secret, code) = link
                    .windows
                    .open(&token_id, ttl)
                    .ok_or_else(|| ApiError::internal("the system random source failed"))?;
                let hex = crate::secrets::hex;
                let url = format!(
                    "{}/app#v=1&r={}&d={}&i={}&t={}&k={}&s={}",
                    credentials.url,
                    fragment_value(&credentials.url),
                    fragment_value(&credentials.device_id),
                    fragment_value(&token_id),
                    fragment_value(&token),
                    hex(key.public()),
                    hex(&secret.0),
                );
                tracing::info!(expires_at, "a pairing window is open");
                Ok(Reply::ok(json!({
                    "url": url,
                    "code": code,
                    "tokenId": token_id,
                    "expiresAt": expires_at,
                    "fingerprint": fingerprint(key.public()),
                })))
            }),
        )
    }
}
