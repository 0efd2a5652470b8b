//! The `UnixSocket` transport: the owner's door (CLI, `loopsy shell`, `loopsy mcp`).
//! It accepts connections, records the peer's uid as evidence and hands each to a
//! `FramedConnection` with a writer into the socket. It decides nothing itself.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use actix::prelude::*;
use futures_util::{SinkExt, stream};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::framed_connection::FramedConnection;
use crate::framing::{Frame, FrameCodec};
use crate::wire::{Evidence, Inbound};

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
                let (read_half, write_half) = stream.into_split();
                FramedConnection::start(
                    FramedRead::new(read_half, FrameCodec::default()),
                    |queue| write_frames(write_half, queue),
                    self.router.clone(),
                    Evidence::UnixSocket { peer_uid },
                );
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

/// Bytes gathered into one write at most.
const WRITE_BATCH: usize = 256 * 1024;

async fn write_frames(write_half: OwnedWriteHalf, mut frames: mpsc::Receiver<Frame>) {
    let mut sink = FramedWrite::new(write_half, FrameCodec::default());
    while let Some(frame) = frames.recv().await {
        // Frames already queued go out in the same write; a lone frame (an
        // echoed keystroke) goes out at once.
        let mut result = sink.feed(frame).await;
        while result.is_ok()
            && sink.write_buffer().len() < WRITE_BATCH
            && let Ok(next) = frames.try_recv()
        {
            result = sink.feed(next).await;
        }
        if let Err(e) = result.and(sink.flush().await) {
            tracing::debug!(error = %e, "a Unix-socket client went away");
            return;
        }
    }
}
