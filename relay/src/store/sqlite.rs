//! The SQLite backend: one node's own file, in WAL mode with
//! `synchronous=FULL`, so a registration or pairing the relay answered
//! survives `kill -9`. Calls run on the blocking pool, one at a time on the
//! one connection. Migrations are numbered by `PRAGMA user_version`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use loopsy_transports::secrets::KeyDigest;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Answer, PhoneRecord, REVOKED_KEPT_SECS, Store, StoreError, TOKEN_ATTEMPTS, TokenRefusal,
};

pub struct SqliteStore {
    db: Arc<Mutex<Connection>>,
}

/// The schema's versions, in order; version N is `MIGRATIONS[N - 1]`. A
/// database made before versions were counted (version 0, tables present)
/// takes the first as it is (`IF NOT EXISTS`).
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    registered_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS phones (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    label TEXT,
    paired_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, id)
);
CREATE TABLE IF NOT EXISTS pair_tokens (
    token_hash BLOB PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS pair_tokens_expiry ON pair_tokens(expires_at);
CREATE TABLE IF NOT EXISTS revoked_phones (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, id)
);
",
    "
ALTER TABLE pair_tokens ADD COLUMN dead INTEGER NOT NULL DEFAULT 0;
CREATE INDEX revoked_phones_by_time ON revoked_phones(revoked_at);
",
];

/// Brings `db` to the newest schema, each step in a transaction of its own.
fn migrate(db: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let current = usize::try_from(version).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(StoreError::Setup(format!(
            "the relay database is at schema version {current}, newer than this relay knows ({}); run a newer loopsy-relay",
            MIGRATIONS.len()
        )));
    }
    for (done, step) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = db.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", done as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn conflict_or(error: StoreError) -> StoreError {
    match error {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict
        }
        other => other,
    }
}

fn digest_matches(stored: Option<Vec<u8>>, presented: &KeyDigest) -> bool {
    stored.is_some_and(|bytes| KeyDigest::from_bytes(&bytes).is_some_and(|d| d.matches(presented)))
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut db)?;
        Ok(Self {
            db: Arc::new(Mutex::new(db)),
        })
    }

    /// Runs `work` on the connection, off the async threads.
    fn blocking<'a, T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Answer<'a, T> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut db = db.lock().map_err(|_| StoreError::Poisoned)?;
                work(&mut db)
            })
            .await
            .map_err(|_| StoreError::Task)?
        })
    }

    /// Whether `presented` matches the digest `query` finds for a device's phone.
    fn phone_digest_matches<'a>(
        &self,
        query: &'static str,
        device_id: &str,
        phone_id: &str,
        presented: &KeyDigest,
    ) -> Answer<'a, bool> {
        let (device_id, phone_id, presented) =
            (device_id.to_owned(), phone_id.to_owned(), presented.clone());
        self.blocking(move |db| {
            let stored = db
                .query_row(query, [&device_id, &phone_id], |r| r.get(0))
                .optional()?;
            Ok(digest_matches(stored, &presented))
        })
    }
}

