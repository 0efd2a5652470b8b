//! The daemon's TLS identity for peers: a self-signed ECDSA P-256 certificate
//! (made with rcgen on aws-lc-rs) and its key, in `peer-tls.pem` (`0600`),
//! created on first start. Peers pin its fingerprint at pairing, so the
//! certificate needs no CA, no name and no renewal; replacing the file makes
//! every peer refuse this daemon until it pairs again.
//! `tls.certPath` and `tls.keyPath` name another certificate instead.

use std::io;

use loopsy_transports::peer_tls;

use crate::config::TlsConfig;
use crate::durable::write_private_atomic;
use crate::paths::{DataDir, expand_home};

/// A certificate, its key, and the fingerprint peers pin.
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub fingerprint: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

fn bad(path: &std::path::Path, problem: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!(
        "{} is not a usable certificate and key ({problem}); move it away to make a new one (peers must pair again)",
        path.display()
    ))
}

fn from_pem(
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    path: &std::path::Path,
) -> io::Result<TlsIdentity> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let first = CertificateDer::pem_slice_iter(&cert_pem)
        .next()
        .ok_or_else(|| bad(path, "no certificate"))?
        .map_err(|e| bad(path, e))?;
    // Refuse a key that does not load now, not at the first peer's handshake.
    peer_tls::server_config(&cert_pem, &key_pem).map_err(|e| bad(path, e))?;
    Ok(TlsIdentity {
        fingerprint: peer_tls::fingerprint(first.as_ref()),
        cert_pem,
        key_pem,
    })
}

/// Loads the configured or stored identity, making one on first use.
pub fn load_or_create(data_dir: &DataDir, tls: &TlsConfig) -> io::Result<TlsIdentity> {
    if let (Some(cert), Some(key)) = (&tls.cert_path, &tls.key_path) {
        let (cert, key) = (expand_home(cert), expand_home(key));
        let cert_pem = std::fs::read(&cert).map_err(|e| bad(&cert, e))?;
        let key_pem = std::fs::read(&key).map_err(|e| bad(&key, e))?;
        return from_pem(cert_pem, key_pem, &cert);
    }
    let path = data_dir.peer_tls();
    match std::fs::read(&path) {
        // One file holds both: the PEM readers pick out their own blocks.
        Ok(pem) => from_pem(pem.clone(), pem, &path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let made = rcgen::generate_simple_self_signed(vec!["loopsy".to_owned()])
                .map_err(io::Error::other)?;
            let pem = format!("{}{}", made.cert.pem(), made.key_pair.serialize_pem()).into_bytes();
            write_private_atomic(&path, &pem)?;
            from_pem(pem.clone(), pem, &path)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_made_once_private_and_stable() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let data_dir = DataDir::new(dir.path());
        let first = load_or_create(&data_dir, &TlsConfig::default())?;
        let again = load_or_create(&data_dir, &TlsConfig::default())?;
        assert_eq!(first.fingerprint, again.fingerprint);
        assert!(peer_tls::is_fingerprint(&first.fingerprint));
        let mode = std::fs::metadata(data_dir.peer_tls())?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(data_dir.peer_tls(), "garbage")?;
        assert!(load_or_create(&data_dir, &TlsConfig::default()).is_err());
        Ok(())
    }
}
