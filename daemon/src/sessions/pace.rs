//! Reading a PTY at the pace of the clients that keep up. A program that
//! prints in bulk can produce faster than even a fast client reads; read
//! flat out, the PTY would leave that client behind, and it would miss output
//! and get a snapshot instead. So before each read the session waits, briefly,
//! while every client that is keeping up has a full queue. A client that
//! stays full past the wait is marked lagging by the session and paces
//! nothing from then on: a slow or stopped client delays the PTY once, by at
//! most [`PACE_WAIT`], and never again until it has caught up.

use std::sync::Mutex;
use std::time::Duration;

use loopsy_transports::wire::StreamItem;
use tokio::sync::mpsc;

/// The longest the PTY waits for a client that keeps up to make room.
pub const PACE_WAIT: Duration = Duration::from_millis(50);

/// The queues of the clients keeping up, as the session last saw them.
#[derive(Default)]
pub struct Pace {
    keeping_up: Mutex<Vec<mpsc::Sender<StreamItem>>>,
}

impl Pace {
    /// Replaces the clients that pace the PTY.
    pub fn publish(&self, senders: Vec<mpsc::Sender<StreamItem>>) {
        if let Ok(mut keeping_up) = self.keeping_up.lock() {
            *keeping_up = senders;
        }
    }

    /// Returns at once unless every client keeping up has a full queue; then
    /// once one has room, or after [`PACE_WAIT`].
    pub async fn room(&self) {
        let senders = match self.keeping_up.lock() {
            Ok(keeping_up) => {
                let has_room = |s: &mpsc::Sender<StreamItem>| s.capacity() > 0 || s.is_closed();
                if keeping_up.is_empty() || keeping_up.iter().any(has_room) {
                    return;
                }
                keeping_up.clone()
            }
            Err(_) => return,
        };
        let waits = senders.iter().map(|s| Box::pin(s.reserve()));
        // A permit is only a look: dropping it gives the room back.
        let _ = tokio::time::timeout(PACE_WAIT, futures_util::future::select_all(waits)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn waits_only_while_every_client_keeping_up_is_full() {
        let pace = Pace::default();
        let (full, mut reader) = mpsc::channel::<StreamItem>(1);
        let (roomy, _roomy_reader) = mpsc::channel::<StreamItem>(4);
        assert!(
            full.try_send(StreamItem::Binary(bytes::Bytes::new()))
                .is_ok()
        );

        // One with room: no wait.
        pace.publish(vec![full.clone(), roomy]);
        assert!(
            tokio::time::timeout(Duration::from_millis(5), pace.room())
                .await
                .is_ok()
        );

        // Only a full one: the wait ends when it makes room.
        pace.publish(vec![full.clone()]);
        let drain = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            reader.recv().await
        };
        let (waited, _) = tokio::join!(tokio::time::timeout(PACE_WAIT / 2, pace.room()), drain);
        assert!(
            waited.is_ok(),
            "the wait did not end when the client made room"
        );

        // A client that never reads delays the reader by the wait, no more.
        assert!(
            full.try_send(StreamItem::Binary(bytes::Bytes::new()))
                .is_ok()
        );
        let began = std::time::Instant::now();
        pace.room().await;
        assert!(began.elapsed() >= PACE_WAIT);
        assert!(
            tokio::time::timeout(PACE_WAIT * 20, pace.room())
                .await
                .is_ok()
        );
    }
}
