//! What the relay keeps on disk, behind a trait so that one relay node can use
//! SQLite and a fleet can later share PostgreSQL (DESIGN §7). Every secret is
//! kept as its SHA-256 digest and checked in constant time; pair tokens carry
//! an expiry, an attempt count and a used flag, and expired ones are purged.

use std::path::Path;
use std::sync::Mutex;

use loopsy_transports::secrets::KeyDigest;
use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the relay database failed: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("the relay database lock was poisoned; restart the relay")]
    Poisoned,
    #[error("a record with this id or digest exists already")]
    Conflict,
}

/// Why a pair token cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("unknown pairing token")]
    Unknown,
    #[error("the pairing token expired; make a new one with `loopsy mobile pair`")]
    Expired,
    #[error("the pairing token was already used")]
    Used,
    #[error("too many attempts with this pairing token; make a new one with `loopsy mobile pair`")]
    Dead,
}

impl TokenRefusal {
    /// The close reason a phone's app reads (a browser sees no HTTP status of a
    /// refused upgrade, so refusals are said after the upgrade).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unknown => "pairing link unknown or expired",
            Self::Expired => "pairing link expired",
            Self::Used => "pairing link used",
            Self::Dead => "pairing link closed after wrong codes",
        }
    }
}

/// How long a revoked phone is still told so when it knocks.
pub const REVOKED_KEPT_SECS: u64 = 30 * 24 * 3600;

#[derive(Debug, Clone, serde::Serialize)]
pub struct PhoneRecord {
    pub phone_id: String,
    pub label: Option<String>,
    pub paired_at: i64,
}

/// Pairing sockets a token allows (the daemon, which holds the code, limits
/// wrong codes itself and kills the token at its limit).
pub const TOKEN_ATTEMPTS: u32 = 5;

pub trait Store: Send + Sync {
    fn register_device(
        &self,
        device_id: &str,
        secret: &KeyDigest,
        now: u64,
    ) -> Result<(), StoreError>;
    fn device_secret_matches(
        &self,
        device_id: &str,
        presented: &KeyDigest,
    ) -> Result<bool, StoreError>;
    /// Stores a new token unless the device already holds `most` live ones
    /// (unused, unexpired, not dead), in one atomic step; `false` when it does.
    fn issue_pair_token(
        &self,
        device_id: &str,
        token: &KeyDigest,
        token_id: &str,
        expires_at: u64,
        now: u64,
        most: u32,
    ) -> Result<bool, StoreError>;
    /// Checks a token for `device_id` and counts one attempt; returns its id.
    fn attempt_pair_token(
        &self,
        device_id: &str,
        token: &KeyDigest,
        now: u64,
    ) -> Result<Result<String, TokenRefusal>, StoreError>;
    /// Ends a token at once (the daemon saw too many wrong codes).
    fn kill_pair_token(&self, token_id: &str) -> Result<(), StoreError>;
    /// Marks the token used and stores the new phone, in one transaction.
    fn complete_pairing(
        &self,
        device_id: &str,
        token_id: &str,
        phone: &PhoneRecord,
        secret: &KeyDigest,
    ) -> Result<bool, StoreError>;
    fn phone_secret_matches(
        &self,
        device_id: &str,
        phone_id: &str,
        presented: &KeyDigest,
    ) -> Result<bool, StoreError>;
    /// Whether `presented` is the secret of a phone revoked within
    /// [`REVOKED_KEPT_SECS`], so that it can be told why it is refused.
    fn phone_was_revoked(
        &self,
        device_id: &str,
        phone_id: &str,
        presented: &KeyDigest,
    ) -> Result<bool, StoreError>;
    fn phones(&self, device_id: &str) -> Result<Vec<PhoneRecord>, StoreError>;
    /// Removes a phone, keeping its secret's digest among the revoked.
    fn remove_phone(&self, device_id: &str, phone_id: &str) -> Result<bool, StoreError>;
    fn purge_expired_tokens(&self, now: u64) -> Result<usize, StoreError>;
}

/// SQLite in WAL mode with `synchronous=FULL`: a registration or pairing the
/// relay answered survives `kill -9`.
pub struct SqliteStore {
    db: Mutex<Connection>,
}

const SCHEMA: &str = "
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
";

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        db.execute_batch(SCHEMA)?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut db = self.db.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(f(&mut db)?)
    }

    /// Whether `presented` matches the digest `query` finds for a device's phone.
    fn phone_digest_matches(
        &self,
        query: &str,
        device_id: &str,
        phone_id: &str,
        presented: &KeyDigest,
    ) -> Result<bool, StoreError> {
        let stored = self.with(|db| {
            db.query_row(query, [device_id, phone_id], |r| r.get(0))
                .optional()
        })?;
        Ok(Self::stored_digest_matches(stored, presented))
    }

    fn stored_digest_matches(stored: Option<Vec<u8>>, presented: &KeyDigest) -> bool {
        stored.is_some_and(|bytes| {
            KeyDigest::from_bytes(&bytes).is_some_and(|d| d.matches(presented))
        })
    }
}

