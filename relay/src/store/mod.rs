//! What the relay keeps, behind one async trait with two backends: SQLite
//! (`sqlite`, the embedded default for one node) and PostgreSQL (`postgres`,
//! shared by a fleet of nodes, DESIGN §7). Every secret is kept as its SHA-256
//! digest and checked in constant time; pair tokens carry an expiry, an
//! attempt count and a used flag, and expired ones are purged. Each backend
//! has versioned migrations. What must hold across nodes is one statement (or
//! one locked transaction) in the database, never a read and then a write.

mod announcements;
mod postgres;
mod sqlite;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use loopsy_transports::secrets::KeyDigest;

pub use announcements::{Announced, RevocationFeed, Revoked};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the relay database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the relay's PostgreSQL failed: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the relay database lock was poisoned; restart the relay")]
    Poisoned,
    #[error("the relay's database task stopped; restart the relay")]
    Task,
    #[error("the relay's database is busy; try again in a moment")]
    Busy,
    #[error("a record with this id or digest exists already")]
    Conflict,
    #[error("{0}")]
    Setup(String),
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

    /// Why a token that the conditional update did not take was refused,
    /// from what a read of it shows (`None`: no such token for this device).
    fn of(row: Option<(i64, i64, bool)>, now: u64) -> Self {
        match row {
            None => Self::Unknown,
            Some((expires_at, _, _)) if expires_at <= now as i64 => Self::Expired,
            Some((_, _, true)) => Self::Used,
            Some(_) => Self::Dead,
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

/// An answer of the store, awaited on the caller's task.
pub type Answer<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

pub trait Store: Send + Sync {
    fn register_device<'a>(
        &'a self,
        device_id: &'a str,
        secret: &'a KeyDigest,
        now: u64,
    ) -> Answer<'a, ()>;
    fn device_secret_matches<'a>(
        &'a self,
        device_id: &'a str,
        presented: &'a KeyDigest,
    ) -> Answer<'a, bool>;
    /// Stores a new token unless the device already holds `most` live ones
    /// (unused, unexpired, not dead), atomically (also across nodes); `false`
    /// when it does.
    fn issue_pair_token<'a>(
        &'a self,
        device_id: &'a str,
        token: &'a KeyDigest,
        token_id: &'a str,
        expires_at: u64,
        now: u64,
        most: u32,
    ) -> Answer<'a, bool>;
    /// Counts one attempt of a live token of `device_id` in one conditional
    /// update and returns its id; or why it is refused.
    fn attempt_pair_token<'a>(
        &'a self,
        device_id: &'a str,
        token: &'a KeyDigest,
        now: u64,
    ) -> Answer<'a, Result<String, TokenRefusal>>;
    /// Ends a token at once (the daemon saw too many wrong codes).
    fn kill_pair_token<'a>(&'a self, token_id: &'a str) -> Answer<'a, ()>;
    /// Marks the token used and stores the new phone, in one statement.
    fn complete_pairing<'a>(
        &'a self,
        device_id: &'a str,
        token_id: &'a str,
        phone: &'a PhoneRecord,
        secret: &'a KeyDigest,
    ) -> Answer<'a, bool>;
    fn phone_secret_matches<'a>(
        &'a self,
        device_id: &'a str,
        phone_id: &'a str,
        presented: &'a KeyDigest,
    ) -> Answer<'a, bool>;
    /// Whether `presented` is the secret of a phone revoked within
    /// [`REVOKED_KEPT_SECS`], so that it can be told why it is refused.
    fn phone_was_revoked<'a>(
        &'a self,
        device_id: &'a str,
        phone_id: &'a str,
        presented: &'a KeyDigest,
    ) -> Answer<'a, bool>;
    fn phones<'a>(&'a self, device_id: &'a str) -> Answer<'a, Vec<PhoneRecord>>;
    /// Removes a phone, keeping its secret's digest among the revoked (and,
    /// on PostgreSQL, telling every node, whose sockets of it then close).
    fn remove_phone<'a>(&'a self, device_id: &'a str, phone_id: &'a str) -> Answer<'a, bool>;
    /// Purges expired tokens and phones revoked long ago; returns the tokens purged.
    fn purge_expired_tokens(&self, now: u64) -> Answer<'_, u64>;
    /// Counts a registration from `ip` against the fleet's windows of a
    /// minute (`per_ip` from one address, `total` in all); `Err(seconds to
    /// wait)` past either. One SQLite node is its own fleet: its in-memory
    /// windows (`access::RegistrationLimits`) already count everything, so
    /// it admits here.
    /// Tells every node that a phone of `device_id` found no laptop here, so
    /// the node holding that laptop lets it go (`Announced::Wanted`). One
    /// SQLite node has no other node: nothing to tell.
    fn want_laptop<'a>(&'a self, device_id: &'a str) -> Answer<'a, ()>;
    fn admit_registration<'a>(
        &'a self,
        ip: &'a str,
        now_ms: u64,
        per_ip: u32,
        total: u32,
    ) -> Answer<'a, Result<(), u64>>;
}

/// Where the relay keeps its state.
#[derive(Clone)]
pub enum Database {
    /// A file of this node's own.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL server shared by every node (`postgres://user@host:port/db`),
    /// and the password, kept out of the URL (and so out of `ps` and logs).
    Postgres {
        url: String,
        password: Option<String>,
    },
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            // The URL may hold a password after all: it is never printed.
            Self::Postgres { .. } => f.write_str("Postgres(..)"),
        }
    }
}

