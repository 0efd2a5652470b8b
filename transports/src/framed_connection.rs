//! `FramedConnection`: one client speaking the framed JSON-RPC protocol
//! (`framing`: JSON and binary frames), whatever carries the frames: a Unix
//! socket, or a phone's end-to-end channel through the relay. A reader task
//! turns frames into requests (and upload or keystroke bytes into their
//! channels), the actor sends each request with the connection's `Evidence` to
//! the Router and queues the answers, and a writer drains a bounded queue.

use std::collections::VecDeque;
use std::fmt::Display;
use std::sync::Arc;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use jsonrpsee_types::Id;
use tokio::sync::{mpsc, watch};

use crate::error::ApiError;
use crate::framing::Frame;
use crate::jsonrpc::{self, RpcIncoming};
use crate::wire::{
    Evidence, FileDownload, Handled, Inbound, InputBody, PeerPushParams, PeerRequest, PushParams,
    ReplyStream, Request, STREAM_EVENT_METHOD, SessionAttachParams, StreamItem, TunnelParams,
    UploadBody, method, parse_params,
};

/// Frames queued toward the socket writer. Producers of bulk data (streams,
/// downloads) wait for room, so a client that reads slowly slows them down
/// instead of growing the daemon's memory.
const OUTBOUND_FRAMES: usize = 64;
/// Answers held back while the writer is full; a client that lets more pile up
/// is not reading its answers and is disconnected.
const MAX_BACKLOG: usize = 1024;
/// Bytes per binary frame of a download.
const DOWNLOAD_CHUNK: usize = 256 * 1024;
/// Upload chunks queued toward the transfer service before reading pauses.
const UPLOAD_QUEUE: usize = 16;

/// One client connection: a reader task (frames → requests, upload bytes →
/// the upload's channel), this actor (requests → Router → answers), and a
/// writer draining a bounded queue toward the client.
pub struct FramedConnection {
    router: Recipient<Inbound>,
    evidence: Evidence,
    outbound: mpsc::Sender<Frame>,
    /// Answers waiting for room in `outbound`, in order.
    backlog: VecDeque<Frame>,
    draining: bool,
    /// Set when the connection ends, so forwarding tasks stop (and with them the
    /// work they watch, e.g. a streamed job).
    closed: Arc<watch::Sender<bool>>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

/// A request decoded by the reader task.
#[derive(Message)]
#[rtype(result = "()")]
struct Dispatch {
    id: Option<Id<'static>>,
    request: Request,
}

/// The reader reached the end of the connection.
#[derive(Message)]
#[rtype(result = "()")]
struct ReaderDone;

impl FramedConnection {
    /// Serves the client whose frames arrive on `frames`; `writer` gets the
    /// queue of frames toward the client and runs until it closes.
    pub fn start<S, E, W, F>(frames: S, writer: W, router: Recipient<Inbound>, evidence: Evidence)
    where
        S: Stream<Item = Result<Frame, E>> + Unpin + 'static,
        E: Display + 'static,
        W: FnOnce(mpsc::Receiver<Frame>) -> F,
        F: Future<Output = ()> + 'static,
    {
        let (outbound, queue) = mpsc::channel(OUTBOUND_FRAMES);
        actix_rt::spawn(writer(queue));
        let (closed, _) = watch::channel(false);
        FramedConnection::create(move |ctx| {
            let reader = actix_rt::spawn(read_frames(frames, ctx.address(), outbound.clone()));
            FramedConnection {
                router,
                evidence,
                outbound,
                backlog: VecDeque::new(),
                draining: false,
                closed: Arc::new(closed),
                reader: Some(reader),
            }
        });
    }

    fn send_frame(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        if self.backlog.is_empty() {
            match self.outbound.try_send(frame) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(frame)) => self.backlog.push_back(frame),
            }
        } else {
            self.backlog.push_back(frame);
        }
        if self.backlog.len() > MAX_BACKLOG {
            tracing::warn!("closing a connection whose client does not read its answers");
            ctx.stop();
            return;
        }
        self.schedule_drain(ctx);
    }

    fn schedule_drain(&mut self, ctx: &mut Context<Self>) {
        if self.draining {
            return;
        }
        self.draining = true;
        let outbound = self.outbound.clone();
        ctx.spawn(
            async move { outbound.reserve_owned().await.ok() }
                .into_actor(self)
                .map(|permit, act, ctx| {
                    act.draining = false;
                    let Some(permit) = permit else {
                        act.backlog.clear();
                        return;
                    };
                    if let Some(frame) = act.backlog.pop_front() {
                        permit.send(frame);
                    }
                    if !act.backlog.is_empty() {
                        act.schedule_drain(ctx);
                    }
                }),
        );
    }

    fn send_json(&mut self, bytes: Vec<u8>, ctx: &mut Context<Self>) {
        self.send_frame(Frame::Json(Bytes::from(bytes)), ctx);
    }
}