impl Store for SqliteStore {
    fn register_device(
        &self,
        device_id: &str,
        secret: &KeyDigest,
        now: u64,
    ) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO devices (id, secret_hash, registered_at) VALUES (?1, ?2, ?3)",
                params![device_id, secret.as_bytes(), now as i64],
            )
            .map(drop)
        })
    }

    fn device_secret_matches(
        &self,
        device_id: &str,
        presented: &KeyDigest,
    ) -> Result<bool, StoreError> {
        let stored = self.with(|db| {
            db.query_row(
                "SELECT secret_hash FROM devices WHERE id = ?1",
                [device_id],
                |r| r.get(0),
            )
            .optional()
        })?;
        Ok(Self::stored_digest_matches(stored, presented))
    }

    fn issue_pair_token(
        &self,
        device_id: &str,
        token: &KeyDigest,
        token_id: &str,
        expires_at: u64,
        now: u64,
        most: u32,
    ) -> Result<bool, StoreError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO pair_tokens (token_hash, id, device_id, expires_at)
                 SELECT ?1, ?2, ?3, ?4
                 WHERE (SELECT count(*) FROM pair_tokens
                        WHERE device_id = ?3 AND used = 0 AND expires_at > ?5 AND attempts < ?6) < ?7",
                params![
                    token.as_bytes(),
                    token_id,
                    device_id,
                    expires_at as i64,
                    now as i64,
                    TOKEN_ATTEMPTS,
                    most
                ],
            )
            .map(|inserted| inserted == 1)
        })
        .map_err(|error| match error {
            StoreError::Database(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::Conflict
            }
            other => other,
        })
    }

    fn attempt_pair_token(
        &self,
        device_id: &str,
        token: &KeyDigest,
        now: u64,
    ) -> Result<Result<String, TokenRefusal>, StoreError> {
        self.with(|db| {
            let tx = db.transaction()?;
            // Looked up by digest: the index does the comparison on a SHA-256 of
            // the token, so timing reveals nothing about the token itself.
            let row: Option<(String, String, i64, u32, bool)> = tx
                .query_row(
                    "SELECT id, device_id, expires_at, attempts, used FROM pair_tokens WHERE token_hash = ?1",
                    [token.as_bytes()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let verdict = match row {
                None => Err(TokenRefusal::Unknown),
                Some((_, owner, ..)) if owner != device_id => Err(TokenRefusal::Unknown),
                Some((_, _, expires_at, ..)) if expires_at <= now as i64 => Err(TokenRefusal::Expired),
                Some((.., true)) => Err(TokenRefusal::Used),
                Some((_, _, _, attempts, _)) if attempts >= TOKEN_ATTEMPTS => Err(TokenRefusal::Dead),
                Some((id, ..)) => {
                    tx.execute("UPDATE pair_tokens SET attempts = attempts + 1 WHERE id = ?1", [&id])?;
                    Ok(id)
                }
            };
            tx.commit()?;
            Ok(verdict)
        })
    }

    fn kill_pair_token(&self, token_id: &str) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "UPDATE pair_tokens SET attempts = ?2 WHERE id = ?1",
                params![token_id, TOKEN_ATTEMPTS],
            )
            .map(drop)
        })
    }

    fn complete_pairing(
        &self,
        device_id: &str,
        token_id: &str,
        phone: &PhoneRecord,
        secret: &KeyDigest,
    ) -> Result<bool, StoreError> {
        self.with(|db| {
            let tx = db.transaction()?;
            let burned = tx.execute(
                "UPDATE pair_tokens SET used = 1 WHERE id = ?1 AND device_id = ?2 AND used = 0",
                params![token_id, device_id],
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

    fn phone_secret_matches(
        &self,
        device_id: &str,
        phone_id: &str,
        presented: &KeyDigest,
    ) -> Result<bool, StoreError> {
        self.phone_digest_matches(
            "SELECT secret_hash FROM phones WHERE device_id = ?1 AND id = ?2",
            device_id,
            phone_id,
            presented,
        )
    }

    fn phones(&self, device_id: &str) -> Result<Vec<PhoneRecord>, StoreError> {
        self.with(|db| {
            let mut query = db.prepare(
                "SELECT id, label, paired_at FROM phones WHERE device_id = ?1 ORDER BY paired_at",
            )?;
            query
                .query_map([device_id], |r| {
                    Ok(PhoneRecord {
                        phone_id: r.get(0)?,
                        label: r.get(1)?,
                        paired_at: r.get(2)?,
                    })
                })?
                .collect()
        })
    }

    fn phone_was_revoked(
        &self,
        device_id: &str,
        phone_id: &str,
        presented: &KeyDigest,
    ) -> Result<bool, StoreError> {
        self.phone_digest_matches(
            "SELECT secret_hash FROM revoked_phones WHERE device_id = ?1 AND id = ?2",
            device_id,
            phone_id,
            presented,
        )
    }

    fn remove_phone(&self, device_id: &str, phone_id: &str) -> Result<bool, StoreError> {
        let now = (crate::now_ms() / 1000) as i64;
        self.with(|db| {
            let tx = db.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO revoked_phones (device_id, id, secret_hash, revoked_at)
                 SELECT device_id, id, secret_hash, ?3 FROM phones WHERE device_id = ?1 AND id = ?2",
                params![device_id, phone_id, now],
            )?;
            let removed = tx.execute(
                "DELETE FROM phones WHERE device_id = ?1 AND id = ?2",
                [device_id, phone_id],
            )?;
            tx.commit()?;
            Ok(removed > 0)
        })
    }

    /// Also forgets phones revoked longer than [`REVOKED_KEPT_SECS`] ago.
    fn purge_expired_tokens(&self, now: u64) -> Result<usize, StoreError> {
        self.with(|db| {
            db.execute(
                "DELETE FROM revoked_phones WHERE revoked_at <= ?1",
                [now.saturating_sub(REVOKED_KEPT_SECS) as i64],
            )?;
            db.execute(
                "DELETE FROM pair_tokens WHERE expires_at <= ?1",
                [now as i64],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_are_single_use_and_bound_to_their_device() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Poisoned)?;
        let store = SqliteStore::open(&dir.path().join("relay.db"))?;
        store.register_device("d1", &KeyDigest::of("s1"), 0)?;
        store.register_device("d2", &KeyDigest::of("s2"), 0)?;
        let token = KeyDigest::of("token");
        assert!(store.issue_pair_token("d1", &token, "t1", 100, 0, 5)?);
        assert_eq!(
            store.attempt_pair_token("d2", &token, 50)?,
            Err(TokenRefusal::Unknown)
        );
        assert_eq!(
            store.attempt_pair_token("d1", &token, 100)?,
            Err(TokenRefusal::Expired)
        );
        assert_eq!(
            store.attempt_pair_token("d1", &token, 50)?,
            Ok("t1".to_owned())
        );
        let phone = PhoneRecord {
            phone_id: "p1".into(),
            label: None,
            paired_at: 1,
        };
        assert!(store.complete_pairing("d1", "t1", &phone, &KeyDigest::of("ps"))?);
        assert!(
            !store.complete_pairing("d1", "t1", &phone, &KeyDigest::of("ps"))?,
            "used once only"
        );
        assert_eq!(
            store.attempt_pair_token("d1", &token, 50)?,
            Err(TokenRefusal::Used)
        );
        assert!(store.phone_secret_matches("d1", "p1", &KeyDigest::of("ps"))?);
        assert!(!store.phone_secret_matches("d1", "p1", &KeyDigest::of("nope"))?);
        assert_eq!(store.purge_expired_tokens(200)?, 1);
        Ok(())
    }

    #[test]
    fn a_device_holds_at_most_its_cap_of_live_tokens() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Poisoned)?;
        let store = SqliteStore::open(&dir.path().join("relay.db"))?;
        store.register_device("d1", &KeyDigest::of("s1"), 0)?;
        store.register_device("d2", &KeyDigest::of("s2"), 0)?;
        for n in 0..3 {
            let token = KeyDigest::of(&format!("token-{n}"));
            assert!(store.issue_pair_token("d1", &token, &format!("t{n}"), 100, 10, 3)?);
        }
        let extra = KeyDigest::of("one-too-many");
        assert!(!store.issue_pair_token("d1", &extra, "t3", 100, 10, 3)?);
        assert!(
            store.issue_pair_token("d2", &extra, "t4", 100, 10, 3)?,
            "another device's tokens do not count"
        );
        // A dead token frees its place, and so does time.
        store.kill_pair_token("t0")?;
        assert!(store.issue_pair_token("d1", &KeyDigest::of("after-kill"), "t5", 100, 10, 3)?);
        assert!(!store.issue_pair_token("d1", &KeyDigest::of("full-again"), "t6", 100, 10, 3)?);
        assert!(store.issue_pair_token("d1", &KeyDigest::of("later"), "t7", 200, 100, 3)?);
        Ok(())
    }
}
