//! Answers into HTTP responses: JSON in the original's shapes (with the request
//! id and `Retry-After`), server-sent events for streams, and file bodies that
//! end when their client stops taking bytes.

use std::io;

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use futures_util::StreamExt;

use super::SSE_KEEP_ALIVE;
use crate::error::ApiError;
use crate::wire::{FileDownload, Handled, ReplyStream, StreamItem};

/// Read size when sending a file.
const DOWNLOAD_CHUNK: usize = 256 * 1024;

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub(super) fn base_response(
    status: u16,
    handled: &Handled,
    error: Option<&ApiError>,
) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::build(status_of(status));
    if !handled.request_id.0.is_empty() {
        builder.insert_header(("x-request-id", handled.request_id.0.as_str()));
    }
    if let Some(secs) = error.and_then(|e| e.retry_after_secs) {
        builder.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    builder
}

pub(super) fn render_rest(mut handled: Handled) -> HttpResponse {
    let (stream, download) = match &mut handled.outcome {
        Ok(reply) => (reply.stream.take(), reply.download.take()),
        Err(_) => (None, None),
    };
    if let (Ok(reply), Some(download)) = (&handled.outcome, download) {
        return send_file(base_response(reply.status, &handled, None), download);
    }
    match (&handled.outcome, stream) {
        (Ok(reply), Some(stream)) => base_response(reply.status, &handled, None)
            .content_type("text/event-stream")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .streaming(server_sent_events(stream)),
        (Ok(reply), None) => base_response(reply.status, &handled, None).json(&reply.body),
        (Err(error), _) => base_response(error.status, &handled, Some(error)).json(error.to_body()),
    }
}

/// Streams an opened file as the raw body, with the original's headers.
fn send_file(mut builder: actix_web::HttpResponseBuilder, download: FileDownload) -> HttpResponse {
    let name: String = download
        .name
        .chars()
        .map(|c| {
            if c.is_control() || c == '"' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let file = tokio::fs::File::from_std(download.file);
    let (held, idle) = (download.held, download.idle);
    // A task reads the file into a small queue the body drains: when the client
    // stops taking bytes for `idle`, the task ends, dropping the file and `held`,
    // and the body ends short of its length.
    let (pieces, queue) = tokio::sync::mpsc::channel::<io::Result<bytes::Bytes>>(4);
    actix_rt::spawn(async move {
        let _held = held;
        let mut chunks = tokio_util::io::ReaderStream::with_capacity(file, DOWNLOAD_CHUNK);
        while let Some(chunk) = chunks.next().await {
            let failed = chunk.is_err();
            let sent = tokio::time::timeout(idle, pieces.send(chunk)).await;
            if failed || !matches!(sent, Ok(Ok(()))) {
                return;
            }
        }
    });
    let chunks = futures_util::stream::unfold(queue, |mut queue| async move {
        queue.recv().await.map(|chunk| (chunk, queue))
    });
    builder
        .content_type("application/octet-stream")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("x-loopsy-file-size", download.size.to_string()))
        .no_chunking(download.size)
        .streaming(chunks)
}

/// Renders stream items as SSE `data:` lines; a failed end becomes an `error` event.
/// When the client goes away the stream (and so the receiver) is dropped, which
/// tells the producer to stop.
fn server_sent_events(
    stream: ReplyStream,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> {
    futures_util::stream::unfold(Some(stream.0), |receiver| async move {
        let mut receiver = receiver?;
        let item = tokio::select! {
            item = receiver.recv() => item?,
            () = tokio::time::sleep(SSE_KEEP_ALIVE) => {
                let comment = bytes::Bytes::from_static(b": keep-alive\n\n");
                return Some((Ok(comment), Some(receiver)));
            }
        };
        let event = match item {
            StreamItem::Event(event) => event,
            StreamItem::End(Ok(_)) => return None,
            // Raw bytes have no SSE form; binary streams are served on the Unix socket.
            StreamItem::Binary(_) => serde_json::json!({ "type": "binary-omitted" }),
            StreamItem::End(Err(error)) => serde_json::json!({
                "type": "error",
                "data": error.message,
                "code": error.code,
            }),
        };
        let line = format!("data: {event}\n\n");
        Some((Ok(bytes::Bytes::from(line)), Some(receiver)))
    })
}
