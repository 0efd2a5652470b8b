//! `McpClient`: one actor per connected `loopsy mcp` (one agent's MCP
//! session), living exactly as long as that process's attach connection on
//! the Unix socket. The tools' calls are ordinary owner requests on their own
//! connections; this actor is the client's presence: `status` lists it, and
//! its end tells the Router at once (a closed connection, however it closed).

use actix::prelude::*;
use loopsy_transports::wire::StreamItem;
use tokio::sync::mpsc;

/// The client's attach stream ended (the agent closed `loopsy mcp`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct McpClientGone {
    pub id: u64,
}

pub struct McpClient {
    id: u64,
    /// The attach call's stream: nothing is sent on it; it closes with the connection.
    stream: mpsc::Sender<StreamItem>,
    router: Recipient<McpClientGone>,
}

impl McpClient {
    pub fn new(
        id: u64,
        stream: mpsc::Sender<StreamItem>,
        router: Recipient<McpClientGone>,
    ) -> Self {
        Self { id, stream, router }
    }
}

impl Actor for McpClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let stream = self.stream.clone();
        ctx.spawn(
            actix::fut::wrap_future(async move { stream.closed().await })
                .map(|(), _: &mut Self, ctx: &mut Self::Context| ctx.stop()),
        );
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.router.do_send(McpClientGone { id: self.id });
    }
}
