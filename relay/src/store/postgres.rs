//! The PostgreSQL backend, shared by every node of a fleet. Why
//! `tokio-postgres`: it is the maintained async client of the Rust ecosystem
//! (the `postgres` crate is its blocking wrapper), speaks the protocol
//! natively with pipelining, and runs on the tokio the relay already has.
//!
//! The connections live on a thread of their own (its own runtime), so a slow
//! database never holds an actix worker; queries are awaited from the
//! workers. A few connections are kept (`POOL`), each reopened when it drops.
//! What must hold across nodes is one statement or one transaction under an
//! advisory lock: a pair token's attempts are counted by one conditional
//! `UPDATE … RETURNING`, pairing burns the token and stores the phone in one
//! statement, and a device's live tokens are counted and inserted under a
//! lock on that device. Revocations are announced with `NOTIFY`; one more
//! connection `LISTEN`s and hands them to the node (`announcements`).
//! Migrations are numbered in `schema_migrations`, applied by one node at a
//! time (an advisory lock).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loopsy_transports::secrets::KeyDigest;
use tokio::sync::{Mutex, MutexGuard, mpsc};
use tokio_postgres::{Client, Config, NoTls};

use super::announcements::{REVOKED_CHANNEL, RevocationFeed, WANTED_CHANNEL, listen};

use super::{
    Answer, PhoneRecord, REVOKED_KEPT_SECS, Store, StoreError, TOKEN_ATTEMPTS, TokenRefusal,
};

/// Connections for queries.
const POOL: usize = 4;
/// Longest wait for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(5);
/// Bounds on each session, so that no statement, lock or forgotten
/// transaction can hold a connection (and with it the pool) for long.
const SESSION_LIMITS: &str =
    "-c statement_timeout=5000 -c lock_timeout=3000 -c idle_in_transaction_session_timeout=10000";
/// Advisory lock held while migrating (any fixed number, the same on every node).
const MIGRATION_LOCK: i64 = 0x6c6f_6f70_7379;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    secret_hash BYTEA NOT NULL,
    registered_at BIGINT NOT NULL
);
CREATE TABLE phones (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    label TEXT,
    paired_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, id)
);
CREATE TABLE pair_tokens (
    token_hash BYTEA PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX pair_tokens_expiry ON pair_tokens(expires_at);
CREATE INDEX pair_tokens_device ON pair_tokens(device_id);
CREATE TABLE revoked_phones (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, id)
);
",
    "
CREATE TABLE registrations (
    ip TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX registrations_by_address ON registrations(ip, at_ms);
CREATE INDEX registrations_by_time ON registrations(at_ms);
",
    "
ALTER TABLE pair_tokens ADD COLUMN dead BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX revoked_phones_by_time ON revoked_phones(revoked_at);
",
];

/// The window registrations are counted in.
const REGISTRATION_WINDOW_MS: i64 = 60_000;
/// Advisory lock that puts the fleet's registrations in a row.
const REGISTRATION_LOCK: i64 = 0x7265_6769_7374;

pub struct PostgresStore {
    config: Config,
    /// The connections' thread, where reopened connections run too.
    runtime: tokio::runtime::Handle,
    pool: Arc<Vec<Mutex<Option<Client>>>>,
    next: AtomicUsize,
}

fn conflict_or(error: tokio_postgres::Error) -> StoreError {
    if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict
    } else {
        StoreError::Postgres(error)
    }
}

fn digest_matches(stored: Option<Vec<u8>>, presented: &KeyDigest) -> bool {
    stored.is_some_and(|bytes| KeyDigest::from_bytes(&bytes).is_some_and(|d| d.matches(presented)))
}

/// Opens a connection whose driving task runs on `runtime`.
async fn open(
    config: &Config,
    runtime: &tokio::runtime::Handle,
) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    runtime.spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "a PostgreSQL connection ended");
        }
    });
    Ok(client)
}

async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    // Another node may be migrating: wait for it longer than a request would.
    tx.batch_execute("SET LOCAL lock_timeout = '60s'; SET LOCAL statement_timeout = '120s'")
        .await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .await?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if current > known {
        return Err(StoreError::Setup(format!(
            "the relay's PostgreSQL is at schema version {current}, newer than this relay knows ({known}); run a newer loopsy-relay"
        )));
    }
    for (done, step) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(step).await?;
        let now = (crate::now_ms() / 1000) as i64;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[&(done as i32 + 1), &now],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