impl Actor for FramedConnection {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.closed.send_replace(true);
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
    }
}

impl Handler<ReaderDone> for FramedConnection {
    type Result = ();

    fn handle(&mut self, _msg: ReaderDone, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Dispatch> for FramedConnection {
    type Result = ();

    fn handle(&mut self, Dispatch { id, request }: Dispatch, ctx: &mut Self::Context) {
        let inbound = Inbound {
            request,
            evidence: self.evidence.clone(),
        };
        let pending = self.router.send(inbound);
        ctx.spawn(pending.into_actor(self).map(move |answer, act, ctx| {
            let outcome = match answer {
                Ok(Handled { outcome, .. }) => outcome,
                Err(_) => Err(ApiError::unavailable(
                    "The daemon is shutting down; try again once it is back",
                )),
            };
            let Some(id) = id else {
                // A notification: the work ran; a stream or download is dropped,
                // which tells its producer to stop.
                return;
            };
            match outcome {
                Ok(mut reply) => {
                    let closed = act.closed.subscribe();
                    if let Some(stream) = reply.stream.take() {
                        actix_rt::spawn(forward_stream(
                            stream,
                            reply.body,
                            id,
                            act.outbound.clone(),
                            closed,
                        ));
                    } else if let Some(download) = reply.download.take() {
                        actix_rt::spawn(forward_download(
                            download,
                            reply.body,
                            id,
                            act.outbound.clone(),
                            closed,
                        ));
                    } else {
                        act.send_json(jsonrpc::success(id, &reply.body), ctx);
                    }
                }
                Err(error) => act.send_json(jsonrpc::failure(id, &error), ctx),
            }
        }));
    }
}

/// Decodes frames; answers what cannot become a request; feeds uploads.
async fn read_frames<S, E>(
    mut frames: S,
    connection: Addr<FramedConnection>,
    outbound: mpsc::Sender<Frame>,
) where
    S: Stream<Item = Result<Frame, E>> + Unpin,
    E: Display,
{
    let reply = |bytes: Vec<u8>| Frame::Json(Bytes::from(bytes));
    let mut upload = Upload::None;
    let mut attached: Option<mpsc::Sender<Bytes>> = None;
    // Once the connection is a tunnel to a peer, every frame goes there as it is.
    let mut tunnel: Option<mpsc::Sender<Frame>> = None;
    while let Some(frame) = frames.next().await {
        if let (Some(to_peer), Ok(frame)) = (&tunnel, &frame) {
            // Waiting here is the back-pressure toward the client.
            if to_peer.send(frame.clone()).await.is_err() {
                break;
            }
            continue;
        }
        match frame {
            Ok(Frame::Json(bytes)) => {
                if let Some(call) = jsonrpc::binary_call(&bytes) {
                    let id = call.id.clone();
                    let mut sides = Sides {
                        upload: &mut upload,
                        attached: &mut attached,
                        tunnel: &mut tunnel,
                        outbound: &outbound,
                    };
                    match binary_request(call, &mut sides) {
                        Ok(Some(request)) => connection.do_send(Dispatch {
                            id: Some(id),
                            request,
                        }),
                        Ok(None) => {
                            let _ = outbound
                                .send(reply(jsonrpc::success(
                                    id,
                                    &serde_json::json!({ "detached": true }),
                                )))
                                .await;
                        }
                        // Refused here or not, the Router answers and audits it.
                        Err(error) => connection.do_send(Dispatch {
                            id: Some(id),
                            request: Request::Malformed { op: "rpc", error },
                        }),
                    }
                    continue;
                }
                match jsonrpc::parse(&bytes) {
                    RpcIncoming::Call {
                        id,
                        request: Ok(request),
                    } => connection.do_send(Dispatch {
                        id: Some(id),
                        request,
                    }),
                    // Garbled JSON, unknown methods and bad params are Router
                    // outcomes too: answered and audited there.
                    RpcIncoming::Call {
                        id,
                        request: Err(error),
                    }
                    | RpcIncoming::Invalid { id, error } => connection.do_send(Dispatch {
                        id: Some(id),
                        request: Request::Malformed { op: "rpc", error },
                    }),
                    RpcIncoming::Notification {
                        request: Ok(request),
                    } => connection.do_send(Dispatch { id: None, request }),
                    RpcIncoming::Notification {
                        request: Err(error),
                    } => {
                        tracing::debug!(code = error.code, "dropped an invalid notification");
                    }
                }
            }
            Ok(Frame::Binary(bytes)) => match &upload {
                // An empty binary frame ends the upload.
                Upload::Open(_) | Upload::Dropping if bytes.is_empty() => upload = Upload::None,
                Upload::Open(sender) => {
                    // Waiting here pauses reading: the client is slowed, not buffered.
                    if sender.send(Ok(bytes)).await.is_err() {
                        // Refused or failed: the call's answer says why.
                        upload = Upload::Dropping;
                    }
                }
                Upload::Dropping => {}
                Upload::None => match &attached {
                    Some(sender) => {
                        // Keystrokes: waiting pauses reading, so typing ahead is held by the client.
                        if sender.send(bytes).await.is_err() {
                            attached = None;
                        }
                    }
                    None => {
                        let error = ApiError::invalid_request(
                            "Binary frames carry upload bytes after transfer.push or keystrokes after session.attach, and neither is in progress",
                        );
                        let _ = outbound
                            .send(reply(jsonrpc::failure(Id::Null, &error)))
                            .await;
                    }
                },
            },
            Err(error) => {
                // A framing error leaves the byte stream unsynchronised: say why, then close.
                tracing::warn!(error = %error, "closing a connection after a framing error");
                let error = ApiError::invalid_request(format!("{error}; closing the connection"));
                let _ = outbound
                    .send(reply(jsonrpc::failure(Id::Null, &error)))
                    .await;
                break;
            }
        }
    }
    if let Upload::Open(sender) = upload {
        let _ = sender
            .send(Err(
                "the connection closed before the upload's end frame".into()
            ))
            .await;
    }
    connection.do_send(ReaderDone);
}

/// Keystrokes queued toward an attached session before reading pauses.
const INPUT_QUEUE: usize = 64;

/// Where a connection's upload bytes (binary frames after `transfer.push`) go.
enum Upload {
    /// No upload in progress: binary frames are keystrokes, or an error.
    None,
    /// To the call that is writing them.
    Open(mpsc::Sender<Result<Bytes, String>>),
    /// The call ended before the client's end frame (refused or failed; its
    /// answer says why): the bytes still on their way are dropped quietly
    /// until that frame, rather than each earning an error the client is
    /// not reading while it writes.
    Dropping,
}

/// Where the reader sends the frames that follow a binary-carrying call.
struct Sides<'a> {
    upload: &'a mut Upload,
    attached: &'a mut Option<mpsc::Sender<Bytes>>,
    tunnel: &'a mut Option<mpsc::Sender<Frame>>,
    outbound: &'a mpsc::Sender<Frame>,
}

/// Frames queued toward a peer's tunnel before reading pauses.
const TUNNEL_QUEUE: usize = 64;

/// Builds the request of a binary-carrying call and sets up where its frames go;
/// `Ok(None)` for `session.detach`, which the reader answers itself.
fn binary_request(
    call: jsonrpc::BinaryCall,
    sides: &mut Sides<'_>,
) -> Result<Option<Request>, ApiError> {
    let Sides {
        upload,
        attached,
        tunnel,
        outbound,
    } = sides;
    let params = call.params?;
    match call.method.as_str() {
        method::PEERS_TUNNEL => {
            let params: TunnelParams = parse_params(&call.method, params.as_ref())?;
            let (sender, receiver) = mpsc::channel(TUNNEL_QUEUE);
            **tunnel = Some(sender);
            Ok(Some(Request::Peers(PeerRequest::Tunnel {
                peer: params.peer,
                to_peer: receiver,
                back: (*outbound).clone(),
            })))
        }
        method::TRANSFER_PUSH => {
            let params: PushParams = parse_params(&call.method, params.as_ref())?;
            let (sender, receiver) = mpsc::channel(UPLOAD_QUEUE);
            **upload = Upload::Open(sender);
            Ok(Some(Request::TransferPush {
                dest_path: params.dest_path,
                expected_sha256: params.checksum,
                body: UploadBody(receiver),
            }))
        }
        method::PEERS_TRANSFER_PUSH => {
            let params: PeerPushParams = parse_params(&call.method, params.as_ref())?;
            let (sender, receiver) = mpsc::channel(UPLOAD_QUEUE);
            **upload = Upload::Open(sender);
            Ok(Some(Request::Peers(PeerRequest::TransferPush {
                peer: params.peer,
                dest_path: params.dest_path,
                checksum: params.checksum,
                body: UploadBody(receiver),
            })))
        }
        method::SESSION_ATTACH => {
            if attached.is_some() {
                return Err(ApiError::invalid_request(
                    "This connection is already attached to a session; send session.detach first",
                ));
            }
            let params: SessionAttachParams = parse_params(&call.method, params.as_ref())?;
            let (sender, receiver) = mpsc::channel(INPUT_QUEUE);
            **attached = Some(sender);
            Ok(Some(Request::SessionAttach {
                target: params.id,
                from_offset: params.from_offset,
                cols: params.cols,
                rows: params.rows,
                input: InputBody(receiver),
            }))
        }
        // Dropping the keystroke channel detaches; the attach call then ends.
        _ => {
            **attached = None;
            Ok(None)
        }
    }
}

/// Events become `stream.event` notifications; the end becomes the call's answer.
async fn forward_stream(
    stream: ReplyStream,
    header: serde_json::Value,
    id: Id<'static>,
    outbound: mpsc::Sender<Frame>,
    mut closed: watch::Receiver<bool>,
) {
    // The stream's header (job id, session offset, …) comes first, as a `start` event.
    let mut start = serde_json::json!({ "type": "start", "requestId": id });
    if let (Some(fields), serde_json::Value::Object(header)) = (start.as_object_mut(), header) {
        fields.extend(header);
    }
    let note =
        serde_json::json!({ "jsonrpc": "2.0", "method": STREAM_EVENT_METHOD, "params": start });
    if outbound
        .send(Frame::Json(Bytes::from(
            serde_json::to_vec(&note).unwrap_or_default(),
        )))
        .await
        .is_err()
    {
        return;
    }
    let mut events = stream.0;
    loop {
        let item = tokio::select! {
            item = events.recv() => item,
            _ = closed.changed() => return,
        };
        let Some(item) = item else { return };
        let frame = match item {
            StreamItem::Binary(bytes) => {
                if outbound.send(Frame::Binary(bytes)).await.is_err() {
                    return;
                }
                continue;
            }
            StreamItem::Event(mut event) => {
                if let Some(fields) = event.as_object_mut() {
                    fields.insert(
                        "requestId".to_owned(),
                        serde_json::to_value(&id).unwrap_or_default(),
                    );
                }
                let note = serde_json::json!({ "jsonrpc": "2.0", "method": STREAM_EVENT_METHOD, "params": event });
                serde_json::to_vec(&note).unwrap_or_default()
            }
            StreamItem::End(Ok(result)) => jsonrpc::success(id.clone(), &result),
            StreamItem::End(Err(error)) => jsonrpc::failure(id.clone(), &error),
        };
        if outbound
            .send(Frame::Json(Bytes::from(frame)))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The answer (name, size), then the file as binary frames, then an empty binary frame.
async fn forward_download(
    download: FileDownload,
    header: serde_json::Value,
    id: Id<'static>,
    outbound: mpsc::Sender<Frame>,
    mut closed: watch::Receiver<bool>,
) {
    use tokio::io::AsyncReadExt;
    if outbound
        .send(Frame::Json(Bytes::from(jsonrpc::success(id, &header))))
        .await
        .is_err()
    {
        return;
    }
    let mut file = tokio::fs::File::from_std(download.file);
    let (_held, idle) = (download.held, download.idle);
    loop {
        let mut chunk = BytesMut::with_capacity(DOWNLOAD_CHUNK);
        let read = tokio::select! {
            read = file.read_buf(&mut chunk) => read,
            _ = closed.changed() => return,
        };
        match read {
            Ok(0) => break,
            Ok(_) => {
                // A client that takes nothing for this long has stalled: the
                // download ends (without its end frame) and frees the file.
                let sent =
                    tokio::time::timeout(idle, outbound.send(Frame::Binary(chunk.freeze()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
            }
            Err(e) => {
                // The answer is already out; closing without the end frame tells
                // the client the download is incomplete.
                tracing::warn!(error = %e, "reading a file for a download failed");
                return;
            }
        }
    }
    let _ = outbound.send(Frame::Binary(Bytes::new())).await;
}
