//! The `LanHttp` transport: the original Loopsy's REST API under `/api/v1` plus
//! JSON-RPC at `POST /rpc`, for peers and local tools. Each handler only turns the
//! HTTP request into a [`Request`] plus [`HttpEvidence`] and renders the Router's
//! answer; auth, Host/Origin policy, rate limits and audit all happen in the Router.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::{StatusCode, header};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::BytesMut;
use futures_util::StreamExt;
use jsonrpsee_types::Id;

use crate::error::ApiError;
use crate::jsonrpc::{self, RpcIncoming};
use crate::wire::{
    BearerToken, ContextListParams, ContextPutBody, Evidence, ExecParams, FileDownload, Handled,
    HttpEvidence, Inbound, PathParams, PullParams, ReplyStream, Request, StreamItem, UploadBody,
};

/// Largest JSON body accepted (the original's framework default, spec §1.1).
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Largest `PUT /context` body: room for a 1 MiB value plus JSON escaping, so an
/// oversized value gets the context store's own error (5002) rather than a 413.
pub const CONTEXT_BODY_LIMIT: usize = 3 * 1024 * 1024;

/// Interval of SSE comments on a quiet stream. Besides keeping proxies from
/// timing out, a write is how a departed client is noticed (and its job stopped).
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(2);

/// Read size when sending a file.
const DOWNLOAD_CHUNK: usize = 256 * 1024;
/// Largest text field of a push form (`destPath`, `checksum`).
const FORM_FIELD_LIMIT: usize = 8 * 1024;
/// Pieces of an upload queued toward the writer before the sender is slowed.
const UPLOAD_QUEUE: usize = 8;
/// Size of the pieces an upload is handed over in.
const UPLOAD_PIECE: usize = 512 * 1024;

/// How long a graceful stop waits for in-flight requests before dropping them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct LanState {
    router: Recipient<Inbound>,
}

/// Owns the HTTP server; stopping this actor drains and stops the server.
pub struct LanHttp {
    handle: ServerHandle,
    server: Option<Server>,
    local_addrs: Vec<SocketAddr>,
}

impl LanHttp {
    /// Binds `host:port` (port 0 picks a free one) with `workers` worker threads.
    pub fn bind(
        host: &str,
        port: u16,
        workers: usize,
        router: Recipient<Inbound>,
    ) -> io::Result<Self> {
        let state = LanState { router };
        let http = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .route("/api/v1/health", web::get().to(health))
                .route("/api/v1/identity", web::get().to(identity))
                .route("/api/v1/status", web::get().to(status))
                .route("/api/v1/context", web::get().to(context_list))
                // An empty key (`/context/`) reaches the store's validation, which names the problem.
                .route("/api/v1/context/", web::put().to(context_put_empty))
                .route("/api/v1/context/{key}", web::put().to(context_put))
                .route("/api/v1/context/{key}", web::get().to(context_get))
                .route("/api/v1/context/{key}", web::delete().to(context_delete))
                .route("/api/v1/execute", web::post().to(execute))
                .route("/api/v1/execute/stream", web::post().to(execute_stream))
                .route("/api/v1/execute/jobs", web::get().to(execute_jobs))
                .route("/api/v1/execute/{job_id}", web::delete().to(execute_cancel))
                .route("/api/v1/transfer/push", web::post().to(transfer_push))
                .route("/api/v1/transfer/pull", web::post().to(transfer_pull))
                .route("/api/v1/transfer/list", web::post().to(transfer_list))
                .route("/rpc", web::post().to(rpc))
                .default_service(web::to(unknown))
        })
        .workers(workers.max(1))
        .disable_signals()
        .shutdown_timeout(DRAIN_TIMEOUT.as_secs())
        .bind((host, port))?;
        let local_addrs = http.addrs();
        let server = http.run();
        Ok(Self {
            handle: server.handle(),
            server: Some(server),
            local_addrs,
        })
    }

    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }
}

impl Actor for LanHttp {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        if let Some(server) = self.server.take() {
            actix_rt::spawn(async move {
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "the LAN HTTP server stopped with an error");
                }
            });
        }
    }
}

