//! A session as an agent reads it, without attaching: output from a byte
//! offset, the screen as text, and a watch on the output's end (and exit) for
//! `session.wait`, which waits for output instead of polling for it.

use actix::prelude::*;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::super::SessionError;
use super::super::emulator::ScreenText;
use super::super::ring::Gap;
use super::PtySession;

/// Where a session's output stands: its end offset, and whether it exited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub end: u64,
    pub exited: bool,
}

impl PtySession {
    pub(super) fn publish_progress(&self) {
        self.progress.send_replace(Progress {
            end: self.ring.end(),
            exited: self.exit.is_some(),
        });
    }

    fn exit_json(&self) -> Value {
        json!({
            "exited": self.exit.is_some(),
            "exitCode": self.exit.as_ref().and_then(|e| e.code),
            "exitSignal": self.exit.as_ref().and_then(|e| e.signal.clone()),
        })
    }
}

/// Up to `max` bytes of output from `from` (the ring's start when absent or
/// already evicted): the bytes, where they start, and the session's state.
#[derive(Message)]
#[rtype(result = "Result<(Bytes, Value), SessionError>")]
pub struct ReadOutput {
    pub from: Option<u64>,
    pub max: usize,
}

impl Handler<ReadOutput> for PtySession {
    type Result = Result<(Bytes, Value), SessionError>;
    fn handle(&mut self, msg: ReadOutput, _: &mut Self::Context) -> Self::Result {
        let (start, end) = (self.ring.start(), self.ring.end());
        let asked = msg.from.unwrap_or(start);
        let from = asked.clamp(start, end);
        let bytes = match self.ring.since(from) {
            Ok(bytes) => bytes,
            // Clamped into the ring, so neither happens; an empty read if it did.
            Err(Gap::Evicted | Gap::Future) => Bytes::new(),
        };
        let bytes = bytes.slice(..bytes.len().min(msg.max));
        let mut state = self.exit_json();
        state["id"] = json!(self.id);
        state["offset"] = json!(from);
        state["nextOffset"] = json!(from + bytes.len() as u64);
        state["end"] = json!(end);
        // Bytes between the offset asked and the ring's start were evicted.
        state["skipped"] = json!(from.saturating_sub(asked));
        Ok((bytes, state))
    }
}

/// The visible screen as text.
#[derive(Message)]
#[rtype(result = "Result<(ScreenText, Value), SessionError>")]
pub struct ScreenTextOf;

impl Handler<ScreenTextOf> for PtySession {
    type Result = ResponseFuture<Result<(ScreenText, Value), SessionError>>;
    fn handle(&mut self, _: ScreenTextOf, _: &mut Self::Context) -> Self::Result {
        // Everything read so far goes to the emulator first, so the text is current.
        self.feed_emulator();
        let text = self.emulator.text();
        let mut state = self.exit_json();
        state["id"] = json!(self.id);
        Box::pin(async move {
            let text = text.await.map_err(|_| {
                SessionError::Failed("the session's terminal emulator stopped".into())
            })?;
            Ok((text, state))
        })
    }
}

/// A receiver of the session's `Progress`.
#[derive(Message)]
#[rtype(result = "watch::Receiver<Progress>")]
pub struct WatchProgress;

impl Handler<WatchProgress> for PtySession {
    type Result = MessageResult<WatchProgress>;
    fn handle(&mut self, _: WatchProgress, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.progress.subscribe())
    }
}
