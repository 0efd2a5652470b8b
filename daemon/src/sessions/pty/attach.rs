//! Attaching a client to a session: it gets exactly the bytes after its
//! `fromOffset` while they are in the ring, or a snapshot that redraws the
//! screen, then live output; its keystrokes go straight to the PTY's writer;
//! when its input closes it is detached.

use actix::prelude::*;
use bytes::Bytes;
use loopsy_transports::wire::StreamItem;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::super::SessionError;
use super::super::fanout::{CLIENT_QUEUE, Client};
use super::{PtySession, Size};

/// Attach a client. Output goes to `sink`; bytes from `input` go to the PTY;
/// when `input` closes the client is detached.
#[derive(Message)]
#[rtype(result = "Result<Value, SessionError>")]
pub struct AttachClient {
    pub from_offset: Option<u64>,
    pub size: Option<Size>,
    pub sink: mpsc::Sender<StreamItem>,
    pub input: mpsc::Receiver<Bytes>,
}

/// Capacity of an attached client's output queue.
pub const ATTACH_QUEUE: usize = CLIENT_QUEUE;

impl PtySession {
    /// Registers an attached client whose next byte is `next`, having sent it `catch_up`.
    fn register(
        &mut self,
        sink: mpsc::Sender<StreamItem>,
        input: mpsc::Receiver<Bytes>,
        catch_up: &Bytes,
        next: u64,
        resynced: bool,
        ctx: &mut Context<Self>,
    ) -> Result<Value, SessionError> {
        let mut client = Client::new(sink, next);
        if !client.offer(catch_up) {
            return Err(SessionError::Failed(
                "the client's queue is too small for the catch-up".into(),
            ));
        }
        // Output that arrived while a snapshot was being made comes from the ring.
        if let Ok(rest) = self.ring.since(next.min(self.ring.end()))
            && next < self.ring.end()
            && client.offer(&rest)
        {
            client.next = self.ring.end();
        }
        let end = self.ring.end();
        if let Some(exit) = &self.exit {
            let event = json!({ "type": "exit", "exitCode": exit.code, "signal": exit.signal, "offset": end });
            let end = json!({ "id": self.id, "exitCode": exit.code, "signal": exit.signal });
            let sink = client.sink.clone();
            actix_rt::spawn(async move {
                let _ = sink.send(StreamItem::Event(event)).await;
                let _ = sink.send(StreamItem::End(Ok(end))).await;
            });
        } else {
            let client_id = self.clients.insert(client);
            self.publish_pace();
            let me = ctx.address();
            let mut input = input;
            // Keystrokes go straight to the PTY's writer task, not through this
            // actor's mailbox: typing never waits behind output handling.
            let pty_input = self.input.clone();
            actix_rt::spawn(async move {
                while let Some(bytes) = input.recv().await {
                    if pty_input.send(bytes).is_err() {
                        break;
                    }
                }
                me.do_send(Detach { client_id });
            });
            self.update_idle_timer(ctx);
        }
        let mut info = self.info();
        // Where the client stands: after a snapshot of `snapshotBytes` bytes its
        // position is `offset`; when catching up from the ring, the first byte
        // it receives is at `offset`. Either way, position = offset + bytes
        // received − snapshotBytes, which is what it resumes from next time.
        let snapshot_bytes = if resynced { catch_up.len() } else { 0 };
        let first = if resynced {
            next
        } else {
            next - catch_up.len() as u64
        };
        info["offset"] = json!(first);
        info["snapshotBytes"] = json!(snapshot_bytes);
        info["resynced"] = json!(resynced);
        Ok(info)
    }
}

impl Handler<AttachClient> for PtySession {
    type Result = ResponseActFuture<Self, Result<Value, SessionError>>;

    fn handle(&mut self, msg: AttachClient, ctx: &mut Self::Context) -> Self::Result {
        let end = self.ring.end();
        if let Some(offset) = msg.from_offset
            && offset > end
        {
            return Box::pin(actix::fut::ready(Err(SessionError::Invalid(format!(
                "fromOffset {offset} is beyond the session's output ({end} bytes so far)"
            )))));
        }
        // The most recently attached interactive client sets the size, before the
        // snapshot is taken so that it wraps at that client's width.
        if let Some(size) = msg.size {
            self.pending_size = None;
            self.apply_size(size);
        }
        if let Some(Ok(bytes)) = msg.from_offset.map(|o| self.ring.since(o)) {
            let result = self.register(msg.sink, msg.input, &bytes, end, false, ctx);
            return Box::pin(actix::fut::ready(result));
        }
        self.feed_emulator();
        let snapshot = self.emulator.snapshot();
        Box::pin(
            actix::fut::wrap_future::<_, Self>(snapshot).map(move |snapshot, act, ctx| {
                let snapshot = snapshot
                    .map_err(|_| SessionError::Failed("the terminal emulator stopped".into()))?;
                act.register(
                    msg.sink,
                    msg.input,
                    &snapshot.bytes,
                    snapshot.offset,
                    true,
                    ctx,
                )
            }),
        )
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Detach {
    client_id: u64,
}

impl Handler<Detach> for PtySession {
    type Result = ();
    fn handle(&mut self, msg: Detach, ctx: &mut Self::Context) {
        if let Some(client) = self.clients.remove(msg.client_id) {
            self.publish_pace();
            let end = json!({ "id": self.id, "detached": true, "offset": self.ring.end() });
            actix_rt::spawn(async move {
                let _ = client.sink.send(StreamItem::End(Ok(end))).await;
            });
        }
        self.update_idle_timer(ctx);
    }
}
