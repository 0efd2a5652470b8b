//! The paired peers, in `loopsy.db` (`0600`). A peer's credential for calling
//! us is kept only as its SHA-256 digest; the credential we call it with must
//! be usable, so it is kept as it is, like the API key in `config.yaml`.

use loopsy_transports::secrets::KeyDigest;
use rusqlite::{Connection, OptionalExtension, params};

use crate::paths::DataDir;
use crate::router::Capabilities;

/// One paired peer, as stored.
#[derive(Clone)]
pub struct PeerRecord {
    pub node_id: String,
    pub hostname: String,
    /// How we reach it: an IP address or a name.
    pub address: String,
    /// Its TLS port for peers.
    pub port: u16,
    /// The fingerprint of its certificate, pinned at pairing.
    pub cert_fp: String,
    /// Digest of the credential it calls us with.
    pub inbound_digest: KeyDigest,
    /// What it may do here.
    pub inbound: Capabilities,
    /// The credential we call it with.
    pub outbound_secret: String,
    /// What it lets us do there.
    pub outbound: Capabilities,
    pub version: String,
    pub platform: String,
    pub paired_at: i64,
    pub last_seen: Option<i64>,
    /// What it speaks: a loopsy daemon paired with us, or a TypeScript Loopsy.
    pub dialect: Dialect,
}

/// How a peer is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// A loopsy daemon paired with `loopsy pair`: JSON-RPC on its TLS port,
    /// its certificate pinned at pairing, credentials minted for each other.
    #[default]
    Loopsy,
    /// The original TypeScript Loopsy, over its REST routes with a key the user
    /// copied. Over TLS its certificate is pinned when the peer is added
    /// (trust on first use); `plain_http` only when the user asked for it.
    TypeScript { plain_http: bool },
}

impl Dialect {
    fn stored(self) -> &'static str {
        match self {
            Self::Loopsy => "loopsy",
            Self::TypeScript { plain_http: false } => "typescript",
            Self::TypeScript { plain_http: true } => "typescript+http",
        }
    }

    fn from_stored(text: &str) -> Self {
        match text {
            "typescript" => Self::TypeScript { plain_http: false },
            "typescript+http" => Self::TypeScript { plain_http: true },
            _ => Self::Loopsy,
        }
    }

    /// What `peers list` calls it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Loopsy => "loopsy (paired)",
            Self::TypeScript { plain_http: false } => "typescript (TLS, pinned when added)",
            Self::TypeScript { plain_http: true } => "typescript (plain HTTP: unencrypted)",
        }
    }
}

impl std::fmt::Debug for PeerRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerRecord")
            .field("node_id", &self.node_id)
            .field("hostname", &self.hostname)
            .field("address", &self.address)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl PeerRecord {
    /// The name it has in the audit log, its session and job scope and its rate
    /// limits: hostname and the whole node id. The node id (canonical, one
    /// pairing each) is what makes it unique: a peer choosing another's
    /// hostname and id prefix must not share its scope.
    pub fn label(&self) -> String {
        format!("{}@{}", self.hostname, self.node_id)
    }
}

/// Capabilities as stored (comma-joined names).
pub(super) fn caps(text: &str) -> Capabilities {
    let names: Vec<String> = text
        .split(',')
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect();
    // A list written by an older or newer daemon that does not parse grants nothing.
    Capabilities::parse(&names).unwrap_or_default()
}

pub struct PeerBook {
    pub(super) db: Connection,
}

const COLUMNS: &str = "node_id, hostname, address, port, cert_fp, inbound_digest, inbound_caps, \
     outbound_secret, outbound_caps, version, platform, paired_at, last_seen, dialect";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PeerRecord> {
    let digest: Vec<u8> = r.get(5)?;
    let inbound: String = r.get(6)?;
    let outbound: String = r.get(8)?;
    Ok(PeerRecord {
        node_id: r.get(0)?,
        hostname: r.get(1)?,
        address: r.get(2)?,
        port: r.get(3)?,
        cert_fp: r.get(4)?,
        // A damaged digest matches nothing (all-zero is no SHA-256 of a 32-byte secret we make).
        inbound_digest: KeyDigest::from_bytes(&digest)
            .unwrap_or_else(|| KeyDigest::of("\0damaged")),
        inbound: caps(&inbound),
        outbound_secret: r.get(7)?,
        outbound: caps(&outbound),
        version: r.get(9)?,
        platform: r.get(10)?,
        paired_at: r.get(11)?,
        last_seen: r.get(12)?,
        dialect: Dialect::from_stored(&r.get::<_, String>(13)?),
    })
}

impl PeerBook {
    pub fn open(data_dir: &DataDir) -> rusqlite::Result<Self> {
        Ok(Self {
            db: crate::state::open(&data_dir.database())?,
        })
    }

