//! The picker's custom commands and auto-approve grants: `commands.add|update|remove`
//! (the owner and the owner's phones) and `grants.autoApprove` (the owner). Both
//! are written to durable state off the Router's thread, then in effect at once.

use actix::prelude::*;
use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{Reply, Request};
use serde_json::json;

use super::{Router, Work};
use loopsy_transports::error::code::{COMMAND_NOT_FOUND, PHONE_NOT_FOUND};

/// `commands.add|update|remove`: validated, written to `config.yaml` by the daemon
/// (the single writer), then in effect at once.
pub(super) fn edit_commands(router: &Router, request: Request) -> Work {
    use crate::config::CustomCommand;
    use crate::sessions::validate_custom;
    let mut commands = router.settings.config.custom_commands.clone();
    let outcome: Result<(), ApiError> = (|| match request {
        Request::CommandAdd(params) => {
            let bytes = crate::secrets::random_bytes::<16>()
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let command = CustomCommand {
                id: uuid::Builder::from_random_bytes(bytes)
                    .into_uuid()
                    .to_string(),
                label: params.label.unwrap_or_default(),
                command: params.command.unwrap_or_default(),
                args: params.args.unwrap_or_default(),
                cwd: params.cwd,
                icon: params.icon,
                created_at: Some(crate::audit::now_rfc3339()),
            };
            validate_custom(&command)?;
            commands.push(command);
            Ok(())
        }
        Request::CommandUpdate(params) => {
            let id = params
                .id
                .clone()
                .ok_or_else(|| ApiError::bad_request("commands.update needs the id"))?;
            let entry = commands.iter_mut().find(|c| c.id == id).ok_or_else(|| {
                ApiError::new(
                    COMMAND_NOT_FOUND,
                    404,
                    format!("No custom command with id {id}"),
                )
            })?;
            let mut updated = entry.clone();
            if let Some(label) = params.label {
                updated.label = label;
            }
            if let Some(command) = params.command {
                updated.command = command;
            }
            if let Some(args) = params.args {
                updated.args = args;
            }
            if params.cwd.is_some() {
                updated.cwd = params.cwd;
            }
            if params.icon.is_some() {
                updated.icon = params.icon;
            }
            validate_custom(&updated)?;
            *entry = updated;
            Ok(())
        }
        Request::CommandRemove { id } => {
            let before = commands.len();
            commands.retain(|c| c.id != id);
            if commands.len() == before {
                return Err(ApiError::new(
                    COMMAND_NOT_FOUND,
                    404,
                    format!("No custom command with id {id}"),
                ));
            }
            Ok(())
        }
        other => Err(ApiError::internal(format!(
            "'{}' is not a command edit",
            other.op()
        ))),
    })();
    if let Err(error) = outcome {
        return Work::Done(Err(error));
    }
    let data_dir = router.settings.data_dir.clone();
    let to_write = commands.clone();
    let write = actix_rt::task::spawn_blocking(move || {
        crate::config::set_custom_commands(&data_dir, &to_write)
            .map(|()| super::config_mtime(&data_dir))
    });
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(write).map(
        move |written, router, _ctx| match written {
            Ok(Ok(mtime)) => {
                let mut settings = router.settings.clone();
                settings.config.custom_commands = commands;
                let list = json!({ "customCommands": settings.config.custom_commands });
                router.apply(settings, mtime);
                Ok(Reply::ok(list))
            }
            Ok(Err(error)) => Err(ApiError::internal(format!(
                "Could not save the custom commands: {error}"
            ))),
            Err(_) => Err(ApiError::internal("The custom-command task failed")),
        },
    )))
}

/// How a grant names a paired phone: `phone:<id>` (ids from `loopsy phone list`).
const PHONE_PREFIX: &str = "phone:";

/// A phone's grant, stored with its pairing in `loopsy.db`.
fn grant_phone(router: &Router, phone_id: String, allow: bool) -> Work {
    let data_dir = router.settings.data_dir.clone();
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(async move {
        let id = phone_id.clone();
        let stored = actix_rt::task::spawn_blocking(move || {
            crate::phone::store::PhoneBook::open(&data_dir)
                .and_then(|book| book.set_auto_approve(&id, allow))
        })
        .await;
        match stored {
            Ok(Ok(true)) => Ok(Reply::ok(
                json!({ "phoneId": phone_id, "autoApprove": allow }),
            )),
            Ok(Ok(false)) => Err(ApiError::new(
                PHONE_NOT_FOUND,
                404,
                format!("No paired phone '{phone_id}'; `loopsy phone list` shows them"),
            )),
            Ok(Err(e)) => Err(ApiError::internal(format!("Could not save the grant: {e}"))),
            Err(_) => Err(ApiError::internal("The grant task failed")),
        }
    })))
}

/// `grants.autoApprove`: the owner lets a peer (or no longer lets it) start agents
/// with auto-approve. Written to `session.autoApproveFor`; the request itself is
/// the audit record of the grant.
pub(super) fn grant_auto_approve(router: &Router, peer: String, allow: bool) -> Work {
    if let Some(phone_id) = peer.strip_prefix(PHONE_PREFIX) {
        return grant_phone(router, phone_id.to_owned(), allow);
    }
    let config = &router.settings.config;
    if allow && !config.auth.allowed_keys.contains_key(&peer) {
        let known: Vec<&str> = config
            .auth
            .allowed_keys
            .keys()
            .map(String::as_str)
            .collect();
        return Work::Done(Err(ApiError::bad_request(format!(
            "No peer named '{peer}' in auth.allowedKeys (known: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))));
    }
    let mut peers = config.session.auto_approve_for.clone();
    peers.retain(|p| p != &peer);
    if allow {
        peers.push(peer);
    }
    let data_dir = router.settings.data_dir.clone();
    let to_write = peers.clone();
    let write = actix_rt::task::spawn_blocking(move || {
        crate::config::set_auto_approve_for(&data_dir, &to_write)
            .map(|()| super::config_mtime(&data_dir))
    });
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(write).map(
        move |written, router, _ctx| match written {
            Ok(Ok(mtime)) => {
                let mut settings = router.settings.clone();
                settings.config.session.auto_approve_for = peers;
                let list = json!({ "autoApproveFor": settings.config.session.auto_approve_for });
                router.apply(settings, mtime);
                Ok(Reply::ok(list))
            }
            Ok(Err(error)) => Err(ApiError::internal(format!(
                "Could not save the grant: {error}"
            ))),
            Err(_) => Err(ApiError::internal("The grant task failed")),
        },
    )))
}