/// The store, and where revocations made on other nodes arrive (PostgreSQL).
pub fn open(database: &Database) -> Result<(Arc<dyn Store>, Option<RevocationFeed>), StoreError> {
    match database {
        Database::Sqlite(path) => Ok((Arc::new(SqliteStore::open(path)?), None)),
        Database::Postgres { url, password } => {
            let (store, feed) = PostgresStore::connect(url, password.as_deref())?;
            Ok((Arc::new(store), Some(feed)))
        }
    }
}

/// What every backend must do, run by each backend's tests.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub async fn tokens_expire_are_single_use_and_bound_to_their_device(
        store: &dyn Store,
    ) -> Result<(), StoreError> {
        // Pairing checks expiry against the clock: times are from now.
        let t = crate::now_ms() / 1000;
        store.register_device("d1", &KeyDigest::of("s1"), 0).await?;
        store.register_device("d2", &KeyDigest::of("s2"), 0).await?;
        let token = KeyDigest::of("token");
        assert!(
            store
                .issue_pair_token("d1", &token, "t1", t + 100, t, 5)
                .await?
        );
        assert_eq!(
            store.attempt_pair_token("d2", &token, t + 50).await?,
            Err(TokenRefusal::Unknown)
        );
        assert_eq!(
            store.attempt_pair_token("d1", &token, t + 100).await?,
            Err(TokenRefusal::Expired)
        );
        assert_eq!(
            store.attempt_pair_token("d1", &token, t + 50).await?,
            Ok("t1".to_owned())
        );
        let phone = PhoneRecord {
            phone_id: "p1".into(),
            label: None,
            paired_at: 1,
        };
        assert!(
            store
                .complete_pairing("d1", "t1", &phone, &KeyDigest::of("ps"))
                .await?
        );
        assert!(
            !store
                .complete_pairing("d1", "t1", &phone, &KeyDigest::of("ps"))
                .await?,
            "used once only"
        );
        assert_eq!(
            store.attempt_pair_token("d1", &token, t + 50).await?,
            Err(TokenRefusal::Used)
        );
        assert!(
            store
                .phone_secret_matches("d1", "p1", &KeyDigest::of("ps"))
                .await?
        );
        assert!(
            !store
                .phone_secret_matches("d1", "p1", &KeyDigest::of("nope"))
                .await?
        );
        assert!(store.remove_phone("d1", "p1").await?);
        assert!(
            !store
                .phone_secret_matches("d1", "p1", &KeyDigest::of("ps"))
                .await?
        );
        assert!(
            store
                .phone_was_revoked("d1", "p1", &KeyDigest::of("ps"))
                .await?
        );
        assert!(!store.remove_phone("d1", "p1").await?, "gone already");
        // Five attempts, then the token is dead.
        let busy = KeyDigest::of("busy");
        assert!(
            store
                .issue_pair_token("d2", &busy, "t2", t + 100, t, 5)
                .await?
        );
        for _ in 0..TOKEN_ATTEMPTS {
            assert!(store.attempt_pair_token("d2", &busy, t + 50).await?.is_ok());
        }
        assert_eq!(
            store.attempt_pair_token("d2", &busy, t + 50).await?,
            Err(TokenRefusal::Dead)
        );
        // A token killed by the daemon cannot complete a pairing, nor can an expired one.
        let killed = KeyDigest::of("killed");
        assert!(
            store
                .issue_pair_token("d2", &killed, "t3", t + 100, t, 5)
                .await?
        );
        assert!(store.attempt_pair_token("d2", &killed, t).await?.is_ok());
        store.kill_pair_token("t3").await?;
        let late = PhoneRecord {
            phone_id: "p2".into(),
            label: None,
            paired_at: 2,
        };
        assert!(
            !store
                .complete_pairing("d2", "t3", &late, &KeyDigest::of("x"))
                .await?
        );
        assert_eq!(
            store.attempt_pair_token("d2", &killed, t).await?,
            Err(TokenRefusal::Dead)
        );
        let stale = KeyDigest::of("stale");
        assert!(
            store
                .issue_pair_token("d2", &stale, "t4", t - 1, t - 10, 5)
                .await?
        );
        assert!(
            !store
                .complete_pairing("d2", "t4", &late, &KeyDigest::of("x"))
                .await?
        );
        assert_eq!(store.purge_expired_tokens(t + 200).await?, 4);
        Ok(())
    }

    pub async fn a_device_holds_at_most_its_cap_of_live_tokens(
        store: &dyn Store,
    ) -> Result<(), StoreError> {
        store.register_device("d1", &KeyDigest::of("s1"), 0).await?;
        store.register_device("d2", &KeyDigest::of("s2"), 0).await?;
        for n in 0..3 {
            let token = KeyDigest::of(&format!("token-{n}"));
            assert!(
                store
                    .issue_pair_token("d1", &token, &format!("t{n}"), 100, 10, 3)
                    .await?
            );
        }
        let extra = KeyDigest::of("one-too-many");
        assert!(
            !store
                .issue_pair_token("d1", &extra, "t3", 100, 10, 3)
                .await?
        );
        assert!(
            store
                .issue_pair_token("d2", &extra, "t4", 100, 10, 3)
                .await?,
            "another device's tokens do not count"
        );
        assert!(matches!(
            store
                .issue_pair_token("d2", &extra, "t4b", 100, 10, 3)
                .await,
            Err(StoreError::Conflict)
        ));
        // A dead token frees its place, and so does time.
        store.kill_pair_token("t0").await?;
        assert!(
            store
                .issue_pair_token("d1", &KeyDigest::of("after-kill"), "t5", 100, 10, 3)
                .await?
        );
        assert!(
            !store
                .issue_pair_token("d1", &KeyDigest::of("full-again"), "t6", 100, 10, 3)
                .await?
        );
        assert!(
            store
                .issue_pair_token("d1", &KeyDigest::of("later"), "t7", 200, 100, 3)
                .await?
        );
        Ok(())
    }
}
