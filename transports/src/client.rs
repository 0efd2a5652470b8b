//! A blocking JSON-RPC client for the daemon's Unix socket: the CLI's channel.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::framing::{self, Frame, FrameError, MAX_FRAME_PAYLOAD};
use crate::jsonrpc::{self, RpcFailure};
use crate::wire::STREAM_EVENT_METHOD;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the daemon at {path}: {source}; is it running? start it with `loopsy start`"
    )]
    Connect { path: PathBuf, source: io::Error },
    #[error("lost the connection to the daemon: {0}")]
    Frame(#[from] FrameError),
    #[error("the daemon sent something that is not a JSON-RPC answer: {0}")]
    Protocol(String),
    #[error("the daemon refused: {} (code {})", .0.message, .0.code)]
    Rpc(RpcFailure),
}

/// Bytes per binary frame of an upload.
const UPLOAD_PIECE: usize = 256 * 1024;

/// One connection to the daemon, used for sequential calls.
pub struct UnixRpcClient {
    stream: UnixStream,
    next_id: u64,
}

impl UnixRpcClient {
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, ClientError> {
        let connect_error = |source| ClientError::Connect {
            path: path.to_owned(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect_error)?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(connect_error)?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(connect_error)?;
        Ok(Self { stream, next_id: 1 })
    }

    /// Calls `method` and waits for its answer, skipping unrelated frames.
    pub fn call(&mut self, method: &str, params: Option<&Value>) -> Result<Value, ClientError> {
        self.call_streaming(method, params, |_| {})
    }

    /// Lets calls wait indefinitely (a streamed command may be silent for long).
    pub fn without_read_timeout(self) -> Result<Self, ClientError> {
        self.stream.set_read_timeout(None).map_err(FrameError::Io)?;
        Ok(self)
    }

    /// Calls `method`; every `stream.event` notification that arrives before the
    /// answer is handed to `on_event`.
    pub fn call_streaming(
        &mut self,
        method: &str,
        params: Option<&Value>,
        on_event: impl FnMut(&Value),
    ) -> Result<Value, ClientError> {
        self.call_receiving(method, params, on_event, |_| Ok(()))
    }

    /// Calls a binary-carrying `method` (`transfer.push`, `peers.transfer.push`):
    /// the call, then `body` in binary frames and the empty frame that ends it,
    /// then the answer. `sent` hears the bytes sent so far.
    pub fn upload(
        &mut self,
        method: &str,
        params: Option<&Value>,
        mut body: impl io::Read,
        mut sent: impl FnMut(u64),
    ) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = jsonrpc::call(id, method, params);
        framing::write_frame_blocking(&mut self.stream, Frame::Json(request.into()))?;
        let mut buffer = vec![0u8; UPLOAD_PIECE];
        let mut total = 0u64;
        loop {
            let n = body.read(&mut buffer).map_err(FrameError::Io)?;
            let piece = bytes::Bytes::copy_from_slice(&buffer[..n]);
            framing::write_frame_blocking(&mut self.stream, Frame::Binary(piece))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            sent(total);
            // An answer before the end is a refusal or a failure (the daemon, or
            // the peer behind it, stopped taking bytes): end the upload and read
            // it now, rather than send the rest of a large file for nothing.
            if self.answer_waiting().map_err(FrameError::Io)? {
                let _ = framing::write_frame_blocking(
                    &mut self.stream,
                    Frame::Binary(bytes::Bytes::new()),
                );
                break;
            }
        }
        self.answer(id, &mut |_| {}, &mut |_| Ok(()))
    }

    /// Whether the daemon has sent something (or closed) that is not yet read.
    fn answer_waiting(&self) -> io::Result<bool> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut fds = [PollFd::new(&self.stream, PollFlags::IN)];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        Ok(poll(&mut fds, Some(&now))? > 0)
    }

    /// Calls `method`; stream events go to `on_event`, binary frames (a
    /// download's bytes) to `on_binary`, until the answer.
    pub fn call_receiving(
        &mut self,
        method: &str,
        params: Option<&Value>,
        mut on_event: impl FnMut(&Value),
        mut on_binary: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = jsonrpc::call(id, method, params);
        framing::write_frame_blocking(&mut self.stream, Frame::Json(request.into()))?;
        self.answer(id, &mut on_event, &mut on_binary)
    }

    fn answer(
        &mut self,
        id: u64,
        on_event: &mut dyn FnMut(&Value),
        on_binary: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<Value, ClientError> {
        loop {
            let bytes = match framing::read_frame_blocking(&mut self.stream, MAX_FRAME_PAYLOAD)? {
                Frame::Json(bytes) => bytes,
                Frame::Binary(bytes) => {
                    on_binary(&bytes).map_err(FrameError::Io)?;
                    continue;
                }
            };
            if let Ok(note) = serde_json::from_slice::<Value>(&bytes)
                && note.get("method").and_then(Value::as_str) == Some(STREAM_EVENT_METHOD)
            {
                if let Some(event) = note.get("params") {
                    on_event(event);
                }
                continue;
            }
            let answer =
                jsonrpc::parse_answer(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))?;
            match answer.id {
                Some(answer_id) if answer_id == id => {
                    return answer.result.map_err(ClientError::Rpc);
                }
                // An error for a frame the daemon could not attribute: it is about us.
                None => return answer.result.map_err(ClientError::Rpc),
                Some(_) => continue,
            }
        }
    }
}
