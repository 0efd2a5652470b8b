//! Who is asking: principals (DESIGN §3) from transport evidence. Keys are held
//! as SHA-256 digests and every candidate is compared with every key in constant
//! time, so neither timing nor the answer says which keys exist.

use std::fmt;
use std::net::IpAddr;

use loopsy_transports::wire::BearerToken;

use super::capabilities::Capabilities;
use crate::config::AuthConfig;
use crate::secrets::KeyDigest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A process of the daemon's own user on the Unix socket.
    Owner,
    /// The daemon's own API key over HTTP.
    OwnerKey { loopback: bool },
    /// A key from `auth.allowedKeys`, by its name, with what its entry grants.
    Peer {
        name: String,
        capabilities: Capabilities,
    },
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

    /// What this principal may do.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            Self::Owner | Self::OwnerKey { .. } => Capabilities::all(),
            Self::Peer { capabilities, .. } => *capabilities,
            Self::Phone { .. } => Capabilities::phone(),
            Self::Anonymous { .. } => Capabilities::none(),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Owner => f.write_str("owner"),
            Self::OwnerKey { .. } => f.write_str("owner-key"),
            Self::Peer { name, .. } => write!(f, "peer:{name}"),
            Self::Phone { phone_id } => write!(f, "phone:{phone_id}"),
            Self::Anonymous { .. } => f.write_str("anonymous"),
        }
    }
}

/// The accepted keys, as digests.
pub struct AuthTable {
    owner: KeyDigest,
    peers: Vec<(String, KeyDigest, Capabilities)>,
}

/// Which key a bearer matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMatch {
    Owner,
    Peer(String, Capabilities),
}

impl AuthTable {
    pub fn from_config(auth: &AuthConfig) -> Self {
        Self {
            owner: KeyDigest::of(&auth.api_key),
            peers: auth
                .allowed_keys
                .iter()
                .map(|(name, entry)| {
                    // Settings refused unknown names already; a list that still does
                    // not parse grants nothing rather than the default.
                    let capabilities = match entry.capabilities() {
                        None => Capabilities::peer_default(),
                        Some(names) => Capabilities::parse(names).unwrap_or_default(),
                    };
                    (name.clone(), KeyDigest::of(entry.key()), capabilities)
                })
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
        for (name, digest, capabilities) in &self.peers {
            if digest.matches(&offered) && found.is_none() {
                found = Some(KeyMatch::Peer(name.clone(), *capabilities));
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
        auth.allowed_keys.insert(
            "builder".into(),
            crate::config::PeerKey::Entry(crate::config::PeerEntry {
                key: "builds".into(),
                capabilities: Some(vec!["exec".into(), "sessions:agents".into()]),
            }),
        );
        let table = AuthTable::from_config(&auth);
        assert_eq!(
            table.identify(&BearerToken::new("own")),
            Some(KeyMatch::Owner)
        );
        assert_eq!(
            table.identify(&BearerToken::new("theirs")),
            Some(KeyMatch::Peer(
                "laptop".into(),
                Capabilities::peer_default()
            ))
        );
        assert_eq!(
            table.identify(&BearerToken::new("builds")),
            Some(KeyMatch::Peer(
                "builder".into(),
                Capabilities::of(&[
                    super::super::capabilities::Capability::Exec,
                    super::super::capabilities::Capability::SessionsAgents
                ])
            ))
        );
        assert_eq!(table.identify(&BearerToken::new("own ")), None);
        assert_eq!(table.identify(&BearerToken::new("")), None);
    }
}
