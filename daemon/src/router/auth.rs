//! Who is asking: principals (DESIGN §3) from transport evidence. Keys are held
//! as SHA-256 digests and every candidate is compared with every key in constant
//! time, so neither timing nor the answer says which keys exist.

use std::fmt;
use std::net::IpAddr;

use loopsy_transports::wire::BearerToken;

use super::capabilities::Capabilities;
use crate::config::AuthConfig;
use crate::peers::store::PeerRecord;
use crate::peers::typescript_keys::TypeScriptKey;
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
    /// A daemon paired with this one (`loopsy pair`), by the credential it was
    /// given at pairing, with what the owner granted it there.
    PairedPeer(Box<PairedPeer>),
    /// A paired phone, authenticated by its end-to-end handshake.
    Phone { phone_id: String },
    /// No credentials (public operations only).
    Anonymous { ip: Option<IpAddr> },
    /// The relay link for a phone channel not yet authenticated (or the relay):
    /// it may only ask the phone-channel operations, which decide on it.
    RelayChannel { subject: String },
}

/// Who a paired daemon is, as its credential says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedPeer {
    pub node_id: String,
    /// Hostname and node id prefix, for the audit log.
    pub label: String,
    pub capabilities: Capabilities,
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
            Self::PairedPeer(peer) => peer.capabilities,
            Self::Phone { .. } => Capabilities::phone(),
            Self::Anonymous { .. } | Self::RelayChannel { .. } => Capabilities::none(),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Owner => f.write_str("owner"),
            Self::OwnerKey { .. } => f.write_str("owner-key"),
            Self::Peer { name, .. } => write!(f, "peer:{name}"),
            Self::PairedPeer(peer) => write!(f, "peer:{}", peer.label),
            Self::Phone { phone_id } => write!(f, "phone:{phone_id}"),
            Self::Anonymous { .. } => f.write_str("anonymous"),
            Self::RelayChannel { subject } => f.write_str(subject),
        }
    }
}

/// The accepted keys, as digests.
pub struct AuthTable {
    owner: KeyDigest,
    peers: Vec<(String, KeyDigest, Capabilities)>,
    /// Paired daemons: node id, label, credential digest, grants.
    paired: Vec<(String, String, KeyDigest, Capabilities)>,
    /// Keys this daemon calls TypeScript peers with: never accepted here,
    /// only kept out of the audit log like the others.
    outbound: Vec<KeyDigest>,
}

/// Which key a bearer matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMatch {
    Owner,
    Peer(String, Capabilities),
    Paired(PairedPeer),
}

impl AuthTable {
    /// The owner's key, `auth.allowedKeys`, the keys minted for TypeScript
    /// peers (`typescript`), and the credentials of paired loopsy daemons
    /// (a TypeScript peer's record holds no credential of ours to accept).
    pub fn from_config(
        auth: &AuthConfig,
        paired: &[PeerRecord],
        typescript: &[TypeScriptKey],
    ) -> Self {
        let (loopsy, original): (Vec<&PeerRecord>, Vec<&PeerRecord>) = paired
            .iter()
            .partition(|p| p.dialect == crate::peers::store::Dialect::Loopsy);
        Self {
            outbound: original
                .iter()
                .map(|p| KeyDigest::of(&p.outbound_secret))
                .collect(),
            paired: loopsy
                .into_iter()
                .map(|p| {
                    (
                        p.node_id.clone(),
                        p.label(),
                        p.inbound_digest.clone(),
                        p.inbound,
                    )
                })
                .collect(),
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
                .chain(
                    typescript
                        .iter()
                        .map(|k| (k.name.clone(), k.digest.clone(), k.capabilities)),
                )
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
        for (node_id, label, digest, capabilities) in &self.paired {
            if digest.matches(&offered) && found.is_none() {
                found = Some(KeyMatch::Paired(PairedPeer {
                    node_id: node_id.clone(),
                    label: label.clone(),
                    capabilities: *capabilities,
                }));
            }
        }
        found
    }

    /// Whether `word` is a key we call a TypeScript peer with (every one compared).
    fn is_outbound(&self, word: &str) -> bool {
        let offered = KeyDigest::of(word);
        self.outbound
            .iter()
            .fold(false, |found, digest| digest.matches(&offered) | found)
    }

    /// `text` with every known key in it (the owner's or a peer's) replaced by
    /// `[key]`, so a key passed on a command line never reaches the audit log.
    /// Candidates are the words between separators a shell or a flag uses
    /// (`--key=…`, `Authorization: Bearer …`, `a,b`, quotes); each is compared
    /// with every key digest in constant time.
    pub fn redact_keys(&self, text: &str) -> String {
        let is_separator = |c: char| {
            c.is_whitespace() || matches!(c, '=' | ':' | ',' | ';' | '"' | '\'' | '&' | '?')
        };
        let mut redacted = String::with_capacity(text.len());
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            if !word.is_empty()
                && (self.identify(&BearerToken::new(word.as_str())).is_some()
                    || self.is_outbound(word))
            {
                out.push_str("[key]");
            } else {
                out.push_str(word);
            }
            word.clear();
        };
        for c in text.chars() {
            if is_separator(c) {
                flush(&mut word, &mut redacted);
                redacted.push(c);
            } else {
                word.push(c);
            }
        }
        flush(&mut word, &mut redacted);
        redacted
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
        let table = AuthTable::from_config(&auth, &[], &[]);
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

    #[test]
    fn keys_in_command_lines_are_redacted_wherever_they_stand() {
        let mut auth = AuthConfig {
            api_key: "owner-secret-0123456789".into(),
            ..Default::default()
        };
        auth.allowed_keys
            .insert("laptop".into(), "peer-secret-abcdef".into());
        let table = AuthTable::from_config(&auth, &[], &[]);
        for (arg, expected) in [
            ("owner-secret-0123456789", "[key]"),
            ("--api-key=peer-secret-abcdef", "--api-key=[key]"),
            (
                "curl -H 'Authorization: Bearer owner-secret-0123456789' x",
                "curl -H 'Authorization: Bearer [key]' x",
            ),
            ("KEY=\"peer-secret-abcdef\";echo", "KEY=\"[key]\";echo"),
            (
                "http://h/?k=peer-secret-abcdef&x=1",
                "http://h/?k=[key]&x=1",
            ),
            ("owner-secret-01234567890", "owner-secret-01234567890"),
            ("no secrets here", "no secrets here"),
        ] {
            assert_eq!(table.redact_keys(arg), expected, "{arg}");
        }
    }
}
