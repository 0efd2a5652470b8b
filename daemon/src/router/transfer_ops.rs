//! Transfer requests (spec §1.8): the Router's path guard decides, then the
//! transfer service reads or writes — both on a blocking thread, since resolving
//! and opening paths is file-system work the Router's thread must not wait on.

use std::sync::Arc;

use actix::prelude::*;
use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{FileDownload, Reply, Request};
use serde_json::json;

use super::{Router, Work};
use crate::policy::path_guard::{PathGuard, PathRefusal};
use crate::services::transfer::{self, TransferError};

/// Error codes of spec §1.3.
const PATH_DENIED: u32 = 4001;
const NOT_FOUND: u32 = 4002;
const TOO_LARGE: u32 = 4003;
const CHECKSUM: u32 = 4004;
const FAILED: u32 = 4005;

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

pub(super) fn run(router: &Router, request: Request) -> Work {
    let guard = router.path_guard.clone();
    let max_size = router.settings.config.transfer.max_file_size;
    match request {
        Request::TransferPull { source_path } => blocking(
            move || transfer::open_for_pull(&guard.check(&source_path)?, max_size),
            |download| {
                let body = json!({ "name": download.name, "size": download.size });
                Reply::download(
                    body,
                    FileDownload {
                        file: download.file,
                        size: download.size,
                        name: download.name,
                    },
                )
            },
        ),
        Request::TransferList { path } => {
            blocking(move || transfer::list(&guard.check(&path)?), Reply::ok)
        }
        Request::TransferPush {
            dest_path,
            expected_sha256,
            body,
        } => blocking(
            move || {
                let checked = guard.check(&dest_path)?;
                transfer::receive(&checked, body.0, max_size, expected_sha256.as_deref())
            },
            |received| {
                Reply::ok(json!({
                    "path": received.path,
                    "size": received.size,
                    "checksum": received.sha256,
                    "duration": received.duration_ms,
                }))
            },
        ),
        other => Work::Done(Err(ApiError::internal(format!(
            "'{}' is not a transfer request",
            other.op()
        )))),
    }
}