impl PostgresStore {
    /// Connects (at most [`CONNECT_TIMEOUT`] per connection), migrates, and
    /// starts listening for revocations. `url` is `postgres://user@host:port/db`.
    pub fn connect(
        url: &str,
        password: Option<&str>,
    ) -> Result<(Self, RevocationFeed), StoreError> {
        let mut config: Config = url.parse().map_err(|_| {
            StoreError::Setup("the --database URL is not one PostgreSQL takes (postgres://user@host:port/database)".into())
        })?;
        if let Some(password) = password {
            config.password(password);
        }
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("loopsy-relay")
            .options(SESSION_LIMITS)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(30));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Setup(format!("cannot start the PostgreSQL thread: {e}")))?;
        let handle = runtime.handle().clone();
        let (ready, started) = std::sync::mpsc::channel();
        let (feed, revocations) = mpsc::unbounded_channel();
        let setup = config.clone();
        std::thread::Builder::new()
            .name("postgres".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let here = tokio::runtime::Handle::current();
                    let opened = async {
                        let mut clients = Vec::with_capacity(POOL);
                        for _ in 0..POOL {
                            clients.push(open(&setup, &here).await?);
                        }
                        if let Some(first) = clients.first_mut() {
                            migrate(first).await?;
                        }
                        Ok::<_, StoreError>(clients)
                    }
                    .await;
                    let failed = opened.is_err();
                    let _ = ready.send(opened);
                    if failed {
                        return;
                    }
                    // Runs for the life of the relay (and drives the connections' tasks).
                    listen(setup, feed).await;
                    // The connections' tasks run here: the thread outlives the feed.
                    std::future::pending::<()>().await;
                });
            })
            .map_err(|e| StoreError::Setup(format!("cannot start the PostgreSQL thread: {e}")))?;
        // Migrating can wait on another node's migration (its lock), not forever.
        let clients = started
            .recv_timeout(CONNECT_TIMEOUT * 12)
            .map_err(|_| StoreError::Task)?
            .map_err(|e| match e {
                StoreError::Postgres(e) => StoreError::Setup(format!(
                    "cannot reach the relay's PostgreSQL ({e}); check --database and that the server runs"
                )),
                other => other,
            })?;
        let pool = clients.into_iter().map(|c| Mutex::new(Some(c))).collect();
        Ok((
            Self {
                config,
                runtime: handle,
                pool: Arc::new(pool),
                next: AtomicUsize::new(0),
            },
            revocations,
        ))
    }

    /// A connection of the pool: a free one if any, else the next in turn;
    /// reopened first if it dropped.
    async fn client(&self) -> Result<MutexGuard<'_, Option<Client>>, StoreError> {
        let free = self.pool.iter().find_map(|slot| slot.try_lock().ok());
        let mut held = match free {
            Some(held) => held,
            None => {
                let slot = &self.pool[self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len()];
                tokio::time::timeout(POOL_WAIT, slot.lock())
                    .await
                    .map_err(|_| StoreError::Busy)?
            }
        };
        if held.as_ref().is_none_or(Client::is_closed) {
            // Opened on the connections' thread, whose runtime will drive it.
            let (config, runtime) = (self.config.clone(), self.runtime.clone());
            let reopened = self
                .runtime
                .spawn(async move { open(&config, &runtime).await })
                .await
                .map_err(|_| StoreError::Task)??;
            *held = Some(reopened);
        }
        Ok(held)
    }
}

impl PostgresStore {
    /// Whether `presented` matches the digest `query` finds for a device's phone.
    fn phone_digest_matches<'a>(
        &'a self,
        query: &'static str,
        device_id: &'a str,
        phone_id: &'a str,
        presented: &'a KeyDigest,
    ) -> Answer<'a, bool> {
        Box::pin(async move {
            let mut held = self.client().await?;
            let row = filled(&mut held)?
                .query_opt(query, &[&device_id, &phone_id])
                .await?;
            Ok(digest_matches(row.map(|r| r.get(0)), presented))
        })
    }
}

/// The client in a guard [`PostgresStore::client`] filled.
fn filled<'g>(held: &'g mut MutexGuard<'_, Option<Client>>) -> Result<&'g mut Client, StoreError> {
    held.as_mut().ok_or(StoreError::Task)
}