impl Store for SqliteStore {
    fn register_device<'a>(
        &'a self,
        device_id: &'a str,
        secret: &'a KeyDigest,
        now: u64,
    ) -> Answer<'a, ()> {
        let (device_id, secret) = (device_id.to_owned(), secret.clone());
        self.blocking(move |db| {
            db.execute(
                "INSERT INTO devices (id, secret_hash, registered_at) VALUES (?1, ?2, ?3)",
                params![device_id, secret.as_bytes(), now as i64],
            )?;
            Ok(())
        })
    }

    fn device_secret_matches<'a>(
        &'a self,
        device_id: &'a str,
        presented: &'a KeyDigest,
    ) -> Answer<'a, bool> {
        let (device_id, presented) = (device_id.to_owned(), presented.clone());
        self.blocking(move |db| {
            let stored = db
                .query_row(
                    "SELECT secret_hash FROM devices WHERE id = ?1",
                    [&device_id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(digest_matches(stored, &presented))
        })
    }

    fn issue_pair_token<'a>(
        &'a self,
        device_id: &'a str,
        token: &'a KeyDigest,
        token_id: &'a str,
        expires_at: u64,
        now: u64,
        most: u32,
    ) -> Answer<'a, bool> {
        let (device_id, token, token_id) =
            (device_id.to_owned(), token.clone(), token_id.to_owned());
        // One statement on the one connection: counted and inserted at once.
        self.blocking(move |db| {
            let inserted = db
                .execute(
                    "INSERT INTO pair_tokens (token_hash, id, device_id, expires_at)
                     SELECT ?1, ?2, ?3, ?4
                     WHERE (SELECT count(*) FROM pair_tokens
                            WHERE device_id = ?3 AND used = 0 AND dead = 0 AND expires_at > ?5 AND attempts < ?6) < ?7",
                    params![token.as_bytes(), token_id, device_id, expires_at as i64, now as i64, TOKEN_ATTEMPTS, most],
                )
                .map_err(|e| conflict_or(e.into()))?;
            Ok(inserted == 1)
        })
    }

    fn attempt_pair_token<'a>(
        &'a self,
        device_id: &'a str,
        token: &'a KeyDigest,
        now: u64,
    ) -> Answer<'a, Result<String, TokenRefusal>> {
        let (device_id, token) = (device_id.to_owned(), token.clone());
        self.blocking(move |db| {
            // Looked up by digest: the index compares SHA-256s of tokens, so
            // timing says nothing about a token itself.
            let counted: Option<String> = db
                .query_row(
                    "UPDATE pair_tokens SET attempts = attempts + 1
                     WHERE token_hash = ?1 AND device_id = ?2 AND used = 0 AND dead = 0 AND expires_at > ?3 AND attempts < ?4
                     RETURNING id",
                    params![token.as_bytes(), device_id, now as i64, TOKEN_ATTEMPTS],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = counted {
                return Ok(Ok(id));
            }
            let row = db
                .query_row(
                    "SELECT expires_at, attempts, used FROM pair_tokens WHERE token_hash = ?1 AND device_id = ?2",
                    params![token.as_bytes(), device_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            Ok(Err(TokenRefusal::of(row, now)))
        })
    }

    fn kill_pair_token<'a>(&'a self, token_id: &'a str) -> Answer<'a, ()> {
        let token_id = token_id.to_owned();
        self.blocking(move |db| {
            db.execute(
                "UPDATE pair_tokens SET dead = 1 WHERE id = ?1",
                params![token_id],
            )?;
            Ok(())
        })
    }

    fn complete_pairing<'a>(
        &'a self,
        device_id: &'a str,
        token_id: &'a str,
        phone: &'a PhoneRecord,
        secret: &'a KeyDigest,
    ) -> Answer<'a, bool> {
        let (device_id, token_id, phone, secret) = (
            device_id.to_owned(),
            token_id.to_owned(),
            phone.clone(),
            secret.clone(),
        );
        self.blocking(move |db| {
            let tx = db.transaction()?;
            let now = (crate::now_ms() / 1000) as i64;
            let burned = tx.execute(
                "UPDATE pair_tokens SET used = 1
                 WHERE id = ?1 AND device_id = ?2 AND used = 0 AND dead = 0 AND expires_at > ?3",
                params![token_id, device_id, now],
            )?;
            if burned != 1 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO phones (device_id, id, secret_hash, label, paired_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![device_id, phone.phone_id, secret.as_bytes(), phone.label, phone.paired_at],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn phone_secret_matches<'a>(
        &'a self,
        device_id: &'a str,
        phone_id: &'a str,
        presented: &'a KeyDigest,
    ) -> Answer<'a, bool> {
        self.phone_digest_matches(
            "SELECT secret_hash FROM phones WHERE device_id = ?1 AND id = ?2",
            device_id,
            phone_id,
            presented,
        )
    }

    fn phone_was_revoked<'a>(
        &'a self,
        device_id: &'a str,
        phone_id: &'a str,
        presented: &'a KeyDigest,
    ) -> Answer<'a, bool> {
        self.phone_digest_matches(
            "SELECT secret_hash FROM revoked_phones WHERE device_id = ?1 AND id = ?2",
            device_id,
            phone_id,
            presented,
        )
    }

    fn phones<'a>(&'a self, device_id: &'a str) -> Answer<'a, Vec<PhoneRecord>> {
        let device_id = device_id.to_owned();
        self.blocking(move |db| {
            let mut query = db.prepare(
                "SELECT id, label, paired_at FROM phones WHERE device_id = ?1 ORDER BY paired_at",
            )?;
            let phones = query
                .query_map([device_id], |r| {
                    Ok(PhoneRecord {
                        phone_id: r.get(0)?,
                        label: r.get(1)?,
                        paired_at: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(phones)
        })
    }

    fn remove_phone<'a>(&'a self, device_id: &'a str, phone_id: &'a str) -> Answer<'a, bool> {
        let (device_id, phone_id) = (device_id.to_owned(), phone_id.to_owned());
        let now = (crate::now_ms() / 1000) as i64;
        self.blocking(move |db| {
            let tx = db.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO revoked_phones (device_id, id, secret_hash, revoked_at)
                 SELECT device_id, id, secret_hash, ?3 FROM phones WHERE device_id = ?1 AND id = ?2",
                params![device_id, phone_id, now],
            )?;
            let removed = tx.execute("DELETE FROM phones WHERE device_id = ?1 AND id = ?2", [&device_id, &phone_id])?;
            tx.commit()?;
            Ok(removed > 0)
        })
    }

    fn want_laptop<'a>(&'a self, _: &'a str) -> Answer<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn admit_registration<'a>(
        &'a self,
        _: &'a str,
        _: u64,
        _: u32,
        _: u32,
    ) -> Answer<'a, Result<(), u64>> {
        Box::pin(std::future::ready(Ok(Ok(()))))
    }

    fn purge_expired_tokens(&self, now: u64) -> Answer<'_, u64> {
        self.blocking(move |db| {
            db.execute(
                "DELETE FROM revoked_phones WHERE revoked_at <= ?1",
                [now.saturating_sub(REVOKED_KEPT_SECS) as i64],
            )?;
            Ok(db.execute(
                "DELETE FROM pair_tokens WHERE expires_at <= ?1",
                [now as i64],
            )? as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
        actix_rt::System::new().block_on(work)
    }

    #[test]
    fn a_database_from_before_versions_takes_the_first_migration_as_it_is() -> Result<(), StoreError>
    {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Poisoned)?;
        let path = dir.path().join("relay.db");
        {
            let db = Connection::open(&path)?;
            db.execute_batch(MIGRATIONS[0])?;
            db.execute("INSERT INTO devices VALUES ('kept', x'00', 1)", [])?;
        }
        drop(SqliteStore::open(&path)?);
        let db = Connection::open(&path)?;
        let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
        assert_eq!(version, MIGRATIONS.len() as i64);
        let kept: i64 = db.query_row("SELECT count(*) FROM devices", [], |r| r.get(0))?;
        assert_eq!(kept, 1);
        db.pragma_update(None, "user_version", MIGRATIONS.len() as i64 + 1)?;
        drop(db);
        let refused = SqliteStore::open(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("newer than this relay knows"), "{refused}");
        Ok(())
    }

    #[test]
    fn tokens_expire_are_single_use_and_bound_to_their_device() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Poisoned)?;
        let store = SqliteStore::open(&dir.path().join("relay.db"))?;
        block_on(
            super::super::tests::tokens_expire_are_single_use_and_bound_to_their_device(&store),
        )
    }

    #[test]
    fn a_device_holds_at_most_its_cap_of_live_tokens() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Poisoned)?;
        let store = SqliteStore::open(&dir.path().join("relay.db"))?;
        block_on(super::super::tests::a_device_holds_at_most_its_cap_of_live_tokens(&store))
    }
}