/// Stop accepting, let in-flight requests finish (bounded by [`DRAIN_TIMEOUT`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

impl Handler<Drain> for LanHttp {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: Drain, _ctx: &mut Self::Context) -> Self::Result {
        let handle = self.handle.clone();
        Box::pin(async move { handle.stop(true).await })
    }
}

fn header_string(req: &HttpRequest, name: header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

fn evidence_of(req: &HttpRequest) -> Evidence {
    Evidence::LanHttp(HttpEvidence {
        json_rpc: req.path() == "/rpc",
        remote: req.peer_addr(),
        bearer: header_string(req, header::AUTHORIZATION)
            .map(|h| BearerToken::from_authorization(&h)),
        host: header_string(req, header::HOST),
        origin: header_string(req, header::ORIGIN),
        fetch_site: header_string(req, header::HeaderName::from_static("sec-fetch-site")),
    })
}

async fn ask_router(state: &LanState, req: &HttpRequest, request: Request) -> Handled {
    let inbound = Inbound {
        request,
        evidence: evidence_of(req),
    };
    match state.router.send(inbound).await {
        Ok(handled) => handled,
        Err(_) => Handled {
            request_id: crate::wire::RequestId(String::new()),
            outcome: Err(ApiError::unavailable(
                "The daemon is shutting down; try again once it is back",
            )),
        },
    }
}

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn base_response(
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

fn render_rest(mut handled: Handled) -> HttpResponse {
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

async fn rest(state: web::Data<LanState>, req: HttpRequest, request: Request) -> HttpResponse {
    render_rest(ask_router(&state, &req, request).await)
}

async fn health(state: web::Data<LanState>, req: HttpRequest) -> HttpResponse {
    rest(state, req, Request::Health).await
}

async fn identity(state: web::Data<LanState>, req: HttpRequest) -> HttpResponse {
    rest(state, req, Request::Identity).await
}

async fn status(state: web::Data<LanState>, req: HttpRequest) -> HttpResponse {
    rest(state, req, Request::Status).await
}

async fn unknown(state: web::Data<LanState>, req: HttpRequest) -> HttpResponse {
    let request = Request::Unknown {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    };
    rest(state, req, request).await
}

/// Parses a JSON body of at most `limit` bytes; failures become a `Malformed` request
/// so the Router still authenticates and audits them.
async fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    op: &'static str,
) -> Result<T, Request> {
    let body = read_body(req, payload, limit)
        .await
        .map_err(|error| Request::Malformed { op, error })?;
    serde_json::from_slice(&body).map_err(|e| Request::Malformed {
        op,
        error: ApiError::parse_error(format!("Body is not the expected JSON: {e}")),
    })
}

async fn context_put(
    state: web::Data<LanState>,
    req: HttpRequest,
    key: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let request =
        match json_body::<ContextPutBody>(&req, payload, CONTEXT_BODY_LIMIT, "context.set").await {
            Ok(body) => {
                let node_id =
                    header_string(&req, header::HeaderName::from_static("x-loopsy-node-id"));
                body.into_request(key.into_inner(), node_id)
                    .unwrap_or_else(|error| Request::Malformed {
                        op: "context.set",
                        error,
                    })
            }
            Err(malformed) => malformed,
        };
    rest(state, req, request).await
}

async fn context_put_empty(
    state: web::Data<LanState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    context_put(state, req, web::Path::from(String::new()), payload).await
}

async fn context_get(
    state: web::Data<LanState>,
    req: HttpRequest,
    key: web::Path<String>,
) -> HttpResponse {
    rest(
        state,
        req,
        Request::ContextGet {
            key: key.into_inner(),
        },
    )
    .await
}

async fn context_delete(
    state: web::Data<LanState>,
    req: HttpRequest,
    key: web::Path<String>,
) -> HttpResponse {
    rest(
        state,
        req,
        Request::ContextDelete {
            key: key.into_inner(),
        },
    )
    .await
}

async fn context_list(state: web::Data<LanState>, req: HttpRequest) -> HttpResponse {
    let request = match web::Query::<ContextListParams>::from_query(req.query_string()) {
        Ok(query) => Request::ContextList {
            prefix: query.into_inner().prefix.unwrap_or_default(),
        },
        Err(e) => Request::Malformed {
            op: "context.list",
            error: ApiError::bad_request(format!("Invalid query: {e}")),
        },
    };
    rest(state, req, request).await
}

async fn execute_request(req: &HttpRequest, payload: web::Payload, stream: bool) -> Request {
    let op = if stream { "exec.stream" } else { "exec.run" };
    match json_body::<ExecParams>(req, payload, JSON_BODY_LIMIT, op).await {
        Ok(params) => match params.check() {
            Ok(()) => Request::Execute {
                params,
                stream,
                from_node_id: header_string(
                    req,
                    header::HeaderName::from_static("x-loopsy-node-id"),
                ),
            },
            Err(error) => Request::Malformed { op, error },
        },
        Err(malformed) => malformed,
    }
}

async fn execute(
    state: web::Data<LanState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let request = execute_request(&req, payload, false).await;
    rest(state, req, request).await
}

async fn execute_stream(
    state: web::Data<LanState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let request = execute_request(&req, payload, true).await;
    rest(state, req, request).await
}

async fn execute_jobs(state: web::Data<LanState>, req: HttpRequest) -> HttpResponse {
    rest(state, req, Request::ExecJobs).await
}

async fn execute_cancel(
    state: web::Data<LanState>,
    req: HttpRequest,
    job_id: web::Path<String>,
) -> HttpResponse {
    rest(
        state,
        req,
        Request::ExecCancel {
            job_id: job_id.into_inner(),
        },
    )
    .await
}

async fn transfer_pull(
    state: web::Data<LanState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let request =
        match json_body::<PullParams>(&req, payload, JSON_BODY_LIMIT, "transfer.pull").await {
            Ok(params) => Request::TransferPull {
                source_path: params.source_path,
            },
            Err(malformed) => malformed,
        };
    rest(state, req, request).await
}

async fn transfer_list(
    state: web::Data<LanState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let request =
        match json_body::<PathParams>(&req, payload, JSON_BODY_LIMIT, "transfer.list").await {
            Ok(params) => Request::TransferList { path: params.path },
            Err(malformed) => malformed,
        };
    rest(state, req, request).await
}

fn push_malformed(message: impl Into<String>) -> Request {
    Request::Malformed {
        op: "transfer.push",
        error: ApiError::bad_request(message),
    }
}

/// `multipart/form-data`: text fields (`destPath`, optional `checksum`) first,
/// then one file part, which is forwarded chunk by chunk while the Router
/// handles the request (as the original, fields after the file are not seen).
async fn transfer_push(
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

/// Reads a body up to `limit` bytes; `Err` carries the 413 to send instead.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<BytesMut, ApiError> {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|len| len > limit) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("Could not read the request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn rpc(state: web::Data<LanState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let (id, request) = match read_body(&req, payload, JSON_BODY_LIMIT).await {
        Err(error) => (Some(Id::Null), Request::Malformed { op: "rpc", error }),
        Ok(body) => match jsonrpc::parse(&body) {
            RpcIncoming::Call { id, request } => (
                Some(id),
                request.unwrap_or_else(|error| Request::Malformed { op: "rpc", error }),
            ),
            RpcIncoming::Notification { request } => (
                None,
                request.unwrap_or_else(|error| Request::Malformed { op: "rpc", error }),
            ),
            RpcIncoming::Invalid { id, error } => {
                (Some(id), Request::Malformed { op: "rpc", error })
            }
        },
    };
    // The Router refuses streaming operations here (the evidence says JSON-RPC),
    // so no answer carries a stream or a file.
    let handled = ask_router(&state, &req, request).await;
    let Some(id) = id else {
        return base_response(204, &handled, None).finish();
    };
    match &handled.outcome {
        Ok(reply) => base_response(200, &handled, None)
            .content_type("application/json")
            .body(jsonrpc::success(id, &reply.body)),
        Err(error) => base_response(error.status, &handled, Some(error))
            .content_type("application/json")
            .body(jsonrpc::failure(id, error)),
    }
}
