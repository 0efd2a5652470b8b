//! The shared key/value context store (spec §1.9), kept in `loopsy.db`.
//!
//! One writer thread owns the SQLite connection. It takes requests from a channel
//! and commits everything that queued up meanwhile in one transaction (group
//! commit): every acknowledged write is fsynced, yet concurrent writers share
//! one fsync. Expired entries are never returned and are purged periodically.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::state;

/// Longest key, in bytes (the original's unused schema said 1–256 characters).
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Longest TTL accepted: ten years, far beyond any use, well within i64 milliseconds.
const MAX_TTL_SECS: f64 = 10.0 * 365.0 * 24.0 * 3600.0;
/// How often expired entries are purged when the store is idle.
const PURGE_EVERY: Duration = Duration::from_secs(10);
/// Most requests committed in one transaction.
const MAX_BATCH: usize = 256;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextEntry {
    pub key: String,
    pub value: String,
    pub from_node_id: String,
    /// Milliseconds since the Unix epoch, as the original.
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("Context key not found: {0}")]
    NotFound(String),
    #[error("Value is {0} bytes; the limit is {MAX_VALUE_BYTES}")]
    TooLarge(usize),
    #[error(
        "The context store holds its maximum of {0} entries; delete some or raise context.maxEntries"
    )]
    Full(usize),
    #[error("{0}")]
    Invalid(String),
    #[error("The context store failed: {0}")]
    Storage(String),
}

impl From<rusqlite::Error> for ContextError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

/// A validated write.
#[derive(Debug, Clone)]
pub struct SetEntry {
    pub key: String,
    pub value: String,
    /// Whole milliseconds; `None` = no expiry.
    pub ttl_ms: Option<i64>,
    pub from_node_id: String,
}

