//! The phone path's decisions (DESIGN §5). The owner's `mobile.pair` opens a
//! pairing window here (its secret and 4-digit code live in the Router, never
//! on disk); the relay link then asks, for each phone channel, whether a window
//! is open for a token, whether a code is right, to store a phone the relay
//! named, whether a connecting phone is paired, and to forget a phone the relay
//! revoked. The link carries out the answers (handshakes, sealing, control
//! messages) and decides nothing; each question is an operation like any other,
//! rate limited and audited with the channel as its principal.

use actix::fut::ActorFutureExt;
use loopsy_transports::e2e::fingerprint;
use loopsy_transports::e2e::pairing_link::PairingSeed;
use loopsy_transports::error::{ApiError, code};
use loopsy_transports::secrets::hex;
use loopsy_transports::wire::{Reply, Request};
use serde_json::json;

use super::{Principal, Router, Work};
use crate::phone::pairing::CodeCheck;
use crate::phone::store::PhoneBook;

/// Longest phone id the relay may name (its ids are 32 hex characters).
const MAX_PHONE_ID: usize = 128;
/// Longest phone label kept.
const MAX_LABEL_CHARS: usize = 64;

fn no_window() -> ApiError {
    ApiError::new(
        code::PAIRING_WINDOW_NOT_FOUND,
        404,
        "no pairing window is open for this token; open one with `loopsy mobile pair`",
    )
}

fn unexpected(request: &Request) -> Work {
    Work::Done(Err(ApiError::internal(format!(
        "'{}' reached the phone operations",
        request.op()
    ))))
}

/// A `PhoneBook` call off the Router's thread (it reads `loopsy.db`).
pub(super) fn with_phone_book<T: Send + 'static>(
    router: &Router,
    work: impl FnOnce(&PhoneBook) -> rusqlite::Result<T> + Send + 'static,
) -> impl std::future::Future<Output = Result<T, ApiError>> + 'static {
    let data_dir = router.settings.data_dir.clone();
    let task =
        actix_rt::task::spawn_blocking(move || PhoneBook::open(&data_dir).and_then(|b| work(&b)));
    async move {
        match task.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot use the phone list in loopsy.db");
                Err(ApiError::internal(
                    "cannot read or write the phone list; see the daemon log",
                ))
            }
            Err(_) => Err(ApiError::internal(
                "the phone list task failed; see the daemon log",
            )),
        }
    }
}

/// `mobile.pair`: the relay link asks its relay for a pairing token, then the
/// window (secret and code) is opened here and the secret added to the QR URL.
pub(super) fn open_window(router: &mut Router, request: Request, _: &Principal) -> Work {
    let Request::MobilePair {
        ttl_seconds,
        app_url,
    } = request
    else {
        return unexpected(&request);
    };
    // Asked for (by the owner), then configured; the relay's own choice comes later.
    let chosen = match app_url.or_else(|| router.settings.config.relay.app_origin.clone()) {
        Some(text) => match loopsy_webapp::AppUrl::parse(&text) {
            Ok(app) => Some(app),
            Err(problem) => return Work::Done(Err(ApiError::bad_request(problem))),
        },
        None => None,
    };
    let asked = match crate::limits::seconds(
        "ttlSeconds",
        ttl_seconds.unwrap_or(crate::phone::relay_client::DEFAULT_PAIR_TTL_SECS),
        crate::phone::relay_client::MIN_PAIR_TTL_SECS,
        crate::limits::MAX_PAIR_TTL,
    ) {
        Ok(asked) => asked,
        Err(error) => return Work::Done(Err(error)),
    };
    let Ok(seed) = PairingSeed::generate() else {
        return Work::Done(Err(ApiError::internal("the system random source failed")));
    };
    let relay = router.services.relay.clone();
    let issue = relay.send(crate::phone::IssuePairingToken {
        ttl: asked,
        token_id: seed.token_id(),
        token_digest: seed.token_digest(),
    });
    let issue = async move {
        issue
            .await
            .map_err(|_| ApiError::unavailable("the relay link stopped; restart the daemon"))?
    };
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(issue).map(
        move |issued, router, _| {
            let issued = issued?;
            let token_id = seed.token_id();
            let code = router
                .pairing
                .open(&token_id, seed.psk(), issued.ttl)
                .ok_or_else(|| ApiError::internal("the system random source failed"))?;
            let url = pairing_url(&seed, &issued, chosen.as_ref())?;
            tracing::info!(expires_at = issued.expires_at, "a pairing window is open");
            Ok(Reply::ok(json!({
                "url": url,
                "code": code,
                "tokenId": token_id,
                "expiresAt": issued.expires_at,
                "fingerprint": issued.fingerprint,
            })))
        },
    )))
}

/// The QR code's URL: the app's page and the link. The link names the relay
/// unless the relay serves the app (then the page's origin is the relay).
fn pairing_url(
    seed: &PairingSeed,
    issued: &crate::phone::IssuedToken,
    chosen: Option<&loopsy_webapp::AppUrl>,
) -> Result<String, ApiError> {
    let relays_own = format!("{}/app/", issued.relay_url);
    let page = chosen
        .or(issued.relay_app_url.as_ref())
        .map_or(relays_own.as_str(), |app| app.page());
    if page == relays_own {
        return Ok(format!("{page}#{}", seed.fragment(&issued.device_id)));
    }
    let fragment = seed
        .fragment_with_relay(&issued.device_id, &issued.relay_url)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(format!("{page}#{fragment}"))
}