    /// Stores a peer just paired; pairing the same node again replaces it
    /// (new pin, new credentials, new grants).
    pub fn put(&self, peer: &PeerRecord) -> rusqlite::Result<()> {
        self.db
            .execute(
                &format!(
                    "INSERT OR REPLACE INTO peers ({COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                ),
                params![
                    peer.node_id,
                    peer.hostname,
                    peer.address,
                    peer.port,
                    peer.cert_fp,
                    peer.inbound_digest.as_bytes().as_slice(),
                    peer.inbound.names().join(","),
                    peer.outbound_secret,
                    peer.outbound.names().join(","),
                    peer.version,
                    peer.platform,
                    peer.paired_at,
                    peer.last_seen,
                    peer.dialect.stored(),
                ],
            )
            .map(drop)
    }

    pub fn list(&self) -> rusqlite::Result<Vec<PeerRecord>> {
        let mut query = self
            .db
            .prepare(&format!("SELECT {COLUMNS} FROM peers ORDER BY paired_at"))?;
        query.query_map([], row)?.collect()
    }

    pub fn get(&self, node_id: &str) -> rusqlite::Result<Option<PeerRecord>> {
        self.db
            .query_row(
                &format!("SELECT {COLUMNS} FROM peers WHERE node_id = ?1"),
                [node_id],
                row,
            )
            .optional()
    }

    pub fn remove(&self, node_id: &str) -> rusqlite::Result<bool> {
        self.db
            .execute("DELETE FROM peers WHERE node_id = ?1", [node_id])
            .map(|n| n > 0)
    }

    /// Notes that the peer answered now.
    pub fn seen(&self, node_id: &str, at_ms: i64) -> rusqlite::Result<()> {
        self.db
            .execute(
                "UPDATE peers SET last_seen = ?2 WHERE node_id = ?1",
                params![node_id, at_ms],
            )
            .map(drop)
    }
}

/// Finds the one peer `name` means: a node id, a hostname (any case), or a
/// unique prefix of a node id. The error says what to type instead.
pub fn resolve<'a>(peers: &'a [PeerRecord], name: &str) -> Result<&'a PeerRecord, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(
            "name a peer by its hostname or node id; `loopsy peers list` shows them".into(),
        );
    }
    if let Some(exact) = peers.iter().find(|p| p.node_id == name) {
        return Ok(exact);
    }
    // Hostnames are what peers say they are: a peer calling itself by another's
    // node-id prefix must make the name ambiguous, never take it over.
    let prefix = name.to_ascii_lowercase();
    let candidates: Vec<_> = peers
        .iter()
        .filter(|p| p.hostname.eq_ignore_ascii_case(name) || p.node_id.starts_with(&prefix))
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "no paired peer is called '{name}'; `loopsy peers list` shows them, `loopsy pair` adds one"
        )),
        many => Err(format!(
            "'{name}' could be {}; name one by its node id",
            many.iter()
                .map(|p| p.label())
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record(node_id: &str, hostname: &str) -> PeerRecord {
        PeerRecord {
            node_id: node_id.into(),
            hostname: hostname.into(),
            address: "127.0.0.1".into(),
            port: 19533,
            cert_fp: "ab".repeat(32),
            inbound_digest: KeyDigest::of("their key"),
            inbound: Capabilities::peer_default(),
            outbound_secret: "our key".into(),
            outbound: Capabilities::none(),
            version: "0.1.0".into(),
            platform: "linux".into(),
            paired_at: 1,
            last_seen: None,
            dialect: Dialect::Loopsy,
        }
    }

    #[test]
    fn peers_are_stored_replaced_and_removed() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let book = PeerBook::open(&DataDir::new(dir.path()))?;
        book.put(&record("aaaa1111-0000", "kai"))?;
        let mut again = record("aaaa1111-0000", "kai");
        again.inbound = Capabilities::none();
        book.put(&again)?;
        let listed = book.list()?;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].inbound, Capabilities::none());
        assert!(
            listed[0]
                .inbound_digest
                .matches(&KeyDigest::of("their key"))
        );
        assert!(book.remove("aaaa1111-0000")?);
        assert!(!book.remove("aaaa1111-0000")?);
        assert!(book.get("aaaa1111-0000")?.is_none());
        Ok(())
    }

    #[test]
    fn names_resolve_to_one_peer_or_say_why_not() {
        let peers = vec![record("aaaa1111", "kai"), record("aabb2222", "Mira")];
        assert_eq!(
            resolve(&peers, "aaaa1111").map(|p| p.hostname.as_str()),
            Ok("kai")
        );
        assert_eq!(
            resolve(&peers, "mira").map(|p| p.hostname.as_str()),
            Ok("Mira")
        );
        assert_eq!(
            resolve(&peers, "aab").map(|p| p.hostname.as_str()),
            Ok("Mira")
        );
        assert!(resolve(&peers, "aa").is_err_and(|e| e.contains("could be")));
        assert!(resolve(&peers, "zed").is_err_and(|e| e.contains("no paired peer")));
        assert!(resolve(&peers, "").is_err());
        // Mira names itself by Kai's node-id prefix: ambiguous, not Mira.
        let spoofing = vec![record("aaaa1111", "kai"), record("bbbb2222", "aaaa")];
        assert!(resolve(&spoofing, "aaaa").is_err_and(|e| e.contains("could be")));
    }
}
