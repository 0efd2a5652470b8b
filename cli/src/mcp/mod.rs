//! `loopsy mcp`: the `loopsy_*` tools for Claude Code, Codex, Gemini CLI and
//! opencode, as a stdio MCP server on rmcp (the official Rust SDK).
//!
//! It is a client of the local daemon over the Unix socket, as the owner:
//! every tool is one or more daemon operations, so the Router decides and
//! audits exactly as for the CLI, and a peer is reached through the daemon's
//! link to it: no credential ever passes through a tool's arguments or
//! results. Stdout carries the protocol only; logs go to stderr. Without a
//! running daemon it still serves, and every tool says how to start one.

mod args;
mod daemon;
mod data_tools;
mod exec_tools;
mod guides;
mod jobs;
mod message_tools;
mod output;
mod server;
mod session_tools;
mod tools;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use loopsy_daemon::paths::DataDir;
use rmcp::ServiceExt;
use serde_json::Value;

/// A tool's failure, told to the agent as a tool result with `isError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

/// A tool's success: a one-line summary and the structured result.
pub struct Answer {
    pub line: String,
    pub value: Value,
}

impl Answer {
    pub fn new(line: impl Into<String>, value: Value) -> Self {
        Self {
            line: line.into(),
            value,
        }
    }
}

/// One MCP connection (this process serves exactly one client).
#[derive(Clone)]
pub struct LoopsyMcp {
    data_dir: DataDir,
    daemon: daemon::Daemon,
    jobs: Arc<jobs::Jobs>,
    /// Whether this process's `mcp.attach` connection (its `McpClient` in
    /// the daemon) is open.
    attached: Arc<AtomicBool>,
}

impl LoopsyMcp {
    fn new(data_dir: DataDir) -> Self {
        Self {
            daemon: daemon::Daemon::new(data_dir.socket()),
            data_dir,
            jobs: Arc::default(),
            attached: Arc::default(),
        }
    }

    /// Announces this client to the daemon, once, on a connection held open
    /// for the life of this process (the daemon's `McpClient` lives as long);
    /// again after the daemon restarts.
    fn attach(&self, name: &str, version: &str) {
        if self.attached.swap(true, Ordering::SeqCst) || !self.daemon.socket().exists() {
            if !self.daemon.socket().exists() {
                self.attached.store(false, Ordering::SeqCst);
            }
            return;
        }
        let (socket, attached) = (self.daemon.socket().clone(), self.attached.clone());
        let params = serde_json::json!({"name": name, "version": version});
        std::thread::spawn(move || {
            let held =
                loopsy_transports::client::UnixRpcClient::connect(&socket, daemon::CALL_TIMEOUT)
                    .and_then(|c| c.without_read_timeout())
                    .and_then(|mut c| {
                        c.call_streaming(
                            loopsy_transports::wire::method::MCP_ATTACH,
                            Some(&params),
                            |_| {},
                        )
                    });
            if let Err(error) = held {
                tracing::debug!(%error, "the attach connection ended");
            }
            attached.store(false, Ordering::SeqCst);
        });
    }

    /// Refuses early when no daemon listens (a tool that would start
    /// threads or open files first).
    fn require_daemon(&self) -> Result<(), ToolError> {
        if self.daemon.socket().exists() {
            Ok(())
        } else {
            Err(ToolError(daemon::NOT_RUNNING.to_owned()))
        }
    }
}

/// Serves MCP on stdin/stdout until the client closes it.
pub fn run(data_dir: &DataDir) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the MCP server's runtime")?;
    runtime.block_on(async {
        let service = LoopsyMcp::new(data_dir.clone())
            .serve(rmcp::transport::stdio())
            .await
            .context("the MCP client did not start a session on stdin/stdout")?;
        service
            .waiting()
            .await
            .context("the MCP session ended with an error")?;
        anyhow::Ok(())
    })
}
