//! The `LanHttp` transport: the original Loopsy's REST API under `/api/v1` plus
//! JSON-RPC at `POST /rpc`, for peers and local tools. Each handler only turns the
//! HTTP request into a [`Request`] plus [`HttpEvidence`] and renders the Router's
//! answer; auth, Host/Origin policy, rate limits and audit all happen in the Router.
//! The phone web app (`/app/`, public static files) is served here too, as the
//! relay serves it, for phones on the LAN (`loopsy up --lan`).
//! `render` turns answers into responses (JSON, SSE, file bodies); `push` reads
//! multipart uploads.

mod framed;
mod push;
mod render;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::BytesMut;
use futures_util::StreamExt;
use jsonrpsee_types::Id;

use crate::error::ApiError;
use crate::jsonrpc::{self, RpcIncoming};
use crate::wire::{
    BearerToken, ContextListParams, ContextPutBody, Evidence, ExecParams, Handled, HttpEvidence,
    Inbound, PathParams, PullParams, Request,
};
use render::{base_response, render_rest};

/// Largest JSON body accepted (the original's framework default, spec §1.1).
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Largest `PUT /context` body: room for a 1 MiB value plus JSON escaping, so an
/// oversized value gets the context store's own error (5002) rather than a 413.
pub const CONTEXT_BODY_LIMIT: usize = 3 * 1024 * 1024;

/// Interval of SSE comments on a quiet stream. Besides keeping proxies from
/// timing out, a write is how a departed client is noticed (and its job stopped).
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(2);

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
    tls_addrs: Vec<SocketAddr>,
}

/// The TLS listener daemons call each other on: its port and this daemon's certificate.
pub struct PeerListener {
    pub port: u16,
    pub tls: rustls::ServerConfig,
}

impl LanHttp {
    /// Binds `host:port` (port 0 picks a free one) with `workers` worker
    /// threads, and with `peers` the same routes over TLS on a port of their
    /// own (what daemons call each other on). The phone app is served at
    /// `/app/`, allowed to connect to `app_connects_to` (the daemon's relay).
    pub fn bind(
        host: &str,
        port: u16,
        peers: Option<PeerListener>,
        workers: usize,
        router: Recipient<Inbound>,
        app_connects_to: loopsy_webapp::ConnectSources,
    ) -> io::Result<Self> {
        let state = LanState { router };
        let mut http = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                // Public, static and the same for everyone: nothing for the Router to decide.
                .configure(loopsy_webapp::routes(app_connects_to.clone()))
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
                .route("/api/v1/transfer/push", web::post().to(push::transfer_push))
                .route("/api/v1/transfer/pull", web::post().to(transfer_pull))
                .route("/api/v1/transfer/list", web::post().to(transfer_list))
                .route("/rpc", web::post().to(rpc))
                .route(framed::PATH, web::get().to(framed::open))
                .default_service(web::to(unknown))
        })
        .workers(workers.max(1))
        .disable_signals()
        .shutdown_timeout(DRAIN_TIMEOUT.as_secs())
        .bind((host, port))?;
        let plain = http.addrs().len();
        if let Some(peers) = peers {
            http = http.bind_rustls_0_23((host, peers.port), peers.tls)?;
        }
        let mut local_addrs = http.addrs();
        let tls_addrs = local_addrs.split_off(plain.min(local_addrs.len()));
        let server = http.run();
        Ok(Self {
            handle: server.handle(),
            server: Some(server),
            local_addrs,
            tls_addrs,
        })
    }

    /// The plain-HTTP addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The addresses of the TLS listener for peers.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
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
        tls: req.app_config().secure(),
        framed: req.path() == framed::PATH,
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

/// Reads a body up to `limit` bytes; `Err` is the refusal (413, or a body that
/// could not be read), which callers hand to the Router as `Malformed`.
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
