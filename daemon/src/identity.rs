//! Who this daemon is to its peers. The node id is created once and kept in the
//! data dir (the original made a new one on every start: spec §0 [BUG]).

use std::io;

use crate::durable;
use crate::paths::DataDir;
use crate::secrets;

/// The LAN protocol version we speak (the original's `PROTOCOL_VERSION`); peers compare it.
pub const PROTOCOL_VERSION: &str = "1.0.53";

/// This implementation's own version, reported beside the protocol version.
pub const DAEMON_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub node_id: String,
    pub hostname: String,
    /// The original's platform names: `linux`, `darwin`, `win32`.
    pub platform: &'static str,
    pub port: u16,
}

pub fn platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    }
}

fn is_uuid(text: &str) -> bool {
    uuid::Uuid::try_parse(text).is_ok()
}

/// Reads the persisted node id, creating it on first use. A damaged file is
/// replaced, with a warning: an id nobody can parse identifies nothing.
pub fn load_or_create_node_id(data_dir: &DataDir) -> io::Result<String> {
    let path = data_dir.node_id();
    match std::fs::read_to_string(&path) {
        Ok(text) if is_uuid(text.trim()) => return Ok(text.trim().to_owned()),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "the node id file is damaged; creating a new node id")
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let bytes = secrets::random_bytes::<16>().map_err(io::Error::other)?;
    let id = uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string();
    durable::write_private_atomic(&path, format!("{id}\n").as_bytes())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_persists() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = DataDir::new(dir.path());
        let first = load_or_create_node_id(&data)?;
        assert!(is_uuid(&first));
        assert_eq!(load_or_create_node_id(&data)?, first);
        std::fs::write(data.node_id(), "garbage")?;
        assert_ne!(load_or_create_node_id(&data)?, first);
        Ok(())
    }
}
