//! The `UnixSocket` transport: the owner's door (CLI, `loopsy shell`, `loopsy mcp`).
//! It accepts connections, records the peer's uid as evidence, decodes frames and
//! JSON-RPC, and forwards every request to the Router. It decides nothing itself.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use actix::io::{FramedWrite, WriteHandler};
use actix::prelude::*;
use bytes::Bytes;
use futures_util::stream;
use jsonrpsee_types::Id;
use tokio::io::WriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::codec::FramedRead;

use crate::error::ApiError;
use crate::framing::{Frame, FrameCodec, FrameError};
use crate::jsonrpc::{self, RpcIncoming};
use crate::wire::{Evidence, Handled, Inbound, Request, STREAM_EVENT_METHOD, StreamItem};

/// Listens on the daemon's socket and starts one [`UnixConnection`] actor per client.
pub struct UnixSocket {
    router: Recipient<Inbound>,
    path: PathBuf,
    /// Taken by `started`, which turns it into the accept stream.
    listener: Option<UnixListener>,
}

impl UnixSocket {
    /// Binds `path` and restricts it to the owner (`0600`). The caller removes any stale
    /// file first, and only after it holds the daemon lock, so a live daemon's socket is
    /// never unlinked.
    pub fn bind(path: &Path, router: Recipient<Inbound>) -> io::Result<Self> {
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Self {
            router,
            path: path.to_owned(),
            listener: Some(listener),
        })
    }
}

impl Actor for UnixSocket {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(listener) = self.listener.take() {
            let accepts = stream::unfold(listener, |listener| async move {
                let next = listener.accept().await.map(|(stream, _)| stream);
                Some((next, listener))
            });
            ctx.add_stream(accepts);
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the socket file");
        }
    }
}

impl StreamHandler<io::Result<UnixStream>> for UnixSocket {
    fn handle(&mut self, accepted: io::Result<UnixStream>, _ctx: &mut Self::Context) {
        match accepted {
            Ok(stream) => {
                let peer_uid = stream.peer_cred().ok().map(|cred| cred.uid());
                UnixConnection::start(stream, self.router.clone(), peer_uid);
            }
            Err(e) => tracing::warn!(error = %e, "accept on the Unix socket failed"),
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

/// Stop accepting new connections and remove the socket file (graceful shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAccepting;

impl Handler<StopAccepting> for UnixSocket {
    type Result = ();

    fn handle(&mut self, _msg: StopAccepting, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// One client connection on the Unix socket.
pub struct UnixConnection {
    router: Recipient<Inbound>,
    evidence: Evidence,
    writer: FramedWrite<Frame, WriteHalf<UnixStream>, FrameCodec>,
}

impl UnixConnection {
    fn start(stream: UnixStream, router: Recipient<Inbound>, peer_uid: Option<u32>) {
        let (read_half, write_half) = tokio::io::split(stream);
        UnixConnection::create(move |ctx| {
            ctx.add_stream(FramedRead::new(read_half, FrameCodec::default()));
            UnixConnection {
                router,
                evidence: Evidence::UnixSocket { peer_uid },
                writer: FramedWrite::new(write_half, FrameCodec::default(), ctx),
            }
        });
    }

    fn send_json(&mut self, bytes: Vec<u8>) {
        self.writer.write(Frame::Json(Bytes::from(bytes)));
    }

    fn dispatch(&mut self, id: Option<Id<'static>>, request: Request, ctx: &mut Context<Self>) {
        use futures_util::StreamExt;
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
            match (outcome, id) {
                (Ok(reply), Some(id)) if reply.stream.is_some() => {
                    if let Some(stream) = reply.stream {
                        // Events become notifications; the end becomes the call's answer.
                        let items =
                            futures_util::stream::unfold(stream.0, |mut receiver| async move {
                                receiver.recv().await.map(|item| (item, receiver))
                            })
                            .map(move |item| CallStreamItem {
                                id: id.clone(),
                                item,
                            });
                        ctx.add_stream(items);
                    }
                }
                (Ok(reply), Some(id)) => act.send_json(jsonrpc::success(id, &reply.body)),
                (Err(error), Some(id)) => act.send_json(jsonrpc::failure(id, &error)),
                // A notification: the work runs, nothing is answered (a stream is dropped,
                // which tells its producer to stop).
                (_, None) => {}
            }
        }));
    }
}

impl Actor for UnixConnection {
    type Context = Context<Self>;
}

/// An item of a streaming answer to the call `id`.
struct CallStreamItem {
    id: Id<'static>,
    item: StreamItem,
}

impl StreamHandler<CallStreamItem> for UnixConnection {
    fn handle(&mut self, CallStreamItem { id, item }: CallStreamItem, _ctx: &mut Self::Context) {
        match item {
            StreamItem::Event(mut event) => {
                if let Some(fields) = event.as_object_mut() {
                    fields.insert(
                        "requestId".to_owned(),
                        serde_json::to_value(&id).unwrap_or_default(),
                    );
                }
                let note = serde_json::json!({ "jsonrpc": "2.0", "method": STREAM_EVENT_METHOD, "params": event });
                self.send_json(serde_json::to_vec(&note).unwrap_or_default());
            }
            StreamItem::End(Ok(result)) => self.send_json(jsonrpc::success(id, &result)),
            StreamItem::End(Err(error)) => self.send_json(jsonrpc::failure(id, &error)),
        }
    }

    // One finished stream is not the end of the connection.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl WriteHandler<FrameError> for UnixConnection {}

impl StreamHandler<Result<Frame, FrameError>> for UnixConnection {
    fn handle(&mut self, frame: Result<Frame, FrameError>, ctx: &mut Self::Context) {
        match frame {
            Ok(Frame::Json(bytes)) => match jsonrpc::parse(&bytes) {
                RpcIncoming::Call { id, request } => match request {
                    Ok(request) => self.dispatch(Some(id), request, ctx),
                    Err(error) => self.send_json(jsonrpc::failure(id, &error)),
                },
                RpcIncoming::Notification {
                    request: Ok(request),
                } => self.dispatch(None, request, ctx),
                RpcIncoming::Notification {
                    request: Err(error),
                } => {
                    tracing::debug!(code = error.code, "dropped an invalid notification");
                }
                RpcIncoming::Invalid { id, error } => self.send_json(jsonrpc::failure(id, &error)),
            },
            Ok(Frame::Binary(_)) => {
                let error = ApiError::invalid_request(
                    "Binary frames carry terminal input, and no session is attached to this connection",
                );
                self.send_json(jsonrpc::failure(Id::Null, &error));
            }
            Err(error) => {
                // A framing error leaves the byte stream unsynchronised: say why, then close.
                tracing::warn!(error = %error, "closing a Unix-socket connection after a framing error");
                let error = ApiError::invalid_request(format!("{error}; closing the connection"));
                self.send_json(jsonrpc::failure(Id::Null, &error));
                self.writer.close();
            }
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {
        // The client closed its side (or framing failed): flush what is queued; the
        // writer's completion then stops this actor.
        self.writer.close();
    }
}
