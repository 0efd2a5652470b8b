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
        mut on_event: impl FnMut(&Value),
    ) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = jsonrpc::call(id, method, params);
        framing::write_frame_blocking(&mut self.stream, Frame::Json(request.into()))?;
        loop {
            let Frame::Json(bytes) =
                framing::read_frame_blocking(&mut self.stream, MAX_FRAME_PAYLOAD)?
            else {
                continue;
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