pub fn validate_key(key: &str) -> Result<(), ContextError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(ContextError::Invalid(format!(
            "Key must be 1 to {MAX_KEY_BYTES} bytes long (got {})",
            key.len()
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(ContextError::Invalid(
            "Key must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// Checks a write before it reaches the store.
pub fn validate_set(
    key: String,
    value: String,
    ttl_secs: Option<f64>,
    from_node_id: String,
) -> Result<SetEntry, ContextError> {
    validate_key(&key)?;
    if value.is_empty() {
        return Err(ContextError::Invalid("Missing value".into()));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(ContextError::TooLarge(value.len()));
    }
    let ttl_ms = match ttl_secs {
        None => None,
        Some(t) if !t.is_finite() || t < 0.0 => {
            return Err(ContextError::Invalid(
                "ttl must be zero or a positive number of seconds".into(),
            ));
        }
        Some(t) if t > MAX_TTL_SECS => {
            return Err(ContextError::Invalid(format!(
                "ttl must be at most {MAX_TTL_SECS:.0} seconds"
            )));
        }
        Some(0.0) => None,
        Some(t) => Some((t * 1000.0).round().max(1.0) as i64),
    };
    Ok(SetEntry {
        key,
        value,
        ttl_ms,
        from_node_id,
    })
}

#[derive(Debug)]
enum Op {
    Set(SetEntry),
    Get(String),
    Delete(String),
    List(String),
}

#[derive(Debug)]
pub enum Answer {
    Entry(ContextEntry),
    Entries(Vec<ContextEntry>),
    Deleted,
}

struct Call {
    op: Op,
    reply: oneshot::Sender<Result<Answer, ContextError>>,
}

/// Handle to the store's thread; cheap to clone.
#[derive(Clone)]
pub struct ContextStore {
    calls: mpsc::Sender<Call>,
    entries: Arc<AtomicU64>,
}

fn now_ms() -> i64 {
    i64::try_from(loopsy_transports::clock::now_ms()).unwrap_or(i64::MAX)
}

impl ContextStore {
    /// Opens `loopsy.db` and starts the writer thread.
    pub fn open(path: &Path, max_entries: usize) -> Result<Self, ContextError> {
        let conn = state::open(path)?;
        let entries = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            conn,
            max_entries,
            entries: entries.clone(),
        };
        writer.publish_count()?;
        let (calls, inbox) = mpsc::channel::<Call>();
        std::thread::Builder::new()
            .name("context-store".into())
            .spawn(move || writer.run(inbox))
            .map_err(|e| ContextError::Storage(format!("cannot start the store thread: {e}")))?;
        Ok(Self { calls, entries })
    }

    async fn call(&self, op: Op) -> Result<Answer, ContextError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(Call { op, reply })
            .map_err(|_| ContextError::Storage("the store thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| ContextError::Storage("the store thread dropped the request".into()))?
    }

    pub async fn set(&self, entry: SetEntry) -> Result<Answer, ContextError> {
        self.call(Op::Set(entry)).await
    }
    pub async fn get(&self, key: String) -> Result<Answer, ContextError> {
        self.call(Op::Get(key)).await
    }
    pub async fn delete(&self, key: String) -> Result<Answer, ContextError> {
        self.call(Op::Delete(key)).await
    }
    pub async fn list(&self, prefix: String) -> Result<Answer, ContextError> {
        self.call(Op::List(prefix)).await
    }
    /// Entries stored, as of the last commit or purge (expired ones leave within
    /// one purge interval). Read without a round trip to the store's thread.
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }
}

struct Writer {
    conn: Connection,
    max_entries: usize,
    /// Shared with [`ContextStore::entries`].
    entries: Arc<AtomicU64>,
}

const SELECT: &str =
    "SELECT key, value, from_node_id, created_at, updated_at, ttl, expires_at FROM context";

fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<ContextEntry> {
    Ok(ContextEntry {
        key: row.get(0)?,
        value: row.get(1)?,
        from_node_id: row.get(2)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        ttl: row.get(5)?,
        expires_at: row.get(6)?,
    })
}

/// `LIKE` pattern for a literal prefix.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Writer {
    fn run(mut self, inbox: mpsc::Receiver<Call>) {
        loop {
            let first = match inbox.recv_timeout(PURGE_EVERY) {
                Ok(call) => call,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = self.purge() {
                        tracing::warn!(error = %e, "purging expired context entries failed");
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match inbox.try_recv() {
                    Ok(call) => batch.push(call),
                    Err(_) => break,
                }
            }
            self.serve(batch);
        }
    }

    fn purge(&self) -> rusqlite::Result<()> {
        let purged = self.conn.execute(
            "DELETE FROM context WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            params![now_ms()],
        )?;
        if purged > 0 {
            self.publish_count()?;
        }
        Ok(())
    }

    fn publish_count(&self) -> rusqlite::Result<()> {
        let count: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM context", [], |row| row.get(0))?;
        self.entries.store(count.max(0) as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Runs a batch in one transaction; answers only after the commit is durable.
    fn serve(&mut self, batch: Vec<Call>) {
        let max_entries = self.max_entries;
        let writes = batch
            .iter()
            .any(|call| matches!(call.op, Op::Set(_) | Op::Delete(_)));
        let outcome =
            (|| -> rusqlite::Result<Vec<(oneshot::Sender<_>, Result<Answer, ContextError>)>> {
                let tx = self
                    .conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let now = now_ms();
                tx.execute(
                    "DELETE FROM context WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                    params![now],
                )?;
                let mut answers = Vec::with_capacity(batch.len());
                for call in batch {
                    let answer = apply(&tx, call.op, now, max_entries);
                    answers.push((call.reply, answer));
                }
                tx.commit()?;
                Ok(answers)
            })();
        if writes && let Err(e) = self.publish_count() {
            tracing::warn!(error = %e, "counting context entries failed");
        }
        match outcome {
            Ok(answers) => {
                for (reply, answer) in answers {
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "a context transaction failed; its requests get an error")
            }
        }
    }
}

fn apply(
    tx: &Transaction<'_>,
    op: Op,
    now: i64,
    max_entries: usize,
) -> Result<Answer, ContextError> {
    match op {
        Op::Get(key) => tx
            .query_row(&format!("{SELECT} WHERE key = ?1"), params![key], entry)
            .optional()?
            .map(Answer::Entry)
            .ok_or(ContextError::NotFound(key)),
        Op::Delete(key) => match tx.execute("DELETE FROM context WHERE key = ?1", params![key])? {
            0 => Err(ContextError::NotFound(key)),
            _ => Ok(Answer::Deleted),
        },
        Op::List(prefix) => {
            let mut statement = tx.prepare_cached(&format!(
                "{SELECT} WHERE key LIKE ?1 ESCAPE '\\' ORDER BY key"
            ))?;
            let entries = statement
                .query_map(params![like_prefix(&prefix)], entry)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            // LIKE is case-insensitive for ASCII; the original's startsWith is not.
            Ok(Answer::Entries(
                entries
                    .into_iter()
                    .filter(|e| e.key.starts_with(&prefix))
                    .collect(),
            ))
        }
        Op::Set(set) => {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT created_at FROM context WHERE key = ?1",
                    params![set.key],
                    |row| row.get(0),
                )
                .optional()?;
            if existing.is_none() {
                let count: i64 =
                    tx.query_row("SELECT COUNT(*) FROM context", [], |row| row.get(0))?;
                if count as usize >= max_entries {
                    return Err(ContextError::Full(max_entries));
                }
            }
            let created_at = existing.unwrap_or(now);
            let ttl_secs = set.ttl_ms.map(|ms| (ms + 999) / 1000);
            let expires_at = set.ttl_ms.map(|ms| now + ms);
            tx.execute(
                "INSERT INTO context (key, value, from_node_id, created_at, updated_at, ttl, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, from_node_id = excluded.from_node_id,
                     updated_at = excluded.updated_at, ttl = excluded.ttl, expires_at = excluded.expires_at",
                params![set.key, set.value, set.from_node_id, created_at, now, ttl_secs, expires_at],
            )?;
            Ok(Answer::Entry(ContextEntry {
                key: set.key,
                value: set.value,
                from_node_id: set.from_node_id,
                created_at,
                updated_at: now,
                ttl: ttl_secs,
                expires_at,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str, ttl: Option<f64>) -> SetEntry {
        validate_set(key.into(), value.into(), ttl, "local".into()).expect("valid")
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        actix_rt::System::new().block_on(f)
    }

    #[test]
    fn set_get_overwrite_keeps_created_at() {
        let dir = tempfile::tempdir().expect("dir");
        let store = ContextStore::open(&dir.path().join("db"), 10).expect("open");
        block(async {
            let Ok(Answer::Entry(first)) = store.set(set("a", "1", None)).await else {
                panic!("set")
            };
            let Ok(Answer::Entry(second)) = store.set(set("a", "2", None)).await else {
                panic!("set")
            };
            assert_eq!(second.created_at, first.created_at);
            assert_eq!(second.value, "2");
            let Ok(Answer::Entry(got)) = store.get("a".into()).await else {
                panic!("get")
            };
            assert_eq!(got, second);
        });
    }

    #[test]
    fn expired_entries_are_never_returned() {
        let dir = tempfile::tempdir().expect("dir");
        let store = ContextStore::open(&dir.path().join("db"), 10).expect("open");
        block(async {
            store
                .set(set("short", "x", Some(0.001)))
                .await
                .expect("set");
            store
                .set(set("long", "y", Some(3600.0)))
                .await
                .expect("set");
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(matches!(
                store.get("short".into()).await,
                Err(ContextError::NotFound(_))
            ));
            let Ok(Answer::Entries(all)) = store.list(String::new()).await else {
                panic!("list")
            };
            assert_eq!(
                all.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
                vec!["long"]
            );
        });
    }

    #[test]
    fn entry_cap_refuses_new_keys_but_allows_overwrites() {
        let dir = tempfile::tempdir().expect("dir");
        let store = ContextStore::open(&dir.path().join("db"), 2).expect("open");
        block(async {
            store.set(set("a", "1", None)).await.expect("a");
            store.set(set("b", "1", None)).await.expect("b");
            assert!(matches!(
                store.set(set("c", "1", None)).await,
                Err(ContextError::Full(2))
            ));
            store.set(set("a", "2", None)).await.expect("overwrite");
            store.delete("b".into()).await.expect("delete");
            store.set(set("c", "1", None)).await.expect("room again");
        });
    }

    #[test]
    fn prefix_is_literal_and_case_sensitive() {
        let dir = tempfile::tempdir().expect("dir");
        let store = ContextStore::open(&dir.path().join("db"), 10).expect("open");
        block(async {
            for key in ["inbox:a", "inbox:b", "INBOX:c", "inbox_x", "in%box"] {
                store.set(set(key, "v", None)).await.expect("set");
            }
            let Ok(Answer::Entries(found)) = store.list("inbox:".into()).await else {
                panic!("list")
            };
            assert_eq!(found.len(), 2);
            let Ok(Answer::Entries(found)) = store.list("in%".into()).await else {
                panic!("list")
            };
            assert_eq!(found.len(), 1);
        });
    }

    #[test]
    fn validation() {
        assert!(validate_set(String::new(), "v".into(), None, "l".into()).is_err());
        assert!(validate_set("k".repeat(257), "v".into(), None, "l".into()).is_err());
        assert!(validate_set("k".into(), String::new(), None, "l".into()).is_err());
        assert!(validate_set("k".into(), "v".into(), Some(-1.0), "l".into()).is_err());
        assert!(matches!(
            validate_set(
                "k".into(),
                "v".repeat(MAX_VALUE_BYTES + 1),
                None,
                "l".into()
            ),
            Err(ContextError::TooLarge(_))
        ));
        assert!(
            validate_set("k".repeat(256), "v".into(), Some(0.0), "l".into())
                .is_ok_and(|e| e.ttl_ms.is_none())
        );
    }
}
