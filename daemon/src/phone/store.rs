//! What the phone path keeps on disk: the daemon's long-term X25519 key
//! (`e2e.key`), its relay registration (`relay.json`, holding the device
//! secret), both written atomically with mode `0600`, and the paired phones'
//! public keys in `loopsy.db`.

use std::io;

use loopsy_transports::e2e::{StaticKey, fingerprint};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::durable::write_private_atomic;
use crate::paths::DataDir;

/// The daemon's key for phones, made on first use.
pub fn load_or_create_key(data_dir: &DataDir) -> io::Result<StaticKey> {
    let path = data_dir.e2e_key();
    match std::fs::read(&path) {
        Ok(bytes) => StaticKey::from_private(&bytes).map_err(|e| {
            io::Error::other(format!(
                "{} is not a valid key ({e}); move it away to make a new one (paired phones must pair again)",
                path.display()
            ))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = StaticKey::generate().map_err(io::Error::other)?;
            write_private_atomic(&path, key.private())?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// This machine's registration at a relay.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayCredentials {
    pub url: String,
    pub device_id: String,
    pub device_secret: String,
    /// Extra CA certificates (PEM) the relay's certificate may chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RelayCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayCredentials")
            .field("url", &self.url)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

pub fn load_relay(data_dir: &DataDir) -> io::Result<Option<RelayCredentials>> {
    match std::fs::read(data_dir.relay_credentials()) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::other(format!(
                "{} is unreadable ({e}); run `loopsy relay configure <url>` again",
                data_dir.relay_credentials().display()
            ))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn save_relay(data_dir: &DataDir, credentials: &RelayCredentials) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(credentials).map_err(io::Error::other)?;
    write_private_atomic(&data_dir.relay_credentials(), &json)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedPhone {
    pub phone_id: String,
    pub label: Option<String>,
    pub paired_at: i64,
    pub fingerprint: String,
    pub auto_approve: bool,
    /// When it last connected (ms since the epoch); `None` if never since pairing.
    pub last_seen: Option<i64>,
}

/// The paired phones (their public keys, labels, pairing times).
pub struct PhoneBook {
    db: Connection,
}

impl PhoneBook {
    pub fn open(data_dir: &DataDir) -> rusqlite::Result<Self> {
        Ok(Self {
            db: crate::state::open(&data_dir.database())?,
        })
    }

    /// Stores a newly paired phone. An id that is taken is refused: the relay
    /// names the id, and must not be able to replace another phone's key.
    pub fn add(&self, phone_id: &str, key: &[u8; 32], label: Option<&str>) -> rusqlite::Result<()> {
        self.db
            .execute(
                "INSERT INTO phones (id, public_key, label, paired_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    phone_id,
                    key.as_slice(),
                    label,
                    crate::sessions::now_ms() as i64
                ],
            )
            .map(drop)
    }

    /// Notes that `phone_id` connected now.
    pub fn seen(&self, phone_id: &str) -> rusqlite::Result<()> {
        self.db
            .execute(
                "UPDATE phones SET last_seen = ?2 WHERE id = ?1",
                params![phone_id, crate::sessions::now_ms() as i64],
            )
            .map(drop)
    }

    pub fn key_of(&self, phone_id: &str) -> rusqlite::Result<Option<[u8; 32]>> {
        let key: Option<Vec<u8>> = self
            .db
            .query_row(
                "SELECT public_key FROM phones WHERE id = ?1",
                [phone_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(key.and_then(|k| k.try_into().ok()))
    }

    pub fn list(&self) -> rusqlite::Result<Vec<PairedPhone>> {
        let mut query = self.db.prepare(
            "SELECT id, label, paired_at, public_key, auto_approve, last_seen FROM phones ORDER BY paired_at",
        )?;
        query
            .query_map([], |r| {
                let key: Vec<u8> = r.get(3)?;
                Ok(PairedPhone {
                    phone_id: r.get(0)?,
                    label: r.get(1)?,
                    paired_at: r.get(2)?,
                    fingerprint: fingerprint(&key),
                    auto_approve: r.get(4)?,
                    last_seen: r.get(5)?,
                })
            })?
            .collect()
    }

    /// Whether the owner lets this phone start agents with auto-approve.
    pub fn may_auto_approve(&self, phone_id: &str) -> rusqlite::Result<bool> {
        Ok(self
            .db
            .query_row(
                "SELECT auto_approve FROM phones WHERE id = ?1",
                [phone_id],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    /// Grants or withdraws auto-approve; false when no such phone is paired.
    pub fn set_auto_approve(&self, phone_id: &str, allow: bool) -> rusqlite::Result<bool> {
        self.db
            .execute(
                "UPDATE phones SET auto_approve = ?2 WHERE id = ?1",
                params![phone_id, allow],
            )
            .map(|n| n > 0)
    }

    pub fn remove(&self, phone_id: &str) -> rusqlite::Result<bool> {
        self.db
            .execute("DELETE FROM phones WHERE id = ?1", [phone_id])
            .map(|n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_id_cannot_be_taken_over() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let data_dir = DataDir::new(dir.path());
        let book = PhoneBook::open(&data_dir)?;
        book.add("p1", &[1; 32], Some("first"))?;
        assert!(book.add("p1", &[2; 32], Some("intruder")).is_err());
        assert_eq!(book.key_of("p1")?, Some([1; 32]));
        assert!(!book.may_auto_approve("p1")?);
        assert!(book.set_auto_approve("p1", true)?);
        assert!(book.may_auto_approve("p1")?);
        assert!(!book.set_auto_approve("unknown", true)?);
        assert!(book.remove("p1")?);
        assert_eq!(book.key_of("p1")?, None);
        // A later phone given the same id starts without the grant.
        book.add("p1", &[3; 32], None)?;
        assert!(!book.may_auto_approve("p1")?);
        Ok(())
    }

    #[test]
    fn the_key_file_is_private_and_stable() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let data_dir = DataDir::new(dir.path());
        let first = load_or_create_key(&data_dir)?;
        let again = load_or_create_key(&data_dir)?;
        assert_eq!(first.public(), again.public());
        let mode = std::fs::metadata(data_dir.e2e_key())?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        Ok(())
    }
}
