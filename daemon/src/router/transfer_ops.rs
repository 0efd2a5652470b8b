//! Transfer requests (spec §1.8): the Router's path guard decides, then the
//! transfer service reads or writes — both on a blocking thread, since resolving
//! and opening paths is file-system work the Router's thread must not wait on.
//! Each principal but the owner runs at most `transfer.maxConcurrentPerPrincipal`
//! transfers at once (a permit held until the last byte), and an upload that
//! sends nothing for `transfer.idleTimeoutSec` is ended, leaving nothing behind: no
//! client can hold the blocking threads that the owner's operations need.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;
use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{FileDownload, Held, Reply, Request, UploadBody};
use serde_json::json;
use tokio::sync::mpsc;

use super::{Principal, Router, Work};
use crate::policy::path_guard::{PathGuard, PathRefusal};
use crate::services::transfer::{self, TransferError};

use loopsy_transports::error::code::{
    CHECKSUM_MISMATCH as CHECKSUM, FILE_NOT_FOUND as NOT_FOUND, FILE_TOO_LARGE as TOO_LARGE,
    PATH_DENIED, TRANSFER_BUSY as BUSY, TRANSFER_FAILED as FAILED,
};

/// Transfers in flight, per principal (the owner is not counted).
#[derive(Default)]
pub(super) struct TransferPermits {
    by_principal: HashMap<String, Arc<AtomicUsize>>,
}

/// One transfer in flight; dropping it (when the transfer ends) frees the slot.
struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TransferPermits {
    /// A slot for `principal`, or a 429 when it has `max` transfers running.
    fn take(&mut self, principal: &Principal, max: usize) -> Result<Option<Permit>, ApiError> {
        if *principal == Principal::Owner {
            return Ok(None);
        }
        self.by_principal
            .retain(|_, count| count.load(Ordering::Acquire) > 0);
        let count = self
            .by_principal
            .entry(principal.label())
            .or_default()
            .clone();
        let running = count.fetch_add(1, Ordering::AcqRel);
        let permit = Permit(count);
        if running >= max {
            return Err(ApiError::new(
                BUSY,
                429,
                format!(
                    "{principal} already runs {running} transfers (transfer.maxConcurrentPerPrincipal); wait for one to finish"
                ),
            ));
        }
        Ok(Some(permit))
    }
}

/// Forwards an upload's bytes to the writer, ending it with an error when the
/// sender goes quiet for `idle`. Runs on `arbiter`, not the writer's blocking
/// thread, which therefore never waits on the client.
fn with_idle_timeout(
    body: UploadBody,
    arbiter: &actix::ArbiterHandle,
    idle: Duration,
) -> mpsc::Receiver<transfer::UploadChunk> {
    let UploadBody(mut from_client) = body;
    let (to_writer, receiver) = mpsc::channel(2);
    arbiter.spawn(async move {
        loop {
            match tokio::time::timeout(idle, from_client.recv()).await {
                Ok(Some(chunk)) => {
                    if to_writer.send(chunk).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(_) => {
                    let why = format!("no bytes arrived for {} s", idle.as_secs());
                    let _ = to_writer.send(Err(why)).await;
                    return;
                }
            }
        }
    });
    receiver
}

impl From<PathRefusal> for TransferError {
    fn from(refusal: PathRefusal) -> Self {
        TransferError::Denied(refusal.0)
    }
}

impl From<TransferError> for ApiError {
    fn from(error: TransferError) -> Self {
        let message = error.to_string();
        match error {
            TransferError::Denied(_) => ApiError::new(PATH_DENIED, 403, message),
            TransferError::NotFound(_) => ApiError::new(NOT_FOUND, 404, message),
            TransferError::TooLarge(_) => ApiError::new(TOO_LARGE, 413, message),
            TransferError::Checksum { .. } => ApiError::new(CHECKSUM, 400, message),
            TransferError::Failed(_) => ApiError::new(FAILED, 400, message),
        }
    }
}

/// The path guard for the current configuration.
pub(super) fn guard(router: &Router) -> Arc<PathGuard> {
    let transfer = &router.settings.config.transfer;
    Arc::new(PathGuard::new(
        &transfer.allowed_paths,
        &transfer.denied_paths,
        router.settings.data_dir.root(),
    ))
}

fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TransferError> + Send + 'static,
    reply: impl FnOnce(T) -> Reply + 'static,
) -> Work {
    let task = actix_rt::task::spawn_blocking(work);
    Work::Later(Box::pin(actix::fut::wrap_future::<_, Router>(task).map(
        |joined, _, _| match joined {
            Ok(Ok(value)) => Ok(reply(value)),
            Ok(Err(error)) => Err(error.into()),
            Err(_) => Err(ApiError::internal(
                "The transfer task failed; see the daemon log",
            )),
        },
    )))
}

pub(super) fn run(router: &mut Router, request: Request, principal: &Principal) -> Work {
    let guard = router.path_guard.clone();
    let config = &router.settings.config.transfer;
    let max_size = config.max_file_size;
    let allow_hardlinks = config.allow_hardlinks;
    let idle = Duration::from_secs(config.idle_timeout_sec);
    let permit = match router
        .transfers
        .take(principal, config.max_concurrent_per_principal as usize)
    {
        Ok(permit) => permit,
        Err(error) => return Work::Done(Err(error)),
    };
    match request {
        Request::TransferPull { source_path } => blocking(
            move || {
                transfer::open_for_pull(&guard.check(&source_path)?, max_size, allow_hardlinks)
                    .map(|download| (download, permit))
            },
            move |(download, permit)| {
                let body = json!({ "name": download.name, "size": download.size });
                Reply::download(
                    body,
                    FileDownload {
                        file: download.file,
                        size: download.size,
                        name: download.name,
                        held: Held(permit.map(|p| Box::new(p) as Box<dyn Send + Sync>)),
                        idle,
                    },
                )
            },
        ),
        Request::TransferList { path } => blocking(
            move || {
                let _permit = permit;
                let admits =
                    |entry: &std::path::Path| guard.check(&entry.display().to_string()).is_ok();
                transfer::list(&guard.check(&path)?, admits)
            },
            Reply::ok,
        ),
        Request::TransferPush {
            dest_path,
            expected_sha256,
            body,
        } => {
            let body = with_idle_timeout(body, &router.services.exec, idle);
            let journal = router.settings.data_dir.transfers();
            blocking(
                move || {
                    let _permit = permit;
                    let checked = guard.check(&dest_path)?;
                    transfer::receive(
                        &checked,
                        body,
                        max_size,
                        expected_sha256.as_deref(),
                        &journal,
                    )
                },
                |received| {
                    Reply::ok(json!({
                        "path": received.path,
                        "size": received.size,
                        "checksum": received.sha256,
                        "duration": received.duration_ms,
                    }))
                },
            )
        }
        other => Work::Done(Err(ApiError::internal(format!(
            "'{}' is not a transfer request",
            other.op()
        )))),
    }
}
