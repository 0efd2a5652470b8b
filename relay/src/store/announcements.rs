//! What the relay's PostgreSQL announces to every node, and the connection
//! that listens for it: revocations (`NOTIFY loopsy_revoked`, sent by the
//! statement that revokes) and devices whose phones found no laptop
//! (`NOTIFY loopsy_wanted`). The listener probes its connection, reconnects
//! after a loss, and replays the revocations made while it was away.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Config, NoTls};

/// The channel revocations are announced on.
pub(super) const REVOKED_CHANNEL: &str = "loopsy_revoked";
/// The channel devices whose laptop a phone could not find are announced on.
pub(super) const WANTED_CHANNEL: &str = "loopsy_wanted";
/// How often the listening connection is probed.
const LISTEN_PROBE: Duration = Duration::from_secs(5);
/// How far before a lost listener the replay of revocations reaches.
const REPLAY_SLACK_SECS: i64 = 5;
/// Pause before the listener reconnects.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// A phone revoked on some node (this one too): its sockets are to close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub device_id: String,
    pub phone_id: String,
}

/// What the database announces to every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announced {
    Revoked(Revoked),
    /// A phone of this device reached a node without its laptop: the node
    /// holding the laptop should let it go, so that it reconnects to the node
    /// the balancer names now (after a node came back, say).
    Wanted {
        device_id: String,
    },
}

impl Announced {
    fn read(channel: &str, payload: &str) -> Option<Self> {
        match channel {
            REVOKED_CHANNEL => payload.split_once(' ').map(|(device_id, phone_id)| {
                Self::Revoked(Revoked {
                    device_id: device_id.to_owned(),
                    phone_id: phone_id.to_owned(),
                })
            }),
            WANTED_CHANNEL => Some(Self::Wanted {
                device_id: payload.to_owned(),
            }),
            _ => None,
        }
    }
}

/// What the database announces, as this node hears it.
pub type RevocationFeed = mpsc::UnboundedReceiver<Announced>;

/// What one listening connection brought, until it ended.
async fn listen_once(
    config: &Config,
    feed: &mpsc::UnboundedSender<Announced>,
    missed_since: Option<i64>,
) -> Result<(), String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<String>();
    let forward = feed.clone();
    let reader = tokio::spawn(async move {
        futures_util::pin_mut!(messages);
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(note)) => {
                    if let Some(said) = Announced::read(note.channel(), note.payload()) {
                        let _ = forward.send(said);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = stop.send(e.to_string());
                    return;
                }
            }
        }
        let _ = stop.send("the connection ended".into());
    });
    let subscribed = client
        .batch_execute(&format!(
            "LISTEN {REVOKED_CHANNEL}; LISTEN {WANTED_CHANNEL}"
        ))
        .await;
    if let Err(e) = subscribed {
        reader.abort();
        // A hot standby refuses LISTEN; PgBouncer must run in session mode.
        return Err(format!("cannot LISTEN: {e}"));
    }
    // Revocations made while no connection listened: replayed (closing a
    // phone twice is harmless; missing one is not).
    if let Some(since) = missed_since {
        let rows = client
            .query(
                "SELECT device_id, id FROM revoked_phones WHERE revoked_at >= $1",
                &[&since],
            )
            .await
            .map_err(|e| e.to_string())?;
        for row in rows {
            let _ = feed.send(Announced::Revoked(Revoked {
                device_id: row.get(0),
                phone_id: row.get(1),
            }));
        }
    }
    // A half-open connection (a silent partition, a failover) shows itself
    // within one probe: keepalives alone take minutes.
    loop {
        tokio::select! {
            ended = &mut stopped => {
                return Err(ended.unwrap_or_else(|_| "the listener stopped".into()));
            }
            _ = tokio::time::sleep(LISTEN_PROBE) => {
                let probe = tokio::time::timeout(LISTEN_PROBE, client.simple_query("SELECT 1")).await;
                if !matches!(probe, Ok(Ok(_))) {
                    reader.abort();
                    return Err("the listening connection stopped answering".into());
                }
                if feed.is_closed() {
                    reader.abort();
                    return Ok(());
                }
            }
        }
    }
}

/// `LISTEN`s for revocations and wanted devices for as long as the feed is
/// read, reconnecting after a lost connection and replaying what it missed.
pub(super) async fn listen(config: Config, feed: mpsc::UnboundedSender<Announced>) {
    let mut missed_since = None;
    while !feed.is_closed() {
        match listen_once(&config, &feed, missed_since).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "the PostgreSQL listener lost its connection; reconnecting")
            }
        }
        // A little before the loss, for clocks and commits in flight.
        let now = (crate::now_ms() / 1000) as i64;
        missed_since = Some(missed_since.unwrap_or(now).min(now) - REPLAY_SLACK_SECS);
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}