impl Store for PostgresStore {
    fn register_device<'a>(
        &'a self,
        device_id: &'a str,
        secret: &'a KeyDigest,
        now: u64,
    ) -> Answer<'a, ()> {
        Box::pin(async move {
            let mut held = self.client().await?;
            filled(&mut held)?
                .execute(
                    "INSERT INTO devices (id, secret_hash, registered_at) VALUES ($1, $2, $3)",
                    &[&device_id, &&secret.as_bytes()[..], &(now as i64)],
                )
                .await
                .map_err(conflict_or)?;
            Ok(())
        })
    }

    fn device_secret_matches<'a>(
        &'a self,
        device_id: &'a str,
        presented: &'a KeyDigest,
    ) -> Answer<'a, bool> {
        Box::pin(async move {
            let mut held = self.client().await?;
            let row = filled(&mut held)?
                .query_opt(
                    "SELECT secret_hash FROM devices WHERE id = $1",
                    &[&device_id],
                )
                .await?;
            Ok(digest_matches(row.map(|r| r.get(0)), presented))
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
        Box::pin(async move {
            let mut held = self.client().await?;
            let tx = filled(&mut held)?.transaction().await?;
            // Nodes issuing for one device at once wait for each other here,
            // so the count below sees every token the others inserted.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&device_id],
            )
            .await?;
            let inserted = tx
                .execute(
                    "INSERT INTO pair_tokens (token_hash, id, device_id, expires_at)
                     SELECT $1, $2, $3, $4
                     WHERE (SELECT count(*) FROM pair_tokens
                            WHERE device_id = $3 AND NOT used AND NOT dead AND expires_at > $5 AND attempts < $6) < $7",
                    &[
                        &&token.as_bytes()[..],
                        &token_id,
                        &device_id,
                        &(expires_at as i64),
                        &(now as i64),
                        &(TOKEN_ATTEMPTS as i32),
                        &i64::from(most),
                    ],
                )
                .await
                .map_err(conflict_or)?;
            tx.commit().await?;
            Ok(inserted == 1)
        })
    }

    fn attempt_pair_token<'a>(
        &'a self,
        device_id: &'a str,
        token: &'a KeyDigest,
        now: u64,
    ) -> Answer<'a, Result<String, TokenRefusal>> {
        Box::pin(async move {
            let mut held = self.client().await?;
            let db = filled(&mut held)?;
            let digest = &token.as_bytes()[..];
            let counted = db
                .query_opt(
                    "UPDATE pair_tokens SET attempts = attempts + 1
                     WHERE token_hash = $1 AND device_id = $2 AND NOT used AND NOT dead AND expires_at > $3 AND attempts < $4
                     RETURNING id",
                    &[&digest, &device_id, &(now as i64), &(TOKEN_ATTEMPTS as i32)],
                )
                .await?;
            if let Some(row) = counted {
                return Ok(Ok(row.get(0)));
            }
            let row = db
                .query_opt(
                    "SELECT expires_at, attempts::bigint, used FROM pair_tokens WHERE token_hash = $1 AND device_id = $2",
                    &[&digest, &device_id],
                )
                .await?;
            Ok(Err(TokenRefusal::of(
                row.map(|r| (r.get(0), r.get(1), r.get(2))),
                now,
            )))
        })
    }

    fn kill_pair_token<'a>(&'a self, token_id: &'a str) -> Answer<'a, ()> {
        Box::pin(async move {
            let mut held = self.client().await?;
            filled(&mut held)?
                .execute(
                    "UPDATE pair_tokens SET dead = true WHERE id = $1",
                    &[&token_id],
                )
                .await?;
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
        Box::pin(async move {
            let mut held = self.client().await?;
            let stored = filled(&mut held)?
                .execute(
                    "WITH burned AS (
                         UPDATE pair_tokens SET used = true
                         WHERE id = $1 AND device_id = $2 AND NOT used AND NOT dead AND expires_at > $7
                         RETURNING device_id)
                     INSERT INTO phones (device_id, id, secret_hash, label, paired_at)
                     SELECT device_id, $3, $4, $5, $6 FROM burned",
                    &[
                        &token_id,
                        &device_id,
                        &phone.phone_id,
                        &&secret.as_bytes()[..],
                        &phone.label,
                        &phone.paired_at,
                        &((crate::now_ms() / 1000) as i64),
                    ],
                )
                .await?;
            Ok(stored == 1)
        })
    }

    fn phone_secret_matches<'a>(
        &'a self,
        device_id: &'a str,
        phone_id: &'a str,
        presented: &'a KeyDigest,
    ) -> Answer<'a, bool> {
        self.phone_digest_matches(
            "SELECT secret_hash FROM phones WHERE device_id = $1 AND id = $2",
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
            "SELECT secret_hash FROM revoked_phones WHERE device_id = $1 AND id = $2",
            device_id,
            phone_id,
            presented,
        )
    }

    fn phones<'a>(&'a self, device_id: &'a str) -> Answer<'a, Vec<PhoneRecord>> {
        Box::pin(async move {
            let mut held = self.client().await?;
            let rows = filled(&mut held)?
                .query(
                    "SELECT id, label, paired_at FROM phones WHERE device_id = $1 ORDER BY paired_at",
                    &[&device_id],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| PhoneRecord {
                    phone_id: r.get(0),
                    label: r.get(1),
                    paired_at: r.get(2),
                })
                .collect())
        })
    }

    fn remove_phone<'a>(&'a self, device_id: &'a str, phone_id: &'a str) -> Answer<'a, bool> {
        Box::pin(async move {
            let now = (crate::now_ms() / 1000) as i64;
            let mut held = self.client().await?;
            // Removed, kept among the revoked and announced to every node, at once.
            let announced = filled(&mut held)?
                .query(
                    &format!(
                        "WITH gone AS (
                             DELETE FROM phones WHERE device_id = $1 AND id = $2
                             RETURNING device_id, id, secret_hash),
                         kept AS (
                             INSERT INTO revoked_phones (device_id, id, secret_hash, revoked_at)
                             SELECT device_id, id, secret_hash, $3 FROM gone
                             ON CONFLICT (device_id, id)
                             DO UPDATE SET secret_hash = EXCLUDED.secret_hash, revoked_at = EXCLUDED.revoked_at
                             RETURNING device_id, id)
                         SELECT pg_notify('{REVOKED_CHANNEL}', device_id || ' ' || id) FROM kept"
                    ),
                    &[&device_id, &phone_id, &now],
                )
                .await?;
            Ok(!announced.is_empty())
        })
    }

    fn want_laptop<'a>(&'a self, device_id: &'a str) -> Answer<'a, ()> {
        Box::pin(async move {
            let mut held = self.client().await?;
            filled(&mut held)?
                .execute(
                    &format!("SELECT pg_notify('{WANTED_CHANNEL}', $1)"),
                    &[&device_id],
                )
                .await?;
            Ok(())
        })
    }

    fn admit_registration<'a>(
        &'a self,
        ip: &'a str,
        now_ms: u64,
        per_ip: u32,
        total: u32,
    ) -> Answer<'a, Result<(), u64>> {
        Box::pin(async move {
            let now = now_ms as i64;
            let mut held = self.client().await?;
            let tx = filled(&mut held)?.transaction().await?;
            // Registrations are rare: one at a time across the fleet keeps the
            // count and the insert together.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&REGISTRATION_LOCK])
                .await?;
            tx.execute(
                "DELETE FROM registrations WHERE at_ms <= $1",
                &[&(now - REGISTRATION_WINDOW_MS)],
            )
            .await?;
            let counts = tx
                .query_one(
                    "SELECT count(*) FILTER (WHERE ip = $1), min(at_ms) FILTER (WHERE ip = $1), count(*), min(at_ms)
                     FROM registrations",
                    &[&ip],
                )
                .await?;
            let (from_ip, oldest_of_ip, all, oldest): (i64, Option<i64>, i64, Option<i64>) =
                (counts.get(0), counts.get(1), counts.get(2), counts.get(3));
            let wait = |oldest: Option<i64>| {
                let until = oldest.unwrap_or(now) + REGISTRATION_WINDOW_MS - now;
                (until.max(1_000) as u64).div_ceil(1000)
            };
            let verdict = if from_ip >= i64::from(per_ip) {
                Err(wait(oldest_of_ip))
            } else if all >= i64::from(total) {
                Err(wait(oldest))
            } else {
                tx.execute(
                    "INSERT INTO registrations (ip, at_ms) VALUES ($1, $2)",
                    &[&ip, &now],
                )
                .await?;
                Ok(())
            };
            tx.commit().await?;
            Ok(verdict)
        })
    }

    fn purge_expired_tokens(&self, now: u64) -> Answer<'_, u64> {
        Box::pin(async move {
            let mut held = self.client().await?;
            let db = filled(&mut held)?;
            db.execute(
                "DELETE FROM revoked_phones WHERE revoked_at <= $1",
                &[&(now.saturating_sub(REVOKED_KEPT_SECS) as i64)],
            )
            .await?;
            Ok(db
                .execute(
                    "DELETE FROM pair_tokens WHERE expires_at <= $1",
                    &[&(now as i64)],
                )
                .await?)
        })
    }
}
