//! The MCP server's way to the daemon: one Unix-socket connection per call,
//! made on a blocking thread (the socket client is blocking; calls are few
//! and a connect is cheap), as the owner. A call for a peer goes through
//! `peers.call`, so no peer credential ever reaches this process.

use std::path::PathBuf;
use std::time::Duration;

use loopsy_transports::client::{ClientError, UnixRpcClient};
use loopsy_transports::wire::method;
use serde_json::{Value, json};

use super::ToolError;

/// How long a call may take unless it says otherwise.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What every tool answers while the daemon is down.
pub const NOT_RUNNING: &str = "the loopsy daemon is not running: run `loopsy start`";

#[derive(Clone)]
pub struct Daemon {
    socket: PathBuf,
}

impl From<ClientError> for ToolError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Connect { .. } => ToolError(NOT_RUNNING.to_owned()),
            ClientError::Rpc(failure) => ToolError(match failure.loopsy_code() {
                Some(code) => format!("{} (code {code})", failure.message),
                None => failure.message,
            }),
            other => ToolError(format!(
                "{other}; is the daemon still running? (`loopsy status`)"
            )),
        }
    }
}

impl ToolError {
    /// Whether the daemon refused with loopsy error `code` (as formatted above).
    pub fn has_code(&self, code: u32) -> bool {
        self.0.ends_with(&format!("(code {code})"))
    }
}

impl Daemon {
    pub fn new(socket: PathBuf) -> Self {
        Self { socket }
    }

    pub fn socket(&self) -> &PathBuf {
        &self.socket
    }

    /// Calls `method` here, waiting at most `within` for the answer.
    pub async fn call_within(
        &self,
        method: &'static str,
        params: Value,
        within: Duration,
    ) -> Result<Value, ToolError> {
        let socket = self.socket.clone();
        tokio::task::spawn_blocking(move || {
            let mut client = UnixRpcClient::connect(&socket, within)?;
            client.call(method, Some(&params))
        })
        .await
        .map_err(|e| ToolError(format!("the call to the daemon did not finish ({e})")))?
        .map_err(ToolError::from)
    }

    pub async fn call(&self, method: &'static str, params: Value) -> Result<Value, ToolError> {
        self.call_within(method, params, CALL_TIMEOUT).await
    }

    /// Calls `method` on `peer` (through this daemon's link to it) or, with no
    /// peer, here.
    pub async fn on(
        &self,
        peer: Option<&str>,
        method: &'static str,
        params: Value,
        within: Duration,
    ) -> Result<Value, ToolError> {
        match peer {
            None => self.call_within(method, params, within).await,
            Some(peer) => {
                self.call_within(
                    method::PEERS_CALL,
                    json!({"peer": peer, "method": method, "params": params}),
                    within,
                )
                .await
            }
        }
    }
}
