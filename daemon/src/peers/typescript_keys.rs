//! Keys minted for TypeScript Loopsy peers (`loopsy peers invite
//! --for-typescript NAME`): the original cannot pair, so its user pastes the
//! key into its `auth.allowedKeys`, and it calls us with it. Only the key's
//! SHA-256 digest is kept (in `loopsy.db`), with what the key may do here.

use loopsy_transports::secrets::KeyDigest;
use rusqlite::params;

use super::store::PeerBook;
use crate::router::Capabilities;

/// One minted key, as stored.
#[derive(Debug, Clone)]
pub struct TypeScriptKey {
    pub name: String,
    pub digest: KeyDigest,
    pub capabilities: Capabilities,
    pub created_at: i64,
}

/// Longest name of a minted key (it names the caller in the audit log).
pub const MAX_NAME: usize = 64;

/// Whether `name` can name a key: letters, digits, `-`, `_`, `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name the TypeScript peer with up to {MAX_NAME} letters, digits, '-', '_' or '.'"
        ))
    }
}

impl PeerBook {
    /// Stores a minted key; a name already taken is refused (remove it first).
    pub fn put_typescript_key(&self, key: &TypeScriptKey) -> rusqlite::Result<bool> {
        self.db
            .execute(
                "INSERT OR IGNORE INTO typescript_keys (name, digest, caps, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    key.name,
                    key.digest.as_bytes().as_slice(),
                    key.capabilities.names().join(","),
                    key.created_at
                ],
            )
            .map(|n| n > 0)
    }

    pub fn typescript_keys(&self) -> rusqlite::Result<Vec<TypeScriptKey>> {
        let mut query = self.db.prepare(
            "SELECT name, digest, caps, created_at FROM typescript_keys ORDER BY created_at",
        )?;
        query
            .query_map([], |r| {
                let digest: Vec<u8> = r.get(1)?;
                let caps: String = r.get(2)?;
                Ok(TypeScriptKey {
                    name: r.get(0)?,
                    // A damaged digest matches nothing.
                    digest: KeyDigest::from_bytes(&digest)
                        .unwrap_or_else(|| KeyDigest::of("\0damaged")),
                    capabilities: super::store::caps(&caps),
                    created_at: r.get(3)?,
                })
            })?
            .collect()
    }

    pub fn remove_typescript_key(&self, name: &str) -> rusqlite::Result<bool> {
        self.db
            .execute("DELETE FROM typescript_keys WHERE name = ?1", [name])
            .map(|n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::DataDir;

    #[test]
    fn minted_keys_are_kept_as_digests_once_per_name() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let book = PeerBook::open(&DataDir::new(dir.path()))?;
        let key = TypeScriptKey {
            name: "ts-box".into(),
            digest: KeyDigest::of("the key"),
            capabilities: Capabilities::peer_default(),
            created_at: 1,
        };
        assert!(book.put_typescript_key(&key)?);
        assert!(!book.put_typescript_key(&key)?, "a name is taken once");
        let listed = book.typescript_keys()?;
        assert_eq!(listed.len(), 1);
        assert!(listed[0].digest.matches(&KeyDigest::of("the key")));
        assert_eq!(listed[0].capabilities, Capabilities::peer_default());
        assert!(book.remove_typescript_key("ts-box")?);
        assert!(book.typescript_keys()?.is_empty());
        assert!(check_name("ts-box.lan").is_ok());
        assert!(check_name("a b").is_err() && check_name("").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        Ok(())
    }
}
