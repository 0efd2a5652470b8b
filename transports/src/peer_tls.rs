//! TLS between daemons. Each daemon has a self-signed certificate; a peer is
//! known by the SHA-256 fingerprint of that certificate, pinned at pairing.
//! The client side checks the fingerprint instead of a CA chain (and still
//! checks the handshake signature, so only the holder of the pinned
//! certificate's key can answer). A certificate other than the pinned one
//! fails the handshake: nothing, not even a bearer, is sent to it.
//!
//! Before pairing there is no pin. The pairing client then accepts any
//! certificate but records its fingerprint, which the pairing protocol checks
//! against the one the other side states inside the authenticated handshake.

use std::sync::{Arc, Mutex};

use aws_lc_rs::{constant_time, digest};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A certificate fingerprint: lower-case hex SHA-256 of its DER (the original's
/// `tls.pinnedCerts` format).
pub fn fingerprint(cert_der: &[u8]) -> String {
    crate::secrets::hex(digest::digest(&digest::SHA256, cert_der).as_ref())
}

/// Whether `text` has the shape of a fingerprint (64 hex digits).
pub fn is_fingerprint(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

#[derive(Debug, thiserror::Error)]
pub enum PeerTlsError {
    #[error("the TLS certificate or key is unusable: {0}")]
    Identity(String),
}

/// The server side: this daemon's certificate and key (PEM), HTTP/1.1.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::ServerConfig, PeerTlsError> {
    use rustls::pki_types::pem::PemObject;
    let bad = |e: &dyn std::fmt::Display| PeerTlsError::Identity(e.to_string());
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(PeerTlsError::Identity("no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad(&e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// What the client accepts from the server.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Only the certificate with this fingerprint.
    Pinned(String),
    /// Any certificate; its fingerprint is written to the slot (pairing only).
    Record(Arc<Mutex<Option<String>>>),
}

#[derive(Debug)]
struct PeerVerifier {
    trust: Trust,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = fingerprint(end_entity.as_ref());
        match &self.trust {
            Trust::Pinned(pin) => {
                if constant_time::verify_slices_are_equal(seen.as_bytes(), pin.as_bytes()).is_ok() {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(format!(
                        "the peer presented certificate {seen}, not the one pinned at pairing"
                    )))
                }
            }
            Trust::Record(slot) => {
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(seen);
                }
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The client side, trusting what `trust` says.
pub fn client_config(trust: Trust) -> Result<rustls::ClientConfig, PeerTlsError> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PeerTlsError::Identity(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerVerifier { trust, algorithms }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_have_one_shape() {
        let fp = fingerprint(b"certificate bytes");
        assert!(is_fingerprint(&fp));
        assert_eq!(fp, fp.to_lowercase());
        assert!(!is_fingerprint("abc"));
        assert!(!is_fingerprint(&"g".repeat(64)));
    }
}
