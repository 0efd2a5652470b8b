//! The attached clients of one session and how output reaches them. Each client
//! has a bounded queue and the offset of the next byte it should get. New output
//! goes to every client that keeps up; a client whose queue is full is marked
//! lagging and skipped (it never holds back the PTY or the others), then caught
//! up from the ring, or from a snapshot once its gap has left the ring.

use std::collections::HashMap;

use bytes::Bytes;
use loopsy_transports::wire::StreamItem;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::ring::{Gap, OutputRing};

/// Most bytes per binary frame to a client.
const CHUNK: usize = 64 * 1024;
/// Output items buffered per client before it counts as lagging.
pub const CLIENT_QUEUE: usize = 256;

pub struct Client {
    pub sink: mpsc::Sender<StreamItem>,
    /// Offset of the next byte this client should receive.
    pub next: u64,
    pub lagging: bool,
}

impl Client {
    pub fn new(sink: mpsc::Sender<StreamItem>, next: u64) -> Self {
        Self {
            sink,
            next,
            lagging: false,
        }
    }

    /// Queues `bytes` in frame-sized pieces; false if the queue has no room.
    pub fn offer(&mut self, bytes: &Bytes) -> bool {
        let mut rest = bytes.clone();
        while !rest.is_empty() {
            let piece = rest.split_to(rest.len().min(CHUNK));
            if self.sink.try_send(StreamItem::Binary(piece)).is_err() {
                return false;
            }
        }
        true
    }

    /// Room for a catch-up: at least half the queue free.
    fn has_room(&self) -> bool {
        self.sink.capacity() >= CLIENT_QUEUE / 2
    }
}

/// What a catch-up round found.
pub struct CatchUp {
    /// Some lagging client's gap has left the ring: it needs a snapshot.
    pub needs_snapshot: bool,
    /// Some client is keeping up again.
    pub caught_up: bool,
}

#[derive(Default)]
pub struct Clients {
    clients: HashMap<u64, Client>,
    next_id: u64,
}

impl Clients {
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    pub fn any_lagging(&self) -> bool {
        self.clients.values().any(|c| c.lagging)
    }

    pub fn insert(&mut self, client: Client) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.clients.insert(id, client);
        id
    }

    pub fn remove(&mut self, id: u64) -> Option<Client> {
        self.clients.remove(&id)
    }

    pub fn drain(&mut self) -> impl Iterator<Item = Client> + '_ {
        self.clients.drain().map(|(_, client)| client)
    }

    /// The queues of the clients keeping up (the PTY reader waits for them, briefly).
    pub fn keeping_up(&self) -> Vec<mpsc::Sender<StreamItem>> {
        self.clients
            .values()
            .filter(|c| !c.lagging)
            .map(|c| c.sink.clone())
            .collect()
    }

    /// `chunk` was appended to the ring at `start..end`: hands it to every client
    /// that keeps up. Returns whether a client fell behind.
    pub fn on_output(&mut self, chunk: &Bytes, start: u64, end: u64) -> bool {
        self.clients.retain(|_, client| !client.sink.is_closed());
        let mut fell_behind = false;
        for client in self.clients.values_mut() {
            // A client already holds everything up to `next` (e.g. from a snapshot
            // the emulator made slightly ahead of the ring): send only what follows.
            if client.lagging || client.next >= end {
                continue;
            }
            if client.next < start {
                client.lagging = true;
                fell_behind = true;
                continue;
            }
            let piece = chunk.slice((client.next - start) as usize..);
            match client.sink.try_send(StreamItem::Binary(piece)) {
                Ok(()) => client.next = end,
                Err(_) => {
                    client.lagging = true;
                    fell_behind = true;
                }
            }
        }
        fell_behind
    }

    /// Offers lagging clients with room what they missed, from the ring.
    pub fn catch_up_from(&mut self, ring: &OutputRing) -> CatchUp {
        let end = ring.end();
        let mut outcome = CatchUp {
            needs_snapshot: false,
            caught_up: false,
        };
        for client in self.clients.values_mut().filter(|c| c.lagging) {
            if !client.has_room() {
                continue;
            }
            match ring.since(client.next.min(end)) {
                Ok(bytes) => {
                    if client.offer(&bytes) {
                        client.next = client.next.max(end);
                        client.lagging = false;
                        outcome.caught_up = true;
                    }
                }
                Err(_) => outcome.needs_snapshot = true,
            }
        }
        outcome
    }

    /// Redraws lagging clients whose gap left the ring from a snapshot that
    /// stands for output up to `offset`; what followed comes from the ring next.
    pub fn resync(&mut self, ring: &OutputRing, snapshot: &Bytes, offset: u64) {
        for client in self.clients.values_mut().filter(|c| c.lagging) {
            if ring.since(client.next) != Err(Gap::Evicted) || !client.has_room() {
                continue;
            }
            let _ = client.sink.try_send(StreamItem::Event(
                json!({ "type": "resync", "offset": offset }),
            ));
            if client.offer(snapshot) {
                client.next = offset;
            }
        }
    }

    /// Tells every client the session ended, then forgets them.
    pub fn end_all(&mut self, event: &Value, end: &Value) {
        for client in self.drain() {
            let (event, end) = (event.clone(), end.clone());
            actix_rt::spawn(async move {
                let _ = client.sink.send(StreamItem::Event(event)).await;
                let _ = client.sink.send(StreamItem::End(Ok(end))).await;
            });
        }
    }
}
