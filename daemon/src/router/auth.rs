//! Who is asking: principals (DESIGN §3) from transport evidence. Keys are held
//! as SHA-256 digests and every candidate is compared with every key in constant
//! time, so neither timing nor the answer says which keys exist.

use std::fmt;
use std::net::IpAddr;

use loopsy_transports::wire::BearerToken;

use crate::config::AuthConfig;
use crate::secrets::KeyDigest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A process of the daemon's own user on the Unix socket.
    Owner,
    /// The daemon's own API key over HTTP.
    OwnerKey { loopback: bool },
    /// A key from `auth.allowedKeys`, by its name.
    Peer { name: String },
    /// A paired phone, authenticated by its end-to-end handshake.
    Phone { phone_id: String },
    /// No credentials (public operations only).
    Anonymous { ip: Option<IpAddr> },
}

impl Principal {
    /// Stable label for the audit log and rate-limit keys.
    pub fn label(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Owner => f.write_str("owner"),
            Self::OwnerKey { .. } => f.write_str("owner-key"),
            Self::Peer { name } => write!(f, "peer:{name}"),
            Self::Phone { phone_id } => write!(f, "phone:{phone_id}"),
            Self::Anonymous { .. } => f.write_str("anonymous"),
        }
    }
}

/// The accepted keys, as digests.
pub struct AuthTable {
    owner: KeyDigest,
    peers: Vec<(String, KeyDigest)>,
}

/// Which key a bearer matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMatch {
    Owner,
    Peer(String),
}

impl AuthTable {
    pub fn from_config(auth: &AuthConfig) -> Self {
        Self {
            owner: KeyDigest::of(&auth.api_key),
            peers: auth
                .allowed_keys
                .iter()
                .map(|(name, key)| (name.clone(), KeyDigest::of(key)))
                .collect(),
        }
    }

    /// Compares against every key without stopping early.
    pub fn identify(&self, token: &BearerToken) -> Option<KeyMatch> {
        let offered = KeyDigest::of(token.expose());
        let mut found = None;
        if self.owner.matches(&offered) {
            found = Some(KeyMatch::Owner);
        }
        for (name, digest) in &self.peers {
            if digest.matches(&offered) && found.is_none() {
                found = Some(KeyMatch::Peer(name.clone()));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_and_peer_keys_are_told_apart() {
        let mut auth = AuthConfig {
            api_key: "own".into(),
            ..Default::default()
        };
        auth.allowed_keys.insert("laptop".into(), "theirs".into());
        let table = AuthTable::from_config(&auth);
        assert_eq!(
            table.identify(&BearerToken::new("own")),
            Some(KeyMatch::Owner)
        );
        assert_eq!(
            table.identify(&BearerToken::new("theirs")),
            Some(KeyMatch::Peer("laptop".into()))
        );
        assert_eq!(table.identify(&BearerToken::new("own ")), None);
        assert_eq!(table.identify(&BearerToken::new("")), None);
    }
}
