//! `mcp.attach`: a `loopsy mcp` process announces itself; the Router starts
//! its `McpClient` actor and keeps what `status` shows of it until the actor
//! reports the connection gone.

use std::collections::BTreeMap;

use actix::prelude::*;
use loopsy_transports::error::ApiError;
use loopsy_transports::wire::{Reply, ReplyStream, Request};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Principal, Router, Work};
use crate::mcp_client::{McpClient, McpClientGone};

/// The MCP clients attached now.
#[derive(Default)]
pub struct McpClients {
    next: u64,
    attached: BTreeMap<u64, (Value, Addr<McpClient>)>,
}

impl McpClients {
    pub fn list(&self) -> Vec<Value> {
        self.attached
            .values()
            .map(|(info, _)| info.clone())
            .collect()
    }
}

fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(100).collect()
}

pub(super) fn run(router: &mut Router, request: Request, _: &Principal) -> Work {
    let Request::McpAttach { name, version } = request else {
        return Work::Done(Err(ApiError::internal("not an MCP request")));
    };
    let Some(address) = router.self_address.clone() else {
        return Work::Done(Err(ApiError::unavailable(
            "the Router is starting; try again",
        )));
    };
    router.mcp.next += 1;
    let id = router.mcp.next;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let info = json!({"id": id, "name": clean(&name), "version": clean(&version), "since": since});
    let (stream, events) = mpsc::channel(1);
    let client = McpClient::new(id, stream, address.recipient()).start();
    router.mcp.attached.insert(id, (info.clone(), client));
    Work::Done(Ok(Reply::streaming(info, ReplyStream(events))))
}

impl Handler<McpClientGone> for Router {
    type Result = ();
    fn handle(&mut self, gone: McpClientGone, _: &mut Self::Context) {
        self.mcp.attached.remove(&gone.id);
    }
}