/// `mobile.pairStatus`: waiting, paired (with the phone), expired, dead.
pub(super) fn window_status(router: &mut Router, request: Request, _: &Principal) -> Work {
    let Request::MobilePairStatus { token_id } = &request else {
        return unexpected(&request);
    };
    Work::Done(
        router
            .pairing
            .status(token_id)
            .map(Reply::ok)
            .ok_or_else(|| {
                ApiError::new(
                    code::PAIRING_WINDOW_NOT_FOUND,
                    404,
                    "no such pairing window",
                )
            }),
    )
}

/// A pairing channel opened on a token: its window's secret, if one is open.
pub(super) fn pairing_opened(router: &mut Router, request: Request, _: &Principal) -> Work {
    let Request::PhonePairOpen { token_id } = &request else {
        return unexpected(&request);
    };
    Work::Done(match router.pairing.secret(token_id) {
        Some(secret) => Ok(Reply::ok(json!({ "secret": hex(&secret.0) }))),
        None => Err(no_window()),
    })
}

/// The code a phone offered. Five wrong ones close the window for good (410).
pub(super) fn code_offered(router: &mut Router, request: Request, _: &Principal) -> Work {
    let Request::PhonePairCode {
        token_id,
        code: offered,
    } = &request
    else {
        return unexpected(&request);
    };
    Work::Done(match router.pairing.check_code(token_id, offered) {
        CodeCheck::Right => Ok(Reply::ok(json!({ "accepted": true }))),
        CodeCheck::Wrong { attempts_left } => {
            tracing::warn!(attempts_left, "a phone sent a wrong pairing code");
            let mut error = ApiError::new(code::PAIRING_CODE_WRONG, 403, "wrong pairing code");
            error.details = Some(json!({ "attemptsLeft": attempts_left }));
            Err(error)
        }
        CodeCheck::Dead => {
            tracing::warn!("five wrong pairing codes: the pairing window is closed");
            Err(ApiError::new(
                code::PAIRING_DEAD,
                410,
                "five wrong codes closed this pairing for good; open a new one with `loopsy mobile pair`",
            ))
        }
        CodeCheck::Closed => Err(no_window()),
    })
}

/// The relay named a phone whose code was accepted: store it with its key.
pub(super) fn paired(router: &mut Router, request: Request, _: &Principal) -> Work {
    let Request::PhonePaired {
        token_id,
        phone_id,
        phone_key,
        label,
    } = request
    else {
        return unexpected(&request);
    };
    if !router.pairing.accepted(&token_id) {
        return Work::Done(Err(ApiError::forbidden(
            "no pairing on this token took the right code",
        )));
    }
    if phone_id.is_empty() || phone_id.len() > MAX_PHONE_ID {
        return Work::Done(Err(ApiError::bad_request(
            "the relay named a phone id that is empty or too long",
        )));
    }
    let label: Option<String> = label.map(|l| l.chars().take(MAX_LABEL_CHARS).collect());
    let stored = {
        let (phone_id, label) = (phone_id.clone(), label.clone());
        with_phone_book(router, move |book| {
            book.add(&phone_id, &phone_key, label.as_deref())
        })
    };
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(stored).map(
        move |stored, router, _| {
            stored?;
            let phone_fingerprint = fingerprint(&phone_key);
            router
                .pairing
                .complete(&token_id, &phone_id, label.clone(), phone_fingerprint.clone());
            tracing::info!(phone = %phone_id, label = ?label, fingerprint = %phone_fingerprint, "a phone paired");
            Ok(Reply::ok(json!({ "phoneId": phone_id, "fingerprint": phone_fingerprint })))
        },
    )))
}

/// A phone's channel opened: the key stored for it, or a refusal if it is not
/// paired here. The handshake with that key is what proves the phone.
pub(super) fn connecting(router: &mut Router, request: Request, _: &Principal) -> Work {
    let Request::PhoneConnect { phone_id } = request else {
        return unexpected(&request);
    };
    if phone_id.len() > MAX_PHONE_ID {
        return Work::Done(Err(ApiError::bad_request("phone id too long")));
    }
    let lookup = {
        let phone_id = phone_id.clone();
        with_phone_book(router, move |book| {
            let key = book.key_of(&phone_id)?;
            // Seen when it knocks with a key we hold; the handshake proves it next.
            if key.is_some() {
                book.seen(&phone_id)?;
            }
            Ok(key)
        })
    };
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(async move {
        match lookup.await? {
            Some(key) => Ok(Reply::ok(json!({ "key": hex(&key) }))),
            None => {
                tracing::info!(phone = %phone_id, "refusing a phone that is not paired here");
                Err(ApiError::new(
                    code::PHONE_NOT_FOUND,
                    403,
                    "this phone is not paired with this machine; pair it again",
                ))
            }
        }
    })))
}

/// The relay revoked a phone: forget it here too.
pub(super) fn revoked_at_relay(router: &mut Router, request: Request, _: &Principal) -> Work {
    let Request::PhoneRevokedAtRelay { phone_id } = request else {
        return unexpected(&request);
    };
    let removed = with_phone_book(router, move |book| book.remove(&phone_id));
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(async move {
        Ok(Reply::ok(json!({ "removed": removed.await? })))
    })))
}
