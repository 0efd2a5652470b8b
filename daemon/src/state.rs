//! Durable state: `loopsy.db`, one SQLite file in WAL mode with `synchronous=FULL`,
//! so a write that was acknowledged survives `kill -9` and power loss. Schema
//! changes are numbered migrations tracked by `PRAGMA user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// Each entry brings the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the shared context store (spec §1.9).
    "CREATE TABLE context (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL,
        from_node_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        ttl INTEGER,
        expires_at INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX context_expiry ON context(expires_at) WHERE expires_at IS NOT NULL;",
    // 2: paired phones (their static X25519 keys; DESIGN §5).
    "CREATE TABLE phones (
        id TEXT PRIMARY KEY NOT NULL,
        public_key BLOB NOT NULL,
        label TEXT,
        paired_at INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 3: a phone's auto-approve grant lives and dies with its pairing (a
    // revoked phone's grant cannot pass to a later phone given the same id).
    "ALTER TABLE phones ADD COLUMN auto_approve INTEGER NOT NULL DEFAULT 0;",
    // 4: when a phone last connected (ms since the epoch), so phones can be told apart.
    "ALTER TABLE phones ADD COLUMN last_seen INTEGER;",
    // 5: paired LAN peers (DESIGN §3): the pinned certificate, the digest of the
    // credential they call us with, the credential we call them with, and the
    // capabilities each side granted the other.
    "CREATE TABLE peers (
        node_id TEXT PRIMARY KEY NOT NULL,
        hostname TEXT NOT NULL,
        address TEXT NOT NULL,
        port INTEGER NOT NULL,
        cert_fp TEXT NOT NULL,
        inbound_digest BLOB NOT NULL,
        inbound_caps TEXT NOT NULL,
        outbound_secret TEXT NOT NULL,
        outbound_caps TEXT NOT NULL,
        version TEXT NOT NULL,
        platform TEXT NOT NULL,
        paired_at INTEGER NOT NULL,
        last_seen INTEGER
    ) WITHOUT ROWID;",
    // 6: peers that run the original TypeScript Loopsy (reached over its REST
    // routes, by a key the user copied), and the keys minted for such peers to
    // call us with (only their SHA-256 digests).
    "ALTER TABLE peers ADD COLUMN dialect TEXT NOT NULL DEFAULT 'loopsy';
    CREATE TABLE typescript_keys (
        name TEXT PRIMARY KEY NOT NULL,
        digest BLOB NOT NULL,
        caps TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

/// Opens (creating, `0600`) and migrates the database.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    if !path.exists() {
        // Create the file private before SQLite writes anything into it.
        if let Err(e) = crate::durable::open_private_append(path) {
            tracing::warn!(error = %e, "cannot pre-create the database file with mode 0600");
        }
    }
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A small page cache: the daemon's working set is small, and the OS caches the file anyway.
    conn.pragma_update(None, "cache_size", -512)?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_migrates_and_reopens() -> rusqlite::Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
        let path = dir.path().join("loopsy.db");
        drop(open(&path)?);
        let conn = open(&path)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        assert_eq!(mode, "wal");
        Ok(())
    }
}
