//! `POST /api/v1/transfer/push`: a multipart form read field by field, its file
//! part handed to the Router's transfer as it arrives, in bounded pieces.

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::BytesMut;
use futures_util::StreamExt;

use super::render::render_rest;
use super::{LanState, ask_router, rest};
use crate::error::ApiError;
use crate::wire::{Request, UploadBody};

/// Largest text field of a push form (`destPath`, `checksum`).
const FORM_FIELD_LIMIT: usize = 8 * 1024;
/// Pieces of an upload queued toward the writer before the sender is slowed.
const UPLOAD_QUEUE: usize = 8;
/// Size of the pieces an upload is handed over in.
const UPLOAD_PIECE: usize = 512 * 1024;

fn push_malformed(message: impl Into<String>) -> Request {
    Request::Malformed {
        op: "transfer.push",
        error: ApiError::bad_request(message),
    }
}

/// `multipart/form-data`: text fields (`destPath`, optional `checksum`) first,
/// then one file part, which is forwarded chunk by chunk while the Router
/// handles the request (as the original, fields after the file are not seen).
pub(super) async fn transfer_push(
    state: web::Data<LanState>,
    req: HttpRequest,
    mut form: actix_multipart::Multipart,
) -> HttpResponse {
    let mut dest_path = None;
    let mut checksum = None;
    loop {
        let mut field = match form.next().await {
            None => {
                let request = match dest_path {
                    None => push_malformed("Missing destPath field"),
                    Some(_) => Request::Malformed {
                        op: "transfer.push",
                        error: ApiError::new(
                            4005,
                            400,
                            "Missing file part; send destPath, then the file",
                        ),
                    },
                };
                return rest(state, req, request).await;
            }
            Some(Err(e)) => {
                return rest(
                    state,
                    req,
                    push_malformed(format!("Invalid multipart body: {e}")),
                )
                .await;
            }
            Some(Ok(field)) => field,
        };
        let is_file = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .is_some();
        if !is_file {
            let name = field.name().unwrap_or_default().to_owned();
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                match chunk {
                    Ok(bytes) if value.len() + bytes.len() <= FORM_FIELD_LIMIT => {
                        value.extend_from_slice(&bytes)
                    }
                    Ok(_) => {
                        return rest(
                            state,
                            req,
                            push_malformed(format!("Field {name} is too long")),
                        )
                        .await;
                    }
                    Err(e) => {
                        return rest(
                            state,
                            req,
                            push_malformed(format!("Invalid multipart body: {e}")),
                        )
                        .await;
                    }
                }
            }
            let value = String::from_utf8_lossy(&value).into_owned();
            match name.as_str() {
                "destPath" => dest_path = Some(value),
                "checksum" | "sha256" => checksum = Some(value),
                _ => {}
            }
            continue;
        }
        let Some(dest_path) = dest_path else {
            return rest(
                state,
                req,
                push_malformed("Missing destPath field; it must come before the file"),
            )
            .await;
        };
        let (sender, receiver) = tokio::sync::mpsc::channel(UPLOAD_QUEUE);
        let request = Request::TransferPush {
            dest_path,
            expected_sha256: checksum,
            body: UploadBody(receiver),
        };
        let pump = async move {
            // Network chunks are small; handing each to the writer thread would cost
            // a wake-up per few kilobytes, so they are gathered into larger pieces.
            let mut pending = BytesMut::new();
            while let Some(chunk) = field.next().await {
                match chunk {
                    Ok(bytes) => {
                        pending.extend_from_slice(&bytes);
                        if pending.len() >= UPLOAD_PIECE
                            && sender.send(Ok(pending.split().freeze())).await.is_err()
                        {
                            // A refused push drops the receiver: stop reading then.
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = sender.send(Err(e.to_string())).await;
                        return;
                    }
                }
            }
            if !pending.is_empty() {
                let _ = sender.send(Ok(pending.freeze())).await;
            }
        };
        let (handled, ()) = tokio::join!(ask_router(&state, &req, request), pump);
        return render_rest(handled);
    }
}
